"""A small TensorFlow.js graph-model loader into torch: ``model.json`` + ``.bin`` shards → nn.Module.

TF.js "graph-model" files (made by ``tensorflowjs_converter`` from a frozen TF graph) hold a
GraphDef topology (``modelTopology.node``: op, name, inputs, attributes) and a
``weightsManifest`` (groups of shard files; per weight: name, shape, dtype and an optional
``quantization`` of float16 or of uint8/uint16 with scale and min). Constants are weights.
``tfjs_format`` reads both; this module runs the graph with torch ops, so gradients flow to the inputs (weights are
frozen buffers).

Layout: TF graphs are NHWC; torch convolutions are NCHW. Every 4-D activation is kept NCHW
inside, and ops whose meaning depends on axes (Pad, Reshape, reductions, Concat, broadcasting
with constants, Softmax) translate their TF axes. ``forward`` takes 4-D image inputs as
(B,C,H,W) torch tensors and returns 4-D outputs as (B,C,H,W); ``run_nhwc`` speaks TF's layout.

TF "SAME" padding is ``total = max((ceil(in/s)-1)*s + (k-1)*d + 1 - in, 0)``, split
``total // 2`` before and the rest after: for stride 2 on even sizes the extra row and column
go to the bottom and right, which torch's symmetric ``padding=`` cannot express, so such inputs
are padded explicitly with ``F.pad``.

Ops (``SUPPORTED_OPS``): Placeholder, Const, Identity; Conv2D, DepthwiseConv2dNative (filters
HWIO and [kh,kw,C,multiplier]), _FusedConv2D and FusedDepthwiseConv2dNative (fused BiasAdd,
FusedBatchNorm, Relu, Relu6, Elu, Prelu, LeakyRelu, Sigmoid, Tanh), MatMul, _FusedMatMul,
BiasAdd, FusedBatchNorm/V3 (inference); Add, AddV2, Sub, Mul, RealDiv, Maximum, Minimum;
Relu, Relu6, Elu, Prelu, LeakyRelu, Sigmoid, Tanh, Softmax, Square, Sqrt, Rsqrt, Neg, Exp;
Pad, PadV2, MirrorPad; MaxPool, AvgPool; Mean, Sum, Max, Min; Reshape, ConcatV2.
The two human-models identity graphs use only: Placeholder, Const, Sub, Mul, Pad, Conv2D,
DepthwiseConv2dNative, Maximum, Minimum, AddV2, Reshape, MatMul (mobileface) and Placeholder,
Const, Conv2D, DepthwiseConv2dNative, Add, Mul, Relu, Minimum, Maximum, Mean, _FusedMatMul,
Sigmoid, Softmax (faceres).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from engine.errors import CheckpointFormatError
from engine.nets.tfjs_format import (
    Node,
    attr_bool,
    attr_float,
    attr_ints,
    attr_pair,
    attr_str,
    attr_strs,
    read_weights,
    split_input,
)

_OPS = """
    Placeholder Const Identity Conv2D DepthwiseConv2dNative _FusedConv2D FusedDepthwiseConv2dNative
    MatMul _FusedMatMul BiasAdd FusedBatchNorm FusedBatchNormV3 Add AddV2 Sub Mul RealDiv Maximum
    Minimum Relu Relu6 Elu Prelu LeakyRelu Sigmoid Tanh Softmax Square Sqrt Rsqrt Neg Exp Pad PadV2
    MirrorPad MaxPool AvgPool Mean Sum Max Min Reshape ConcatV2
"""
SUPPORTED_OPS = frozenset(_OPS.split())
_UNARY_OPS = {"Square": torch.square, "Sqrt": torch.sqrt, "Rsqrt": torch.rsqrt, "Neg": torch.neg, "Exp": torch.exp}

_NHWC_TO_NCHW = (0, 3, 1, 2)
_NCHW_TO_NHWC = (0, 2, 3, 1)
_AXIS_NHWC_TO_NCHW = {0: 0, 1: 2, 2: 3, 3: 1}


# Values: a tensor and whether it is a 4-D activation kept NCHW


class _V:
    __slots__ = ("t", "nchw")

    def __init__(self, t: torch.Tensor, nchw: bool = False) -> None:
        self.t = t
        self.nchw = nchw

    def tf(self) -> torch.Tensor:
        """The tensor in TF's layout."""
        return self.t.permute(*_NCHW_TO_NHWC) if self.nchw else self.t


