# avemo_ros — one-step targets. `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
VENV ?= $(or $(AVEMO_VENV),$(HOME)/.cache/avemo_ros/venv)
export AVEMO_VENV := $(VENV)
RUN := scripts/rosenv.sh
PY := $(VENV)/bin/python
DATA ?= data
BUNDLE ?= $(DATA)/models/synthetic

.PHONY: setup build data model demo test bench clean

setup:  ## venv, ROS 2 (sourced or PyPI wheels), Python deps, colcon build
	scripts/setup.sh

build: setup

data: setup  ## the synthetic RAVDESS-layout dataset
	$(PY) -m training.synthetic --root $(DATA)/synthetic

$(BUNDLE)/manifest.json:
	$(MAKE) setup
	$(PY) -m training.train synthetic.yaml --data $(DATA)/synthetic --out $(DATA)/runs/synthetic \
		--bundle $(BUNDLE) --cache $(DATA)/cache

model: setup $(BUNDLE)/manifest.json  ## train the three networks and export the bundle

demo: model  ## play held-out synthetic clips through the nodes and print the estimates
	$(PY) -m training.demo_clips --out $(DATA)/demo
	$(RUN) python -m avemo_ros.ros.demo --model-dir $(BUNDLE) --media $(DATA)/demo/*.mp4

test: model  ## the whole suite: both audio_common_msgs flavours
	$(RUN) --audio-flavour ros_drivers python -m pytest -q test
	$(RUN) --audio-flavour mgonzs13 python -m pytest -q -m mgonzs13_audio test

clean:
	rm -rf build install log
