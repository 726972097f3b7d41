"""INT8 calibration data (pure): windows from a training feature cache, the fusion network's
inputs as the estimator feeds them, fixed-shape batches, the calibrator's feed and table."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Optional, Sequence

import numpy as np

from avemo_ros.backends import InferenceBackend
from avemo_ros.fusion_rule import fusion_source
from avemo_ros.manifest import ModelSpec

from .records import DEFAULT_CALIB_WINDOWS, EngineBuildError

log = logging.getLogger("training.engines")
def spread_indices(n: int, k: int) -> np.ndarray:
    """At most ``k`` distinct indices of range(n), evenly spread and deterministic."""
    if n <= 0 or k <= 0:
        return np.zeros(0, dtype=np.int64)
    if k >= n:
        return np.arange(n, dtype=np.int64)
    return np.unique(np.linspace(0, n - 1, k).round().astype(np.int64))


def split_exclusions(training: Mapping) -> list[int]:
    """Actors / speakers held out in the manifest's training split (not to calibrate on)."""
    split = (training or {}).get("split", {}) or {}
    return sorted({int(g) for key in ("test_actors", "val_actors", "test_groups", "val_groups")
                   for g in split.get(key, [])})


def calibration_windows(features: Mapping[str, np.ndarray], limit: int = DEFAULT_CALIB_WINDOWS,
                        exclude_groups: Sequence[int] = ()) -> dict[str, dict[str, np.ndarray]]:
    """Role -> {modality: stacked feature windows} chosen from a feature cache.

    ``features`` holds FeatureSet fields: ``audio`` and ``video`` windows (older caches:
    ``spectrograms``, ``faces``), ``has_audio``, ``has_face`` and optionally ``groups``.
    audio: windows with audio; video: windows with a face; fusion: windows with both
    (``fusion_calibration_inputs`` turns them into the fusion network's inputs). Windows
    of ``exclude_groups`` are left out when the cache has groups; at most ``limit`` per
    role, spread evenly.
    """
    features = _canonical_features(features)
    has_a = np.asarray(features["has_audio"], bool)
    has_v = np.asarray(features["has_face"], bool)
    keep = np.ones(len(has_a), bool)
    if len(exclude_groups) and "groups" in features:
        keep = ~np.isin(np.asarray(features["groups"]), list(exclude_groups))
    pick = {role: np.flatnonzero(mask & keep)
            for role, mask in (("audio", has_a), ("video", has_v), ("fusion", has_a & has_v))}
    pick = {role: idx[spread_indices(len(idx), limit)] for role, idx in pick.items()}
    a, v = features["audio"], features["video"]
    return {"audio": {"audio": a[pick["audio"]]}, "video": {"video": v[pick["video"]]},
            "fusion": {"audio": a[pick["fusion"]], "video": v[pick["fusion"]]}}


