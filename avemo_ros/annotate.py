"""What a window decided, drawn onto a camera frame (NumPy / OpenCV in, RGB image out; no ROS).

One drawing for every place that shows it: the node's ``~/debug_image``
(:mod:`avemo_ros.ros.debug_image`), the demo's annotated video and the bag evaluation's
video and stills (:mod:`avemo_ros.annotated_video`).

- every face: its box, its id (when it has one), label and confidence (:class:`FaceMark`;
  :func:`faces_of` reads them off a result: the single ``face_box`` of an
  :class:`~avemo_ros.estimator.EmotionResult` today, ``faces`` where a result carries
  several tracked ones);
- a panel (top left): the label and confidence of the primary face, which modalities the
  window used (AUDIO / VIDEO, lit when used), whether speech was heard (the speech gate's
  ``speech_detected`` / ``speech_fraction``; ``--`` where no gate ran), the latency, any
  extra notes, and a bar chart of the fused probabilities, the top label's bar lit.

Sizes scale with the frame (a 640x480 frame is scale 1, 1920x1080 is 2.25) so the text
reads the same at any camera resolution; :func:`layout` gives every position, so callers
and tests know where each element is. Frames and colours are RGB.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

import cv2
import numpy as np

__all__ = [
    "FaceMark",
    "Layout",
    "MODALITY_NAMES",
    "annotate",
    "draw_faces",
    "faces_of",
    "label_colour",
    "layout",
    "speech_text",
]

Box = tuple[int, int, int, int]  # x, y, width, height in pixels of the frame

#: Modality bits (EmotionEstimate.modalities) and the badge names drawn for them.
MODALITY_NAMES = ((1, "AUDIO"), (2, "VIDEO"))

_FONT = cv2.FONT_HERSHEY_SIMPLEX
#: RGB colour of each label the project's datasets use; other labels get one from a hash.
_LABEL_COLOURS = {
    "neutral": (200, 200, 200), "calm": (80, 220, 200), "happy": (255, 215, 0),
    "sad": (70, 130, 255), "angry": (255, 60, 60), "fearful": (190, 110, 255),
    "disgust": (110, 200, 60), "surprised": (255, 150, 40), "excited": (255, 100, 200),
    "frustrated": (200, 90, 60),
}
TEXT = (255, 255, 255)
DIM = (130, 130, 130)
LIT = (40, 200, 90)  # a modality the window used
UNLIT = (70, 70, 70)
BAR_BACK = (60, 60, 60)
PANEL_ALPHA = 0.35  # the frame's share under the panel


def label_colour(label: str) -> tuple[int, int, int]:
    """The RGB colour a label is drawn in (its box, its bar)."""
    if label in _LABEL_COLOURS:
        return _LABEL_COLOURS[label]
    h = zlib.crc32(label.encode())  # stable across runs, unlike hash()
    hsv = np.uint8([[[h % 180, 160 + (h >> 8) % 96, 230]]])
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


@dataclass(frozen=True)
class FaceMark:
    """One face to draw: box (x, y, w, h), its tracking id ("" none), label, confidence."""

    box: Box
    face_id: str = ""
    label: str = ""
    confidence: Optional[float] = None


FaceLike = Union[FaceMark, Sequence[Any]]


def _as_mark(face: Any) -> FaceMark:
    """A FaceMark from a FaceMark, an object with box / face_id / label / confidence, or a
    (box, id, label, confidence) tuple (trailing items optional)."""
    if isinstance(face, FaceMark):
        return face
    if hasattr(face, "box"):
        conf = getattr(face, "confidence", None)
        return FaceMark(tuple(int(v) for v in face.box),
                        str(getattr(face, "face_id", "") or getattr(face, "id", "") or ""),
                        str(getattr(face, "label", "") or ""),
                        None if conf is None else float(conf))
    items = list(face) + [None] * 3
    box, face_id, label, conf = items[:4]
    return FaceMark(tuple(int(v) for v in box), str(face_id or ""), str(label or ""),
                    None if conf is None else float(conf))


def faces_of(result: Any) -> list[FaceMark]:
    """The faces of a result: its ``faces`` (several tracked faces, primary first) where it
    has them, else its one ``face_box`` (with ``face_id`` when it has one); [] without."""
    if result is None:
        return []
    many = getattr(result, "faces", None)
    if many:
        return [_as_mark(f) for f in many]
    box = getattr(result, "face_box", None)
    if box is None or not getattr(result, "face_found", True):
        return []
    return [FaceMark(tuple(int(v) for v in box), str(getattr(result, "face_id", "") or ""),
                     str(result.label), float(result.confidence))]


def speech_text(result: Any) -> tuple[str, bool]:
    """(what to write about speech, whether it was heard): the speech gate's verdict and
    share of speech; ``--`` where no gate ran (gate off, or no audio)."""
    heard = getattr(result, "speech_detected", None)
    if heard is None:
        return "speech --", False
    frac = getattr(result, "speech_fraction", float("nan"))
    share = f" {float(frac) * 100:.0f}%" if frac is not None and math.isfinite(frac) else ""
    return ("speech" if heard else "no speech") + share, bool(heard)


@dataclass(frozen=True)
class Layout:
    """Where everything goes on a frame of ``height`` x ``width`` (pixels, x right, y down).

    ``panel``: (x, y, w, h) of the panel; ``lines``: baseline y of each text line (label,
    modalities, speech, latency, notes...); ``badges``: (x, y, w, h) of the AUDIO and
    VIDEO badges; ``bars``: (x, y, w, h) of each label's full-length bar, in label order;
    ``names_x`` / ``values_x``: where the bars' names and values start.
    """

    scale: float
    font_scale: float
    thickness: int
    line_h: int
    panel: Box
    lines: tuple[int, ...]
    badges: tuple[Box, ...]
    bars: tuple[Box, ...]
    names_x: int
    values_x: int


def layout(height: int, width: int, n_labels: int, n_notes: int = 0) -> Layout:
    """The layout of a frame: scale 1 at 640x480, 2.25 at 1920x1080 (the smaller of the
    width and height ratios, at least 0.4); bars shrink when many labels would not fit."""
    s = max(0.4, min(width / 640.0, height / 480.0))
    px = lambda v: max(1, int(round(v * s)))  # noqa: E731
    margin, pad, line_h = px(8), px(6), px(21)
    n_lines = 4 + n_notes
    name_w, bar_w, value_w = px(84), px(104), px(38)
    panel_w = min(pad + name_w + bar_w + pad + value_w, width - 2 * margin)
    top = margin + pad
    lines = tuple(top + line_h * (i + 1) - px(6) for i in range(n_lines))
    bars_top = top + line_h * n_lines + pad
    room = height - margin - pad - bars_top
    pitch = min(px(17), room // max(1, n_labels)) if n_labels else 0
    pitch = max(pitch, 2)
    bar_h = max(1, int(round(pitch * 0.75)))
    names_x = margin + pad
    bar_x = names_x + name_w
    bar_w = max(1, min(bar_w, margin + panel_w - pad - value_w - bar_x))
    bars = tuple((bar_x, bars_top + i * pitch, bar_w, bar_h) for i in range(n_labels))
    panel_h = min(height - margin, bars_top + n_labels * pitch + pad) - margin
    badge_w, badge_h = px(58), px(16)
    badge_y = lines[1] - badge_h + px(3)
    badges = tuple((names_x + i * (badge_w + px(6)), badge_y, badge_w, badge_h)
                   for i in range(len(MODALITY_NAMES)))
    return Layout(scale=s, font_scale=0.5 * s, thickness=max(1, int(round(s))), line_h=line_h,
                  panel=(margin, margin, panel_w, panel_h), lines=lines, badges=badges,
                  bars=bars, names_x=names_x, values_x=bar_x + bar_w + pad)


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, colour,
          thickness: int) -> None:
    cv2.putText(img, text, org, _FONT, scale, colour, thickness, cv2.LINE_AA)


def _darken(img: np.ndarray, box: Box) -> None:
    x, y, w, h = box
    roi = img[max(0, y):max(0, y + h), max(0, x):max(0, x + w)]
    if roi.size:
        cv2.convertScaleAbs(roi, dst=roi, alpha=PANEL_ALPHA)


def draw_faces(img: np.ndarray, faces: Sequence[FaceLike], scale: float = 1.0) -> np.ndarray:
    """Draw each face's box and tag ("id 3 happy 0.92") onto ``img`` in place; returns it.

    ``faces``: FaceMarks or (box, id, label, confidence) tuples; the box is drawn in its
    label's colour (grey without a label), ``scale`` as :func:`layout` gives it."""
    h_img, w_img = img.shape[:2]
    thick = max(2, int(round(2 * scale)))
    fs, ft = 0.5 * scale, max(1, int(round(scale)))
    for face in faces:
        f = _as_mark(face)
        x, y, w, h = f.box
        colour = label_colour(f.label) if f.label else DIM
        cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), colour, thick, cv2.LINE_AA)
        parts = [f"id {f.face_id}" if f.face_id else "", f.label,
                 "" if f.confidence is None else f"{f.confidence:.2f}"]
        tag = " ".join(p for p in parts if p)
        if not tag:
            continue
        (tw, th), base = cv2.getTextSize(tag, _FONT, fs, ft)
        ty = y - thick - base if y - thick - th - base - 2 >= 0 else min(
            h_img - base - 1, y + h + thick + th)  # above the box, else below it
        tx = int(np.clip(x, 0, max(0, w_img - tw - 2)))
        cv2.rectangle(img, (tx, ty - th - 2), (tx + tw + 2, ty + base), colour, cv2.FILLED)
        _text(img, tag, (tx + 1, ty), fs, (0, 0, 0), ft)
    return img


