"""``pip install .[bags]`` into a fresh venv, then bags made and evaluated from elsewhere.

What users do: a new ``python -m venv`` (no system site-packages, nothing of this
machine's environments), ``pip install <checkout>[bags]`` letting pip resolve every
dependency from the package index (pip's cache keeps a second run quick), then, in a
directory that is not the checkout and without PYTHONPATH or a ROS environment:
``python -m avemo_ros.tools.make_bag`` writes a ros_drivers-flavour bag (definitions
embedded), the library rewrites it as a bag without definitions (as Humble records), and
``python -m avemo_ros.tools.evaluate`` scores both against the trained bundle. The
installed package must find its .msg files as package data. The checkout is copied
first (tracked sources only) so that the build leaves nothing in the working tree.

About a minute with pip's cache warm (the first run downloads about 250 MB). Marked
``install``: ``colcon test`` leaves it out.
"""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = Path(os.environ.get("AVEMO_TEST_BUNDLE", ROOT / "data" / "models" / "synthetic"))
DEMO = ROOT / "data" / "demo"
CLIPS = ("01_actor20_happy.mp4", "02_actor20_sad.mp4")

pytestmark = [pytest.mark.install, pytest.mark.timeout(900)]

# Nothing of this machine's Python / ROS environments may leak into the fresh venv.
_DROP_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "AMENT_PREFIX_PATH",
             "CMAKE_PREFIX_PATH", "COLCON_PREFIX_PATH", "LD_LIBRARY_PATH", "ROS_DISTRO",
             "ROS_VERSION", "ROS_PYTHON_VERSION", "PYTHONNOUSERSITE")
_COPY_IGNORE = shutil.ignore_patterns(".git", "build", "install", "log", "data", "__pycache__",
                                      "*.egg-info", ".pytest_cache", ".venv", "*.pyc")


def _clean_env(venv: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _DROP_ENV}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONNOUSERSITE"] = "1"  # no ~/.local packages either
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _run(cmd, cwd, env, timeout=600) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, (
        f"{' '.join(map(str, cmd))} -> {proc.returncode}\n{proc.stdout[-4000:]}\n"
        f"{proc.stderr[-4000:]}")
    return proc


class Installed:
    """A fresh venv with the checkout installed, and a working directory away from it."""

    def __init__(self, base: Path):
        self.src = base / "src"
        self.venv = base / "venv"
        self.work = base / "elsewhere"
        self.times: dict = {}
        shutil.copytree(ROOT, self.src, ignore=_COPY_IGNORE, symlinks=True)
        self.work.mkdir()
        t0 = time.monotonic()
        # the base interpreter: `-m venv` from inside a venv would still make a fresh one
        base_python = getattr(sys, "_base_executable", None) or sys.executable
        subprocess.run([base_python, "-m", "venv", str(self.venv)], check=True, timeout=300)
        self.python = self.venv / "bin" / "python"
        self.env = _clean_env(self.venv)
        t1 = time.monotonic()
        _run([self.python, "-m", "pip", "install", "--quiet", f"{self.src}[bags]"],
             self.work, self.env)
        t2 = time.monotonic()
        self.times = {"venv_s": round(t1 - t0, 1), "pip_install_bags_s": round(t2 - t1, 1)}
        print(f"fresh venv {self.times['venv_s']} s, pip install .[bags] "
              f"{self.times['pip_install_bags_s']} s")

    def py(self, code: str, *args, timeout=600) -> str:
        return _run([self.python, "-c", code, *args], self.work, self.env, timeout).stdout

    def module(self, name: str, *args, timeout=600) -> str:
        return _run([self.python, "-m", name, *args], self.work, self.env, timeout).stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    return Installed(tmp_path_factory.mktemp("install"))


_CHECK_INSTALL = r"""
import importlib.resources as res, importlib.util, json, sys
import avemo_ros, avemo_ros.bags as bags, avemo_ros.offline, avemo_ros.evaluation
from avemo_ros.bags import msg_types
import avemo_ros.tools.evaluate, avemo_ros.tools.make_bag
out = {
    "file": avemo_ros.__file__, "path": list(avemo_ros.__path__), "sys_path": sys.path,
    "ros_part": importlib.util.find_spec("avemo_ros.ros") is not None,
    "rclpy_loaded": any(m == "rclpy" or m.startswith("rclpy.") for m in sys.modules),
    "training_train": importlib.util.find_spec("training.train") is not None,
    "training_config": (res.files("training") / "configs" / "synthetic.yaml").is_file(),
    "emotion_msg": (res.files("avemo_ros") / "interfaces" / "avemo_ros" / "msg"
                    / "EmotionEstimate.msg").read_text(),
    "flavour_dirs": {f: str(msg_types._flavour_msg_dir(f)) for f in bags.FLAVOURS},
    "emotion_dir": str(msg_types._emotion_msg_dir()),
    "types": {f: sorted(t for t in bags.typestore_for(f).fielddefs
                        if t.startswith(("audio_common_msgs/", "avemo_ros/")))
              for f in bags.FLAVOURS},
}
print(json.dumps(out))
"""