def _canonical_features(features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = dict(features)
    for new, old in (("audio", "spectrograms"), ("video", "faces")):
        if new not in out and old in out:
            out[new] = out.pop(old)
    missing = [k for k in ("audio", "video", "has_audio", "has_face") if k not in out]
    if missing:
        raise EngineBuildError(f"feature cache lacks {missing}: not a training/features.py cache")
    return out


def network_inputs(spec: ModelSpec, windows: np.ndarray) -> dict[str, np.ndarray]:
    """A modality network's calibration inputs: its (single) input name -> the windows."""
    if len(spec.inputs) != 1:
        raise EngineBuildError(f"{spec.file} has {len(spec.inputs)} inputs, a modality "
                               "network has one")
    return {spec.inputs[0].name: windows}


def fusion_calibration_inputs(models: Mapping[str, ModelSpec], audio_net: InferenceBackend,
                              video_net: InferenceBackend, audio: np.ndarray,
                              video: np.ndarray) -> dict[str, np.ndarray]:
    """The fusion network's inputs for windows with both modalities, as the estimator
    feeds them at run time: the audio and video networks' features (intermediate fusion)
    or logits (late fusion), whichever its input names ask for."""
    if len(audio) != len(video):
        raise EngineBuildError(f"{len(audio)} audio windows but {len(video)} video windows")
    fusion = models["fusion"]
    source = fusion_source(fusion)
    a_name, v_name = (t.name for t in fusion.inputs)
    out: dict[str, list] = {a_name: [], v_name: []}
    for name, net, spec, windows in ((a_name, audio_net, models["audio"], audio),
                                     (v_name, video_net, models["video"], video)):
        x_spec = spec.inputs[0]
        for x in windows:
            y = net.run({x_spec.name: np.asarray(x, np.float32).reshape(x_spec.shape)})[source]
            out[name].append(y.reshape(-1))
    return {name: np.stack(v) if v else np.zeros((0, 0), np.float32) for name, v in out.items()}


def calibration_batches(arrays: Mapping[str, np.ndarray], input_shapes: Mapping[str, Sequence[int]]
                        ) -> Iterator[dict[str, np.ndarray]]:
    """Batches of the network's exact input shapes from per-input stacks of windows.

    ``arrays[name]`` holds N windows (any layout with prod(shape[1:]) values each);
    every batch takes shape[0] consecutive windows of each input as a C-contiguous float32
    array of ``input_shapes[name]``. A remainder short of a batch is left out. Raises
    EngineBuildError for missing or extra inputs, sizes that do not fit, unequal window
    counts, no windows, or non-finite values.
    """
    if set(arrays) != set(input_shapes):
        raise EngineBuildError(f"calibration data has inputs {sorted(arrays)}, the network "
                               f"takes {sorted(input_shapes)}")
    counts = {name: len(a) for name, a in arrays.items()}
    if len(set(counts.values())) != 1:
        raise EngineBuildError(f"calibration inputs have different window counts {counts}")
    n = next(iter(counts.values()), 0)
    batch = {int(s[0]) for s in input_shapes.values()}
    if len(batch) != 1 or min(batch) < 1:
        raise EngineBuildError("network inputs have differing or dynamic batch sizes "
                               f"{dict(input_shapes)}")
    b = batch.pop()
    if n < b:
        raise EngineBuildError(f"no calibration windows ({n}) for a batch of {b}")
    for name, a in arrays.items():
        per_window = int(np.prod(input_shapes[name][1:]))
        got = int(np.prod(a.shape[1:]))
        if got != per_window:
            raise EngineBuildError(
                f"calibration windows for {name!r} have shape {list(a.shape[1:])} ({got} values), "
                f"the network input {list(input_shapes[name])} takes {per_window} per window: "
                "the feature cache was made with other preprocessing")
        if not np.isfinite(a).all():
            raise EngineBuildError(f"calibration windows for {name!r} contain NaN or inf")
    for start in range(0, n - b + 1, b):
        yield {name: np.ascontiguousarray(
                   np.asarray(a[start:start + b], np.float32).reshape(tuple(input_shapes[name])))
               for name, a in arrays.items()}


class CalibrationFeed:
    """What an ``IInt8EntropyCalibrator2`` does, without TensorRT: hand out batches and
    read / write the calibration table.

    ``upload(name, array) -> device pointer`` copies one input to the GPU. Errors inside
    the callbacks cannot cross TensorRT, so they end the data (``None``) and are kept in
    ``error`` for the builder to raise.
    """

    def __init__(self, batches: Iterable[dict[str, np.ndarray]], table: Path,
                 upload: Callable[[str, np.ndarray], int], *, batch_size: int = 1,
                 reuse_table: bool = True):
        self._batches = iter(batches)
        self.table = Path(table)
        self._upload = upload
        self._batch_size = batch_size
        self.reuse_table = reuse_table
        self.batches_given = 0
        self.table_reused = False
        self.error: Optional[BaseException] = None

    def batch_size(self) -> int:
        return self._batch_size

    def next_pointers(self, names: Sequence[str]) -> Optional[list[int]]:
        """Device pointers of the next batch, in the order of ``names``; None when done."""
        if self.error is not None:
            return None
        try:
            batch = next(self._batches)
            missing = [n for n in names if n not in batch]
            if missing:
                raise EngineBuildError(f"TensorRT asks for calibration inputs {missing}, "
                                       f"the data has {sorted(batch)}")
            pointers = [int(self._upload(n, batch[n])) for n in names]
        except StopIteration:
            log.info("calibration: %d batches used", self.batches_given)
            return None
        except Exception as e:  # kept and raised by the builder after TensorRT returns
            log.error("calibration data failed: %s", e)
            self.error = e
            return None
        self.batches_given += 1
        if self.batches_given % 100 == 0:
            log.info("calibration: %d batches", self.batches_given)
        return pointers

    def read_table(self) -> Optional[bytes]:
        """The existing calibration table (reuse), or None to calibrate from data."""
        if self.reuse_table and self.table.is_file():
            data = self.table.read_bytes()
            if data:
                log.info("calibration table %s reused (no calibration run)", self.table.name)
                self.table_reused = True
                return data
        return None

    def write_table(self, cache: bytes) -> None:
        self.table.write_bytes(bytes(cache))
        log.info("calibration table written: %s (%d bytes)", self.table, len(bytes(cache)))


def find_feature_files(cache: Path | str, audio: Mapping, video: Mapping) -> list[Path]:
    """The feature-cache npz files made with this preprocessing.

    ``cache``: a training feature cache root holding ``features-<hash>/`` directories
    (one npz per clip, ``params.json``), one such directory, or a directory of
    ``features-*.npz`` files. Directories whose ``params.json`` records other audio /
    video parameters than the bundle's (``audio``, ``video``: manifest preprocessing
    dicts) are skipped; of several matching (e.g. other hops), the newest is used.
    """
    cache = Path(cache)
    if not cache.is_dir():
        raise EngineBuildError(f"feature cache {cache} is not a directory")
    dirs = [cache] if (cache / "params.json").is_file() else \
        [d for d in cache.glob("features-*") if (d / "params.json").is_file()]
    matching = []
    for d in dirs:
        try:
            params = json.loads((d / "params.json").read_text())
        except (OSError, json.JSONDecodeError) as e:
            log.warning("feature cache %s: unreadable params.json (%s): skipped", d, e)
            continue
        if params.get("audio") == dict(audio) and params.get("video") == dict(video):
            matching.append(d)
        else:
            log.info("feature cache %s was made with other preprocessing: skipped", d)
    if matching:
        newest = max(matching, key=lambda d: d.stat().st_mtime)
        files = sorted(newest.glob("*.npz"))
        if files:
            log.info("calibration windows from %s (%d files)", newest, len(files))
            return files
    files = sorted(cache.glob("features-*.npz"), key=lambda p: p.stat().st_mtime)
    if files:  # single-file caches record no parameters: shapes are checked when batching
        log.info("calibration windows from %s", files[-1])
        return [files[-1]]
    raise EngineBuildError(f"no feature cache made with the bundle's preprocessing in {cache} "
                           "(run training on this preprocessing first, or give --calib-npz)")


def load_feature_cache(paths: Sequence[Path | str]) -> dict[str, np.ndarray]:
    """FeatureSet fields of feature-cache npz files (whole sets or per-clip), concatenated."""
    parts: dict[str, list] = {}
    for p in paths:
        try:
            with np.load(p) as z:
                f = _canonical_features({k: z[k] for k in z.files
                                         if k in ("audio", "video", "spectrograms", "faces",
                                                  "has_audio", "has_face", "groups")})
        except (OSError, ValueError, EOFError) as e:
            raise EngineBuildError(f"cannot read feature cache {p}: {e}") from None
        except EngineBuildError as e:
            raise EngineBuildError(f"{p}: {e}") from None
        for k, v in f.items():
            parts.setdefault(k, []).append(v)
    if not parts:
        raise EngineBuildError("no feature cache files given")
    n_files = len(parts["has_audio"])
    if len(parts.get("groups", [])) != n_files:
        parts.pop("groups", None)
        log.info("the feature cache records no actor / session groups: calibration draws on "
                 "every clip (it uses no labels, only activation ranges)")
    try:
        return {k: np.concatenate(v) for k, v in parts.items()}
    except ValueError as e:
        raise EngineBuildError(f"feature cache files disagree in shape: {e}") from None
