"""Live latency only (kept for the README's older command): ``python -m bench`` live section.

    scripts/rosenv.sh python bench/latency.py [--windows 50] [--hop 0.5] [--transports default]

Same as ``python -m bench --skip stages,offline`` (table in /tmp/avemo_bench_latency); the
node, the publisher and the recorder run in three processes (see bench/live.py).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.__main__ import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(["--skip", "stages,offline", "--out", "/tmp/avemo_bench_latency",
                           *sys.argv[1:]]))