def _as_nchw(v: _V) -> torch.Tensor:
    if v.nchw:
        return v.t
    if v.t.ndim != 4:
        raise CheckpointFormatError(f"expected a 4-D tensor, got shape {tuple(v.t.shape)}")
    return v.t.permute(*_NHWC_TO_NCHW)


def _broadcast_to_nchw(t: torch.Tensor) -> torch.Tensor:
    """A TF-layout operand broadcast against an NHWC tensor, rearranged for the NCHW one."""
    if t.ndim > 4:
        raise CheckpointFormatError(f"cannot broadcast a {t.ndim}-D tensor against an image")
    t = t.reshape((1,) * (4 - t.ndim) + tuple(t.shape))
    return t.permute(*_NHWC_TO_NCHW)


def _binary(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], a: _V, b: _V) -> _V:
    if a.nchw or b.nchw:
        ta = a.t if a.nchw else _broadcast_to_nchw(a.t)
        tb = b.t if b.nchw else _broadcast_to_nchw(b.t)
        return _V(fn(ta, tb), True)
    return _V(fn(a.t, b.t))


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TF "SAME" padding (before, after) of one spatial axis: the extra one goes after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _spatial_pad(
    x: torch.Tensor,
    padding: str,
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    explicit: Sequence[int] | None,
    value: float = 0.0,
) -> torch.Tensor:
    """Pad an NCHW tensor as TF's ``padding`` attribute says (VALID, SAME or EXPLICIT)."""
    if padding == "VALID":
        return x
    if padding == "SAME":
        top, bottom = same_padding(x.shape[2], kernel[0], strides[0], dilations[0])
        left, right = same_padding(x.shape[3], kernel[1], strides[1], dilations[1])
    elif padding == "EXPLICIT":
        if explicit is None or len(explicit) != 8:
            raise CheckpointFormatError(f"EXPLICIT padding needs eight explicit_paddings, got {explicit}")
        # NHWC pairs: [[n0,n1],[h0,h1],[w0,w1],[c0,c1]]
        top, bottom, left, right = explicit[2], explicit[3], explicit[4], explicit[5]
    else:
        raise CheckpointFormatError(f"unknown padding {padding!r}")
    if top == bottom == left == right == 0:
        return x
    return F.pad(x, (left, right, top, bottom), value=value)


def _activation(name: str, x: torch.Tensor, args: list[torch.Tensor], alpha: float) -> torch.Tensor:
    if name == "Relu":
        return F.relu(x)
    if name == "Relu6":
        return torch.clamp(x, 0.0, 6.0)
    if name == "Elu":
        return F.elu(x)
    if name == "LeakyRelu":
        return F.leaky_relu(x, alpha)
    if name == "Sigmoid":
        return torch.sigmoid(x)
    if name == "Tanh":
        return torch.tanh(x)
    if name == "Prelu":
        a = args[0]
        return torch.clamp(x, min=0) + a * torch.clamp(x, max=0)
    raise CheckpointFormatError(f"unsupported fused activation {name}")


