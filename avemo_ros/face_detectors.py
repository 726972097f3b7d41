"""Face detectors behind one small interface, for the tracker (``face_tracking``) and the bench.

Every detector takes a grey uint8 image and the range of face sizes to find, in pixels of
*that* image, and decides its own working scale: the image is shrunk so the smallest face
asked for fills the detector's search window (``window_px``), never enlarged. The
tracker runs the same detector on the whole frame (faces from ``min_face_px`` up) and on
small regions around its tracks (faces near the track's size), so one call shape serves
both.

Detectors (``make_detector(name)``; :data:`DETECTORS` lists them):

* ``haar_default``, ``haar_alt``, ``haar_alt2``, ``haar_alt_tree``: OpenCV's frontal-face
  Haar cascades (``cv2.data.haarcascades``, or apt's opencv-data folders).
  ``haar_default`` is the cascade the bundles' training preprocessing used.
* ``haar_profile``: OpenCV's profile cascade, run on the image and its mirror (the
  cascade knows one side only).
* ``lbp_frontal``: OpenCV's LBP frontal-face cascade, as scikit-image ships a copy
  (a test-only dependency here; its XML has a misspelt tag, mended in memory).
* ``yunet``: ``cv2.FaceDetectorYN`` (YuNet, a small CNN) when the user gives its ONNX
  model file (``model_path``); nothing downloads it.
* ``mtcnn``: MTCNN's three CNNs on ONNX Runtime (:mod:`avemo_ros.face_mtcnn`), weights
  from the facenet-pytorch wheel made into ONNX at setup; ``model_path``: their folder.

Choice (``python -m bench.face_tracking``): ``haar_alt2``, see :data:`DEFAULT_DETECTOR`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import cv2
import numpy as np

from .face_frames import Box, CascadeNotFoundError, resolve_cascade

#: The detector the tracker uses unless told otherwise (bench/face_tracking.py on the
#: astronaut set): recall level with ``haar_default`` (the cascade the bundles' training
#: crops came from; same boxes within 1 % in size and centre), an eighth of its false
#: detections, about 20 % cheaper on the whole frame and half the cost around a track.
DEFAULT_DETECTOR = "haar_alt2"


class DetectorError(RuntimeError):
    """A detector cannot be made: its model file is missing or unreadable, or this OpenCV
    lacks it. The message names the file and the fix."""


@dataclass(frozen=True)
class Detection:
    """One face: its box (x, y, width, height) in pixels of the image searched, and the
    detector's confidence (Haar: neighbouring hits merged into it; YuNet: its score)."""

    box: Box
    score: float


class Detector:
    """The interface: :meth:`detect` over a grey image for faces in a size range.

    ``window_px``: the face size (in pixels of the image the model runs on) the smallest
    requested face is scaled to. ``native_px``: the model's own smallest face; faces
    between ``native_px`` and ``window_px`` at the working scale come for no extra pyramid
    level of the image (the tracker's "too small" probe asks for them).
    """

    name = "detector"
    window_px = 32
    native_px = 24

    def detect(self, grey: np.ndarray, min_face_px: float,
               max_face_px: Optional[float] = None,
               scale_px: Optional[float] = None,
               window_px: Optional[int] = None,
               scale_step: Optional[float] = None,
               min_neighbors: Optional[int] = None) -> list[Detection]:
        """Faces ``min_face_px``..``max_face_px`` tall in ``grey`` (uint8, 2-D), in its pixels.

        ``scale_px`` (default ``min_face_px``) is the face size that is brought to
        ``window_px`` (default the detector's; never below ``native_px``) by shrinking the
        image (factor ``min(1, window_px / scale_px)``); ``min_face_px`` below it (down to
        ``native_px`` at that scale) costs a few more pyramid levels, not a larger image.
        """
        window = max(self.native_px, window_px or self.window_px)
        scale = min(1.0, window / float(scale_px or min_face_px))
        h, w = grey.shape[:2]
        if scale < 1.0:
            sw, sh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
            small = cv2.resize(grey, (sw, sh), interpolation=cv2.INTER_AREA)
            sx, sy = w / sw, h / sh
        else:
            small, sx, sy = grey, 1.0, 1.0
        lo = max(self.native_px, int(math.floor(min_face_px / sy)))
        hi = None if max_face_px is None else int(math.ceil(max_face_px / sy))
        if hi is not None and hi < lo:
            return []
        if min(small.shape[:2]) < lo:
            return []
        out = []
        for (x, y, bw, bh), score in self._run(small, lo, hi, scale_step, min_neighbors):
            box = (int(round(x * sx)), int(round(y * sy)), int(round(bw * sx)),
                   int(round(bh * sy)))
            if box[3] >= min_face_px * 0.9 and (max_face_px is None
                                                or box[3] <= max_face_px * 1.1):
                out.append(Detection(box, float(score)))
        return out

    def _run(self, small: np.ndarray, lo: int, hi: Optional[int],
             scale_step: Optional[float] = None, min_neighbors: Optional[int] = None
             ) -> list[tuple[tuple[int, int, int, int], float]]:
        """(box, score) pairs in ``small``'s pixels for faces ``lo``..``hi`` tall."""
        raise NotImplementedError