def test_installed_copy_is_self_contained(installed):
    """The installed package runs from site-packages, with its .msg files and configs."""
    info = json.loads(installed.py(_CHECK_INSTALL))
    site = str(installed.venv)
    assert info["file"].startswith(site) and all(p.startswith(site) for p in info["path"])
    assert not any(str(ROOT) in p for p in info["sys_path"] if p)
    assert not info["ros_part"] and not info["rclpy_loaded"]  # the ROS-free part alone
    assert info["training_train"] and info["training_config"]  # training/ is in the wheel
    # one source: the wheel's EmotionEstimate.msg is the top-level msg/ file
    assert info["emotion_msg"] == (ROOT / "msg" / "EmotionEstimate.msg").read_text()
    assert info["emotion_dir"].startswith(site)
    assert all(d.startswith(site) for d in info["flavour_dirs"].values())
    assert "audio_common_msgs/msg/AudioDataStamped" in info["types"]["ros_drivers"]
    assert "audio_common_msgs/msg/AudioStamped" in info["types"]["mgonzs13"]
    assert all("avemo_ros/msg/EmotionEstimate" in t for t in info["types"].values())


def test_train_extra_resolves(installed):
    """``pip install .[train]`` resolves (dry run: torch is large)."""
    report = installed.venv.parent / "train-report.json"
    _run([installed.python, "-m", "pip", "install", "--dry-run", "--quiet", "--report",
          report, f"{installed.src}[train]"], installed.work, installed.env)
    names = {i["metadata"]["name"].lower() for i in json.loads(report.read_text())["install"]}
    assert {"torch", "onnx", "tqdm"} <= names


_STRIP_DEFINITIONS = r"""
import sys
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from avemo_ros.bags import typestore_for

src, dst = sys.argv[1], sys.argv[2]
store = typestore_for("ros_drivers")
with Reader(src) as reader:
    writer = Writer(dst, version=8, storage_plugin=StoragePlugin.SQLITE3)
    writer.open()
    conns = {}
    for c in reader.connections:  # Humble-style: a type name and a hash, no definition
        conns[c.id] = writer.add_connection(c.topic, c.msgtype, msgdef="",
                                            rihs01=store.hash_rihs01(c.msgtype))
    for c, stamp, raw in reader.messages():
        writer.write(conns[c.id], stamp, raw)
    writer.close()
with Reader(dst) as reader:
    assert all(not c.msgdef.data for c in reader.connections), "definitions left in the bag"
    print(sorted({c.msgtype for c in reader.connections}))
"""


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    paths = [DEMO / name for name in CLIPS]
    if all(p.is_file() for p in paths):
        return paths
    from training.demo_clips import write_demo_clips

    return write_demo_clips(tmp_path_factory.mktemp("demo"), emotions=("happy", "sad"))


@pytest.mark.skipif(not (BUNDLE / "manifest.json").is_file(),
                    reason=f"no trained bundle at {BUNDLE}: run `make model` first")
def test_make_bag_and_evaluate_from_another_directory(installed, clips):
    work = installed.work
    embedded, bare = work / "legacy_embedded", work / "legacy_bare"
    out = installed.module("avemo_ros.tools.make_bag", "--out", embedded, "--media", *clips,
                           "--audio-flavour", "ros_drivers", "--storage", "mcap", "--fps", "15")
    assert "(ros_drivers)" in out and "2 ground-truth segments" in out, out
    types = installed.py(_STRIP_DEFINITIONS, embedded, bare)
    assert "audio_common_msgs/msg/AudioDataStamped" in types, types

    reports = {}
    for bag in (embedded, bare):
        report_dir = work / f"report_{bag.name}"
        out = installed.module("avemo_ros.tools.evaluate", bag, "--model-dir", BUNDLE,
                               "--out", report_dir, "--hop", "1.0", "--threads", "1")
        assert "accuracy" in out, out
        reports[bag.name] = json.loads((report_dir / "report.json").read_text())
        assert (report_dir / "windows.csv").is_file() and (report_dir / "confusion.png").is_file()
    a, b = reports[embedded.name], reports[bare.name]
    assert a["windows_scored"] >= 4, a
    per_bag = a["extra"]["per_bag"][0]
    assert per_bag["audio_topic"] == "/audio" and per_bag["frames"] > 0, per_bag
    assert a["metrics"]["accuracy"] >= 0.5, a["metrics"]
    # the shipped definitions read the bare bag exactly as the embedded ones read the other
    assert (b["windows"], b["windows_scored"]) == (a["windows"], a["windows_scored"])
    assert b["metrics"]["accuracy"] == a["metrics"]["accuracy"]