def annotate(frame: np.ndarray, result: Any, *, latency_s: Optional[float] = None,
             faces: Optional[Sequence[FaceLike]] = None, notes: Sequence[str] = (),
             min_width: int = 0, labels: Optional[Sequence[str]] = None) -> np.ndarray:
    """A new RGB uint8 image: ``frame`` with ``result`` drawn on it (the frame is not changed).

    ``frame``: (H, W, 3) uint8 RGB (grey (H, W) is taken too). ``result``: an
    :class:`~avemo_ros.estimator.EmotionResult` or anything with its fields (labels,
    probabilities, label, confidence, modalities, face_box; optional face_id, faces,
    speech_detected, speech_fraction); None draws "no estimate yet". ``latency_s``: the
    estimate's latency (live: window end -> publication; offline: compute). ``faces``:
    overrides :func:`faces_of`, e.g. several tracked faces, primary first. ``notes``: more
    lines for the panel. ``min_width``: narrower frames are scaled up first (video).
    ``labels``: the label set to chart while ``result`` is None.
    """
    img = np.asarray(frame)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB frame, got {img.dtype} {img.shape}")
    if min_width and img.shape[1] < min_width:
        f = min_width / img.shape[1]
        img = cv2.resize(img, (min_width, int(round(img.shape[0] * f))),
                         interpolation=cv2.INTER_LINEAR)
        faces = [(tuple(int(round(v * f)) for v in m.box), m.face_id, m.label, m.confidence)
                 for m in map(_as_mark, faces_of(result) if faces is None else faces)]
    else:
        img = img.copy()
    names = list(getattr(result, "labels", None) or labels or [])
    lay = layout(img.shape[0], img.shape[1], len(names), len(notes))
    _darken(img, lay.panel)
    fs, ft, x0 = lay.font_scale, lay.thickness, lay.names_x
    bold = ft + 1 if lay.scale >= 0.8 else ft  # thicker strokes blur small text
    if result is None:
        _text(img, "no estimate yet", (x0, lay.lines[0]), fs * 1.15, TEXT, bold)
        probs = np.zeros(len(names))
        top = -1
    else:
        _text(img, f"{result.label} {float(result.confidence):.2f}", (x0, lay.lines[0]),
              fs * 1.15, label_colour(str(result.label)), bold)
        mods = int(result.modalities)
        for (bit, name), (bx, by, bw, bh) in zip(MODALITY_NAMES, lay.badges):
            used = bool(mods & bit)
            cv2.rectangle(img, (bx, by), (bx + bw - 1, by + bh - 1), LIT if used else UNLIT,
                          cv2.FILLED)
            (tw, th), _ = cv2.getTextSize(name, _FONT, fs * 0.8, ft)
            _text(img, name, (bx + (bw - tw) // 2, by + (bh + th) // 2), fs * 0.8,
                  TEXT if used else DIM, ft)
        said, heard = speech_text(result)
        _text(img, said, (x0, lay.lines[2]), fs, TEXT if heard else DIM, ft)
        lat = "latency --" if latency_s is None or not math.isfinite(latency_s) \
            else f"latency {latency_s * 1e3:.0f} ms"
        _text(img, lat, (x0, lay.lines[3]), fs, TEXT, ft)
        probs = np.asarray(result.probabilities, dtype=np.float64).reshape(-1)
        top = int(np.argmax(probs)) if probs.size else -1
    for i, note in enumerate(notes):
        _text(img, str(note), (x0, lay.lines[4 + i]), fs, TEXT, ft)
    for i, (name, (bx, by, bw, bh)) in enumerate(zip(names, lay.bars)):
        p = float(probs[i]) if i < probs.size and math.isfinite(probs[i]) else 0.0
        p = min(max(p, 0.0), 1.0)
        cv2.rectangle(img, (bx, by), (bx + bw - 1, by + bh - 1), BAR_BACK, cv2.FILLED)
        n = int(round(p * bw))
        if n:
            cv2.rectangle(img, (bx, by), (bx + n - 1, by + bh - 1),
                          label_colour(name) if i == top else DIM, cv2.FILLED)
        small, thin = fs * 0.8, max(1, ft - 1)
        (_, th), _ = cv2.getTextSize(name, _FONT, small, thin)
        ty = by + (bh + th) // 2
        colour = TEXT if i == top else DIM
        _text(img, name[:11], (x0, ty), small, colour, thin)
        _text(img, f"{p:.2f}", (lay.values_x, ty), small, colour, thin)
    draw_faces(img, faces_of(result) if faces is None else faces, lay.scale)  # on top
    return img
