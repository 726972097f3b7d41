"""Video preprocessing: pick N frames over a window, find the face, crop, grey, resize.

A window in which too few sampled frames show a face has no video modality; it is
flagged, never filled with a blind crop.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np

#: Face box (x, y, width, height) in pixels of the input image.
Box = tuple[int, int, int, int]
#: How a window's grey crops become the video network's input (VideoFeatureConfig).
WINDOW_STANDARDISE, SCALE_PM1 = "window_standardise", "scale_pm1"
NORMALISATIONS = (WINDOW_STANDARDISE, SCALE_PM1)


@dataclass(frozen=True)
class VideoFeatureConfig:
    """Face-stack parameters (seed 001: 20 frames of 60 x 100 per 3 s window).

    Crops are ``crop_height`` x ``crop_width`` (rows x columns), grey, taken around the
    detected face box enlarged by ``margin`` and widened/heightened to the crop's aspect
    ratio, then normalised as ``normalisation`` says: ``"window_standardise"`` (every
    bundle trained here: the window's stack to zero mean and unit variance) or
    ``"scale_pm1"`` (each grey pixel ``x`` in 0..255 to ``(x / 255 - 0.5) * 2``, in
    [-1, 1]: what the FER2013 mini-Xception was trained with).

    Detection: ``min_face_camera_px`` is the smallest face to find, in pixels of the
    camera image; the image is scaled so that such a face measures ``min_face_px`` (the
    cascade's smallest search window, 32) before the cascade runs, so a face of that size
    is found at 640x480, 1280x720 and 1920x1080 alike (never upscaled). 0 is the rule of
    bundles made before it existed: scale to ``detect_width`` pixels wide.
    """

    n_frames: int = 20
    crop_height: int = 100
    crop_width: int = 60
    window_s: float = 3.0
    margin: float = 0.05
    min_face_fraction: float = 0.5
    detect_width: int = 320
    scale_factor: float = 1.1
    min_neighbors: int = 5
    min_face_px: int = 32
    min_face_camera_px: int = 64
    normalisation: str = "window_standardise"

    def __post_init__(self):
        if self.normalisation not in NORMALISATIONS:
            raise ValueError(f"unknown face normalisation {self.normalisation!r}; known: "
                             f"{', '.join(NORMALISATIONS)}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """Face stack shape (frames, rows, columns)."""
        return (self.n_frames, self.crop_height, self.crop_width)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "VideoFeatureConfig":
        return cls(**d)


@dataclass
class FaceStack:
    """The video input of one window."""

    frames: Optional[np.ndarray]  # (n_frames, crop_height, crop_width) float32; None: no face
    face_found: bool
    found_fraction: float  # share of sampled frames with a detection, in [0, 1]
    box: Optional[Box]  # median face box over the window's frames


def select_times(start_s: float, end_s: float, n: int) -> np.ndarray:
    """N evenly spread sample times over [start, end), on a grid shared by all windows.

    The slots are (end - start) / n long and anchored at time 0, not at the window
    start, so overlapping windows of the same length sample the same instants: a frame
    (and its face detection, cached by stamp) serves every window it falls in. The times
    are the N slot centres in [start, end) (a half-open interval N slots long holds
    exactly N of them).
    """
    slot = (end_s - start_s) / n
    if slot <= 0:
        return np.full(n, float(start_s))
    first = np.ceil(start_s / slot - 0.5 - 1e-9)
    return (first + np.arange(n) + 0.5) * slot


def select_frames(frame_times: Sequence[float], start_s: float, end_s: float,
                  n: int) -> np.ndarray:
    """Indices of the frames nearest to ``select_times``; empty when no frame is in the window.

    ``frame_times`` must be sorted. A slot's frame may repeat when the camera is slower
    than N frames per window.
    """
    t = np.asarray(frame_times, dtype=np.float64)
    inside = (t >= start_s) & (t <= end_s)
    if not inside.any():
        return np.zeros(0, dtype=np.int64)
    targets = select_times(start_s, end_s, n)
    pos = (np.clip(np.searchsorted(t, targets), 1, len(t) - 1) if len(t) > 1
           else np.zeros(n, np.int64))
    if len(t) > 1:
        left = t[pos - 1]
        right = t[pos]
        pos = np.where(np.abs(targets - left) <= np.abs(right - targets), pos - 1, pos)
    return pos.astype(np.int64)


#: The frontal-face cascade every bundle's preprocessing was trained with.
DEFAULT_CASCADE = "haarcascade_frontalface_default.xml"
#: Where Debian/Ubuntu's ``opencv-data`` package puts the cascades (apt's ``python3-opencv``
#: has no ``cv2.data``); newest layout first.
SYSTEM_CASCADE_DIRS = ("/usr/share/opencv4/haarcascades", "/usr/share/opencv/haarcascades")


class CascadeNotFoundError(RuntimeError):
    """No Haar cascade file could be found (or the given one cannot be read)."""


def resolve_cascade(cascade_path: Optional[str] = None, name: str = DEFAULT_CASCADE) -> str:
    """Path of the Haar cascade file to load.

    In this order: ``cascade_path`` when given (it must exist: no silent fallback), else
    ``name`` in ``cv2.data.haarcascades`` (pip's opencv-python(-headless) 4.x bundles
    them), else ``name`` in :data:`SYSTEM_CASCADE_DIRS` (apt's python3-opencv + opencv-data).
    Raises :class:`CascadeNotFoundError` naming the places looked in and the fixes.
    """
    if cascade_path:
        path = Path(cascade_path).expanduser()
        if not path.is_file():
            raise CascadeNotFoundError(f"Haar cascade {cascade_path} (cascade_path) is not a file")
        return str(path)
    looked = []
    data_dir = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if data_dir:
        looked.append(str(data_dir))
        if (Path(data_dir) / name).is_file():
            return str(Path(data_dir) / name)
    else:
        looked.append("cv2.data (absent in this OpenCV build)")
    for folder in SYSTEM_CASCADE_DIRS:
        looked.append(folder)
        if (Path(folder) / name).is_file():
            return str(Path(folder) / name)
    raise CascadeNotFoundError(
        f"Haar cascade {name} not found (looked in {', '.join(looked)}). Install the cascades "
        "(apt install opencv-data, or pip install 'opencv-python-headless<5'), or pass its "
        "path: the perception node's cascade_path parameter")


class FaceDetector:
    """OpenCV Haar cascade on a downscaled grey image.

    ``cascade_path``: the cascade XML file; None finds the bundled or system one
    (:func:`resolve_cascade`).
    """

    def __init__(self, cfg: VideoFeatureConfig = VideoFeatureConfig(),
                 cascade_path: Optional[str] = None):
        path = resolve_cascade(cascade_path)
        if not hasattr(cv2, "CascadeClassifier"):
            raise CascadeNotFoundError("this OpenCV build has no CascadeClassifier (OpenCV 5 "
                                       "dropped it): pip install 'opencv-python-headless<5'")
        try:
            self._cascade = cv2.CascadeClassifier(path)
        except (cv2.error, SystemError) as exc:  # a file that is no cascade
            raise CascadeNotFoundError(f"could not load the Haar cascade {path}: {exc}") from exc
        if self._cascade.empty():
            raise CascadeNotFoundError(f"could not load the Haar cascade {path}")
        self.cascade_path = path
        self.cfg = cfg

    def detect(self, grey: np.ndarray) -> Optional[Box]:
        """Largest face in a grey uint8 image, in its pixel coordinates, or None."""
        h, w = grey.shape[:2]
        scale = detection_scale(w, self.cfg)
        small = grey if scale == 1.0 else cv2.resize(
            grey, (int(round(w * scale)), int(round(h * scale))), interpolation=cv2.INTER_AREA)
        faces = self._cascade.detectMultiScale(
            small, scaleFactor=self.cfg.scale_factor, minNeighbors=self.cfg.min_neighbors,
            minSize=(self.cfg.min_face_px, self.cfg.min_face_px))
        if len(faces) == 0:
            return None
        x, y, bw, bh = max(faces, key=lambda f: f[2] * f[3])
        return (int(x / scale), int(y / scale), int(bw / scale), int(bh / scale))


def detection_scale(width: int, cfg: VideoFeatureConfig) -> float:
    """Factor by which an image ``width`` pixels wide is scaled for the cascade (<= 1)."""
    if cfg.min_face_camera_px > 0:
        return min(1.0, cfg.min_face_px / float(cfg.min_face_camera_px))
    return min(1.0, cfg.detect_width / float(width))


def to_grey(rgb: np.ndarray) -> np.ndarray:
    """RGB (or already grey) uint8 image -> grey uint8."""
    if rgb.ndim == 2:
        return rgb
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def crop_face(grey: np.ndarray, box: Box, cfg: VideoFeatureConfig) -> np.ndarray:
    """Crop around ``box`` at the crop's aspect ratio (edges replicated), resize, uint8."""
    x, y, w, h = box
    cx, cy = x + w / 2.0, y + h / 2.0
    cw = w * (1 + 2 * cfg.margin)
    ch = h * (1 + 2 * cfg.margin)
    aspect = cfg.crop_height / cfg.crop_width
    if ch / cw < aspect:
        ch = cw * aspect
    else:
        cw = ch / aspect
    x0, y0 = int(round(cx - cw / 2)), int(round(cy - ch / 2))
    x1, y1 = x0 + max(1, int(round(cw))), y0 + max(1, int(round(ch)))
    H, W = grey.shape[:2]
    pad = max(0, -x0, -y0, x1 - W, y1 - H)
    if pad:
        grey = cv2.copyMakeBorder(grey, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    crop = grey[y0:y1, x0:x1]
    return cv2.resize(crop, (cfg.crop_width, cfg.crop_height), interpolation=cv2.INTER_AREA)


def build_face_stack(greys: Sequence[np.ndarray], boxes: Sequence[Optional[Box]],
                     cfg: VideoFeatureConfig = VideoFeatureConfig()) -> FaceStack:
    """Sampled grey frames + their detections -> the window's normalised face stack.

    Frames without a detection borrow the nearest sampled frame's box; with fewer than
    ``cfg.min_face_fraction`` of frames detected, the window has no video modality.
    """
    n = len(greys)
    found = [i for i, b in enumerate(boxes) if b is not None]
    fraction = len(found) / n if n else 0.0
    if n == 0 or fraction < cfg.min_face_fraction:
        return FaceStack(frames=None, face_found=False, found_fraction=fraction, box=None)
    found_arr = np.asarray(found)
    crops = []
    for i, grey in enumerate(greys):
        j = found_arr[np.argmin(np.abs(found_arr - i))]
        crops.append(crop_face(grey, boxes[j], cfg))
    stack = np.stack(crops).astype(np.float32)
    if stack.shape[0] != cfg.n_frames:  # fewer sampled frames than slots: repeat evenly
        stack = stack[np.linspace(0, stack.shape[0] - 1, cfg.n_frames).round().astype(int)]
    stack = normalise_stack(stack, cfg.normalisation)
    median_box = tuple(int(v) for v in np.median(np.array([boxes[i] for i in found]), axis=0))
    return FaceStack(frames=stack, face_found=True, found_fraction=fraction, box=median_box)


def normalise_stack(stack: np.ndarray, normalisation: str = WINDOW_STANDARDISE) -> np.ndarray:
    """Grey crops (0..255, float32) as the video network takes them (see
    :class:`VideoFeatureConfig`); float32."""
    stack = np.asarray(stack, dtype=np.float32)
    if normalisation == SCALE_PM1:
        return stack * np.float32(2.0 / 255.0) - np.float32(1.0)
    if normalisation != WINDOW_STANDARDISE:
        raise ValueError(f"unknown face normalisation {normalisation!r}")
    std = stack.std()
    return (stack - stack.mean()) / (std if std > 1e-6 else 1.0)


def face_stack_from_frames(frames_rgb: Sequence[np.ndarray], frame_times: Sequence[float],
                           start_s: float, end_s: float, detector: FaceDetector,
                           cfg: VideoFeatureConfig = VideoFeatureConfig()) -> FaceStack:
    """Whole-clip convenience (training, offline): select, detect, crop one window."""
    idx = select_frames(frame_times, start_s, end_s, cfg.n_frames)
    greys = [to_grey(frames_rgb[i]) for i in idx]
    cache: dict[int, Optional[Box]] = {}
    boxes = []
    for i, g in zip(idx, greys):
        if int(i) not in cache:
            cache[int(i)] = detector.detect(g)
        boxes.append(cache[int(i)])
    return build_face_stack(greys, boxes, cfg)
