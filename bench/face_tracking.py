"""Face detectors and the tracker on real faces: recall per detector and resolution, id
stability over a two-person clip, and face work per kept frame, tracking vs full-frame
detection, in one run.

    scripts/rosenv.sh python -m bench.face_tracking [--repeats 2] [--fps 15]
        [--detectors haar_default,...] [--yunet-model FILE] [--json FILE] [--skip recall]

Frames: scikit-image's astronaut on synthetic backgrounds (``bench/face_scenes.py``).
Recall: every detector on every frame of the recall set, the smallest face to find
``--recall-min-face`` (64, the node's default) or 0.8 x the frame's face where that is
smaller (the set's faces are 48-400 px); a true face counts as found
when a detection matches it (``face_scenes.matches``); false detections per frame beside.
Cost: ``FaceTracker.update`` on clips of ``--seconds`` at ``--fps`` kept frames per
second (one face, two faces, nobody; each on the three background kinds) against the
same detector run on the whole frame every kept frame, on one OpenCV thread (as the node
runs), at the node's default minimum face (64 px).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: Detector variants of the recall table: (label, detector name, options).
VARIANTS = (
    ("haar_default", "haar_default", {}),
    ("haar_default w24", "haar_default", {"window_px": 24}),
    ("haar_default s1.2", "haar_default", {"scale_factor": 1.2}),
    ("haar_default n3", "haar_default", {"min_neighbors": 3}),
    ("haar_alt", "haar_alt", {}),
    ("haar_alt2", "haar_alt2", {}),
    ("haar_alt_tree", "haar_alt_tree", {}),
    ("haar_profile", "haar_profile", {}),
    ("lbp_frontal", "lbp_frontal", {}),
    ("yunet", "yunet", {}),
    ("mtcnn", "mtcnn", {}),
)
#: Targets of issue 10: face work per kept frame, amortised (ms).
TARGET_MS = {(640, 480): 3.0, (1280, 720): 5.0}


def _detector(name: str, options: dict, yunet_model: Optional[str]):
    from avemo_ros.face_detectors import make_detector

    return make_detector(name, model_path=yunet_model if name == "yunet" else None, **options)


def recall(detector, scenes, min_face: float = 64.0) -> dict:
    """Recall (true faces found / true faces), false detections per frame and detection
    time, overall and per resolution, face size and condition. Each frame is searched for
    faces from ``min(min_face, 0.8 x its face size)`` up (the node's default, 64 px, for
    faces of 80 px and more; a smaller minimum where the face is smaller)."""
    from .face_scenes import score_frame

    cells: dict = {}

    def add(key, found, total, false, ms):
        c = cells.setdefault(key, [0, 0, 0, 0, 0.0])
        c[0] += found
        c[1] += total
        c[2] += false
        c[3] += 1
        c[4] += ms

    for s in scenes:
        t0 = time.perf_counter()
        dets = [d.box for d in detector.detect(s.grey, min(min_face, 0.8 * s.face_px))]
        ms = (time.perf_counter() - t0) * 1e3
        found, false = score_frame(dets, s.truth)
        for key in ("all", f"{s.resolution[0]}x{s.resolution[1]}", f"{s.face_px} px",
                    s.condition):
            add(key, found, len(s.truth), false, ms)
    return {k: {"recall": f / t if t else float("nan"), "faces": t, "false_per_frame": fp / n,
                "detect_ms": ms / n, "frames": n}
            for k, (f, t, fp, n, ms) in cells.items()}


def clip_stability(detector, resolution=(640, 480), seconds: float = 10.0, fps: float = 15.0,
                   seed: int = 0, config=None, absent=None) -> dict:
    """Two moving faces through the tracker: per person, frames in view, frames where a
    track was detected on them, the ids they got and switches between ids; tracks on
    nobody; frames per no-face reason."""
    from avemo_ros.face_tracking import FaceTracker, TrackerConfig

    from .face_scenes import matches, two_face_clip

    tracker = FaceTracker(config or TrackerConfig(id_seed=seed), detector)
    people: dict = {}
    false_frames, reasons, cost = 0, {}, []
    for f in two_face_clip(resolution, seconds, fps, seed, absent=absent):
        r = tracker.update_frame(f.stamp_ns, f.grey)
        cost.append(r.cost_s)
        used = set()
        for person, truth in f.truth.items():
            p = people.setdefault(person, {"in_view": 0, "tracked": 0, "ids": [], "last": None,
                                           "switches": 0})
            p["in_view"] += 1
            for face in r.faces:
                if face.detected and face.id not in used and matches(face.box, truth):
                    used.add(face.id)
                    p["tracked"] += 1
                    if face.id not in p["ids"]:
                        p["ids"].append(face.id)
                    if p["last"] is not None and p["last"] != face.id:
                        p["switches"] += 1
                    p["last"] = face.id
                    break
        false_frames += any(face.detected and face.id not in used for face in r.faces)
        if r.reason is not None:
            reasons[r.reason.value] = reasons.get(r.reason.value, 0) + 1
    for p in people.values():
        p.pop("last")
        p["tracked_fraction"] = p["tracked"] / p["in_view"] if p["in_view"] else float("nan")
    return {"resolution": list(resolution), "frames": len(cost), "people": people,
            "frames_with_a_false_track": false_frames, "no_face_reasons": reasons,
            "tracks_started": tracker.stats.tracks_started,
            "update_ms_mean": float(np.mean(cost)) * 1e3}


SCENARIOS = ("one face", "two faces", "nobody", "nobody, camera panning")
#: What ``python -m bench`` measures (issue 10's cost goals, one face and three).
MAIN_BENCH = (((640, 480), "one face"), ((1280, 720), "one face"), ((640, 480), "three faces"),
              ((1280, 720), "three faces"))


def _clip_frames(resolution, scenario: str, kind: str, seconds: float, fps: float, seed: int):
    """Frames of one cost scenario (:data:`SCENARIOS`) on a ``kind`` background; the
    camera is still but for "camera panning" (the view slides 40 px a second)."""
    from .face_scenes import background, degrade, paste_face

    W, H = resolution
    rng = np.random.default_rng(seed)
    pan = "panning" in scenario
    margin = int(40 * seconds) + 1 if pan else 0
    base = background(rng, W + margin, H, kind)
    k = H / 480.0
    out = []
    for i in range(int(round(seconds * fps))):
        t = i / fps
        x0 = int(40 * t) if pan else 0
        img = base[:, x0:x0 + W].copy()
        if scenario.startswith(("one face", "two faces", "three faces")):
            paste_face(img, 110 * k * (1 + 0.15 * np.sin(t)), (W * (0.35 + 0.1 * np.sin(t / 2)),
                                                             H * (0.45 + 0.08 * np.cos(t))))
        if scenario.startswith(("two faces", "three faces")):
            paste_face(img, 85 * k, (W * (0.72 + 0.08 * np.cos(t / 1.5)), H * 0.5), 0.0, True)
        if scenario.startswith("three faces"):
            paste_face(img, 75 * k, (W * (0.12 + 0.04 * np.sin(t / 1.3)), H * 0.3), 0.0, True)
        out.append((int(1e12 + t * 1e9), degrade(img, rng, noise_sigma=3.0)))
    return out


def cost(detector, resolution, scenario: str, kinds: Sequence[str] = ("wall", "texture",
                                                                       "clutter"),
         seconds: float = 9.0, fps: float = 15.0, min_face: int = 64, seed: int = 0,
         config=None) -> dict:
    """Face work per kept frame (ms): the tracker's update, amortised over the clip (the
    full-frame detections included), vs full-frame detection on every kept frame."""
    from avemo_ros.face_tracking import FaceTracker, TrackerConfig

    track_ms, full_ms, fulls = [], [], 0
    for j, kind in enumerate(kinds):
        frames = _clip_frames(resolution, scenario, kind, seconds, fps, seed + j)
        tracker = FaceTracker(config or TrackerConfig(min_face_px=min_face, id_seed=seed),
                              detector)
        detector.detect(frames[0][1], min_face)  # warm
        for stamp, grey in frames:
            t0 = time.perf_counter()
            tracker.update_frame(stamp, grey)
            track_ms.append((time.perf_counter() - t0) * 1e3)
        fulls += tracker.stats.full_detections
        for _, grey in frames:
            t0 = time.perf_counter()
            detector.detect(grey, min_face)
            full_ms.append((time.perf_counter() - t0) * 1e3)
    tm, fm = float(np.mean(track_ms)), float(np.mean(full_ms))
    return {"resolution": f"{resolution[0]}x{resolution[1]}", "scenario": scenario,
            "frames": len(track_ms), "full_detections": fulls,
            "tracking_ms_per_frame": tm, "tracking_p95_ms": float(np.percentile(track_ms, 95)),
            "full_frame_ms_per_frame": fm, "ratio": fm / tm if tm > 0 else float("nan"),
            "target_ms": TARGET_MS.get(tuple(resolution))}


def run(repeats: int = 2, fps: float = 15.0, seconds: float = 9.0,
        variants=VARIANTS, yunet_model: Optional[str] = None, recall_min_face: float = 64.0,
        skip: Sequence[str] = (), detector_name: Optional[str] = None) -> dict:
    """Every figure of the bench as a dict."""
    import cv2

    from avemo_ros.face_detectors import DEFAULT_DETECTOR, DetectorError
    from avemo_ros.face_frames import CascadeNotFoundError

    from .face_scenes import recall_set
    from .machine import load_average, machine_info

    cv2.setNumThreads(1)
    res: dict = {"machine": machine_info(), "load_start": load_average(), "recall": {},
                 "unavailable": {}}
    if "recall" not in skip:
        scenes = list(recall_set(seed=0, repeats=repeats))
        res["recall_frames"] = len(scenes)
        for label, name, options in variants:
            try:
                det = _detector(name, options, yunet_model)
            except (DetectorError, CascadeNotFoundError) as e:
                res["unavailable"][label] = str(e)
                continue
            print(f"recall: {label} ...", file=sys.stderr)
            res["recall"][label] = recall(det, scenes, recall_min_face)
    chosen = detector_name or DEFAULT_DETECTOR
    res["chosen"] = chosen
    det = _detector(chosen, {}, yunet_model)
    if "stability" not in skip:
        print("id stability ...", file=sys.stderr)
        res["stability"] = [clip_stability(det, r, 10.0, fps) for r in ((640, 480),
                                                                          (1280, 720))]
    if "cost" not in skip:
        res["cost"] = []
        for r in ((640, 480), (1280, 720)):
            for scenario in SCENARIOS:
                print(f"cost: {r} {scenario} ...", file=sys.stderr)
                res["cost"].append(cost(det, r, scenario, seconds=seconds, fps=fps))
    res["fps"] = fps
    res["load_end"] = load_average()
    return res


def main_bench_rows(detector_name: Optional[str] = None, seconds: float = 6.0,
                    fps: float = 15.0) -> dict:
    """The face rows of ``python -m bench``: tracking vs full-frame detection per kept frame
    (:data:`MAIN_BENCH`), in one run so the ratio holds however fast the machine is."""
    import cv2

    from avemo_ros.face_detectors import DEFAULT_DETECTOR

    cv2.setNumThreads(1)
    name = detector_name or DEFAULT_DETECTOR
    det = _detector(name, {}, None)
    rows = [cost(det, r, scenario, kinds=("wall", "clutter"), seconds=seconds, fps=fps)
            for r, scenario in MAIN_BENCH]
    return {"detector": name, "fps": fps, "rows": rows}


def _is_res(key: str) -> bool:
    w, _, h = key.partition("x")
    return w.isdigit() and h.isdigit()


def format_report(res: dict) -> str:
    """The bench as Markdown."""
    m = res["machine"]
    lines = [f"machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB, {m['os']}, "
             f"Python {m['python']}, OpenCV {m['opencv']}, numpy {m['numpy']}, "
             f"commit {m['git_commit']}; load {res['load_start'][0]:.2f} -> "
             f"{res['load_end'][0]:.2f}; one OpenCV thread", ""]
    if res["recall"]:
        resolutions = [k for k in next(iter(res["recall"].values())) if _is_res(k)]
        lines += [f"recall on {res['recall_frames']} frames (astronaut, faces 48-400 px, "
                  "smallest face to find min(64 px, 0.8 x the face))", "",
                  "| detector | all | " + " | ".join(resolutions)
                  + " | false / frame | detect ms (mean, per resolution) |",
                  "|---|---:|" + "---:|" * len(resolutions) + "---:|---|"]
        for label, r in res["recall"].items():
            lines.append(f"| {label} | {r['all']['recall']:.1%} | "
                         + " | ".join(f"{r[k]['recall']:.1%}" for k in resolutions)
                         + f" | {r['all']['false_per_frame']:.2f} | "
                         + " / ".join(f"{r[k]['detect_ms']:.0f}" for k in resolutions) + " |")
        sizes = [k for k in next(iter(res["recall"].values())) if k.endswith(" px")]
        conds = [k for k in next(iter(res["recall"].values()))
                 if k != "all" and not _is_res(k) and not k.endswith(" px")]
        lines += ["", "| detector | " + " | ".join(sizes) + " | " + " | ".join(conds) + " |",
                  "|---|" + "---:|" * (len(sizes) + len(conds))]
        for label, r in res["recall"].items():
            lines.append(f"| {label} | " + " | ".join(f"{r[k]['recall']:.0%}"
                                                        for k in sizes + conds) + " |")
    for label, why in res.get("unavailable", {}).items():
        lines.append(f"\n{label}: not measured: {why}")
    lines += ["", f"chosen detector: {res['chosen']}"]
    for s in res.get("stability", []):
        lines += ["", f"id stability, {s['resolution'][0]}x{s['resolution'][1]}, "
                  f"{s['frames']} frames ({s['frames'] / res['fps']:.0f} s at {res['fps']:g} "
                  f"kept fps), two moving faces: tracks started {s['tracks_started']}, "
                  f"frames with a track on no face {s['frames_with_a_false_track']}, "
                  f"no-face reasons {s['no_face_reasons'] or 'none'}",
                  "", "| person | in view | tracked | ids | id switches |",
                  "|---|---:|---:|---|---:|"]
        for person, p in s["people"].items():
            lines.append(f"| {person} | {p['in_view']} | {p['tracked_fraction']:.1%} | "
                         f"{', '.join(p['ids'])} | {p['switches']} |")
    if res.get("cost"):
        lines += ["", f"face work per kept frame ({res['fps']:g} kept fps, min face 64 px, "
                  "walls, textures and clutter), ms", "",
                  "| resolution | scene | tracking (amortised) | p95 | full-frame detection "
                  "every frame | ratio | full detections | target |",
                  "|---|---|---:|---:|---:|---:|---:|---|"]
        for c in res["cost"]:
            target = c["target_ms"]
            ok = "" if target is None else (" ✅" if c["tracking_ms_per_frame"] <= target
                                            else " ❌")
            lines.append(f"| {c['resolution']} | {c['scenario']} | "
                         f"{c['tracking_ms_per_frame']:.2f} | {c['tracking_p95_ms']:.1f} | "
                         f"{c['full_frame_ms_per_frame']:.2f} | {c['ratio']:.1f}x | "
                         f"{c['full_detections']}/{c['frames']} | "
                         f"{'-' if target is None else f'≤ {target:g}'}{ok} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    """Command line: run the bench, print Markdown, optionally write JSON."""
    ap = argparse.ArgumentParser(prog="python -m bench.face_tracking",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=2, help="frames per recall-set cell")
    ap.add_argument("--fps", type=float, default=15.0, help="kept frames per second")
    ap.add_argument("--seconds", type=float, default=9.0, help="seconds per cost clip")
    ap.add_argument("--detectors", default="", help="comma list of recall-table labels "
                    f"(default all: {', '.join(v[0] for v in VARIANTS)})")
    ap.add_argument("--detector", default=None, help="detector for stability and cost "
                    "(default: face_detectors.DEFAULT_DETECTOR)")
    ap.add_argument("--yunet-model", default=None, help="YuNet ONNX file, if you have one")
    ap.add_argument("--recall-min-face", type=float, default=64.0)
    ap.add_argument("--skip", default="", help="comma list: recall, stability, cost")
    ap.add_argument("--json", type=Path, help="also write every figure here")
    args = ap.parse_args(argv)
    from .face_scenes import skimage_unavailable

    why = skimage_unavailable()
    if why:
        print(f"face tracking bench: {why}", file=sys.stderr)
        return 2
    wanted = {d.strip() for d in args.detectors.split(",") if d.strip()}
    variants = tuple(v for v in VARIANTS if not wanted or v[0] in wanted)
    res = run(args.repeats, args.fps, args.seconds, variants, args.yunet_model,
              args.recall_min_face, {s.strip() for s in args.skip.split(",")}, args.detector)
    print(format_report(res))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
