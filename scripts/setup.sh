#!/usr/bin/env bash
# One-step setup: Python environment, ROS 2 (a sourced install, or Kilted / Jazzy wheels
# from PyPI), colcon build of avemo_ros (and of the audio_common_msgs and hri_msgs fixtures where
# those packages are missing). Idempotent: with nothing changed, a second run only re-checks and
# rebuilds incrementally.
#
#   scripts/setup.sh                         # ROS 2 Kilted wheels (the default)
#   AVEMO_ROS_DISTRO=jazzy scripts/setup.sh  # ROS 2 Jazzy wheels, side by side with Kilted
#   AVEMO_VENV=/path scripts/setup.sh        # another venv (outside the source tree)
#   scripts/setup.sh --print-env             # only print what would be used (rosenv.sh, make)
#   scripts/setup.sh --print-plan            # only print the pip requirements / constraints
#   AVEMO_INSTALLER=pip scripts/setup.sh     # pip instead of uv for the Python dependencies
#
# Which ROS 2:
#   - ROS_DISTRO set and rclpy importable (an apt / source install is sourced): that ROS.
#     The venv is made with --system-site-packages and the ROS's own numpy and OpenCV stay
#     in charge (never pip-installed over them; AVEMO_SYSTEM_NUMPY=compatible allows a newer
#     numpy of the same major where a requirement needs one). Tag: <ROS_DISTRO>-system.
#   - otherwise the PyPI wheels of AVEMO_ROS_DISTRO (kilted | jazzy, default kilted),
#     pinned in requirements-ros-<distro>.txt. Tag: <distro>.
# Per tag: venv ${XDG_CACHE_HOME:-~/.cache}/avemo_ros/venv-<tag>, colcon build space
# build/<tag>/, install space install/<tag>/ (fixtures under install/<tag>/fixtures/).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/avemo_ros"
WHEEL_DISTROS="kilted jazzy"

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] %s\n' "$*" >&2; exit 1; }

# --- 1. which ROS: sets MODE, DISTRO, TAG, VENV, BUILD, INSTALL ----------------------------
choose_ros() {
  if [ -n "${ROS_DISTRO:-}" ] && "$PY" -c 'import rclpy' >/dev/null 2>&1; then
    MODE=sourced
    DISTRO="$ROS_DISTRO"
    TAG="$ROS_DISTRO-system"
  else
    MODE=wheels
    DISTRO="${AVEMO_ROS_DISTRO:-kilted}"
    case " $WHEEL_DISTROS " in
      *" $DISTRO "*) ;;
      *) die "AVEMO_ROS_DISTRO=$DISTRO: PyPI has wheels for: $WHEEL_DISTROS" ;;
    esac
    TAG="$DISTRO"
  fi
  # The venv must live outside the source tree: CMake refuses include paths inside it.
  VENV="${AVEMO_VENV:-$CACHE/venv-$TAG}"
  BUILD="$ROOT/build/$TAG"
  INSTALL="$ROOT/install/$TAG"
}
choose_ros

if [ "${1:-}" = "--print-env" ]; then
  printf 'AVEMO_ROS_MODE=%q\nAVEMO_ROS_TAG=%q\nAVEMO_ROS_DISTRO_USED=%q\n' "$MODE" "$TAG" "$DISTRO"
  printf 'AVEMO_VENV_DIR=%q\nAVEMO_INSTALL_DIR=%q\n' "$VENV" "$INSTALL"
  exit 0
fi
case "${1:-}" in ""|--print-plan) ;; *) die "usage: [AVEMO_ROS_DISTRO=kilted|jazzy] $0 [--print-env|--print-plan]" ;; esac

