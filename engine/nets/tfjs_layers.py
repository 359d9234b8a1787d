"""TensorFlow.js *layers* models (a Keras topology plus weight shards) as torch modules.

A layers model's ``model.json`` holds the Keras functional topology (``modelTopology``) and a
``weightsManifest`` naming each weight ``<layer>/<kernel|bias>``; ``engine.nets.tfjs_format``
reads the shards. This reader supports exactly the layers of the UpscalerJS ESRGAN models
(``@upscalerjs/esrgan-slim``, ``-medium``, ``-thick``; MIT): InputLayer, Conv2D, Activation,
Concatenate, Add, UpSampling2D and that package's two custom layers, MultiplyBeta (times 0.2) and
PixelShuffle<n>x (``tf.depthToSpace``, NHWC). Anything else raises ``CheckpointFormatError``
naming the layer. Tensors are NCHW inside; the channel order of depth-to-space follows TF.js,
which differs from ``torch.pixel_shuffle``.

The converted form is a ``.safetensors`` file: torch-layout tensors ``<layer>.weight`` /
``<layer>.bias`` and, in the header, the topology (``tfjs_layers``), the model's scale and the
value range its pixels live in (255 for the RDN models, 1 for the RRDN ones): see ``save`` and
``load``. The outputs equal the TF.js executor's within 1e-4 relative
(``tests/engine/nets/test_tfjs_layers.py``, fixtures from ``scripts/esrgan_reference.sh``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import CheckpointFormatError
from .tfjs_format import read_weights

FORMAT = "likeness-tfjs-layers"
"""``format`` entry of a converted file's header."""

_ACTIVATIONS = {"linear": None, "relu": F.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}
_PIXEL_SHUFFLE = re.compile(r"PixelShuffle(\d+)x")
_BETA = 0.2  # what the UpscalerJS MultiplyBeta layer multiplies by, whatever its config says


@dataclass(frozen=True)
class LayerSpec:
    """One layer of the topology: its Keras class, its inputs (layer names) and its config."""

    name: str
    kind: str
    inputs: tuple[str, ...]
    config: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "inputs": list(self.inputs), "config": dict(self.config)}

    @classmethod
    def from_json(cls, entry: Mapping[str, Any]) -> LayerSpec:
        return cls(str(entry["name"]), str(entry["kind"]), tuple(entry["inputs"]), dict(entry.get("config", {})))


# Reading model.json


def read_topology(model: Mapping[str, Any], source: str | Path) -> list[LayerSpec]:
    """The layers of a parsed ``model.json`` in execution order, input first, output last."""
    topology = model.get("modelTopology") or {}
    config = (topology.get("model_config") or topology).get("config") or {}
    entries = config.get("layers")
    if model.get("format") != "layers-model" or not isinstance(entries, list):
        raise CheckpointFormatError(f"{source}: not a TF.js layers model (no Keras topology)")
    inputs, outputs = config.get("input_layers", []), config.get("output_layers", [])
    if len(inputs) != 1 or len(outputs) != 1:
        raise CheckpointFormatError(f"{source}: the model must have one input and one output")
    layers = []
    for entry in entries:
        name, kind = str(entry["name"]), str(entry["class_name"])
        nodes = entry.get("inbound_nodes") or []
        if kind == "InputLayer":
            refs: tuple[str, ...] = ()
        elif len(nodes) != 1 or any(ref[1:3] != [0, 0] for ref in nodes[0]):
            raise CheckpointFormatError(f"{source}: layer {name} is called more than once (shared layers)")
        else:
            refs = tuple(str(ref[0]) for ref in nodes[0])
        layers.append(LayerSpec(name, kind, refs, _keep_config(entry.get("config") or {})))
    if layers[0].kind != "InputLayer" or layers[0].name != inputs[0][0] or layers[-1].name != outputs[0][0]:
        raise CheckpointFormatError(f"{source}: the topology does not run from its input to its output in order")
    return layers


