"""The face: background, shaded head, mouth, brows and eyes that follow the emotion's face
style and the syllable envelope; one RGB frame per video frame."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from .actors import Actor
from .speech import _envelope, _openness_track, _Syllables
from .styles import FaceStyle
from .voice import _smooth_noise


# A greyish sclera and a large iris keep the eye band dark enough for the Haar cascade
# even with wide-open eyes (bright, wide eyes made detection fail).
_SCLERA = (182, 178, 172)
_IRIS = 0.6  # iris radius relative to the eye half width
_NOISE_SD = 2.5  # sensor noise, grey levels


def _gauss(xx: np.ndarray, yy: np.ndarray, x0: float, y0: float, sx: float,
           sy: float) -> np.ndarray:
    return np.exp(-0.5 * (((xx - x0) / sx) ** 2 + ((yy - y0) / sy) ** 2))


@dataclass(frozen=True)
class _Geometry:
    cx: float
    cy: float
    a: float  # face half width, px
    b: float  # face half height, px


def _render_background(actor: Actor, w: int, h: int, geo: _Geometry) -> np.ndarray:
    """Backdrop, neck and shoulders (static for the clip), uint8 RGB."""
    y = np.linspace(0.0, 1.0, h)[:, None, None]
    top = np.array(actor.bg_top, np.float32)
    bottom = np.array(actor.bg_bottom, np.float32)
    img = (top * (1 - y) + bottom * y) * np.ones((1, w, 1), np.float32)
    xx = np.arange(w, dtype=np.float32)[None, :]
    yy = np.arange(h, dtype=np.float32)[:, None]
    vignette = 1.0 - 0.18 * (((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2)
    img *= vignette[..., None]
    img = np.clip(img, 0, 255).astype(np.uint8)
    neck = tuple(v * 0.78 for v in actor.skin)
    cx, cy, a, b = geo.cx, geo.cy, geo.a, geo.b
    cv2.rectangle(img, (int(cx - 0.42 * a), int(cy)), (int(cx + 0.42 * a), h), neck, -1,
                  cv2.LINE_AA)
    shoulders = np.array([[cx - 2.3 * a, h], [cx - 1.9 * a, cy + 1.25 * b],
                          [cx - 0.45 * a, cy + 1.05 * b], [cx + 0.45 * a, cy + 1.05 * b],
                          [cx + 1.9 * a, cy + 1.25 * b], [cx + 2.3 * a, h]], np.int32)
    cv2.fillPoly(img, [shoulders], actor.shirt, cv2.LINE_AA)
    return cv2.GaussianBlur(img, (0, 0), 1.2)


def _render_head(actor: Actor, w: int, h: int, geo: _Geometry) -> tuple[np.ndarray, np.ndarray]:
    """Shaded head without eyes, brows and mouth: (uint8 RGB layer, float32 alpha)."""
    cx, cy, a, b = geo.cx, geo.cy, geo.a, geo.b
    layer = np.zeros((h, w, 3), np.uint8)
    alpha = np.zeros((h, w), np.uint8)
    hair = actor.hair
    centre = (int(round(cx)), int(round(cy)))
    # Hair behind the head, long hair down to the shoulders.
    hair_axes = (int(1.13 * a), int(1.12 * b))
    hair_c = (centre[0], int(cy - 0.12 * b))
    for img, col in ((layer, hair), (alpha, 255)):
        cv2.ellipse(img, hair_c, hair_axes, 0, 0, 360, col, -1, cv2.LINE_AA)
        if actor.long_hair:
            cv2.rectangle(img, (int(cx - 1.13 * a), int(cy - 0.1 * b)),
                          (int(cx + 1.13 * a), int(cy + 1.15 * b)), col, -1, cv2.LINE_AA)
    # Ears and face oval.
    ear_axes = (int(0.14 * a), int(0.2 * b))
    for side in (-1, 1):
        ear = (int(cx + side * 0.97 * a), int(cy - 0.05 * b))
        cv2.ellipse(layer, ear, ear_axes, 0, 0, 360, tuple(v * 0.85 for v in actor.skin), -1,
                    cv2.LINE_AA)
        cv2.ellipse(alpha, ear, ear_axes, 0, 0, 360, 255, -1, cv2.LINE_AA)
    face_mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(face_mask, centre, (int(a), int(b)), 0, 0, 360, 255, -1, cv2.LINE_AA)
    cv2.ellipse(alpha, centre, (int(a), int(b)), 0, 0, 360, 255, -1, cv2.LINE_AA)
    # Shading of the face oval (computed on its bounding box only).
    x0, x1 = max(int(cx - 1.2 * a), 0), min(int(cx + 1.2 * a) + 1, w)
    y0, y1 = max(int(cy - 1.2 * b), 0), min(int(cy + 1.2 * b) + 1, h)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    u, v = (xx - cx) / a, (yy - cy) / b
    rho = np.sqrt(u * u + v * v)
    shade = 1.0 - 0.32 * np.clip(rho, 0, 1.2) ** 4 + 0.10 * actor.light * u
    es = actor.eye_spacing
    for side in (-1, 1):  # eye sockets and cheek highlights
        shade -= 0.34 * _gauss(u, v, side * es, -0.13, 0.22, 0.12)
        shade -= 0.10 * _gauss(u, v, side * es * 0.9, -0.32, 0.25, 0.08)
        shade += 0.06 * _gauss(u, v, side * 0.45, 0.22, 0.2, 0.14)
    shade += 0.05 * _gauss(u, v, 0.0, -0.08, 0.06, 0.18)  # nose bridge
    side = 1.0 if actor.light < 0 else -1.0  # shadow opposite the light
    shade -= 0.12 * _gauss(u, v, side * 0.1, 0.05, 0.05, 0.2)  # nose flank
    shade -= 0.22 * _gauss(u, v, 0.0, 0.3, 0.14, 0.04)  # under the nose tip
    shade -= 0.08 * _gauss(u, v, 0.0, 0.68, 0.2, 0.05)  # under the lower lip
    shade -= 0.18 * np.clip(v - 0.85, 0, 1) * 4  # jaw shadow
    skin = np.array(actor.skin, np.float32)
    face = np.clip(shade[..., None] * skin, 0, 255).astype(np.uint8)
    m = face_mask[y0:y1, x0:x1, None].astype(np.float32) / 255.0
    roi = layer[y0:y1, x0:x1].astype(np.float32)
    layer[y0:y1, x0:x1] = (roi * (1 - m) + face * m).astype(np.uint8)
    # Nostrils and fringe.
    nostril = tuple(v * 0.45 for v in actor.skin)
    nostril_axes = (max(int(0.05 * a), 1), max(int(0.025 * b), 1))
    for s in (-1, 1):
        cv2.ellipse(layer, (int(cx + s * 0.1 * a), int(cy + 0.26 * b)), nostril_axes, 0, 0, 360,
                    nostril, -1, cv2.LINE_AA)
    cv2.ellipse(layer, (int(cx), int(cy - 0.62 * b)), (int(1.02 * a), int(0.5 * b)), 0, 180, 360,
                hair, -1, cv2.LINE_AA)
    layer = cv2.GaussianBlur(layer, (0, 0), 0.8)
    alpha_f = cv2.GaussianBlur(alpha, (0, 0), 1.0).astype(np.float32) / 255.0
    return layer, alpha_f


def _pt(x: float, y: float) -> tuple[int, int]:
    """Point in cv2 fixed point with 4 fractional bits (``shift=4``)."""
    return (int(round(x * 16)), int(round(y * 16)))


def _pts(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Polyline points in cv2 fixed point (``shift=4``), int32 (n, 2)."""
    return np.round(np.stack([xs, ys], axis=1) * 16.0).astype(np.int32)


