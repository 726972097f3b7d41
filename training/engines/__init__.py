"""Build TensorRT engines (TensorRT 10 Python API) for the networks of a model bundle.

    python -m training.engines --bundle data/models/synthetic [--precision fp16|int8|fp32]
        [--roles audio video fusion] [--workspace-mb 1024]
        [--calib-cache data/cache | --calib-npz FILE ...] [--calib-windows 512] [--recalibrate]

Per network: parse the ONNX file (every parser error is logged with its node and the
build fails naming the file), log each I/O tensor, build with the requested precision,
deserialize the plan once to check its I/O tensors against the manifest, write
``<role>.<precision>.engine`` and record file, SHA-256, TensorRT version, GPU (name and
compute capability), precision and build time in the manifest's ``models.<role>.engine``.
The CLI prints the equivalent ``trtexec`` command of each engine.

INT8 (entropy calibration, FP16 allowed for layers without an INT8 kernel):

* audio / video networks are calibrated on windows of a training feature cache
  (``training/features.py``; ``--calib-cache`` picks the cache made with the bundle's
  preprocessing): windows where that modality is present, spread evenly over the cache,
  at most ``--calib-windows``; where the cache records actor / session groups, the
  manifest's ``training.split`` test and validation groups are left out. No labels are
  used.
* the fusion network's inputs are the audio and video networks' outputs (features, or
  logits for late fusion) and it only runs when both modalities are present, so it is
  calibrated on what the FP32 ONNX audio / video networks (ONNX Runtime) compute for
  windows with both modalities: the distribution it sees at run time.
* each calibration table is written as ``<role>.<ONNX sha256[:12]>.int8.calib`` beside the
  engines and reused on the next build of the same ONNX file (then no feature cache is
  needed); a changed network gets a new table name, ``--recalibrate`` ignores the table.

Everything that does not need TensorRT is a plain function (tested without a GPU);
``build_engine`` needs TensorRT 10, pycuda and an NVIDIA GPU. Nothing here imports torch.

Modules: ``records`` (file names, trtexec commands, manifest records), ``calibration``
(INT8 data), ``build`` (TensorRT), ``cli`` (the command line).
"""
from .build import build_engine, build_engines
from .calibration import (CalibrationFeed, calibration_batches, calibration_windows,
                          find_feature_files, fusion_calibration_inputs, load_feature_cache,
                          network_inputs, split_exclusions, spread_indices)
from .cli import main
from .records import (DEFAULT_CALIB_WINDOWS, DEFAULT_WORKSPACE_MB, PRECISIONS, EngineBuildError,
                      calibration_table_name, describe_parser_error, engine_filename,
                      engine_record, record_engine, require_tensorrt_10, save_manifest_data,
                      trt_log_level, trtexec_command)

__all__ = [
    "DEFAULT_CALIB_WINDOWS", "DEFAULT_WORKSPACE_MB", "PRECISIONS", "CalibrationFeed",
    "EngineBuildError", "build_engine", "build_engines", "calibration_batches",
    "calibration_table_name", "calibration_windows", "describe_parser_error", "engine_filename",
    "engine_record", "find_feature_files", "fusion_calibration_inputs", "load_feature_cache",
    "main", "network_inputs", "record_engine", "require_tensorrt_10", "save_manifest_data",
    "split_exclusions", "spread_indices", "trt_log_level", "trtexec_command",
]
