"""ruff over the source tree with the project's configuration (pyproject.toml [tool.ruff]).

Line length 99 as ament_flake8, pycodestyle errors and warnings, pyflakes. ruff is a test
dependency (requirements.txt; rosdep key python3-ruff-pip): without it the test fails
with the command to install it rather than passing silently.
"""
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff() -> str:
    try:
        from ruff.__main__ import find_ruff_bin  # the pip package
    except ImportError:
        exe = shutil.which("ruff")
        if exe is None:
            pytest.fail("ruff is not installed: pip install ruff (a test dependency, see "
                        "requirements.txt)")
        return exe
    return str(find_ruff_bin())


def test_config_matches_ament():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]
    assert cfg["line-length"] == 99  # ament_flake8's max-line-length
    assert {"build", "install", "log", "data"} <= set(cfg["extend-exclude"])
    assert {"E", "W", "F"} <= set(cfg["lint"]["select"])


def test_ruff_clean():
    proc = subprocess.run([_ruff(), "check", "--no-cache", "--output-format", "concise", "."],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"ruff found problems:\n{proc.stdout}{proc.stderr}"