def _draw_features(img: np.ndarray, actor: Actor, geo: _Geometry, face: FaceStyle,
                   jaw: float, blink: float) -> None:
    """Draw eyes, brows and mouth on ``img`` in place (sub-pixel, anti-aliased)."""
    cx, cy, a, b = geo.cx, geo.cy, geo.a, geo.b
    sh, aa = 4, cv2.LINE_AA
    skin = np.array(actor.skin)
    es = actor.eye_spacing
    # Eyes: sclera, iris, pupil, upper lid.
    ew = 0.19 * a
    eh = max(0.42 * ew * face.eye_open * blink, 0.6)
    lid = tuple(skin * 0.35)
    for s in (-1, 1):
        ex, ey = cx + s * es * a, cy - 0.13 * b
        if eh > 1.2:
            cv2.ellipse(img, _pt(ex, ey), _pt(ew, eh), 0, 0, 360, _SCLERA, -1, aa, sh)
            ri = min(_IRIS * ew, eh * 1.05)
            cv2.ellipse(img, _pt(ex, ey), _pt(_IRIS * ew, ri), 0, 0, 360, (70, 50, 35), -1, aa, sh)
            pupil = _pt(0.22 * ew, min(0.22 * ew, eh))
            cv2.ellipse(img, _pt(ex, ey), pupil, 0, 0, 360, (12, 10, 10), -1, aa, sh)
        cv2.ellipse(img, _pt(ex, ey), _pt(ew * 1.05, eh + 0.5), 0, 180, 360, lid, 2, aa, sh)
        cv2.ellipse(img, _pt(ex, ey), _pt(ew, eh), 0, 0, 180, tuple(skin * 0.6), 1, aa, sh)
    # Brows: inner and outer ends, slightly arched.
    brow = tuple(np.minimum(np.array(actor.hair) * 0.8, skin * 0.5))  # fair hair, darker brows
    thick = max(int(round(0.075 * b)), 2)
    base_y = cy - (0.36 + 0.11 * (face.brow_raise + actor.brow_offset)) * b
    for s in (-1, 1):
        inner = (cx + s * 0.13 * a, base_y - 0.09 * face.brow_tilt * b)
        mid = (cx + s * 0.38 * a, base_y - 0.04 * b)
        outer = (cx + s * 0.62 * a, base_y + 0.02 * b)
        pts = np.array([_pt(*inner), _pt(*mid), _pt(*outer)], np.int32)
        cv2.polylines(img, [pts], False, brow, thick, aa, sh)
    # Mouth: lips along a parabola; corners up for a smile, an opening that follows the jaw.
    mw = actor.mouth_width * face.mouth_width * a
    my = cy + 0.47 * b
    curve = (face.mouth_curve + actor.mouth_offset * 0.3) * 0.14 * b
    gap = jaw * 0.26 * b
    xs = np.linspace(-1.0, 1.0, 15)
    centre_line = my - curve * (xs ** 2 - 0.3)
    bulge = np.sqrt(np.clip(1.0 - xs ** 2, 0, 1))
    upper = centre_line - 0.3 * gap * bulge
    lower = centre_line + 0.7 * gap * bulge
    lip = tuple(skin * np.array([0.78, 0.52, 0.5]))
    top_pts = _pts(cx + xs * mw, upper)
    bot_pts = _pts(cx + xs[::-1] * mw, lower[::-1])
    if gap > 1.0:
        cv2.fillPoly(img, [np.concatenate([top_pts, bot_pts])], (45, 18, 20), aa, sh)
        if face.mouth_curve > 0.3:  # teeth in a smile
            teeth_edge = _pts(cx + xs[::-1] * mw * 0.9, upper[::-1] + 0.3 * gap)
            teeth = np.concatenate([top_pts, teeth_edge])
            cv2.fillPoly(img, [teeth], (230, 228, 220), aa, sh)
    lip_w = max(int(round(0.05 * b)), 2)
    cv2.polylines(img, [top_pts], False, lip, lip_w, aa, sh)
    cv2.polylines(img, [bot_pts], False, lip, lip_w + 1, aa, sh)
    cv2.polylines(img, [_pts(cx + xs * mw, centre_line)], False, tuple(skin * 0.3), 1, aa, sh)