class HaarDetector(Detector):
    """An OpenCV cascade (Haar or LBP): ``detectMultiScale2`` on the shrunk image.

    ``cascade``: a file name in the cascade folders (:func:`resolve_cascade`) or a path;
    ``mirror``: also run on the mirrored image (the profile cascade sees one side).
    """

    def __init__(self, cascade: str = "haarcascade_frontalface_default.xml", *,
                 name: Optional[str] = None, window_px: int = 32, scale_factor: float = 1.1,
                 min_neighbors: int = 5, mirror: bool = False,
                 classifier: Optional["cv2.CascadeClassifier"] = None):
        if not hasattr(cv2, "CascadeClassifier"):
            raise CascadeNotFoundError("this OpenCV build has no CascadeClassifier (OpenCV 5 "
                                       "dropped it): pip install 'opencv-python-headless<5'")
        if classifier is None:
            path = (resolve_cascade(cascade) if Path(cascade).expanduser().is_file()
                    or "/" in cascade else resolve_cascade(None, cascade))
            try:
                classifier = cv2.CascadeClassifier(path)
            except (cv2.error, SystemError) as exc:
                raise CascadeNotFoundError(f"could not load the cascade {path}: {exc}") from exc
            if classifier.empty():
                raise CascadeNotFoundError(f"could not load the cascade {path}")
            self.source = path
        else:
            self.source = cascade
        self._cascade = classifier
        ww, wh = classifier.getOriginalWindowSize()
        self.native_px = int(max(ww, wh))
        self.window_px = max(int(window_px), self.native_px)
        self.name = name or Path(cascade).stem
        self.scale_factor, self.min_neighbors, self.mirror = scale_factor, min_neighbors, mirror

    def _once(self, img: np.ndarray, lo: int, hi: Optional[int], step: Optional[float],
              neighbors: Optional[int]):
        kw = {"maxSize": (hi, hi)} if hi is not None else {}
        boxes, hits = self._cascade.detectMultiScale2(
            img, scaleFactor=step or self.scale_factor,
            minNeighbors=self.min_neighbors if neighbors is None else neighbors,
            minSize=(lo, lo), **kw)
        return [(tuple(int(v) for v in b), float(n)) for b, n in zip(boxes, np.ravel(hits))]

    def _run(self, small, lo, hi, scale_step=None, min_neighbors=None):
        found = self._once(small, lo, hi, scale_step, min_neighbors)
        if self.mirror:
            w = small.shape[1]
            flipped = self._once(np.ascontiguousarray(small[:, ::-1]), lo, hi, scale_step,
                                 min_neighbors)
            found += [((w - x - bw, y, bw, bh), s) for (x, y, bw, bh), s in flipped]
            found = _suppress(found)
        return found


class YuNetDetector(Detector):
    """``cv2.FaceDetectorYN`` (YuNet) from the ONNX model file the user gives.

    The model is not shipped by any registry package reachable here: without a readable
    ``model_path`` this raises :class:`DetectorError` saying so. YuNet finds faces down to
    about 10 px at its input; ``window_px`` 20 keeps it in its reliable range.
    """

    name = "yunet"
    native_px = 10

    def __init__(self, model_path: Optional[str], *, score_threshold: float = 0.6,
                 nms_threshold: float = 0.3, top_k: int = 50, window_px: int = 20):
        if not hasattr(cv2, "FaceDetectorYN"):
            raise DetectorError("this OpenCV build has no cv2.FaceDetectorYN (OpenCV >= 4.5.4 "
                                "has it): pip install 'opencv-python-headless>=4.8,<5'")
        if not model_path:
            raise DetectorError("the yunet detector needs its ONNX model file "
                                "(face_detection_yunet_2023mar.onnx from the OpenCV model zoo); "
                                "none is shipped or downloaded: give its path (model_path)")
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise DetectorError(f"YuNet model file {model_path} not found (model_path): give "
                                "the path of face_detection_yunet_*.onnx")
        try:
            self._net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), score_threshold,
                                                  nms_threshold, top_k)
        except cv2.error as exc:
            raise DetectorError(f"could not load the YuNet model {model_path}: not a YuNet "
                                f"ONNX file? ({str(exc).strip().splitlines()[-1]})") from exc
        self.source, self.window_px = str(path), int(window_px)
        self._size: Optional[tuple[int, int]] = None

    def _run(self, small, lo, hi, scale_step=None, min_neighbors=None):
        h, w = small.shape[:2]
        if self._size != (w, h):
            self._net.setInputSize((w, h))
            self._size = (w, h)
        _, faces = self._net.detect(cv2.cvtColor(small, cv2.COLOR_GRAY2BGR))
        out = []
        for f in (faces if faces is not None else []):
            x, y, bw, bh = (int(round(v)) for v in f[:4])
            if bh >= lo and (hi is None or bh <= hi):
                out.append(((x, y, bw, bh), float(f[-1])))
        return out


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _suppress(found, overlap: float = 0.4):
    """Greedy non-maximum suppression of (box, score) pairs, highest score first."""
    kept = []
    for box, score in sorted(found, key=lambda f: -f[1]):
        if all(iou(box, k[0]) < overlap for k in kept):
            kept.append((box, score))
    return kept


