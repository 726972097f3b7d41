"""avemo_ros benchmark suite: one command, one table.

    scripts/rosenv.sh python -m bench [--windows 40] [--hop 0.5]
        [--transports default,untuned,external_camera,large_data]
        [--skip stages,live,offline] [--node-param threads:=1]

Sections: per-stage costs (this process), live latency through DDS with the node, a
publisher and this recorder in three processes (once per Fast DDS transport setting, see
bench/live.py TRANSPORTS: ``default`` is what the runner / launch file now choose with no
user setting, ``untuned`` Fast DDS as it comes, the old default), face work per kept frame
(the tracker vs full-frame detection, one and three faces, 640x480 and 1280x720; more in
``python -m bench.face_tracking``) and offline evaluation speed. Prints a Markdown table
(machine, figures, goals) and writes it to bench/results/latest.md, with every number in
bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", type=Path, default=ROOT / "data" / "models" / "synthetic")
    ap.add_argument(
        "--windows",
        type=int,
        default=40,
        help="windows per live run (stream = 3 s + windows x hop)",
    )
    ap.add_argument("--hop", type=float, default=0.5)
    ap.add_argument(
        "--transports",
        default="default,untuned,external_camera",
        help="comma list of Fast DDS settings for the live runs: default, untuned, "
        "external_camera, large_data",
    )
    ap.add_argument(
        "--node-param",
        action="append",
        default=[],
        metavar="NAME:=VALUE",
        help="extra perception_node parameter for the live runs (repeatable)",
    )
    ap.add_argument(
        "--three-faces",
        type=int,
        default=1,
        choices=(0, 1),
        help="1: one more live run (default transport) with three faces in view",
    )
    ap.add_argument(
        "--debug-image",
        type=int,
        default=1,
        choices=(0, 1),
        help="1: two more live runs at hop 0.2 (5 estimates/s), without and with a "
        "~/debug_image subscriber",
    )
    ap.add_argument("--threads", type=int, default=1, help="threads for the per-stage timings")
    ap.add_argument(
        "--skip", default="", help="comma list of sections to skip: stages, live, offline, faces"
    )
    ap.add_argument("--out", type=Path, default=RESULTS, help="folder for latest.md / latest.json")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not (args.model_dir / "manifest.json").is_file():
        print(f"no model bundle at {args.model_dir}: run `make model` first", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("ROS_DOMAIN_ID", str(os.getpid() % 100 + 1))  # shared by the 3 processes
    from . import live, offline_speed, report, stages
    from .machine import load_average, machine_info

    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    t0 = time.monotonic()
    res = {
        "command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine_info(),
        "load_start": load_average(),
    }
    if "live" not in skip:
        import rclpy

        from avemo_ros.ros.harness import Recorder

        from avemo_ros.ros.transport import USER_VARS

        for var in USER_VARS:  # every row sets its own transport, from nothing
            if os.environ.pop(var, None) is not None:
                print(
                    f"note: {var} ignored: each live row sets its own transport", file=sys.stderr
                )
        unknown = [
            t for t in args.transports.split(",") if t.strip() and t.strip() not in live.TRANSPORTS
        ]
        if unknown:
            print(
                f"unknown transport(s) {unknown}: choose from {sorted(live.TRANSPORTS)}",
                file=sys.stderr,
            )
            return 2
        rclpy.init()
        recorder = Recorder("bench_recorder")
        res["live"] = []
        try:
            for transport in [t.strip() for t in args.transports.split(",") if t.strip()]:
                print(
                    f"live run: {transport} transport, {args.windows} windows ...", file=sys.stderr
                )
                try:
                    res["live"].append(
                        live.run_live(
                            args.model_dir,
                            windows=args.windows,
                            hop_s=args.hop,
                            transport=transport,
                            node_params=tuple(args.node_param),
                            recorder=recorder,
                        )
                    )
                except Exception as e:  # one failed run must not hide the others
                    res["live"].append(
                        {"transport": transport, "error": f"{type(e).__name__}: {e}"}
                    )
            if args.debug_image:  # issue 13: the debug image's cost, one pair at 5 Hz
                for sub in (False, True):
                    print(f"live run: hop 0.2, debug image subscriber {sub} ...",
                          file=sys.stderr)
                    try:
                        res["live"].append(
                            live.run_live(
                                args.model_dir,
                                windows=int(args.windows * args.hop / 0.2),
                                hop_s=0.2,
                                node_params=tuple(args.node_param) + ("debug_rate_hz:=5.0",),
                                recorder=recorder,
                                debug_subscriber=sub,
                            )
                        )
                    except Exception as e:
                        res["live"].append({"transport": f"default, debug subscriber {sub}",
                                            "error": f"{type(e).__name__}: {e}"})
            if args.three_faces:
                print(f"live run: three faces, {args.windows} windows ...", file=sys.stderr)
                try:
                    res["live"].append(
                        live.run_live(
                            args.model_dir,
                            windows=args.windows,
                            hop_s=args.hop,
                            node_params=tuple(args.node_param),
                            recorder=recorder,
                            extra_faces=2,
                        )
                    )
                except Exception as e:
                    res["live"].append({"transport": "default, three faces",
                                        "error": f"{type(e).__name__}: {e}"})
        finally:
            recorder.close()
            rclpy.shutdown()
    if "stages" not in skip:
        print("per-stage costs ...", file=sys.stderr)
        res["stages"] = stages.run(args.model_dir, threads=args.threads)
    if "faces" not in skip:
        from .face_scenes import skimage_unavailable

        why = skimage_unavailable()
        if why:
            res["faces"] = {"pending": why}
        else:
            print("face tracking vs full-frame detection ...", file=sys.stderr)
            from .face_tracking import main_bench_rows

            res["faces"] = main_bench_rows()
    if "offline" not in skip:
        why = offline_speed.available()
        if why:
            res["offline"] = {"pending": f"avemo_ros.offline / bags not usable yet: {why}"}
        else:
            print("offline evaluation ...", file=sys.stderr)
            try:
                res["offline"] = offline_speed.run(args.model_dir, hop_s=args.hop)
            except Exception as e:  # report it in the table
                res["offline"] = {"error": f"{type(e).__name__}: {e}"}
    res["load_end"] = load_average()
    res["duration_s"] = time.monotonic() - t0
    args.out.mkdir(parents=True, exist_ok=True)  # the numbers first: a report bug loses none
    (args.out / "latest.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
    text = report.render(res)
    print(text)
    (args.out / "latest.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
