"""Camera frames with real faces, made at run time: scikit-image's astronaut photograph
(Eileen Collins, NASA, public domain; ``skimage.data.astronaut()``) pasted onto synthetic
backgrounds.

Used by ``bench/face_tracking.py`` (the full recall table, the cost rows) and by
``test/test_face_recall.py`` / ``test/test_face_tracking.py`` (small subsets).

* :func:`recall_set`: single frames, faces 48-400 px (face box height, the Haar box
  convention: brows to mouth, square) on 640x480 to 1920x1080 frames, each under one
  condition: clean, in-plane rotation up to +-20 deg, dark / bright, blur, sensor noise,
  two people (the second one mirrored).
* :func:`two_face_clip`: a clip (stamps at ``fps``) with two faces moving on smooth
  paths, their sizes changing, for tracking and id stability.

Ground truth is the face box (square, ``face_px`` wide) centred where the face's centre
lands; rotation turns the face about that centre and leaves the box axis-aligned.
A detection matches when its centre lies within 0.35 face of the truth's and its height
is 0.6-1.7 times the truth's, or their IoU is at least 0.4 (:func:`matches`).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Iterator, Optional, Sequence

import cv2
import numpy as np

Box = tuple[int, int, int, int]

#: Head patch cut from the astronaut (x0, y0, x1, y1) and the face box inside the
#: photograph (x, y, w, h), as OpenCV's frontal cascades find it (default: 177, 66, 95, 95).
HEAD_PATCH = (120, 0, 330, 235)
FACE_BOX = (177, 66, 95, 95)
RESOLUTIONS = ((640, 480), (1280, 720), (1920, 1080))
FACE_SIZES = (48, 64, 96, 128, 192, 256, 400)
CONDITIONS = ("clean", "rotate_10", "rotate_20", "dark", "bright", "blur", "noise",
              "two_people")


def skimage_unavailable() -> Optional[str]:
    """Why the astronaut cannot be had here, or None."""
    try:
        import skimage.data  # noqa: F401
    except ImportError:
        return "scikit-image (the astronaut photograph; requirements-test.txt) not installed"
    return None


@dataclass(frozen=True)
class Head:
    """The astronaut's head as a grey patch, a soft mask and the face box inside it."""

    grey: np.ndarray  # float32, 0-255
    mask: np.ndarray  # float32, 0-1
    face: tuple[float, float, float]  # face centre x, y and size in patch pixels


@functools.lru_cache(maxsize=2)
def astronaut_head(mirror: bool = False) -> Head:
    """The head patch (mirrored for a "second person")."""
    from skimage import data

    rgb = data.astronaut()
    x0, y0, x1, y1 = HEAD_PATCH
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[y0:y1, x0:x1].astype(np.float32)
    h, w = grey.shape
    fx, fy, fw, fh = FACE_BOX
    cx, cy = fx + fw / 2.0 - x0, fy + fh / 2.0 - y0
    mask = np.zeros((h, w), np.float32)
    # hair, face and neck ring: an ellipse about the head, feathered
    cv2.ellipse(mask, (int(cx), int(cy + 10)), (int(fw * 0.78), int(fh * 1.08)), 0, 0, 360,
                1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), 4)
    if mirror:
        grey, mask, cx = grey[:, ::-1].copy(), mask[:, ::-1].copy(), w - cx
    return Head(grey, mask, (cx, cy, float(fw)))


