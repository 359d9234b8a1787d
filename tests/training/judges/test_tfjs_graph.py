"""TF.js graph loader: TF's SAME padding, layouts, and equality with the real TF.js executor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.errors import CheckpointFormatError
from tests.engine.identity.synthetic import checksum, synthetic_image
from training.judges.tfjs_graph import load_graph_model, read_weights, same_padding

FIXTURE = Path(__file__).with_name("fixtures") / "tfjs_reference.json"
TOLERANCE = 1e-4  # max |torch - tfjs| relative to the largest |tfjs| value of each output row


def _write_graph(
    tmp_path: Path, nodes: list[dict], weights: dict[str, np.ndarray], quantize: dict | None = None
) -> Path:
    """A minimal TF.js graph-model on disk."""
    specs, blobs = [], []
    for name, arr in weights.items():
        spec = {"name": name, "shape": list(arr.shape), "dtype": "int32" if arr.dtype.kind == "i" else "float32"}
        if quantize and name in quantize:
            spec["quantization"] = quantize[name]
            blobs.append(arr.astype(np.float16).tobytes())
        else:
            blobs.append(arr.astype("<i4" if arr.dtype.kind == "i" else "<f4").tobytes())
        specs.append(spec)
    (tmp_path / "w.bin").write_bytes(b"".join(blobs))
    model = {
        "format": "graph-model",
        "modelTopology": {"node": nodes},
        "weightsManifest": [{"paths": ["w.bin"], "weights": specs}],
    }
    path = tmp_path / "model.json"
    path.write_text(json.dumps(model))
    return path


def _b64(s: str) -> str:
    import base64

    return base64.b64encode(s.encode()).decode()


def _conv_graph(tmp_path: Path, op: str, filt: np.ndarray, stride: int, padding: str) -> Path:
    nodes = [
        {"name": "x", "op": "Placeholder"},
        {"name": "k", "op": "Const"},
        {
            "name": "y",
            "op": op,
            "input": ["x", "k"],
            "attr": {
                "strides": {"list": {"i": ["1", str(stride), str(stride), "1"]}},
                "padding": {"s": _b64(padding)},
                "data_format": {"s": _b64("NHWC")},
                "dilations": {"list": {"i": ["1", "1", "1", "1"]}},
            },
        },
    ]
    return _write_graph(tmp_path, nodes, {"k": filt})


def test_same_padding_puts_the_extra_pixel_after():
    assert same_padding(224, 3, 2) == (0, 1)
    assert same_padding(5, 3, 2) == (1, 1)
    assert same_padding(112, 3, 1) == (1, 1)
    assert same_padding(4, 1, 2) == (0, 0)


def test_stride2_same_conv_matches_hand_computed_sums(tmp_path):
    """4x4 image 0..15, 3x3 ones, stride 2, SAME: TF pads one row/column at the bottom/right only."""
    model = load_graph_model(_conv_graph(tmp_path, "Conv2D", np.ones((3, 3, 1, 1), np.float32), 2, "SAME"))
    x = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)
    y = model(x)
    # top-left window rows 0-2 x cols 0-2; right windows cols 2-3 (+pad); bottom windows rows 2-3 (+pad)
    expected = torch.tensor(
        [[0 + 1 + 2 + 4 + 5 + 6 + 8 + 9 + 10, 2 + 3 + 6 + 7 + 10 + 11], [8 + 9 + 10 + 12 + 13 + 14, 10 + 11 + 14 + 15]],
        dtype=torch.float32,
    )
    assert torch.equal(y[0, 0], expected)
    # torch's symmetric padding=1 would give a different answer: the asymmetry matters.
    sym = torch.nn.functional.conv2d(x, torch.ones(1, 1, 3, 3), stride=2, padding=1)
    assert not torch.equal(sym[0, 0], expected)


def test_depthwise_filter_layout_and_multiplier(tmp_path):
    """[kh,kw,C,mult] filters: output channel c*mult+m is channel c filtered by [:,:,c,m]."""
    rng = np.random.default_rng(0)
    filt = rng.standard_normal((3, 3, 2, 2)).astype(np.float32)
    model = load_graph_model(_conv_graph(tmp_path, "DepthwiseConv2dNative", filt, 1, "VALID"))
    x = torch.from_numpy(rng.standard_normal((1, 5, 5, 2)).astype(np.float32))
    (y,) = model.run_nhwc(x)
    assert y.shape == (1, 3, 3, 4)
    for c in range(2):
        for m in range(2):  # VALID: output (1, 1) sees input rows and columns 1..3
            want = (x[0, 1:4, 1:4, c] * torch.from_numpy(filt[:, :, c, m])).sum()
            assert torch.allclose(y[0, 1, 1, c * 2 + m], want, atol=1e-5)


def test_float16_quantized_weights_are_dequantized(tmp_path):
    w = np.array([0.5, -1.25, 3.0], np.float32)
    path = _write_graph(
        tmp_path,
        [{"name": "w", "op": "Const"}],
        {"w": w},
        quantize={"w": {"dtype": "float16", "original_dtype": "float32"}},
    )
    manifest = json.loads(path.read_text())["weightsManifest"]
    got = read_weights(path, manifest)["w"]
    assert got.dtype == np.float32 and np.array_equal(got, w)


def test_unknown_op_is_a_format_error(tmp_path):
    path = _write_graph(
        tmp_path, [{"name": "x", "op": "Placeholder"}, {"name": "y", "op": "Cumprod", "input": ["x"]}], {}
    )
    with pytest.raises(CheckpointFormatError, match="Cumprod"):
        load_graph_model(path)


@pytest.mark.parametrize("name", ["mobileface", "faceres"])
def test_graph_equals_tfjs_executor(human_models_dir, name):
    """Every stored TF.js output (scripts/tfjs_reference.mjs) is reproduced within 1e-4 relative."""
    spec = json.loads(FIXTURE.read_text())["models"][name]
    images = [synthetic_image(i["kind"], i["seed"], spec["size"]) for i in spec["inputs"]]
    assert [checksum(im) for im in images] == [i["checksum"] for i in spec["inputs"]], (
        "generator drifted from the JS one"
    )
    model = load_graph_model(human_models_dir / f"{name}.json")
    names = list(spec["outputs"])
    with torch.no_grad():
        got = model.run_nhwc(torch.from_numpy(np.stack(images)), outputs=names)
    for out, tensor in zip(names, got, strict=True):
        ref = np.asarray(spec["outputs"][out]["values"], np.float32).reshape(spec["outputs"][out]["shape"])
        assert tensor.shape == ref.shape
        for row_got, row_ref in zip(tensor.numpy(), ref, strict=True):
            rel = np.abs(row_got - row_ref).max() / max(np.abs(row_ref).max(), 1e-12)
            assert rel <= TOLERANCE, f"{name} {out}: relative error {rel:.2e}"


def test_graph_is_differentiable(human_models_dir):
    model = load_graph_model(human_models_dir / "mobileface.json")
    x = torch.rand(2, 3, 112, 112, requires_grad=True)
    model(x * 255).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert not list(model.parameters())
