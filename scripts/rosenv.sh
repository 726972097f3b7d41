#!/usr/bin/env bash
# Run a command inside the project's ROS environment:
#   scripts/rosenv.sh [--audio-flavour ros_drivers|mgonzs13] CMD ARGS...
# Sources the venv, the avemo_ros install space and, where audio_common_msgs is not
# installed, one of the fixture flavours; keeps DDS on this machine with a per-run domain.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${AVEMO_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/avemo_ros/venv}"
flavour=${AVEMO_AUDIO_FLAVOUR:-ros_drivers}
if [ "${1:-}" = "--audio-flavour" ]; then flavour="$2"; shift 2; fi
case "$flavour" in
  ros_drivers) fixture=audio_common_msgs_ros_drivers ;;
  mgonzs13) fixture=audio_common_msgs_mgonzs13 ;;
  *) echo "rosenv.sh: unknown audio flavour '$flavour' (ros_drivers|mgonzs13)" >&2; exit 2 ;;
esac
# shellcheck disable=SC1091
source "$VENV/bin/activate"
set +u
if [ -f "$ROOT/install/fixtures/$fixture/setup.bash" ]; then
  source "$ROOT/install/fixtures/$fixture/setup.bash"
fi
source "$ROOT/install/setup.bash"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_LOCALHOST_ONLY=1
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( (RANDOM % 100) + 1 ))}"
export AVEMO_AUDIO_FLAVOUR="$flavour"
exec "$@"