def _lbp_from_skimage(**kw) -> HaarDetector:
    """OpenCV's lbpcascade_frontalface as scikit-image ships it (one tag misspelt there)."""
    try:
        import skimage.data
    except ImportError as exc:
        raise DetectorError("lbp_frontal reads scikit-image's copy of OpenCV's LBP cascade: "
                            "pip install scikit-image (requirements-test.txt)") from exc
    path = Path(skimage.data.__file__).parent / "lbpcascade_frontalface_opencv.xml"
    if not path.is_file():
        raise DetectorError(f"{path} is missing from this scikit-image")
    text = path.read_text().replace("featuhreParams", "featureParams")
    fs = cv2.FileStorage(text, cv2.FILE_STORAGE_READ | cv2.FILE_STORAGE_MEMORY)
    classifier = cv2.CascadeClassifier()
    if not classifier.read(fs.getFirstTopLevelNode()):
        raise DetectorError(f"could not read the LBP cascade {path}")
    return HaarDetector(str(path), name="lbp_frontal", classifier=classifier, **kw)


#: name -> factory(**options). ``model_path`` is only for detectors with a model file.
DETECTORS: dict[str, Callable[..., Detector]] = {
    "haar_default": lambda **kw: HaarDetector("haarcascade_frontalface_default.xml",
                                              name="haar_default", **kw),
    "haar_alt": lambda **kw: HaarDetector("haarcascade_frontalface_alt.xml", name="haar_alt",
                                          **kw),
    "haar_alt2": lambda **kw: HaarDetector("haarcascade_frontalface_alt2.xml",
                                           name="haar_alt2", **kw),
    "haar_alt_tree": lambda **kw: HaarDetector("haarcascade_frontalface_alt_tree.xml",
                                               name="haar_alt_tree", **kw),
    "haar_profile": lambda **kw: HaarDetector("haarcascade_profileface.xml",
                                              name="haar_profile", mirror=True, **kw),
    "lbp_frontal": _lbp_from_skimage,
    "yunet": lambda model_path=None, **kw: YuNetDetector(model_path, **kw),
    "mtcnn": lambda model_path=None, **kw: _mtcnn(model_path, **kw),
}
#: Detectors that take a ``model_path`` (a file for yunet, a folder for mtcnn).
MODEL_DETECTORS = ("yunet", "mtcnn")


def _mtcnn(model_path: Optional[str] = None, **kw) -> Detector:
    """MTCNN (imported here: it needs ONNX Runtime, the cascades do not)."""
    from .face_mtcnn import MtcnnDetector

    return MtcnnDetector(model_path, **kw)


def make_detector(name: str = DEFAULT_DETECTOR, *, model_path: Optional[str] = None,
                  cascade_path: Optional[str] = None, **options) -> Detector:
    """A detector by name (:data:`DETECTORS`). ``cascade_path`` replaces a cascade
    detector's file (the node's ``haar_cascade`` parameter); ``model_path`` is YuNet's model
    file or MTCNN's folder (default: the weights root's ``mtcnn``); ``options`` go to the
    detector (``window_px``, ``min_neighbors``, ...)."""
    if name not in DETECTORS:
        raise DetectorError(f"unknown face detector {name!r}: choose from "
                            f"{', '.join(DETECTORS)}")
    if name in MODEL_DETECTORS:
        return DETECTORS[name](model_path=model_path, **options)
    if model_path:
        raise DetectorError(f"{name} takes no model_path (only yunet and mtcnn do)")
    if cascade_path:
        if not name.startswith("haar_"):
            raise DetectorError(f"{name} takes no cascade_path")
        return HaarDetector(resolve_cascade(cascade_path), name=name,
                            mirror=(name == "haar_profile"), **options)
    return DETECTORS[name](**options)


def available_detectors(model_path: Optional[str] = None) -> dict[str, str]:
    """name -> "" when it can be made here, else why not (for the bench's table)."""
    out = {}
    for name in DETECTORS:
        try:
            make_detector(name, model_path=model_path if name == "yunet" else None)
            out[name] = ""
        except (DetectorError, CascadeNotFoundError) as exc:
            out[name] = str(exc)
    return out
