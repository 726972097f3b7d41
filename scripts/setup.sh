#!/usr/bin/env bash
# One-step setup: Python environment, ROS 2 (sourced install, or Kilted wheels from PyPI),
# colcon build of avemo_ros (and of the audio_common_msgs fixtures where that package is
# missing). Idempotent: with nothing changed, a second run only re-checks and rebuilds
# incrementally.
#
#   scripts/setup.sh            # set up and build
#   AVEMO_VENV=/path scripts/setup.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The venv must live outside the source tree: CMake refuses include paths inside it.
VENV="${AVEMO_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/avemo_ros/venv}"
PY="${PYTHON:-python3}"
cd "$ROOT"

log() { printf '[setup] %s\n' "$*"; }

# --- 1. which ROS ------------------------------------------------------------------------
if [ -n "${ROS_DISTRO:-}" ] && "$PY" -c 'import rclpy' >/dev/null 2>&1; then
  ROS_MODE=sourced
  log "using the sourced ROS 2 $ROS_DISTRO"
else
  ROS_MODE=wheels
  log "no sourced ROS 2: using ROS 2 Kilted wheels from PyPI"
fi

# --- 2. virtual environment + Python deps (skipped when the requirement files are unchanged)
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  if [ "$ROS_MODE" = sourced ]; then
    "$PY" -m venv --system-site-packages "$VENV"
  else
    "$PY" -m venv "$VENV"
  fi
fi
VPY="$VENV/bin/python"
stamp="$VENV/.avemo-requirements"
want="$ROS_MODE $(cat requirements.txt requirements-ros.txt | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  reqs=(-r requirements.txt)
  [ "$ROS_MODE" = wheels ] && reqs+=(-r requirements-ros.txt)
  log "installing Python dependencies"
  "$VPY" -m pip install --quiet --disable-pip-version-check "${reqs[@]}" 2>&1 \
    | grep -v -E "^WARNING: Location .* is ignored" || true
  "$VPY" -c 'import numpy, cv2, av, onnxruntime, torch' \
    || { echo "[setup] dependency install failed" >&2; exit 1; }
  echo "$want" > "$stamp"
else
  log "Python dependencies up to date"
fi

# --- 3. the CMake path workaround for the PyPI wheels -----------------------------------
# Their CMake export files hard-code the wheel build host's Python paths; CMake refuses to
# configure unless those paths exist, so point them at this interpreter's real ones.
if [ "$ROS_MODE" = wheels ]; then
  inc="$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
  npinc="$("$VPY" -c 'import numpy, os; print(os.path.join(os.path.dirname(numpy.__file__), "_core", "include"))')"
  fake_root=/opt/python/cp311-cp311
  for pair in "$fake_root/include/python3.11=$inc" \
              "$fake_root/lib/python3.11/site-packages/numpy/_core/include=$npinc"; do
    link="${pair%%=*}"; target="${pair#*=}"
    if [ "$(readlink "$link" 2>/dev/null)" != "$target" ]; then
      SUDO=""; [ -w /opt ] || SUDO="sudo"
      $SUDO mkdir -p "$(dirname "$link")"
      $SUDO ln -sfn "$target" "$link"
      log "linked $link -> $target"
    fi
  done
fi

# --- 4. colcon build -------------------------------------------------------------------
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_LOCALHOST_ONLY=1
colcon_env=()
if [ "$ROS_MODE" = wheels ]; then
  colcon_env=(AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV")
fi
build() {  # build <base-path> <build-base> <install-base>
  env "${colcon_env[@]}" PATH="$VENV/bin:$PATH" "$VENV/bin/colcon" \
    --log-base "$ROOT/build/log" build \
    --base-paths "$1" --build-base "$2" --install-base "$3" \
    --cmake-args -DPython3_EXECUTABLE="$VPY" -DBUILD_TESTING=OFF \
    --event-handlers console_cohesion- status- summary+ >"$ROOT/build/colcon-$(basename "$3").log" 2>&1 \
    || { cat "$ROOT/build/colcon-$(basename "$3").log" >&2; echo "[setup] colcon build failed: $1" >&2; exit 1; }
}
mkdir -p build
log "colcon build avemo_ros"
build "$ROOT" "$ROOT/build/pkg" "$ROOT/install"

# audio_common_msgs is not installable here: build the two fixture flavours (the
# released ros-drivers one, AudioData/AudioDataStamped/AudioInfo, and the mgonzs13 one,
# AudioStamped) into their own prefixes.
if ! "$VPY" -c 'import audio_common_msgs' >/dev/null 2>&1; then
  for flavour in audio_common_msgs_ros_drivers audio_common_msgs_mgonzs13; do
    log "colcon build fixture $flavour"
    build "$ROOT/test/fixtures/$flavour" "$ROOT/build/fixtures/$flavour" "$ROOT/install/fixtures/$flavour"
  done
fi
log "done ($ROS_MODE)"