def _fused_tail(node: Node, y: torch.Tensor, args: list[torch.Tensor], channels_dim: int) -> torch.Tensor:
    """Apply a fused op's BiasAdd / FusedBatchNorm and activation; args come in graph order."""
    ops = attr_strs(node, "fused_ops")
    eps = attr_float(node, "epsilon", 0.0) or 0.0
    alpha = attr_float(node, "leakyrelu_alpha", 0.2)
    shape = [1] * y.ndim
    shape[channels_dim] = -1

    def per_channel(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(shape) if t.ndim == 1 else t

    i = 0
    for op in ops:
        if op == "BiasAdd":
            y = y + per_channel(args[i])
            i += 1
        elif op == "FusedBatchNorm":
            scale, offset, mean, var = (per_channel(a) for a in args[i : i + 4])
            y = (y - mean) * (scale * torch.rsqrt(var + eps)) + offset
            i += 4
        elif op == "Prelu":
            y = _activation(op, y, [per_channel(args[i])], alpha)
            i += 1
        else:
            y = _activation(op, y, [], alpha)
    return y


class TfjsGraphModel(nn.Module):
    """A TF.js graph model run by torch.

    Args:
        model_json: Path of the TF.js ``model.json`` (its shards are read from beside it).
        outputs: Node names (``name`` or ``name:0``) ``forward`` returns by default; the
            signature's outputs when None.
    """

    def __init__(self, model_json: Path | str, outputs: Sequence[str] | None = None) -> None:
        super().__init__()
        path = Path(model_json)
        try:
            spec = json.loads(path.read_text(encoding="utf-8"))
            nodes = spec["modelTopology"]["node"]
        except (OSError, ValueError, KeyError) as exc:
            raise CheckpointFormatError(f"{path} is not a TF.js graph model: {exc}") from exc
        if spec.get("format", "graph-model") != "graph-model":
            raise CheckpointFormatError(f"{path} is a TF.js {spec.get('format')}, not a graph-model")
        self.path = path
        self.nodes = {n["name"]: n for n in nodes}
        unsupported = sorted({n["op"] for n in nodes} - SUPPORTED_OPS)
        if unsupported:
            raise CheckpointFormatError(f"{path} uses TF ops this loader lacks: {', '.join(unsupported)}")
        weights = read_weights(path, spec.get("weightsManifest", []))
        missing = [n["name"] for n in nodes if n["op"] == "Const" and n["name"] not in weights]
        if missing:
            raise CheckpointFormatError(f"{path}: constants without weights: {', '.join(missing[:5])}")
        self.inputs = [n["name"] for n in nodes if n["op"] == "Placeholder"]
        signature = spec.get("signature", {}).get("outputs", {})
        default = list(signature) if signature else [nodes[-1]["name"]]
        self.outputs = [split_input(o)[0] for o in (outputs or default)]
        # Float weights become buffers (move with .to(), stay out of parameters()); int ones stay host-side.
        self._consts: dict[str, np.ndarray] = {}
        self._buffer_names: dict[str, str] = {}
        for name, arr in weights.items():
            if arr.dtype.kind == "f":
                key = f"w{len(self._buffer_names)}"
                self.register_buffer(key, torch.from_numpy(np.ascontiguousarray(arr, np.float32)), persistent=False)
                self._buffer_names[name] = key
            else:
                self._consts[name] = arr
        self._prepare_filters()

    # Graph plumbing

    def _prepare_filters(self) -> None:
        """Rearrange constant convolution filters once into torch's layout."""
        self._filters: dict[str, str] = {}
        for node in self.nodes.values():
            op = node["op"]
            if op not in ("Conv2D", "_FusedConv2D", "DepthwiseConv2dNative", "FusedDepthwiseConv2dNative"):
                continue
            fname = split_input(node["input"][1])[0]
            if fname not in self._buffer_names:
                continue
            w = getattr(self, self._buffer_names[fname])
            if "Depthwise" in op:  # [kh, kw, C, mult] -> [C*mult, 1, kh, kw], output channel c*mult+m
                kh, kw, c, m = w.shape
                wt = w.reshape(kh, kw, c * m).permute(2, 0, 1).unsqueeze(1)
            else:  # HWIO -> OIHW
                wt = w.permute(3, 2, 0, 1)
            key = f"f{len(self._filters)}"
            self.register_buffer(key, wt.contiguous(), persistent=False)
            self._filters[node["name"]] = key

    def _order(self, outputs: Iterable[str]) -> list[str]:
        """Nodes needed for ``outputs``, each after its inputs."""
        order: list[str] = []
        seen: set[str] = set()
        for root in outputs:
            if root not in self.nodes:
                raise KeyError(f"{self.path.name} has no node {root!r}")
            stack = [(root, False)]
            while stack:
                name, done = stack.pop()
                if done:
                    order.append(name)
                    continue
                if name in seen:
                    continue
                seen.add(name)
                stack.append((name, True))
                for ref in self.nodes[name].get("input", []):
                    if not ref.startswith("^"):
                        dep = split_input(ref)[0]
                        if dep not in seen:
                            stack.append((dep, False))
        return order

    def _const(self, name: str) -> _V:
        if name in self._buffer_names:
            return _V(getattr(self, self._buffer_names[name]))
        return _V(torch.from_numpy(self._consts[name]))

    def _ints(self, v: _V) -> list[int]:
        return [int(i) for i in v.t.reshape(-1).tolist()]

    # Running

    def forward(self, *inputs: torch.Tensor, outputs: Sequence[str] | None = None) -> torch.Tensor | list[torch.Tensor]:
        """Run the graph; 4-D inputs and outputs are (B,C,H,W). One output → a tensor, else a list."""
        result = self._run(inputs, outputs, nchw_io=True)
        return result[0] if len(result) == 1 else result

    def run_nhwc(self, *inputs: torch.Tensor, outputs: Sequence[str] | None = None) -> list[torch.Tensor]:
        """Run the graph in TF's own layout (4-D tensors NHWC), e.g. to compare with TF.js."""
        return self._run(inputs, outputs, nchw_io=False)

    def _run(self, inputs: Sequence[torch.Tensor], outputs: Sequence[str] | None, nchw_io: bool) -> list[torch.Tensor]:
        if len(inputs) != len(self.inputs):
            raise ValueError(f"{self.path.name} takes {len(self.inputs)} inputs, got {len(inputs)}")
        wanted = [split_input(o)[0] for o in (outputs or self.outputs)]
        values: dict[str, _V] = {}
        for name, x in zip(self.inputs, inputs, strict=True):
            x = x.float()
            values[name] = _V(x, True) if (x.ndim == 4 and nchw_io) else _V(x)
            if x.ndim == 4 and not nchw_io:
                values[name] = _V(x.permute(*_NHWC_TO_NCHW), True)
        for name in self._order(wanted):
            if name in values:
                continue
            node = self.nodes[name]
            if node["op"] == "Placeholder":
                raise ValueError(f"input {name} was not given")
            if node["op"] == "Const":
                values[name] = self._const(name)
                continue
            args = [values[split_input(r)[0]] for r in node.get("input", []) if not r.startswith("^")]
            values[name] = self._op(node, args)
        out = []
        for name in wanted:
            v = values[name]
            out.append(v.t if (v.nchw and nchw_io) else v.tf())
        return out

    def _op(self, node: Node, a: list[_V]) -> _V:  # noqa: C901 - one dispatch table, read top-down
        op = node["op"]
        if op == "Identity":
            return a[0]
        if op in ("Add", "AddV2", "BiasAdd"):
            return _binary(torch.add, a[0], a[1])
        if op == "Sub":
            return _binary(torch.sub, a[0], a[1])
        if op == "Mul":
            return _binary(torch.mul, a[0], a[1])
        if op == "RealDiv":
            return _binary(torch.div, a[0], a[1])
        if op == "Maximum":
            return _binary(torch.maximum, a[0], a[1])
        if op == "Minimum":
            return _binary(torch.minimum, a[0], a[1])
        if op in ("Relu", "Relu6", "Elu", "Sigmoid", "Tanh", "LeakyRelu"):
            return _V(_activation(op, a[0].t, [], attr_float(node, "alpha", 0.2)), a[0].nchw)
        if op == "Prelu":
            return _binary(lambda x, al: torch.clamp(x, min=0) + al * torch.clamp(x, max=0), a[0], a[1])
        if op in _UNARY_OPS:
            return _V(_UNARY_OPS[op](a[0].t), a[0].nchw)
        if op == "Softmax":
            return _V(torch.softmax(a[0].t, dim=1 if a[0].nchw else -1), a[0].nchw)
        if op in ("Conv2D", "_FusedConv2D", "DepthwiseConv2dNative", "FusedDepthwiseConv2dNative"):
            return self._conv(node, a)
        if op in ("FusedBatchNorm", "FusedBatchNormV3"):
            x = _as_nchw(a[0])
            scale, offset, mean, var = (t.t.reshape(1, -1, 1, 1) for t in a[1:5])
            eps = attr_float(node, "epsilon", 1e-3)
            return _V((x - mean) * (scale * torch.rsqrt(var + eps)) + offset, True)
        if op in ("MatMul", "_FusedMatMul"):
            x, w = a[0].tf(), a[1].tf()
            if attr_bool(node, "transpose_a", False):
                x = x.transpose(-1, -2)
            if attr_bool(node, "transpose_b", False):
                w = w.transpose(-1, -2)
            y = x @ w
            if op == "_FusedMatMul":
                y = _fused_tail(node, y, [v.t for v in a[2:]], channels_dim=-1)
            return _V(y)
        if op in ("Pad", "PadV2", "MirrorPad"):
            return self._pad(node, a)
        if op in ("MaxPool", "AvgPool"):
            return self._pool(node, a[0])
        if op in ("Mean", "Sum", "Max", "Min"):
            return self._reduce(node, a)
        if op == "Reshape":
            shape = self._ints(a[1])
            y = a[0].tf().reshape(shape)
            return _V(y.permute(*_NHWC_TO_NCHW), True) if y.ndim == 4 else _V(y)
        if op == "ConcatV2":
            axis = self._ints(a[-1])[0]
            parts = a[:-1]
            if any(p.nchw for p in parts):
                axis = _AXIS_NHWC_TO_NCHW[axis % 4]
                return _V(torch.cat([_as_nchw(p) for p in parts], dim=axis), True)
            return _V(torch.cat([p.t for p in parts], dim=axis))
        raise CheckpointFormatError(f"unsupported TF op {op} ({node['name']})")

    def _conv(self, node: Node, a: list[_V]) -> _V:
        op = node["op"]
        x = _as_nchw(a[0])
        if attr_str(node, "data_format", "NHWC") != "NHWC":
            raise CheckpointFormatError(f"{node['name']}: only NHWC graphs are supported")
        key = self._filters.get(node["name"])
        depthwise = "Depthwise" in op
        if key is not None:
            w = getattr(self, key)
        else:
            w = a[1].t
            if depthwise:
                kh, kw, c, m = w.shape
                w = w.reshape(kh, kw, c * m).permute(2, 0, 1).unsqueeze(1)
            else:
                w = w.permute(3, 2, 0, 1)
        strides = attr_pair(node, "strides", [1, 1, 1, 1])
        dil = attr_pair(node, "dilations", [1, 1, 1, 1])
        padding = attr_str(node, "padding", "VALID")
        x = _spatial_pad(x, padding, w.shape[2:], strides, dil, attr_ints(node, "explicit_paddings"))
        groups = x.shape[1] if depthwise else 1
        y = F.conv2d(x, w, stride=strides, dilation=dil, groups=groups)
        if op in ("_FusedConv2D", "FusedDepthwiseConv2dNative"):
            y = _fused_tail(node, y, [v.t for v in a[2:]], channels_dim=1)
        return _V(y, True)

    def _pad(self, node: Node, a: list[_V]) -> _V:
        pads = self._ints(a[1])
        pairs = [(pads[2 * i], pads[2 * i + 1]) for i in range(len(pads) // 2)]
        x = a[0]
        value = float(a[2].t.reshape(-1)[0]) if node["op"] == "PadV2" else 0.0
        mode = "constant"
        if node["op"] == "MirrorPad":
            mode = "reflect" if attr_str(node, "mode", "REFLECT") == "REFLECT" else "replicate"
        if x.nchw:
            pairs = [pairs[0], pairs[3], pairs[1], pairs[2]]
        flat: list[int] = []
        for before, after in reversed(pairs):
            flat += [before, after]
        if mode == "constant":
            return _V(F.pad(x.t, flat, value=value), x.nchw)
        # reflect/replicate pad only the trailing dims; batch and channels are never padded here.
        if any(pairs[0]) or any(pairs[1]):
            raise CheckpointFormatError(f"{node['name']}: MirrorPad on batch or channels is unsupported")
        return _V(F.pad(x.t, flat[:4], mode=mode), x.nchw)

    def _pool(self, node: Node, v: _V) -> _V:
        x = _as_nchw(v)
        k = attr_pair(node, "ksize")
        s = attr_pair(node, "strides")
        padding = attr_str(node, "padding", "VALID")
        if node["op"] == "MaxPool":
            x = _spatial_pad(x, padding, k, s, (1, 1), None, value=-math.inf)
            return _V(F.max_pool2d(x, k, s), True)
        # TF averages over the valid pixels only.
        ones = torch.ones_like(x[:1, :1])
        xs = _spatial_pad(x, padding, k, s, (1, 1), None)
        count = F.avg_pool2d(_spatial_pad(ones, padding, k, s, (1, 1), None), k, s)
        return _V(F.avg_pool2d(xs, k, s) / count, True)

    def _reduce(self, node: Node, a: list[_V]) -> _V:
        axes = self._ints(a[1])
        keep = attr_bool(node, "keep_dims", False)
        x = a[0]
        fn = {"Mean": torch.mean, "Sum": torch.sum, "Max": torch.amax, "Min": torch.amin}[node["op"]]
        if x.nchw and keep:
            dims = [_AXIS_NHWC_TO_NCHW[d % 4] for d in axes]
            return _V(fn(x.t, dim=dims, keepdim=True), True)
        t = x.tf()
        return _V(fn(t, dim=[d % t.ndim for d in axes], keepdim=keep))


def load_graph_model(model_json: Path | str, outputs: Sequence[str] | None = None) -> TfjsGraphModel:
    """Read a TF.js graph model into a frozen torch module in eval mode."""
    model = TfjsGraphModel(model_json, outputs)
    model.eval()
    return model