def _blink_track(rng: np.random.Generator, times: np.ndarray) -> np.ndarray:
    """Eye aperture factor per frame: 1 open, ~0.1 mid-blink."""
    out = np.ones(times.shape)
    t = rng.uniform(0.3, 2.5)
    end = float(times[-1]) if times.size else 0.0
    while t < end:
        dist = np.abs(times - t)
        out = np.minimum(out, np.clip(dist / 0.08, 0.1, 1.0))
        t += rng.uniform(1.8, 4.5)
    return out


def _render_frames(rng: np.random.Generator, actor: Actor, face: FaceStyle, syl: _Syllables,
                   n_frames: int, fps: float, size: tuple[int, int]) -> np.ndarray:
    w, h = int(size[0]), int(size[1])
    geo = _Geometry(cx=actor.cx * w, cy=actor.cy * h, a=actor.half_h * h * actor.aspect,
                    b=actor.half_h * h)
    background = _render_background(actor, w, h, geo)
    head, alpha = _render_head(actor, w, h, geo)
    times = np.arange(n_frames) / fps
    # Jaw follows the articulation envelope averaged over each frame period.
    sub = times[:, None] + (np.arange(4)[None, :] / 4.0 - 0.375) / fps
    jaw_env = _envelope(syl, sub.ravel()).reshape(sub.shape).mean(axis=1)
    jaw_open = _openness_track(syl, times)
    jaw = np.clip(face.mouth_open + 0.45 * jaw_env * (0.5 + 0.5 * jaw_open), 0.0, 1.2)
    blink = _blink_track(rng, times)
    # Smooth head sway: a few random sinusoids per axis.
    freqs = rng.uniform(0.15, 0.9, (3, 3))
    phases = rng.uniform(0, 2 * np.pi, (3, 3))
    waves = np.sin(2 * np.pi * freqs[:, :, None] * times[None, None, :] + phases[:, :, None])
    sway = waves.sum(axis=1) / math.sqrt(3.0)
    dx, dy, rot = sway[0] * actor.sway_px, sway[1] * actor.sway_px * 0.6, sway[2] * actor.sway_deg
    flicker = 1.0 + 0.01 * _smooth_noise(rng, n_frames, int(max(fps, 1)), 2.0)
    # Sensor noise: one field stored around 128, shifted per frame.
    noise = rng.normal(128.0, _NOISE_SD, (h + 8, w + 8, 3))
    noise = np.clip(np.round(noise), 0, 255).astype(np.uint8)
    offsets = rng.integers(0, 8, (n_frames, 2))
    # Only the head's neighbourhood changes from frame to frame.
    pad = 8 + int(actor.sway_px * 2)
    x0, x1 = max(int(geo.cx - 1.3 * geo.a) - pad, 0), min(int(geo.cx + 1.3 * geo.a) + pad, w)
    y0, y1 = max(int(geo.cy - 1.4 * geo.b) - pad, 0), min(int(geo.cy + 1.3 * geo.b) + pad, h)
    head_roi = np.ascontiguousarray(head[y0:y1, x0:x1])
    alpha_roi = np.ascontiguousarray(alpha[y0:y1, x0:x1])
    local = replace(geo, cx=geo.cx - x0, cy=geo.cy - y0)
    size_roi = (x1 - x0, y1 - y0)
    bg_roi = np.ascontiguousarray(background[y0:y1, x0:x1])
    pivot = (local.cx, local.cy + 0.8 * local.b)
    frames = np.empty((n_frames, h, w, 3), np.uint8)
    frame = background.copy()
    for j in range(n_frames):
        layer = head_roi.copy()
        _draw_features(layer, actor, local, face, float(jaw[j]), float(blink[j]))
        m = cv2.getRotationMatrix2D(pivot, float(rot[j]), 1.0)
        m[0, 2] += dx[j]
        m[1, 2] += dy[j]
        moved = cv2.warpAffine(layer, m, size_roi, flags=cv2.INTER_LINEAR)
        mask = cv2.warpAffine(alpha_roi, m, size_roi, flags=cv2.INTER_LINEAR)
        frame[y0:y1, x0:x1] = cv2.blendLinear(moved, bg_roi, mask, 1.0 - mask + 1e-6)
        oy, ox = offsets[j]
        frames[j] = cv2.addWeighted(frame, float(flicker[j]), noise[oy:oy + h, ox:ox + w], 1.0,
                                    -128.0)
    return frames
