"""CodeFormer network: official layout and numbers, split forward, checkpoints, ONNX."""

from __future__ import annotations

import dataclasses
import json
import math
import pickle

import numpy as np
import pytest
import torch

from engine.errors import CheckpointFormatError
from engine.nets import identify_checkpoint
from engine.nets.codeformer import OFFICIAL, TINY, CodeFormer, load_codeformer, save_codeformer
from engine.nets.codeformer.checkpoint import deduce_config, json_header
from tests.conftest import shared_path


def recipe_weights(net: CodeFormer) -> dict[str, torch.Tensor]:
    """The deterministic weight recipe of ../shared/reference/README.md."""
    out = {}
    for i, (key, t) in enumerate(net.state_dict().items()):
        r = torch.randn(tuple(t.shape), generator=torch.Generator().manual_seed(i), dtype=torch.float64)
        if "norm" in key and key.endswith(".weight"):
            v = 1 + 0.05 * r
        elif key.endswith(".bias"):
            v = 0.01 * r
        elif t.dim() >= 2:
            v = r / math.sqrt(t[0].numel())
        else:
            v = 0.02 * r
        out[key] = v.float()
    return out


@pytest.fixture
def tiny() -> CodeFormer:
    torch.manual_seed(0)
    net = CodeFormer(TINY).eval()
    net.load_state_dict(recipe_weights(net))
    return net


def test_official_state_dict_matches_manifest():
    manifest = json.loads(shared_path("reference", "codeformer_official_state_dict.json").read_text())
    state = CodeFormer(OFFICIAL).state_dict()
    assert list(state) == list(manifest["keys"])  # same keys, same order
    assert {k: list(v.shape) for k, v in state.items()} == manifest["keys"]
    assert sum(v.numel() for v in state.values()) == manifest["num_params"] == 94_112_707


@pytest.mark.slow
def test_official_checkpoint_reproduces_reference_vectors(tmp_path):
    """Recipe weights written as an official ``params_ema`` file, loaded, run on 0143.png."""
    cv2 = pytest.importorskip("cv2")
    vectors = np.load(shared_path("reference", "codeformer_reference_vectors.npz"))
    face = cv2.imread(str(shared_path("data", "real_world", "cropped_faces", "0143.png")))[:, :, ::-1]
    ckpt = tmp_path / "codeformer.pth"
    torch.save({"params_ema": recipe_weights(CodeFormer(OFFICIAL))}, ckpt)

    net = load_codeformer(ckpt)
    assert net.config == OFFICIAL
    x = torch.from_numpy(face.copy()).permute(2, 0, 1)[None].float() / 255 * 2 - 1
    with torch.inference_mode():
        codes, feats = net.encode(x)
        logits = net.predict_logits(feats[0])
        assert np.abs(logits[0].numpy() - vectors["logits"]).max() < 1e-4
        for w, key in [(0.0, "out_w0"), (0.5, "out_w05"), (1.0, "out_w1")]:
            out = net.decode(codes, feats, w)
            assert np.abs(out[0].numpy() - vectors[key]).max() < 1e-3, key


@pytest.mark.parametrize("w", [0.0, 0.5, 1.0])
def test_encode_decode_equals_forward(tiny, w):
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        full, logits = tiny(x, w)
        codes, feats = tiny.encode(x)
        split = tiny.decode(codes, feats, w)
        as_tensor = tiny.decode(codes, feats, torch.full((2, 1, 1, 1), w))
    assert torch.equal(codes, logits.argmax(-1))
    assert torch.allclose(full, split, atol=1e-6)
    assert torch.allclose(split, as_tensor, atol=1e-5)


def test_fidelity_w_changes_output_only_through_cft(tiny):
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        codes, feats = tiny.encode(x)
        outs = [tiny.decode(codes, feats, w) for w in (0.0, 0.5, 1.0)]
    assert (outs[0] - outs[1]).abs().max() > 1e-3
    assert (outs[1] - outs[2]).abs().max() > 1e-3
    assert not torch.isnan(torch.stack(outs)).any()


def test_backward_reaches_every_trainable_part(tiny):
    tiny.train()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    out, logits = tiny(x, 1.0)
    (out.mean() + logits.logsumexp(-1).mean()).backward()
    unused = {n for n, p in tiny.named_parameters() if p.grad is None}
    # The codebook is only indexed (argmax) and the quantizer is unused in inference forward.
    assert unused == {"quantize.embedding.weight"} or unused <= {"quantize.embedding.weight"}
    assert all(torch.isfinite(p.grad).all() for p in tiny.parameters() if p.grad is not None)


@pytest.mark.parametrize("key", ["params_ema", "params", None])
def test_official_format_checkpoint_loads_exactly(tiny, tmp_path, key):
    path = tmp_path / "tiny.pth"
    state = tiny.state_dict()
    torch.save({key: state} if key else state, path)
    loaded = load_codeformer(path)
    assert loaded.config == TINY  # deduced from shapes alone
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in state.items())
    assert identify_checkpoint(path) == "codeformer"


def test_deduce_config_recovers_the_official_config():
    assert deduce_config(CodeFormer(OFFICIAL).state_dict()) == OFFICIAL


def test_safetensors_round_trip_keeps_config_and_outputs(tiny, tmp_path):
    other = dataclasses.replace(TINY, n_head=8)  # not deducible from shapes: must come from header
    torch.manual_seed(1)
    net = CodeFormer(other).eval()
    path = tmp_path / "m.safetensors"
    save_codeformer(net, path, metadata={"name": "test"})
    loaded = load_codeformer(path)
    assert loaded.config == other
    assert json_header(path)["name"] == "test"
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(loaded(x)[0], net(x)[0], atol=1e-6)
    save_codeformer(net, tmp_path / "h.safetensors", half=True)
    with torch.no_grad():
        assert (load_codeformer(tmp_path / "h.safetensors")(x)[0] - net(x)[0]).abs().max() < 0.05


class _Evil:
    def __reduce__(self):
        return (print, ("code ran",))


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"", "not a readable PyTorch checkpoint"),
        (b"garbage" * 100, "not a readable PyTorch checkpoint"),
        (pickle.dumps(_Evil()), "not a readable PyTorch checkpoint"),
    ],
)
def test_bad_checkpoint_files_give_a_clear_error(tmp_path, content, expected):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointFormatError, match=expected) as err:
        load_codeformer(path)
    assert str(path) in str(err.value)
    assert identify_checkpoint(path) is None


def test_non_codeformer_dict_names_what_was_expected(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"params_ema": {"conv.weight": torch.zeros(1)}}, path)
    with pytest.raises(CheckpointFormatError, match="'params_ema' or 'params'") as err:
        load_codeformer(path)
    assert str(path) in str(err.value)
    assert "not found" in str(pytest.raises(CheckpointFormatError, load_codeformer, tmp_path / "none.pth").value)


def test_onnx_export_takes_w_as_input(tiny, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from engine.runtime.onnx_export import export_onnx, feature_names

    enc, dec = export_onnx(tiny, tmp_path)
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    enc_out = ort.InferenceSession(str(enc)).run(None, {"face": x.numpy()})
    decoder = ort.InferenceSession(str(dec))
    feeds = dict(zip(feature_names(tiny), enc_out[2:], strict=True))
    for w in (0.0, 0.7):
        image = decoder.run(None, {"codes": enc_out[0], "w": np.array([w], np.float32), **feeds})[0]
        with torch.no_grad():
            expected, _ = tiny(x, w)
        assert np.abs(image - expected.numpy()).max() < 1e-4
