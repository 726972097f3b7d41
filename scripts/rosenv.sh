#!/usr/bin/env bash
# Run a command inside the project's ROS environment:
#   [AVEMO_ROS_DISTRO=kilted|jazzy] scripts/rosenv.sh [--audio-flavour ros_drivers|mgonzs13] CMD ARGS...
# Picks the venv and install space exactly as scripts/setup.sh does (a sourced ROS 2 wins,
# else the wheels of AVEMO_ROS_DISTRO, default kilted), sources the venv, the avemo_ros
# install space and, where audio_common_msgs is not installed, one of the fixture flavours;
# keeps DDS on this machine with a per-run domain.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
flavour=${AVEMO_AUDIO_FLAVOUR:-ros_drivers}
if [ "${1:-}" = "--audio-flavour" ]; then flavour="$2"; shift 2; fi
case "$flavour" in
  ros_drivers) fixture=audio_common_msgs_ros_drivers ;;
  mgonzs13) fixture=audio_common_msgs_mgonzs13 ;;
  *) echo "rosenv.sh: unknown audio flavour '$flavour' (ros_drivers|mgonzs13)" >&2; exit 2 ;;
esac
[ $# -gt 0 ] || { echo "usage: $0 [--audio-flavour ros_drivers|mgonzs13] CMD ARGS..." >&2; exit 2; }
env_lines="$("$ROOT/scripts/setup.sh" --print-env)" || exit 1
eval "$env_lines"
if [ ! -x "$AVEMO_VENV_DIR/bin/python" ] || [ ! -f "$AVEMO_INSTALL_DIR/setup.bash" ]; then
  echo "rosenv.sh: no $AVEMO_ROS_TAG environment ($AVEMO_VENV_DIR, $AVEMO_INSTALL_DIR):" \
       "run AVEMO_ROS_DISTRO=$AVEMO_ROS_DISTRO_USED scripts/setup.sh first" >&2
  exit 1
fi
# shellcheck disable=SC1091
source "$AVEMO_VENV_DIR/bin/activate"
set +u
if [ -f "$AVEMO_INSTALL_DIR/fixtures/$fixture/setup.bash" ]; then
  source "$AVEMO_INSTALL_DIR/fixtures/$fixture/setup.bash"
fi
if [ -f "$AVEMO_INSTALL_DIR/fixtures/hri_msgs/setup.bash" ]; then
  source "$AVEMO_INSTALL_DIR/fixtures/hri_msgs/setup.bash"
fi
source "$AVEMO_INSTALL_DIR/setup.bash"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_LOCALHOST_ONLY=1
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( (RANDOM % 100) + 1 ))}"
export AVEMO_AUDIO_FLAVOUR="$flavour"
# model weights taken from registry wheels by setup.sh (installed copies of the package
# cannot find the source tree's data/weights on their own)
export AVEMO_WEIGHTS="${AVEMO_WEIGHTS:-$ROOT/data/weights}"
export AVEMO_ROS_TAG AVEMO_ROS_MODE
exec "$@"
