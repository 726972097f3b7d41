"""Image dimensions read from a compressed image's header, before anything is decoded.

A few hundred bytes of PNG can decode to 8000x8000 pixels: the size limit must be checked
on the header (PNG ``IHDR``, JPEG ``SOFn``), not after a full decode.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic variants)
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE = frozenset(range(0xD0, 0xDA)) | {0x01}


def png_size(buf: np.ndarray) -> Optional[tuple[int, int]]:
    """(width, height) from a PNG's IHDR chunk, or None when ``buf`` is not a PNG."""
    head = bytes(buf[:24])
    if len(head) < 24 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def jpeg_size(buf: np.ndarray) -> Optional[tuple[int, int]]:
    """(width, height) from a JPEG's first start-of-frame segment, or None."""
    data = bytes(buf[:65536]) if buf.size > 65536 else bytes(buf)
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _STANDALONE:
            i += 2
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if marker in _SOF_MARKERS:
            if i + 9 > len(data):
                return None
            height = int.from_bytes(data[i + 5:i + 7], "big")
            width = int.from_bytes(data[i + 7:i + 9], "big")
            return width, height
        if marker == 0xDA or length < 2:  # scan data before any frame header
            return None
        i += 2 + length
    return None


def compressed_size(buf: np.ndarray) -> Optional[tuple[int, int]]:
    """(width, height) of a PNG or JPEG from its header; None for another or a cut header."""
    return png_size(buf) or jpeg_size(buf)