def background(rng: np.random.Generator, width: int, height: int,
               kind: Optional[str] = None) -> np.ndarray:
    """A synthetic scene behind the faces (float32 grey, 0-255): a lit wall with shapes,
    a tiled texture (scikit-image's brick, grass or gravel), or shelf-like clutter."""
    kind = kind or rng.choice(["wall", "texture", "clutter"])
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = (rng.uniform(60, 190) + rng.uniform(-40, 40) * xx / width
            + rng.uniform(-40, 40) * yy / height)
    img = np.broadcast_to(base, (height, width)).astype(np.float32).copy()
    if kind == "texture":
        from skimage import data

        tex = getattr(data, str(rng.choice(["brick", "grass", "gravel"])))().astype(np.float32)
        zoom = rng.uniform(0.8, 2.0)
        tex = cv2.resize(tex, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_LINEAR)
        reps = (height // tex.shape[0] + 1, width // tex.shape[1] + 1)
        tiled = np.tile(tex, reps)[:height, :width]
        img = 0.5 * img + 0.5 * tiled
    n = {"wall": 6, "texture": 2, "clutter": 40}[str(kind)]
    for _ in range(n):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        w, h = int(rng.integers(width // 40, width // 4)), int(rng.integers(height // 40,
                                                                           height // 3))
        shade = float(rng.uniform(20, 235))
        if rng.random() < 0.7:
            cv2.rectangle(img, (x, y), (x + w, y + h), shade, -1)
        else:
            cv2.circle(img, (x, y), max(w, h) // 2, shade, -1)
        if rng.random() < 0.3:
            cv2.line(img, (x, y), (int(rng.integers(0, width)), int(rng.integers(0, height))),
                     float(rng.uniform(0, 255)), int(rng.integers(1, 6)))
    return cv2.GaussianBlur(img, (0, 0), 1.0)


def paste_face(canvas: np.ndarray, face_px: float, centre: tuple[float, float],
               angle_deg: float = 0.0, mirror: bool = False) -> Box:
    """Paste the head so its face is ``face_px`` wide at ``centre``, turned by ``angle_deg``
    (counter-clockwise); returns the ground-truth face box. ``canvas`` (float32) in place."""
    head = astronaut_head(mirror)
    hcx, hcy, hsize = head.face
    s = face_px / hsize
    cx, cy = centre
    # patch -> canvas: scale about the face centre, rotate, move to centre
    m = cv2.getRotationMatrix2D((hcx, hcy), angle_deg, s)
    m[0, 2] += cx - hcx
    m[1, 2] += cy - hcy
    H, W = canvas.shape
    # only the canvas area the patch can reach is warped
    ph, pw = head.grey.shape
    corners = np.array([[0, 0, 1], [pw, 0, 1], [0, ph, 1], [pw, ph, 1]], np.float32) @ m.T
    x0, y0 = (max(0, int(np.floor(corners[:, i].min()))) for i in (0, 1))
    x1, y1 = min(W, int(np.ceil(corners[:, 0].max()))), min(H, int(np.ceil(corners[:, 1].max())))
    if x1 > x0 and y1 > y0:
        mm = m.copy()
        mm[0, 2] -= x0
        mm[1, 2] -= y0
        size = (x1 - x0, y1 - y0)
        g = cv2.warpAffine(head.grey, mm, size, flags=cv2.INTER_LINEAR)
        a = cv2.warpAffine(head.mask, mm, size, flags=cv2.INTER_LINEAR)
        region = canvas[y0:y1, x0:x1]
        region *= 1.0 - a
        region += a * g
    half = face_px / 2.0
    return (int(round(cx - half)), int(round(cy - half)), int(round(face_px)),
            int(round(face_px)))


def degrade(img: np.ndarray, rng: np.random.Generator, *, gain: float = 1.0,
            blur_sigma: float = 0.0, noise_sigma: float = 2.0) -> np.ndarray:
    """Brightness (gain about black, clipped), optical blur, sensor noise -> uint8 grey."""
    out = img * gain
    if blur_sigma > 0:
        out = cv2.GaussianBlur(out, (0, 0), blur_sigma)
    if noise_sigma > 0:
        out = out + rng.normal(0.0, noise_sigma, out.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


@dataclass
class Scene:
    """One frame and its faces' true boxes."""

    grey: np.ndarray
    truth: list[Box]
    resolution: tuple[int, int]
    face_px: int
    condition: str
    meta: dict = field(default_factory=dict)


def make_scene(rng: np.random.Generator, resolution: tuple[int, int], face_px: int,
               condition: str = "clean") -> Scene:
    """One frame of the recall set (see :data:`CONDITIONS`)."""
    W, H = resolution
    img = background(rng, W, H)
    faces = [(face_px, False)]
    if condition == "two_people":
        other = int(np.clip(face_px * rng.uniform(0.8, 1.25), 48, min(H, W / 2) * 0.8))
        faces.append((other, True))
    angle = {"rotate_10": 10.0, "rotate_20": 20.0}.get(condition, 0.0) * rng.choice([-1, 1])
    truth = []
    # two people side by side: left and right halves; one: anywhere it fits
    for k, (px, mirror) in enumerate(faces):
        margin = px * 0.5 + 2
        lo_x, hi_x = ((margin, W - margin) if len(faces) == 1
                      else ((margin, W / 2 - margin) if k == 0 else (W / 2 + margin,
                                                                     W - margin)))
        if hi_x < lo_x:
            lo_x = hi_x = (lo_x + hi_x) / 2
        cx = rng.uniform(lo_x, hi_x)
        cy = rng.uniform(margin, max(margin, H - margin))
        truth.append(paste_face(img, px, (cx, cy), angle, mirror))
    gain = {"dark": rng.uniform(0.3, 0.45), "bright": rng.uniform(1.4, 1.7)}.get(condition, 1.0)
    blur = rng.uniform(1.5, 2.5) if condition == "blur" else 0.0
    noise = rng.uniform(12.0, 20.0) if condition == "noise" else 2.0
    grey = degrade(img, rng, gain=gain, blur_sigma=blur, noise_sigma=noise)
    return Scene(grey, truth, (W, H), face_px, condition,
                 {"angle": angle, "gain": gain, "blur": blur, "noise": noise})


def recall_set(seed: int = 0, resolutions: Sequence[tuple[int, int]] = RESOLUTIONS,
               sizes: Sequence[int] = FACE_SIZES, conditions: Sequence[str] = CONDITIONS,
               repeats: int = 2) -> Iterator[Scene]:
    """Every resolution x face size (that fits the frame) x condition, ``repeats`` times."""
    rng = np.random.default_rng(seed)
    for res in resolutions:
        for px in sizes:
            if px > 0.85 * res[1]:
                continue
            for cond in conditions:
                if cond == "two_people" and px > res[0] / 2 - 4:
                    continue
                for _ in range(repeats):
                    yield make_scene(rng, res, px, cond)


def matches(det: Box, truth: Box) -> bool:
    """Does a detection box find the true face? (see the module doc)"""
    dcx, dcy = det[0] + det[2] / 2.0, det[1] + det[3] / 2.0
    tcx, tcy = truth[0] + truth[2] / 2.0, truth[1] + truth[3] / 2.0
    size = float(truth[3])
    near = np.hypot(dcx - tcx, dcy - tcy) <= 0.35 * size and 0.6 <= det[3] / size <= 1.7
    if near:
        return True
    from avemo_ros.face_detectors import iou

    return iou(det, truth) >= 0.4


def score_frame(dets: Sequence[Box], truth: Sequence[Box]) -> tuple[int, int]:
    """(true faces found, false detections) of one frame (each detection used once)."""
    used: set[int] = set()
    found = 0
    for t in truth:
        for i, d in enumerate(dets):
            if i not in used and matches(d, t):
                used.add(i)
                found += 1
                break
    return found, len(dets) - len(used)


@dataclass
class ClipFrame:
    stamp_ns: int
    grey: np.ndarray
    truth: dict[str, Box]  # person -> true face box (people in view only)


def two_face_clip(resolution: tuple[int, int] = (640, 480), seconds: float = 10.0,
                  fps: float = 15.0, seed: int = 0, sizes: tuple[float, float] = (110, 80),
                  start_ns: int = 1_000_000_000_000, noise_sigma: float = 3.0,
                  absent: Optional[dict[str, tuple[float, float]]] = None
                  ) -> Iterator[ClipFrame]:
    """Two people ("a": the astronaut, "b": her mirror image) moving on smooth paths over a
    fixed background (sizes breathe +-20 %, a few degrees of head roll, fresh sensor noise
    each frame). ``absent``: person -> (from_s, to_s) out of view. Sizes are for 640x480 and
    scale with the frame height."""
    W, H = resolution
    rng = np.random.default_rng(seed)
    base = background(rng, W, H, "clutter")
    k = H / 480.0
    n = int(round(seconds * fps))
    paths = {  # centre x, y (fractions), size, roll: functions of t in seconds
        "a": lambda t: (0.28 + 0.12 * np.sin(2 * np.pi * t / 6.0),
                        0.45 + 0.12 * np.sin(2 * np.pi * t / 4.3),
                        sizes[0] * k * (1 + 0.2 * np.sin(2 * np.pi * t / 7.0)),
                        6 * np.sin(2 * np.pi * t / 3.0)),
        "b": lambda t: (0.72 + 0.12 * np.sin(2 * np.pi * t / 5.0 + 1.0),
                        0.5 + 0.12 * np.cos(2 * np.pi * t / 3.7),
                        sizes[1] * k * (1 + 0.2 * np.cos(2 * np.pi * t / 6.0)),
                        -5 * np.sin(2 * np.pi * t / 2.5)),
    }
    for i in range(n):
        t = i / fps
        img = base.copy()
        truth = {}
        for person, path in paths.items():
            gone = (absent or {}).get(person)
            if gone and gone[0] <= t < gone[1]:
                continue
            fx, fy, px, roll = path(t)
            truth[person] = paste_face(img, px, (fx * W, fy * H), roll, person == "b")
        yield ClipFrame(start_ns + int(round(t * 1e9)), degrade(img, rng, noise_sigma=noise_sigma),
                        truth)
