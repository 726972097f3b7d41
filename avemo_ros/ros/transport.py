"""Which Fast DDS transport the processes of the perception graph get (no rclpy, no launch).

Raw 640x480 camera frames are 900 KB each. Fast DDS as it comes (a 512 KB shared-memory
segment, OS-default UDP buffers) loses most of them between two processes on one machine
and stalls the reliable audio stream with retransmissions. The package ships a participant
profile (``config/fastdds_large_data.xml``: a 32 MB shared-memory segment, 4 MB UDP
buffers) that carries them without loss; the launch file and the runner point every
process they start at it, through :func:`choose` / :func:`apply`, unless

- ``RMW_IMPLEMENTATION`` names another middleware than Fast DDS,
- the user configured Fast DDS already: ``FASTDDS_DEFAULT_PROFILES_FILE``,
  ``FASTRTPS_DEFAULT_PROFILES_FILE`` or ``FASTDDS_BUILTIN_TRANSPORTS`` is set, or a
  ``DEFAULT_FASTDDS_PROFILES.xml`` / ``DEFAULT_FASTRTPS_PROFILES.xml`` lies in the working
  directory. ``FASTDDS_BUILTIN_TRANSPORTS=DEFAULT`` is the way to ask for Fast DDS as it
  comes.

Why a profile and not ``FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA``: that variable exists
from Fast DDS 2.13 on only (not Humble's 2.6), and rmw_fastrtps ignores it whenever
``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` (or ``ROS_LOCALHOST_ONLY=1``) is set: the rmw
then disables the built-in transports and installs its own shared-memory + UDP pair. A
default participant profile is loaded before that and its transports stay.

Fast DDS 3 (Kilted, Rolling) reads the profile from ``FASTDDS_DEFAULT_PROFILES_FILE``;
Fast DDS 2 (Humble, Jazzy) from ``FASTRTPS_DEFAULT_PROFILES_FILE`` (Kilted's rmw still
accepts that one, with a deprecation warning). :func:`profile_variables` picks the one the
installed Fast DDS reads (both when it cannot tell).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Mapping, MutableMapping, Optional, Sequence

__all__ = [
    "PROFILE_NAME",
    "TransportChoice",
    "apply",
    "choose",
    "default_profile",
    "fastdds_major",
    "profile_variables",
    "setup_process",
]

PROFILE_NAME = "fastdds_large_data.xml"
FASTDDS_RMWS = ("rmw_fastrtps_cpp", "rmw_fastrtps_dynamic_cpp")
FASTDDS3_VAR = "FASTDDS_DEFAULT_PROFILES_FILE"
FASTDDS2_VAR = "FASTRTPS_DEFAULT_PROFILES_FILE"
BUILTIN_VAR = "FASTDDS_BUILTIN_TRANSPORTS"
#: Settings by which a user has configured Fast DDS (kept as they are).
USER_VARS = (FASTDDS3_VAR, FASTDDS2_VAR, BUILTIN_VAR)
#: Profile files Fast DDS loads from the working directory by itself.
CWD_PROFILES = ("DEFAULT_FASTDDS_PROFILES.xml", "DEFAULT_FASTRTPS_PROFILES.xml")
_DISTRO_MAJOR = {"humble": 2, "iron": 2, "jazzy": 2, "kilted": 3, "rolling": 3}


@dataclass(frozen=True)
class TransportChoice:
    """What to add to the environment of the graph's processes, and why."""

    env: dict[str, str] = field(default_factory=dict)  # empty: leave the environment alone
    message: str = ""

    @property
    def tuned(self) -> bool:
        return bool(self.env)


def fastdds_major(environ: Mapping[str, str]) -> Optional[int]:
    """Major version of the Fast DDS this environment loads (2 or 3), None if unknown.

    From ``ROS_DISTRO`` (a sourced ROS), else the PyPI wheels' metadata (``ros-fastdds``
    is Fast DDS 3, ``ros-fastrtps`` Fast DDS 2), else the ament index of the prefixes.
    """
    distro = environ.get("ROS_DISTRO", "").strip().lower()
    if distro in _DISTRO_MAJOR:
        return _DISTRO_MAJOR[distro]
    for dist, major in (("ros-fastdds", None), ("ros-fastrtps", 2)):
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
        if major is None:
            try:
                major = int(version.split(".")[0])
            except ValueError:
                continue
        return major
    for prefix in environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if not prefix:
            continue
        index = Path(prefix) / "share" / "ament_index" / "resource_index" / "packages"
        if (index / "fastdds").is_file():
            return 3
        if (index / "fastrtps").is_file():
            return 2
    return None


