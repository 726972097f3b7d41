"""Keras 2 functional models (an HDF5's ``model_config`` and weights) as PyTorch graphs.

:class:`KerasGraph` builds the graph from the model config (Conv2D, SeparableConv2D,
BatchNormalization, Activation, MaxPooling2D, Add, GlobalAveragePooling2D; TensorFlow's
"same" padding, asymmetric where TensorFlow pads one more at the end) and
:meth:`KerasGraph.load_keras_weights` loads the weights (kernels HWIO -> OIHW, depthwise
kernels (kh, kw, cin, m) -> (cin*m, 1, kh, kw), BatchNorm epsilon and momentum from the
config). h5py reads the file; TensorFlow is never needed. Used by
:mod:`training.models.fer_xception`.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: Per class, the Keras config fields the PyTorch graph uses.
_FIELDS = {
    "InputLayer": ("batch_input_shape",),
    "Conv2D": ("filters", "kernel_size", "strides", "padding", "use_bias", "activation",
               "dilation_rate", "data_format"),
    "SeparableConv2D": ("filters", "kernel_size", "strides", "padding", "use_bias",
                        "activation", "dilation_rate", "data_format", "depth_multiplier"),
    "BatchNormalization": ("epsilon", "momentum", "axis", "center", "scale"),
    "Activation": ("activation",),
    "MaxPooling2D": ("pool_size", "strides", "padding", "data_format"),
    "Add": (),
    "GlobalAveragePooling2D": ("data_format",),
}


class KerasImportError(ValueError):
    """The Keras model uses something this importer does not translate (named)."""


def layer_table(model_config: dict) -> list[dict]:
    """The layers of a Keras functional ``model_config`` as a list of small dicts.

    Each: ``class``, ``name``, ``inputs`` (layer names) and the class's fields that the
    PyTorch graph uses; Keras order (topological). Unsupported layers raise.
    """
    if model_config.get("class_name") != "Model":
        raise KerasImportError(f"not a Keras functional Model: {model_config.get('class_name')}")
    table = []
    for layer in model_config["config"]["layers"]:
        cls, cfg = layer["class_name"], layer["config"]
        if cls not in _FIELDS:
            raise KerasImportError(f"layer {layer['name']}: {cls} is not supported")
        nodes = layer.get("inbound_nodes") or [[]]
        if len(nodes) > 1:
            raise KerasImportError(f"layer {layer['name']} is shared (called {len(nodes)} times)")
        entry = {"class": cls, "name": layer["name"], "inputs": [n[0] for n in nodes[0]]}
        entry.update({k: cfg[k] for k in _FIELDS[cls] if k in cfg})
        table.append(entry)
    return table


def read_keras_hdf5(path: str | Path) -> tuple[list[dict], dict[str, dict[str, np.ndarray]]]:
    """(layer table, weights) of a Keras HDF5 model file; weights by layer name, then by
    Keras weight name (``kernel``, ``depthwise_kernel``, ``gamma``, ...)."""
    try:
        import h5py  # training-only dependency
    except ImportError:
        raise ImportError("reading a Keras HDF5 needs h5py: pip install h5py") from None
    with h5py.File(str(path), "r") as f:
        table = layer_table(json.loads(_text(f.attrs["model_config"])))
        group = f["model_weights"] if "model_weights" in f else f
        weights = {}
        for name in (_text(n) for n in group.attrs["layer_names"]):
            names = [_text(w) for w in group[name].attrs["weight_names"]]
            if names:
                weights[name] = {w.rsplit("/", 1)[-1].split(":")[0]: np.asarray(group[name][w])
                                 for w in names}
    return table, weights


def _text(v) -> str:
    return v.decode() if isinstance(v, (bytes, np.bytes_)) else str(v)


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding of one axis: (before, after); after may be one more."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pads(x: torch.Tensor, kernel, stride, padding: str) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) for a Keras padding mode on an NCHW tensor."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding != "same":
        raise KerasImportError(f"padding {padding!r} is not supported")
    h, w = int(x.shape[-2]), int(x.shape[-1])
    return (*same_pads(h, kernel[0], stride[0]), *same_pads(w, kernel[1], stride[1]))


def _activation(name: str):
    if name == "linear":
        return None
    if name == "relu":
        return F.relu
    if name == "softmax":
        return lambda x: F.softmax(x, dim=1)
    raise KerasImportError(f"activation {name!r} is not supported")


class _Conv(nn.Module):
    """Conv2D or SeparableConv2D (depthwise then pointwise) with Keras padding."""

    def __init__(self, spec: dict, cin: int):
        super().__init__()
        if spec.get("data_format", "channels_last") != "channels_last":
            raise KerasImportError(f"layer {spec['name']}: data_format must be channels_last")
        if list(spec.get("dilation_rate", [1, 1])) != [1, 1]:
            raise KerasImportError(f"layer {spec['name']}: dilation is not supported")
        self.kernel, self.stride = tuple(spec["kernel_size"]), tuple(spec["strides"])
        self.padding, self.separable = spec["padding"], spec["class"] == "SeparableConv2D"
        bias, cout = bool(spec["use_bias"]), int(spec["filters"])
        if self.separable:
            mid = cin * int(spec.get("depth_multiplier", 1))
            self.depthwise = nn.Conv2d(cin, mid, self.kernel, self.stride, groups=cin,
                                       bias=False)
            self.conv = nn.Conv2d(mid, cout, 1, bias=bias)
        else:
            self.conv = nn.Conv2d(cin, cout, self.kernel, self.stride, bias=bias)
        self.act = _activation(spec.get("activation", "linear"))
        self.out_channels = cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, b, left, r = _pads(x, self.kernel, self.stride, self.padding)
        first = self.depthwise if self.separable else self.conv
        if t == b and left == r:
            x = F.conv2d(x, first.weight, first.bias, first.stride, (t, left), 1, first.groups)
        else:
            x = first(F.pad(x, (left, r, t, b)))
        if self.separable:
            x = self.conv(x)
        return x if self.act is None else self.act(x)

    def load(self, w: dict[str, np.ndarray], name: str) -> None:
        """Keras kernels (HWIO; depthwise (kh, kw, cin, m)) into the PyTorch layout."""
        if self.separable:
            dw = w["depthwise_kernel"]
            kh, kw, cin, m = dw.shape
            _copy(self.depthwise.weight, dw.reshape(kh, kw, cin * m).transpose(2, 0, 1)[:, None],
                  name)
            _copy(self.conv.weight, w["pointwise_kernel"].transpose(3, 2, 0, 1), name)
        else:
            _copy(self.conv.weight, w["kernel"].transpose(3, 2, 0, 1), name)
        if self.conv.bias is not None:
            _copy(self.conv.bias, w["bias"], name)


class _MaxPool(nn.Module):
    """MaxPooling2D with Keras padding (padded cells never win)."""

    def __init__(self, spec: dict):
        super().__init__()
        self.kernel, self.padding = tuple(spec["pool_size"]), spec["padding"]
        self.stride = tuple(spec.get("strides") or spec["pool_size"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, b, left, r = _pads(x, self.kernel, self.stride, self.padding)
        if t == b and left == r:
            return F.max_pool2d(x, self.kernel, self.stride, (t, left))
        out = [(int(x.shape[-2]) + t + b - self.kernel[0]) // self.stride[0] + 1,
               (int(x.shape[-1]) + left + r - self.kernel[1]) // self.stride[1] + 1]
        if 0 <= b - t <= 1 and 0 <= r - left <= 1:
            # one more cell at the end: ceil mode over the symmetric part (no -inf constant)
            y = F.max_pool2d(x, self.kernel, self.stride, (t, left), ceil_mode=True)
            if list(y.shape[-2:]) == out:
                return y
        return F.max_pool2d(F.pad(x, (left, r, t, b), value=float("-inf")), self.kernel,
                            self.stride)


class _BatchNorm(nn.BatchNorm2d):
    """BatchNormalization over channels (Keras axis -1 of NHWC)."""

    def __init__(self, spec: dict, channels: int, momentum: float | None = None):
        if spec.get("axis", -1) not in (-1, 3):
            raise KerasImportError(f"layer {spec['name']}: BatchNorm axis {spec['axis']}")
        super().__init__(channels, eps=float(spec["epsilon"]), momentum=(
            1.0 - float(spec["momentum"]) if momentum is None else momentum))

    def load(self, w: dict[str, np.ndarray], name: str) -> None:
        """gamma, beta (absent when Keras had scale / center off), moving statistics."""
        n = self.num_features
        _copy(self.weight, w.get("gamma", np.ones(n, np.float32)), name)
        _copy(self.bias, w.get("beta", np.zeros(n, np.float32)), name)
        _copy(self.running_mean, w["moving_mean"], name)
        _copy(self.running_var, w["moving_variance"], name)


class _Lambda(nn.Module):
    """Activation, Add or GlobalAveragePooling2D (no parameters)."""

    def __init__(self, spec: dict):
        super().__init__()
        self.kind = spec["class"]
        self.act = _activation(spec["activation"]) if self.kind == "Activation" else None

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        if self.kind == "Add":
            return torch.stack(xs).sum(0) if len(xs) > 2 else xs[0] + xs[1]
        if self.kind == "GlobalAveragePooling2D":
            return xs[0].mean(dim=(2, 3))
        return xs[0] if self.act is None else self.act(xs[0])


def _copy(param: torch.Tensor, value: np.ndarray, name: str) -> None:
    value = np.ascontiguousarray(value, dtype=np.float32)
    if tuple(param.shape) != value.shape:
        raise KerasImportError(f"layer {name}: weight of shape {value.shape}, the PyTorch layer "
                               f"needs {tuple(param.shape)}")
    with torch.no_grad():
        param.copy_(torch.from_numpy(value))


class KerasGraph(nn.Module):
    """A Keras functional graph (a layer table) in PyTorch, NCHW, up to ``output``.

    One input layer; ``forward`` returns the output of layer ``output`` (default: the
    table's last layer). ``bn_momentum`` (PyTorch's sense) overrides the config's.
    """

    def __init__(self, table: list[dict], output: str | None = None,
                 bn_momentum: float | None = None):
        super().__init__()
        inputs = [s for s in table if s["class"] == "InputLayer"]
        if len(inputs) != 1:
            raise KerasImportError(f"{len(inputs)} input layers; one is supported")
        self.input_name = inputs[0]["name"]
        self.output_name = output or table[-1]["name"]
        shape = inputs[0].get("batch_input_shape") or [None, None, None, 1]
        self.in_channels = int(shape[-1])
        channels = {self.input_name: self.in_channels}
        self.layers = nn.ModuleDict()
        self.order: list[tuple[str, list[str]]] = []
        for spec in table:
            name, cls = spec["name"], spec["class"]
            if cls == "InputLayer":
                continue
            missing = [i for i in spec["inputs"] if i not in channels]
            if missing:
                raise KerasImportError(f"layer {name}: inputs {missing} come later or not at all")
            cin = channels[spec["inputs"][0]]
            if cls in ("Conv2D", "SeparableConv2D"):
                layer = _Conv(spec, cin)
                channels[name] = layer.out_channels
            elif cls == "BatchNormalization":
                layer, channels[name] = _BatchNorm(spec, cin, bn_momentum), cin
            elif cls == "MaxPooling2D":
                layer, channels[name] = _MaxPool(spec), cin
            else:
                if cls == "Add" and len({channels[i] for i in spec["inputs"]}) != 1:
                    raise KerasImportError(f"layer {name}: Add of different channel counts")
                layer, channels[name] = _Lambda(spec), cin
            self.layers[name] = layer
            self.order.append((name, list(spec["inputs"])))
            if name == self.output_name:
                break
        if self.output_name not in channels:
            raise KerasImportError(f"no layer {self.output_name!r}")
        self.out_channels = channels[self.output_name]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        env = {self.input_name: x}
        for name, inputs in self.order:
            env[name] = self.layers[name](*(env[i] for i in inputs))
        return env[self.output_name]

    def load_keras_weights(self, weights: dict[str, dict[str, np.ndarray]]) -> int:
        """Copy Keras weights (by layer name) into the layers; returns the count of layers
        loaded. A layer with parameters but no weights, or a weight of the wrong shape,
        raises."""
        loaded = 0
        for name, layer in self.layers.items():
            if not hasattr(layer, "load"):
                continue
            if name not in weights:
                raise KerasImportError(f"layer {name}: no weights in the file")
            layer.load(weights[name], name)
            loaded += 1
        return loaded
