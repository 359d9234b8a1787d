"""Reading TensorFlow.js model files: the weight shards of ``model.json`` and graph-node attributes.

``engine.nets.tfjs_layers`` (layers models: the ESRGAN upscalers) and ``training.judges.tfjs_graph``
(graph models: the identity judges) build torch modules from what this reads. Weights may be float32, or
quantized to float16 or to uint8/uint16 with a scale and minimum; a malformed file raises
``CheckpointFormatError`` naming it.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CheckpointFormatError

NP_DTYPES = {
    "float32": np.float32,
    "int32": np.int32,
    "bool": np.bool_,
    "float16": np.float16,
    "uint8": np.uint8,
    "uint16": np.uint16,
    "int8": np.int8,
    "int16": np.int16,
}


# Reading model.json and the weight shards


def read_weights(model_json: Path, manifest: list[dict]) -> dict[str, np.ndarray]:
    """Every weight of ``manifest`` (dequantized to float32 where quantized), read from its shards."""
    out: dict[str, np.ndarray] = {}
    for group in manifest:
        data = b"".join((model_json.parent / p).read_bytes() for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            shape = [int(s) for s in spec["shape"]]
            count = int(np.prod(shape)) if shape else 1
            quant = spec.get("quantization")
            stored = quant["dtype"] if quant else spec["dtype"]
            if stored not in NP_DTYPES:
                raise CheckpointFormatError(f"{model_json}: weight {spec['name']} has unsupported dtype {stored}")
            dtype = np.dtype(NP_DTYPES[stored]).newbyteorder("<")
            end = offset + count * dtype.itemsize
            if end > len(data):
                raise CheckpointFormatError(f"{model_json}: weight shards end before {spec['name']}")
            arr = np.frombuffer(data, dtype, count, offset)
            offset = end
            if quant and stored in ("uint8", "uint16"):
                arr = arr.astype(np.float32) * np.float32(quant["scale"]) + np.float32(quant["min"])
            elif quant:
                arr = arr.astype(np.float32)
            else:
                arr = arr.astype(dtype.newbyteorder("="))
            out[spec["name"]] = arr.reshape(shape)
        if offset != len(data):
            raise CheckpointFormatError(f"{model_json}: {len(data) - offset} bytes left over in the weight shards")
    return out


Node = dict[str, Any]
AttrValue = str | int | float | bool | list[str] | list[int] | list[float] | dict[str, Any]


def attr(node: Node, key: str) -> AttrValue | None:
    """A node attribute as a Python value (ints, floats, bools, strings, lists of them), None if absent."""
    value = node.get("attr", {}).get(key)
    if value is None:
        return None
    if "list" in value:
        lst = value["list"]
        if "s" in lst:
            return [base64.b64decode(s).decode() for s in lst["s"]]
        if "i" in lst:
            return [int(i) for i in lst["i"]]
        if "f" in lst:
            return [float(f) for f in lst["f"]]
        return []
    if "s" in value:
        return base64.b64decode(value["s"]).decode()
    if "i" in value:
        return int(value["i"])
    if "f" in value:
        return float(value["f"])
    if "b" in value:
        return bool(value["b"])
    if "type" in value:
        return value["type"]
    return value


def _wrongattr(node: Node, key: str, value: object, kind: str) -> CheckpointFormatError:
    return CheckpointFormatError(f"{node['name']}: attribute {key} is {value!r}, not {kind}")


def attr_str(node: Node, key: str, default: str) -> str:
    value = attr(node, key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise _wrongattr(node, key, value, "a string")
    return value


def attr_float(node: Node, key: str, default: float) -> float:
    value = attr(node, key)
    if value is None:
        return default
    if not isinstance(value, int | float):
        raise _wrongattr(node, key, value, "a number")
    return value


def attr_bool(node: Node, key: str, default: bool) -> bool:
    value = attr(node, key)
    return default if value is None else bool(value)


def attr_ints(node: Node, key: str) -> list[int] | None:
    value = attr(node, key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
        raise _wrongattr(node, key, value, "a list of integers")
    return [int(v) for v in value]


def attr_strs(node: Node, key: str) -> list[str]:
    value = attr(node, key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _wrongattr(node, key, value, "a list of strings")
    return [str(v) for v in value]


def attr_pair(node: Node, key: str, default: list[int] | None = None) -> tuple[int, int]:
    """The spatial (H, W) entries of an NHWC four-vector attribute (strides, dilations, ksize)."""
    value = attr_ints(node, key)
    if value is None:
        if default is None:
            raise CheckpointFormatError(f"{node['name']}: attribute {key} is missing")
        value = default
    if len(value) != 4:
        raise _wrongattr(node, key, value, "four integers (NHWC)")
    return value[1], value[2]


def split_input(ref: str) -> tuple[str, int]:
    name, _, index = ref.partition(":")
    return name, int(index) if index else 0