cd "$ROOT"
case "$VENV/" in "$ROOT"/*) die "AVEMO_VENV=$VENV is inside the source tree; put it outside" ;; esac
if [ "$MODE" = sourced ]; then
  [ -z "${AVEMO_ROS_DISTRO:-}" ] || [ "$AVEMO_ROS_DISTRO" = "$ROS_DISTRO" ] \
    || log "AVEMO_ROS_DISTRO=$AVEMO_ROS_DISTRO ignored: the sourced ROS 2 $ROS_DISTRO wins"
  log "using the sourced ROS 2 $ROS_DISTRO ($TAG)"
else
  log "no sourced ROS 2: using ROS 2 $DISTRO wheels from PyPI ($TAG)"
fi
mkdir -p "$BUILD"

# --- 2. Python deps: what pip gets ------------------------------------------------------
# requirements.txt minus what the sourced ROS's Python already provides, plus constraints
# that keep it (pip would otherwise upgrade numpy as a dependency of scipy, torch, ...).
# A sourced ROS's compiled pieces (cv_bridge, rosidl typesupport) are built against the
# system numpy; the system OpenCV is apt's python3-opencv (no pip metadata, so pip would
# shadow it with opencv-python-headless).
reqs="$BUILD/requirements.txt"
cons="$BUILD/constraints.txt"
plan_requirements() {  # writes $reqs and $cons for MODE (and the base interpreter $PY)
  local skip=() sys_numpy="" sys_cv2=""
  : > "$cons"
  if [ "$MODE" = sourced ]; then
    sys_numpy="$("$PY" -c 'import numpy; print(numpy.__version__)' 2>/dev/null || true)"
    sys_cv2="$("$PY" -c 'import cv2; print(cv2.__version__)' 2>/dev/null || true)"
    if [ -n "$sys_numpy" ]; then
      skip+=(numpy)
      case "${AVEMO_SYSTEM_NUMPY:-keep}" in
        keep)  # exactly the ROS's numpy
          echo "numpy==$sys_numpy" >> "$cons"
          log "keeping the system numpy $sys_numpy" ;;
        compatible)  # a newer release of the same major only where a requirement needs one
          echo "numpy>=$sys_numpy,<$(( ${sys_numpy%%.*} + 1 ))" >> "$cons"
          log "system numpy $sys_numpy, or a newer ${sys_numpy%%.*}.x where a requirement needs one" ;;
        *) die "AVEMO_SYSTEM_NUMPY=${AVEMO_SYSTEM_NUMPY}: keep or compatible" ;;
      esac
    fi
    if [ -n "$sys_cv2" ]; then
      skip+=(opencv-python-headless opencv-python)
      log "keeping the system OpenCV $sys_cv2"
    fi
  fi
  local pat="^[[:space:]]*(${skip[*]:-@none@})[[:space:]]*([<>=!~;#[]|$)"
  pat="${pat// /|}"
  grep -v -i -E "$pat" requirements.txt > "$reqs"
  if [ "$MODE" = wheels ]; then
    echo "-r $ROOT/requirements-ros-$DISTRO.txt" >> "$reqs"
  fi
}
plan_requirements
if [ "${1:-}" = "--print-plan" ]; then  # what pip would be given, then stop
  printf '# %s (%s): pip install -r %s -c %s\n' "$TAG" "$MODE" "$reqs" "$cons"
  sed 's/^/requirements: /' "$reqs"
  sed 's/^/constraints:  /' "$cons"
  exit 0
fi

# --- 3. virtual environment + Python deps (skipped when nothing they depend on changed) -----
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  if [ "$MODE" = sourced ]; then
    "$PY" -m venv --system-site-packages "$VENV"
  else
    "$PY" -m venv "$VENV"
  fi
fi
VPY="$VENV/bin/python"
stamp="$VENV/.avemo-requirements"
# A venv holds one distro's wheels: they cannot be swapped in place (AVEMO_VENV shared
# between distros would end up with a mix).
old_tag="$(cut -d' ' -f1 "$stamp" 2>/dev/null || true)"
[ -z "$old_tag" ] || [ "$old_tag" = "$TAG" ] \
  || die "$VENV was set up for $old_tag, not $TAG: use another AVEMO_VENV (or remove that one)"

# uv (a PyPI package) installs the same pinned set as pip in seconds instead of minutes;
# it does not read pip's configuration, so the indexes, find-links and constraints pip is
# configured with are passed on. Wheels mode only: with a sourced ROS, pip's handling of
# the system site-packages is the one the numpy / OpenCV checks below rely on.
bootstrap_uv() {
  [ -x "$VENV/bin/uv" ] || "$VPY" -m pip install --quiet --disable-pip-version-check "uv>=0.5,<1" \
    >"$BUILD/uv-bootstrap.log" 2>&1 || { log "no uv ($BUILD/uv-bootstrap.log)"; return 1; }
}
uv_install() {  # uv_install REQUIREMENTS_FILE
  local args=() key value
  while IFS='=' read -r key value; do
    value="${value#\'}"; value="${value%\'}"
    for v in $value; do
      case "${key##*.}" in
        index-url) args+=(--index-url "$v") ;;
        extra-index-url) args+=(--extra-index-url "$v") ;;
        find-links) args+=(--find-links "$v") ;;
        constraint) [ -f "$v" ] && args+=(-c "$v") ;;
        cert) export SSL_CERT_FILE="$v" ;;
      esac
    done
  done < <("$VPY" -m pip config list 2>/dev/null)
  "$VENV/bin/uv" pip install --quiet --python "$VPY" --index-strategy unsafe-best-match \
    "${args[@]}" -r "$1" -c "$cons"
}

req_files=("$reqs" "$cons" requirements.txt requirements-test.txt)
[ "$MODE" = sourced ] || req_files+=("requirements-ros-$DISTRO.txt")
want="$TAG $(cat "${req_files[@]}" | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing Python dependencies"
  pip_log="$BUILD/pip.log"
  pip_rc=0
  installed=no
  if [ "$MODE" = wheels ] && [ "${AVEMO_INSTALLER:-uv}" = uv ] && bootstrap_uv; then
    log "installing with uv (AVEMO_INSTALLER=pip for pip)"
    if uv_install "$reqs" >"$pip_log" 2>&1; then
      installed=yes
    else
      log "uv failed (log: $pip_log): installing with pip"
    fi
  fi
  if [ "$installed" = no ]; then
    "$VPY" -m pip install --quiet --disable-pip-version-check -r "$reqs" -c "$cons" \
      >"$pip_log" 2>&1 || pip_rc=$?
  fi
  grep -v -E "^WARNING: Location .* is ignored" "$pip_log" >&2 || true
  if [ "$pip_rc" != 0 ]; then
    if [ "$MODE" = sourced ] && grep -q "numpy" "$cons" && grep -q -i "ResolutionImpossible\|conflict" "$pip_log"; then
      log "the requirements may need a newer numpy than the ROS's ($(cat "$cons")): e.g. onnxruntime"
      log "needs numpy>=1.21.6 (Humble's Ubuntu 22.04 has 1.21.5). AVEMO_SYSTEM_NUMPY=compatible"
      log "lets pip put a newer numpy of the same major into the venv (ABI-compatible with the ROS's"
      log "compiled modules)."
    fi
    die "pip install failed (exit $pip_rc; log: $pip_log)"
  fi
  # Test-only dependencies (librosa, for the feature cross-checks): never fatal, the tests
  # that need them skip and say why (e.g. numba has no release for an old system numpy).
  test_log="$BUILD/pip-test.log"
  if [ "$installed" = yes ]; then
    uv_install requirements-test.txt >"$test_log" 2>&1 || installed=no
  fi
  if [ "$installed" = no ]; then
    "$VPY" -m pip install --quiet --disable-pip-version-check -r requirements-test.txt \
      -c "$cons" >"$test_log" 2>&1 \
      || log "test-only dependencies (requirements-test.txt) not installed: see $test_log"
  fi
  "$VPY" -c 'import numpy, cv2, av, onnxruntime, torch, colcon_core' \
    || die "dependency install failed"
  if [ "$MODE" = sourced ]; then
    # The venv must not shadow the ROS's numpy / OpenCV.
    for mod in numpy cv2; do
      sysf="$("$PY" -c "import $mod; print($mod.__file__)" 2>/dev/null || true)"
      venvf="$("$VPY" -c "import $mod; print($mod.__file__)")"
      [ -z "$sysf" ] || [ "$sysf" = "$venvf" ] && continue
      if [ "$mod" = numpy ] && [ "${AVEMO_SYSTEM_NUMPY:-keep}" = compatible ]; then
        log "numpy $("$VPY" -c 'import numpy; print(numpy.__version__)') in the venv (AVEMO_SYSTEM_NUMPY=compatible)"
      else
        die "the venv's $mod ($venvf) shadows the system one ($sysf)"
      fi
    done
  fi
  echo "$want" > "$stamp"
else
  log "Python dependencies up to date"
fi
# soundfile (librosa's reader) ships both a manylinux wheel with libsndfile inside and a
# py3-none-any one that needs a system libsndfile; an index offering only the latter (or
# uv taking it from the first index) leaves an `import soundfile` that raises OSError.
# Checked on every run, so an existing venv is repaired too; pip prefers the bundled build.
if "$VPY" -c 'import soundfile' >/dev/null 2>&1; then
  :
elif "$VPY" -m pip show soundfile >/dev/null 2>&1; then
  log "soundfile cannot load libsndfile: reinstalling the wheel that bundles it"
  "$VPY" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps \
    --only-binary :all: "soundfile==$("$VPY" -m pip show soundfile | sed -n 's/^Version: //p')" \
    >"$BUILD/pip-soundfile.log" 2>&1 \
    && "$VPY" -c 'import soundfile' >/dev/null 2>&1 \
    || log "soundfile still cannot load libsndfile (librosa cross-checks will skip): see $BUILD/pip-soundfile.log"
fi

# --- 4. the CMake path workaround for the PyPI wheels -----------------------------------
# Their CMake export files hard-code the wheel build host's Python paths; CMake refuses to
# configure unless those paths exist, so point them at this interpreter's real ones
# (Kilted and Jazzy wheels alike; re-pointed at the venv being built).
if [ "$MODE" = wheels ]; then
  inc="$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
  npinc="$("$VPY" -c 'import numpy; print(numpy.get_include())')"
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

# --- 5. colcon build -------------------------------------------------------------------
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_LOCALHOST_ONLY=1
colcon_env=()
if [ "$MODE" = wheels ]; then
  colcon_env=(AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV")
fi
build() {  # build <base-path> <build-base> <install-base> <log name>
  local out="$BUILD/colcon-$4.log"
  # colcon from the venv's colcon_core (a system colcon may satisfy the requirement in a
  # --system-site-packages venv without a script in $VENV/bin).
  env "${colcon_env[@]}" PATH="$VENV/bin:$PATH" "$VPY" -c \
    'import sys; from colcon_core.command import main; sys.argv[0] = "colcon"; sys.exit(main())' \
    --log-base "$BUILD/log" build \
    --base-paths "$1" --build-base "$2" --install-base "$3" \
    --cmake-args -DPython3_EXECUTABLE="$VPY" -DBUILD_TESTING=OFF \
    --event-handlers console_cohesion- status- summary+ >"$out" 2>&1 \
    || { cat "$out" >&2; die "colcon build failed: $1 (log: $out)"; }
}
log "colcon build avemo_ros into install/$TAG"
build "$ROOT" "$BUILD/pkg" "$INSTALL" avemo_ros

# audio_common_msgs is not installable here: build the two fixture flavours (the
# released ros-drivers one, AudioData/AudioDataStamped/AudioInfo, and the mgonzs13 one,
# AudioStamped) into their own prefixes.
if ! "$VPY" -c 'import audio_common_msgs' >/dev/null 2>&1; then
  for flavour in audio_common_msgs_ros_drivers audio_common_msgs_mgonzs13; do
    log "colcon build fixture $flavour"
    build "$ROOT/test/fixtures/$flavour" "$BUILD/fixtures/$flavour" \
          "$INSTALL/fixtures/$flavour" "$flavour"
  done
fi
# hri_msgs (ROS4HRI, REP-155) is not installable here either: the fixture holds the two
# messages avemo_ros publishes, as the released package defines them.
if ! "$VPY" -c 'import hri_msgs' >/dev/null 2>&1; then
  log "colcon build fixture hri_msgs"
  build "$ROOT/test/fixtures/hri_msgs" "$BUILD/fixtures/hri_msgs" "$INSTALL/fixtures/hri_msgs" \
        hri_msgs
fi
# --- 6. model weights that ship inside registry wheels (Silero VAD, FER2013 mini-Xception,
# MTCNN): pip download --no-deps, only the pinned files, checked by SHA-256; nothing when
# present. MTCNN's PyTorch state dicts are then made into the ONNX files the node runs
# (torch, here at setup only; nothing when the ONNX files match their record).
weights_root="${AVEMO_WEIGHTS:-$ROOT/data/weights}"
if ! "$VPY" -m avemo_ros.tools.fetch_weights all --dest "$weights_root" \
    >"$BUILD/weights.log" 2>&1; then
  log "model weights not fetched (see $BUILD/weights.log): the tests that need them skip"
fi
if [ -f "$weights_root/mtcnn/pnet.pt" ] && ! "$VPY" -m training.mtcnn_export \
    --weights-dir "$weights_root/mtcnn" >>"$BUILD/weights.log" 2>&1; then
  log "MTCNN ONNX files not made (see $BUILD/weights.log): the mtcnn detector is unavailable"
fi
log "done ($TAG: venv $VENV, install space install/$TAG)"