def profile_variables(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The environment variable(s) through which this Fast DDS loads a default profile."""
    major = fastdds_major(environ)
    if major is None:
        return (FASTDDS3_VAR, FASTDDS2_VAR)
    return (FASTDDS3_VAR,) if major >= 3 else (FASTDDS2_VAR,)


def default_profile() -> Optional[Path]:
    """The shipped profile: ``share/avemo_ros/config`` of the install, else the checkout's."""
    candidates = []
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory("avemo_ros")) / "config" / PROFILE_NAME)
    except Exception:  # not installed, or no ament_index_python: the source checkout
        pass
    candidates.append(Path(__file__).resolve().parents[2] / "config" / PROFILE_NAME)
    for path in candidates:
        if path.is_file():
            return path
    return None


def choose(
    environ: Mapping[str, str],
    profile: Optional[Path | str] = None,
    *,
    cwd: Optional[Path | str] = None,
    variables: Optional[Sequence[str]] = None,
) -> TransportChoice:
    """The transport decision for a process started with ``environ``.

    ``profile``: the large-data profile to use (default: :func:`default_profile`);
    ``cwd``: the processes' working directory (default: this one); ``variables``: the
    profile variables to set (default: :func:`profile_variables`).
    """
    rmw = environ.get("RMW_IMPLEMENTATION", "").strip()
    if rmw and rmw not in FASTDDS_RMWS:
        return TransportChoice(
            message=f"DDS transport: RMW_IMPLEMENTATION={rmw} is not Fast "
            "DDS; its transport settings are left as they are"
        )
    for var in USER_VARS:
        if environ.get(var, "").strip():
            return TransportChoice(
                message=f"DDS transport: {var}={environ[var]} is set; "
                "using the Fast DDS configuration it selects"
            )
    here = Path(cwd) if cwd is not None else Path.cwd()
    for name in CWD_PROFILES:
        if (here / name).is_file():
            return TransportChoice(
                message=f"DDS transport: Fast DDS loads {here / name} from "
                "the working directory; left as it is"
            )
    path = Path(profile) if profile is not None else default_profile()
    if path is None or not path.is_file():
        return TransportChoice(
            message=f"DDS transport: no {PROFILE_NAME} found ({path}); Fast "
            "DDS defaults, raw 640x480 frames will be lost between "
            "processes"
        )
    names = tuple(variables) if variables is not None else profile_variables(environ)
    env = {name: str(path.resolve()) for name in names}
    return TransportChoice(
        env=env,
        message=(
            f"DDS transport: Fast DDS large-data profile {path.resolve()} ("
            + ", ".join(names)
            + "; 32 MB shared memory, 4 MB UDP buffers); set "
            "FASTDDS_BUILTIN_TRANSPORTS=DEFAULT or your own profile to opt out"
        ),
    )


def apply(
    environ: Optional[MutableMapping[str, str]] = None, profile: Optional[Path | str] = None
) -> TransportChoice:
    """:func:`choose` for ``environ`` (default ``os.environ``) and set what it chose there.

    Call it before ``rclpy.init`` (the participant reads the profile when it is created);
    processes started afterwards with that environment inherit it.
    """
    target = os.environ if environ is None else environ
    choice = choose(target, profile)
    target.update(choice.env)
    return choice


def setup_process(
    name: str, environ: Optional[MutableMapping[str, str]] = None
) -> TransportChoice:
    """:func:`apply`, and one log line on stderr saying what was chosen (for executables
    that call it before ``rclpy.init``, when the ROS logger does not exist yet)."""
    import sys
    import time

    choice = apply(environ)
    print(f"[INFO] [{time.time():.9f}] [{name}]: {choice.message}", file=sys.stderr, flush=True)
    return choice
