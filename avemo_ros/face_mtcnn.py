"""MTCNN face detection (Zhang et al. 2016) with ONNX Runtime: no torch, no ROS.

The three networks' weights come from the ``facenet-pytorch`` wheel (MIT; ``python -m
avemo_ros.tools.fetch_weights mtcnn``) as PyTorch state dicts; ``python -m
training.mtcnn_export`` (torch, at setup) turns them into ``pnet.onnx``, ``rnet.onnx`` and
``onet.onnx`` next to them, with a record (``mtcnn_onnx.json``). This module only runs
those ONNX files.

:class:`MtcnnDetector` is the cascade of the paper on a grey image (replicated to three
channels, scaled ``(x - 127.5) / 128``):

1. P-Net on an image pyramid (face sizes from the smallest asked for, a factor
   ``scale_factor`` apart, up to the largest asked for): a face probability and box
   offsets for every 12 x 12 window on a 2-pixel grid; windows over ``thresholds[0]``,
   non-maximum suppression per level (IoU 0.5) and over all levels (0.7), offsets applied,
   boxes made square.
2. R-Net on 24 x 24 crops of those boxes: over ``thresholds[1]``, suppression (IoU 0.7),
   offsets, square.
3. O-Net on 48 x 48 crops: over ``thresholds[2]``, offsets, suppression by intersection
   over the smaller box (0.7).

Boxes are O-Net's (forehead to chin, a little taller than wide), scored by its face
probability: on scikit-image's astronaut 1.18 times as tall as the frontal Haar cascades'
box, its centre 2.5 px (3 % of the face) lower. Crops reaching past the image edge are
padded with black, as the original's.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np

from .face_detectors import Detector, DetectorError
from .tools.fetch_weights import SOURCES, fetch_hint, sha256_of, weights_root

#: network -> ONNX file name in the model folder.
ONNX_FILES = {"pnet": "pnet.onnx", "rnet": "rnet.onnx", "onet": "onet.onnx"}
#: The export's record next to the ONNX files, and its format tag.
RECORD = "mtcnn_onnx.json"
RECORD_FORMAT = "avemo-mtcnn-onnx/1"
EXPORT_COMMAND = "python -m training.mtcnn_export"
#: Ratio of face sizes between pyramid levels: the paper's factor 0.709 (1 / sqrt(2)).
SCALE_FACTOR = 1.0 / 0.709
THRESHOLDS = (0.6, 0.7, 0.7)


def default_model_dir(root: "str | Path | None" = None) -> Path:
    """``<weights root>/mtcnn``: where the weights are fetched and the ONNX files made."""
    return weights_root(root) / SOURCES["mtcnn"].name


def fix_hint(folder: "str | Path | None" = None) -> str:
    """How to make the ONNX files (for error messages)."""
    where = f" --weights-dir {folder}" if folder is not None else ""
    return (f"run scripts/setup.sh, or {fetch_hint('mtcnn')} then `{EXPORT_COMMAND}{where}` "
            "(needs torch, the training environment)")


def export_problems(folder: "str | Path | None" = None) -> list[str]:
    """What is wrong with the ONNX files in ``folder`` (default :func:`default_model_dir`):
    empty when all three are there, as the record says, made from the pinned weights."""
    folder = Path(folder) if folder is not None else default_model_dir()
    problems = [f"{folder / f}: missing" for f in ONNX_FILES.values()
                if not (folder / f).is_file()]
    if problems:
        return problems
    try:
        record = json.loads((folder / RECORD).read_text())
    except (OSError, ValueError):
        return [f"{folder / RECORD}: missing or unreadable"]
    if record.get("format") != RECORD_FORMAT:
        return [f"{folder / RECORD}: format {record.get('format')!r}, not {RECORD_FORMAT}"]
    src = SOURCES["mtcnn"]
    pinned = {src.dest_name(m): sha for m, sha in src.members.items() if sha}
    made_from = {k: v.get("sha256") for k, v in record.get("weights", {}).items()}
    if made_from != pinned:
        problems.append(f"{folder}: ONNX files made from other weights than "
                        f"{src.requirement}'s")
    for f in ONNX_FILES.values():
        if record.get("onnx", {}).get(f, {}).get("sha256") != sha256_of(folder / f):
            problems.append(f"{folder / f}: not the file the record describes")
    return problems


def nms(boxes: np.ndarray, threshold: float, mode: str = "union") -> np.ndarray:
    """Indices kept by greedy non-maximum suppression of ``(N, >=5)`` rows x1, y1, x2, y2,
    score: overlap by IoU (``union``) or intersection over the smaller box (``min``)."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    x1, y1, x2, y2, score = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3], boxes[:, 4]
    area = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    order = np.argsort(-score, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        iw = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        ih = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = iw * ih
        denom = (np.minimum(area[i], area[rest]) if mode == "min"
                 else area[i] + area[rest] - inter)
        order = rest[inter <= threshold * np.maximum(denom, 1e-9)]
    return np.asarray(keep, np.int64)


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Apply offsets (dx1, dy1, dx2, dy2 in fractions of the box) to x1, y1, x2, y2."""
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    out[:, 0] += reg[:, 0] * w
    out[:, 1] += reg[:, 1] * h
    out[:, 2] += reg[:, 2] * w
    out[:, 3] += reg[:, 3] * h
    return out


def _square(boxes: np.ndarray) -> np.ndarray:
    """Each box as the square of its longer side about the same centre."""
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + (w - side) / 2
    out[:, 1] = boxes[:, 1] + (h - side) / 2
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def _normalise(grey: np.ndarray) -> np.ndarray:
    """uint8 ``(N, H, W)`` -> float32 ``(N, 3, H, W)``, ``(x - 127.5) / 128``."""
    x = (grey.astype(np.float32) - 127.5) * (1.0 / 128.0)
    return np.ascontiguousarray(np.broadcast_to(x[:, None], (x.shape[0], 3) + x.shape[1:]))


def crops(grey: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """``size`` x ``size`` uint8 crops of ``grey`` for x1, y1, x2, y2 rows (black past the
    edges): ``(N, size, size)``."""
    h, w = grey.shape
    out = np.empty((len(boxes), size, size), np.uint8)
    for k, (x1, y1, x2, y2) in enumerate(np.round(boxes[:, :4]).astype(np.int64)):
        bw, bh = max(1, x2 - x1), max(1, y2 - y1)
        x2, y2 = x1 + bw, y1 + bh
        if x1 >= 0 and y1 >= 0 and x2 <= w and y2 <= h:
            patch = grey[y1:y2, x1:x2]
        else:
            patch = np.zeros((bh, bw), np.uint8)
            sx1, sy1, sx2, sy2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
            if sx2 > sx1 and sy2 > sy1:
                patch[sy1 - y1:sy2 - y1, sx1 - x1:sx2 - x1] = grey[sy1:sy2, sx1:sx2]
        interp = cv2.INTER_AREA if min(bw, bh) > size else cv2.INTER_LINEAR
        out[k] = cv2.resize(patch, (size, size), interpolation=interp)
    return out


class MtcnnDetector(Detector):
    """MTCNN's P-, R- and O-Net (ONNX Runtime, CPU) behind the detector interface.

    ``model_dir``: the folder with ``pnet.onnx``, ``rnet.onnx``, ``onet.onnx`` (default
    :func:`default_model_dir`); ``thresholds``: the three stages' face probabilities;
    ``scale_factor``: face-size ratio between pyramid levels; ``threads``: ONNX Runtime
    intra-op threads (1: as the node runs); ``max_proposals``: P-Net boxes (best first)
    that R-Net sees at most; ``refine_overlap``: IoU of R-Net's suppression (0.5 sends
    O-Net 45 % fewer crops on the bench's recall set and finds one face of 187 fewer).
    ``window_px`` 48 (O-Net's input): the smallest face asked for is brought to 48 px by
    shrinking, P-Net's pyramid starts from there at 12 px.
    """

    name = "mtcnn"
    native_px = 12
    window_px = 48

    def __init__(self, model_dir: "str | Path | None" = None, *,
                 thresholds: Sequence[float] = THRESHOLDS,
                 scale_factor: float = SCALE_FACTOR, threads: int = 1,
                 window_px: int = 48, max_proposals: int = 400, refine_overlap: float = 0.7):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise DetectorError("the mtcnn detector runs on ONNX Runtime: "
                                "pip install onnxruntime") from exc
        folder = Path(model_dir).expanduser() if model_dir else default_model_dir()
        if folder.exists() and not folder.is_dir():
            raise DetectorError(f"mtcnn model_path {folder} is not a folder: give the folder "
                                f"that holds {', '.join(ONNX_FILES.values())}")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
        self._nets = {}
        for net, file in ONNX_FILES.items():
            path = folder / file
            if not path.is_file():
                raise DetectorError(f"MTCNN model file {path} not found: "
                                    f"{fix_hint(model_dir and folder)}")
            try:
                self._nets[net] = ort.InferenceSession(str(path), sess_options=opts,
                                                       providers=["CPUExecutionProvider"])
            except Exception as exc:  # onnxruntime raises its own exception types
                raise DetectorError(f"could not load the MTCNN model {path} ({exc}): "
                                    f"{fix_hint(model_dir and folder)}") from exc
        self._inputs = {n: s.get_inputs()[0].name for n, s in self._nets.items()}
        if len(thresholds) != 3 or scale_factor <= 1.0:
            raise DetectorError("mtcnn: three thresholds and a scale_factor above 1")
        self.thresholds = tuple(float(t) for t in thresholds)
        self.scale_factor, self.max_proposals = float(scale_factor), int(max_proposals)
        self.refine_overlap = float(refine_overlap)
        self.source, self.window_px = str(folder), max(self.native_px, int(window_px))

    def _net(self, net: str, grey: np.ndarray) -> list[np.ndarray]:
        return self._nets[net].run(None, {self._inputs[net]: _normalise(grey)})

    def levels(self, shape: tuple[int, int], lo: float, hi: Optional[float],
               step: float) -> list[float]:
        """Pyramid scales for faces ``lo``..``hi`` px in an image of ``shape``: P-Net's 12
        px window is a face of ``12 / scale``."""
        out, s = [], 12.0 / lo
        while min(shape) * s >= 12 and (hi is None or 12.0 / s <= hi or not out):
            out.append(s)
            s /= step
        return out

    def proposals(self, grey: np.ndarray, lo: float, hi: Optional[float] = None,
                  step: Optional[float] = None) -> np.ndarray:
        """P-Net's boxes: ``(N, 5)`` x1, y1, x2, y2, probability in ``grey``'s pixels."""
        h, w = grey.shape
        found = []
        for s in self.levels((h, w), lo, hi, step or self.scale_factor):
            lw, lh = max(12, int(math.ceil(w * s))), max(12, int(math.ceil(h * s)))
            level = (grey if (lw, lh) == (w, h)
                     else cv2.resize(grey, (lw, lh), interpolation=cv2.INTER_AREA))
            prob, reg = self._net("pnet", level[None])
            ii, jj = np.nonzero(prob[0] >= self.thresholds[0])
            if not ii.size:
                continue
            sx, sy = w / lw, h / lh
            rows = np.stack([2 * jj * sx, 2 * ii * sy, (2 * jj + 12) * sx, (2 * ii + 12) * sy,
                             prob[0, ii, jj]] + [reg[0, c, ii, jj] for c in range(4)], axis=1)
            found.append(rows[nms(rows, 0.5)])
        if not found:
            return np.zeros((0, 5), np.float32)
        rows = np.concatenate(found)
        rows = rows[nms(rows, 0.7)][:self.max_proposals]
        return _square(_regress(rows[:, :5], rows[:, 5:9]))

    def _stage(self, net: str, grey: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        size = 24 if net == "rnet" else 48
        out = self._net(net, crops(grey, boxes, size))
        prob, reg = out[0].reshape(-1), out[1]
        keep = prob >= self.thresholds[1 if net == "rnet" else 2]
        boxes, reg = boxes[keep].copy(), reg[keep]
        boxes[:, 4] = prob[keep]
        if net == "rnet":
            kept = nms(boxes, self.refine_overlap)
            return _square(_regress(boxes[kept], reg[kept]))
        boxes = _regress(boxes, reg)
        return boxes[nms(boxes, 0.7, "min")]

    def boxes(self, grey: np.ndarray, lo: float, hi: Optional[float] = None,
              step: Optional[float] = None) -> np.ndarray:
        """The whole cascade: ``(N, 5)`` x1, y1, x2, y2, O-Net probability, best first."""
        boxes = self.proposals(grey, lo, hi, step)
        for net in ("rnet", "onet"):
            if len(boxes) == 0:
                break
            boxes = self._stage(net, grey, boxes)
        return boxes

    def _run(self, small, lo, hi, scale_step=None, min_neighbors=None):
        out = []
        for x1, y1, x2, y2, score in self.boxes(small, lo, hi, scale_step):
            x, y = int(round(x1)), int(round(y1))
            out.append(((x, y, int(round(x2)) - x, int(round(y2)) - y), float(score)))
        return out