def read_model(model_json: str | Path) -> tuple[list[LayerSpec], dict[str, torch.Tensor]]:
    """(layers, torch-layout state dict) of a TF.js layers ``model.json`` and its weight shards."""
    path = Path(model_json)
    try:
        model = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointFormatError(f"{path}: not a readable model.json ({exc})") from None
    layers = read_topology(model, path)
    weights = read_weights(path, model.get("weightsManifest") or [])
    state: dict[str, torch.Tensor] = {}
    for spec in layers:
        if spec.kind != "Conv2D":
            continue
        kernel = weights.pop(f"{spec.name}/kernel", None)
        if kernel is None or kernel.ndim != 4:
            raise CheckpointFormatError(f"{path}: Conv2D {spec.name} has no 4-d kernel")
        state[f"{spec.name}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
        if spec.config.get("use_bias", True):
            bias = weights.pop(f"{spec.name}/bias", None)
            if bias is None:
                raise CheckpointFormatError(f"{path}: Conv2D {spec.name} has no bias")
            state[f"{spec.name}.bias"] = torch.from_numpy(np.ascontiguousarray(bias))
    if weights:
        raise CheckpointFormatError(f"{path}: weights no layer uses: {', '.join(sorted(weights)[:5])}")
    return layers, state


def _keep_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config entries that decide what a layer computes (initialisers and the like dropped)."""
    keep = ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "groups")
    keep += ("activation", "use_bias", "axis", "size", "interpolation", "beta", "scale")
    return {k: config[k] for k in keep if k in config}


# The layers


class _Conv(nn.Conv2d):
    def __init__(self, spec: LayerSpec, in_channels: int) -> None:
        c = spec.config
        kernel, strides = tuple(c["kernel_size"]), tuple(c.get("strides", (1, 1)))
        dilation = tuple(c.get("dilation_rate", (1, 1)))
        if c.get("data_format", "channels_last") != "channels_last" or strides != (1, 1):
            raise CheckpointFormatError(f"Conv2D {spec.name}: only channels_last, stride 1 is supported")
        if c.get("padding") == "same":
            if any(k % 2 == 0 for k in kernel):
                raise CheckpointFormatError(f"Conv2D {spec.name}: 'same' padding needs odd kernels")
            padding = tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation, strict=True))
        elif c.get("padding") == "valid":
            padding = (0, 0)
        else:
            raise CheckpointFormatError(f"Conv2D {spec.name}: padding {c.get('padding')!r}")
        super().__init__(
            in_channels,
            int(c["filters"]),
            kernel,  # type: ignore[arg-type]
            padding=padding,  # type: ignore[arg-type]
            dilation=dilation,  # type: ignore[arg-type]
            groups=int(c.get("groups", 1)),
            bias=bool(c.get("use_bias", True)),
        )
        self.activation = _activation(spec, str(c.get("activation", "linear")))

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002  (Conv2d's own name)
        y = super().forward(input)
        return y if self.activation is None else self.activation(y)


class _Activation(nn.Module):
    def __init__(self, spec: LayerSpec) -> None:
        super().__init__()
        self.kind = str(spec.config.get("activation", "linear"))
        self.fn = _activation(spec, self.kind)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.fn is None else self.fn(x)


class _Concatenate(nn.Module):
    def __init__(self, spec: LayerSpec) -> None:
        super().__init__()
        if int(spec.config.get("axis", -1)) not in (-1, 3):
            raise CheckpointFormatError(f"Concatenate {spec.name}: only the channel axis is supported")

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=1)


class _Add(nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class _UpSampling(nn.Module):
    def __init__(self, spec: LayerSpec) -> None:
        super().__init__()
        size = tuple(int(s) for s in spec.config.get("size", (2, 2)))
        if spec.config.get("interpolation", "nearest") != "nearest" or len(size) != 2:
            raise CheckpointFormatError(f"UpSampling2D {spec.name}: only nearest upsampling is supported")
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.repeat_interleave(self.size[0], dim=2).repeat_interleave(self.size[1], dim=3)


class _MultiplyBeta(nn.Module):
    def __init__(self, spec: LayerSpec) -> None:
        super().__init__()
        if float(spec.config.get("beta", _BETA)) != _BETA:
            raise CheckpointFormatError(f"MultiplyBeta {spec.name}: beta {spec.config['beta']} (TF.js uses {_BETA})")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * _BETA


class _DepthToSpace(nn.Module):
    """``tf.depthToSpace`` in NCHW: input channel ``(i * r + j) * C + c`` goes to offset (i, j) of channel c."""

    def __init__(self, block: int) -> None:
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, depth, h, w = x.shape
        r = self.block
        x = x.reshape(n, r, r, depth // (r * r), h, w).permute(0, 3, 4, 1, 5, 2)
        return x.reshape(n, depth // (r * r), h * r, w * r)


def _activation(spec: LayerSpec, kind: str) -> Any:
    if kind not in _ACTIVATIONS:
        raise CheckpointFormatError(f"{spec.kind} {spec.name}: activation {kind!r} is not supported")
    return _ACTIVATIONS[kind]


class LayersModel(nn.Module):
    """A TF.js layers model run with torch: NCHW float in, NCHW float out, in the model's own value
    range. ``in_channels`` is the input's channel count (the topology leaves it to the input)."""

    def __init__(self, layers: Sequence[LayerSpec], in_channels: int = 3) -> None:
        super().__init__()
        self.specs = list(layers)
        channels = {self.specs[0].name: in_channels}
        self.ops = nn.ModuleDict()
        for spec in self.specs[1:]:
            if "." in spec.name or spec.name in self.ops:
                raise CheckpointFormatError(f"layer name {spec.name!r} is not usable")
            missing = [i for i in spec.inputs if i not in channels]
            if not spec.inputs or missing:
                raise CheckpointFormatError(f"{spec.kind} {spec.name}: inputs {missing or '-'} come later or never")
            op, channels[spec.name] = self._build(spec, [channels[i] for i in spec.inputs])
            self.ops[spec.name] = op
        self.out_channels = channels[self.specs[-1].name]
        # After which step each value is last needed, so intermediate tensors are freed early.
        last_use = {i: step for step, spec in enumerate(self.specs) for i in spec.inputs}
        self._free = [[n for n, s in last_use.items() if s == step] for step in range(len(self.specs))]

    @staticmethod
    def _build(spec: LayerSpec, inputs: list[int]) -> tuple[nn.Module, int]:
        kind, c = spec.kind, inputs[0]
        if kind == "Conv2D" and len(inputs) == 1:
            return _Conv(spec, c), int(spec.config["filters"])
        if kind == "Activation":
            return _Activation(spec), c
        if kind == "Concatenate":
            return _Concatenate(spec), sum(inputs)
        if kind == "Add":
            if len(set(inputs)) != 1:
                raise CheckpointFormatError(f"Add {spec.name}: inputs of {inputs} channels")
            return _Add(), c
        if kind == "UpSampling2D":
            return _UpSampling(spec), c
        if kind == "MultiplyBeta":
            return _MultiplyBeta(spec), c
        match = _PIXEL_SHUFFLE.fullmatch(kind)
        if match:
            block = int(match.group(1))
            if c % (block * block):
                raise CheckpointFormatError(f"{kind} {spec.name}: {c} channels do not split into {block}x{block}")
            return _DepthToSpace(block), c // (block * block)
        raise CheckpointFormatError(f"layer {spec.name}: {kind} is not a layer this reader supports")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = {self.specs[0].name: x}
        for step, spec in enumerate(self.specs[1:], start=1):
            values[spec.name] = self.ops[spec.name](*(values[i] for i in spec.inputs))
            for name in self._free[step]:
                del values[name]
        return values[self.specs[-1].name]


# The upscaler built on it, and its converted file


class SuperResolutionNet(nn.Module):
    """An image super-resolution layers model: RGB in [0, 1], NCHW, out ``scale`` times larger in
    [0, 1] (not clamped). ``value_range`` is what the model itself expects a white pixel to be."""

    def __init__(self, layers: Sequence[LayerSpec], scale: int, value_range: float) -> None:
        super().__init__()
        self.body = LayersModel(layers)
        if self.body.out_channels != 3:
            raise CheckpointFormatError(f"the model gives {self.body.out_channels} channels, not RGB")
        self.scale, self.value_range = scale, value_range

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.value_range == 1.0:
            return self.body(x)
        return self.body(x * self.value_range) / self.value_range


def save(
    path: str | Path, layers: Sequence[LayerSpec], state: Mapping[str, torch.Tensor], *, scale: int, value_range: float
) -> None:
    """Writes a converted model: tensors plus topology, scale and value range in the header."""
    from safetensors.torch import save_file

    SuperResolutionNet(layers, scale, value_range).body.ops.load_state_dict(dict(state))  # checks shapes
    metadata = {
        "format": FORMAT,
        "tfjs_layers": json.dumps([spec.as_json() for spec in layers], separators=(",", ":")),
        "scale": str(scale),
        "value_range": repr(float(value_range)),
    }
    save_file({k: v.contiguous() for k, v in state.items()}, str(path), metadata=metadata)


def load(path: str | Path, *, name: str | Path | None = None) -> SuperResolutionNet:
    """The network of a converted file, weights loaded, in eval mode on the CPU."""
    from .safetensors_file import read_safetensors

    state, metadata = read_safetensors(path, name=name)
    source = path if name is None else name
    if metadata.get("format") != FORMAT:
        raise CheckpointFormatError(f"{source}: not a converted TF.js layers model")
    try:
        layers = [LayerSpec.from_json(e) for e in json.loads(metadata["tfjs_layers"])]
        scale, value_range = int(metadata["scale"]), float(metadata["value_range"])
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointFormatError(f"{source}: unreadable header ({exc})") from None
    net = SuperResolutionNet(layers, scale, value_range)
    try:
        net.body.ops.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointFormatError(f"{source}: weights do not fit the topology ({exc})") from None
    return net.eval()
