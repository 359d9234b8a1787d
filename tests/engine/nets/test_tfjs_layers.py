"""TF.js layers reader: each layer's semantics, its errors, and equality with the real TF.js executor."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.errors import CheckpointFormatError
from engine.nets import tfjs_layers
from engine.nets.tfjs_layers import LayersModel, read_model

ROOT = Path(__file__).resolve().parents[3]
FIXTURE = Path(__file__).with_name("fixtures") / "esrgan_reference.json"
VENDOR = ROOT / "vendor" / "upscalerjs"  # scripts/fetch_esrgan.sh
BUNDLED = ROOT / "resources" / "models"
TOLERANCE = 1e-4  # max |torch - tfjs| relative to the largest |tfjs| value


def _write_model(tmp_path: Path, layers: list[dict], weights: dict[str, np.ndarray]) -> Path:
    """A minimal TF.js layers model on disk (input layer "x", output the last layer)."""
    entries = [{"class_name": "InputLayer", "name": "x", "config": {"name": "x"}, "inbound_nodes": []}]
    for layer in layers:
        entries.append(
            {
                "class_name": layer["kind"],
                "name": layer["name"],
                "config": {"name": layer["name"], **layer.get("config", {})},
                "inbound_nodes": [[[i, 0, 0, {}] for i in layer["inputs"]]],
            }
        )
    specs = [{"name": k, "shape": list(v.shape), "dtype": "float32"} for k, v in weights.items()]
    (tmp_path / "w.bin").write_bytes(b"".join(v.astype("<f4").tobytes() for v in weights.values()))
    config = {"layers": entries, "input_layers": [["x", 0, 0]], "output_layers": [[entries[-1]["name"], 0, 0]]}
    model = {
        "format": "layers-model",
        "modelTopology": {"model_config": {"class_name": "Functional", "config": config}},
        "weightsManifest": [{"paths": ["w.bin"], "weights": specs}],
    }
    path = tmp_path / "model.json"
    path.write_text(json.dumps(model))
    return path


def _conv(name: str, inputs: list[str], filters: int, **config: object) -> dict:
    base = {"filters": filters, "kernel_size": [3, 3], "strides": [1, 1], "padding": "same"}
    return {"kind": "Conv2D", "name": name, "inputs": inputs, "config": {**base, "activation": "linear", **config}}


def _load(path: Path, in_channels: int = 3) -> LayersModel:
    layers, state = read_model(path)
    model = LayersModel(layers, in_channels)
    model.ops.load_state_dict(state)
    return model.eval()


def test_conv_kernel_layout_and_same_padding(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    kernel = rng.standard_normal((3, 3, 3, 5)).astype(np.float32)  # HWIO, as TF stores it
    bias = rng.standard_normal(5).astype(np.float32)
    path = _write_model(tmp_path, [_conv("c", ["x"], 5, activation="relu")], {"c/kernel": kernel, "c/bias": bias})
    x = rng.standard_normal((1, 3, 6, 7)).astype(np.float32)
    got = _load(path)(torch.from_numpy(x)).detach().numpy()
    # Direct NHWC convolution with zero padding 1.
    xp = np.pad(x[0].transpose(1, 2, 0), ((1, 1), (1, 1), (0, 0)))
    want = np.zeros((6, 7, 5), np.float32)
    for dy in range(3):
        for dx in range(3):
            want += xp[dy : dy + 6, dx : dx + 7] @ kernel[dy, dx]
    want = np.maximum(want + bias, 0).transpose(2, 0, 1)
    np.testing.assert_allclose(got[0], want, rtol=1e-5, atol=1e-5)


def test_concatenate_add_upsample_and_depth_to_space(tmp_path: Path) -> None:
    layers = [
        {"kind": "Concatenate", "name": "cat", "inputs": ["x", "x"], "config": {"axis": 3}},
        {"kind": "Add", "name": "sum", "inputs": ["cat", "cat"]},
        {"kind": "MultiplyBeta", "name": "beta", "inputs": ["sum"], "config": {"beta": 0.2}},
        {"kind": "PixelShuffle2x", "name": "shuffle", "inputs": ["beta"], "config": {"scale": 2}},
        {"kind": "UpSampling2D", "name": "up", "inputs": ["shuffle"], "config": {"size": [3, 3]}},
    ]
    path = _write_model(tmp_path, layers, {})
    x = torch.arange(2 * 2 * 2, dtype=torch.float32).reshape(1, 2, 2, 2)  # 2 channels -> 4 -> depth-to-space 1
    got = _load(path, in_channels=2)(x)[0, 0].numpy()
    nhwc = np.concatenate([x.numpy()] * 2, axis=1).transpose(0, 2, 3, 1)[0] * 2 * 0.2  # (2, 2, 4)
    # tf.depthToSpace: channel (i * 2 + j) of pixel (h, w) goes to (2h + i, 2w + j).
    want = np.zeros((4, 4), np.float32)
    for i in range(2):
        for j in range(2):
            want[i::2, j::2] = nhwc[:, :, i * 2 + j]
    np.testing.assert_allclose(got, np.repeat(np.repeat(want, 3, 0), 3, 1), rtol=1e-6)


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ({"kind": "Lambda", "name": "l", "inputs": ["x"]}, "not a layer this reader supports"),
        ({"kind": "Activation", "name": "a", "inputs": ["x"], "config": {"activation": "swish"}}, "swish"),
        ({"kind": "UpSampling2D", "name": "u", "inputs": ["x"], "config": {"interpolation": "bilinear"}}, "nearest"),
        ({"kind": "Concatenate", "name": "c", "inputs": ["x", "x"], "config": {"axis": 1}}, "channel axis"),
        ({"kind": "Add", "name": "a", "inputs": ["nowhere"]}, "come later or never"),
        ({"kind": "MultiplyBeta", "name": "m", "inputs": ["x"], "config": {"beta": 0.5}}, "beta"),
    ],
)
def test_unsupported_layers_are_named(tmp_path: Path, layer: dict, message: str) -> None:
    with pytest.raises(CheckpointFormatError, match=message):
        _load(_write_model(tmp_path, [layer], {}))


def test_strided_conv_and_stray_weights_are_refused(tmp_path: Path) -> None:
    kernel = np.zeros((3, 3, 3, 2), np.float32)
    strided = _conv("c", ["x"], 2, strides=[2, 2])
    with pytest.raises(CheckpointFormatError, match="stride 1"):
        _load(_write_model(tmp_path, [strided], {"c/kernel": kernel, "c/bias": np.zeros(2, np.float32)}))
    stray = {"c/kernel": kernel, "c/bias": np.zeros(2, np.float32), "d/kernel": kernel}
    with pytest.raises(CheckpointFormatError, match="no layer uses"):
        read_model(_write_model(tmp_path, [_conv("c", ["x"], 2)], stray))
    (tmp_path / "model.json").write_text(json.dumps({"format": "graph-model", "modelTopology": {"node": []}}))
    with pytest.raises(CheckpointFormatError, match="not a TF.js layers model"):
        read_model(tmp_path / "model.json")


def test_converted_file_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    weights = {"c/kernel": rng.standard_normal((3, 3, 3, 3)).astype(np.float32), "c/bias": np.zeros(3, np.float32)}
    layers, state = read_model(_write_model(tmp_path, [_conv("c", ["x"], 3)], weights))
    tfjs_layers.save(tmp_path / "m.safetensors", layers, state, scale=1, value_range=255.0)
    net = tfjs_layers.load(tmp_path / "m.safetensors")
    assert (net.scale, net.value_range) == (1, 255.0)
    x = torch.rand(1, 3, 5, 5)
    want = LayersModel(layers)
    want.ops.load_state_dict(state)
    torch.testing.assert_close(net(x), want(x * 255) / 255)
    with pytest.raises(CheckpointFormatError, match="not a converted"):
        from safetensors.torch import save_file

        save_file({"a": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
        tfjs_layers.load(tmp_path / "other.safetensors")


def _reference_model(name: str) -> tfjs_layers.SuperResolutionNet | None:
    """The bundled conversion of ``size/xN`` when it ships, else the fetched TF.js files, else None."""
    size, scale = name.split("/")
    bundled = BUNDLED / f"esrgan-{size}-{scale}.safetensors"
    if bundled.is_file():
        return tfjs_layers.load(bundled)
    model_json = VENDOR / size / scale / "model.json"
    if not model_json.is_file():
        return None
    layers, state = read_model(model_json)
    net = tfjs_layers.SuperResolutionNet(layers, int(scale[1:]), 1.0)  # raw values, as TF.js is fed
    net.body.ops.load_state_dict(state)
    return net.eval()


_CASES = json.loads(FIXTURE.read_text())["cases"]


@pytest.mark.parametrize("case", _CASES, ids=[c["model"] for c in _CASES])
def test_matches_tfjs_executor(case: dict) -> None:
    """Every stored TF.js output (scripts/esrgan_reference.mjs) is reproduced within 1e-4 relative."""
    net = _reference_model(case["model"])
    if net is None:
        pytest.skip(f"{case['model']} is neither bundled nor fetched: run scripts/fetch_esrgan.sh")
    size = json.loads(FIXTURE.read_text())["size"]
    pixels = np.frombuffer(base64.b64decode(case["input"]), np.uint8).reshape(size, size, 3)
    want = np.frombuffer(base64.b64decode(case["output"]), "<f4").reshape(case["shape"])[0]
    value_range = case["value_range"]
    x = torch.from_numpy(pixels.astype(np.float32) / 255).permute(2, 0, 1)[None]
    with torch.inference_mode():
        if net.value_range == 1.0 and value_range != 1.0:  # unconverted: feed the model's own range
            got = net(x * value_range)
        else:
            got = net(x) * value_range
    got_nhwc = got[0].permute(1, 2, 0).numpy()
    rel = np.abs(got_nhwc - want).max() / np.abs(want).max()
    assert rel <= TOLERANCE, f"{case['model']}: relative error {rel:.2e}"
