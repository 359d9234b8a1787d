"""Reference-guided restoration: test-time identity guidance and the API/CLI plumbing of references."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest
import torch

from engine.api import RestoreOptions, RestoreRequest, Restorer
from engine.errors import LikenessError
from engine.imageio import read_image, write_image
from engine.guidance import IdentityGuidance, centred_identity, identity_guided_decode
from engine.identity import make_embedder
from engine.models import ModelStore
from engine.nets.codeformer import TINY, CodeFormer, save_codeformer
from engine.nets.codeformer.reference import ReferenceAdapter
from tests.conftest import shared_path


def test_guidance_moves_the_identity_toward_the_target_and_never_away():
    torch.manual_seed(0)
    net = CodeFormer(TINY).eval()
    emb = make_embedder("dlib")
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    target = emb.embed(torch.rand(1, 3, 64, 64) * 2 - 1).expand(2, -1)
    with torch.no_grad():
        feats = net.encode_features(x)
        logits = net.predict_logits(feats[0])
    out, stats = identity_guided_decode(net, logits, feats, 0.5, target, emb, IdentityGuidance(strength=2.0, steps=2))
    assert out.shape == (2, 3, 64, 64)
    assert stats["cos_after"] >= stats["cos_before"]
    off, same = identity_guided_decode(net, logits, feats, 0.5, target, emb, IdentityGuidance(strength=0.0))
    assert same["cos_after"] == same["cos_before"]
    assert torch.equal(off, net.decode(net.codes_from_logits(logits), feats, 0.5))
    assert all(p.grad is None for p in net.parameters())


def test_guidance_steers_by_centred_identity_vectors():
    """dlib's calibrated centre (mean training face, norm ≈ 0.91) is removed before the cosine."""
    emb = make_embedder("dlib")
    center = emb.center
    assert center is not None and center.shape == (128,) and 0.85 < np.linalg.norm(center) < 0.95
    embed, to_target = centred_identity(emb)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    raw = emb.embed(x)
    c = torch.from_numpy(center)
    assert torch.allclose(embed(x), torch.nn.functional.normalize(raw - c, dim=-1), atol=1e-6)
    assert torch.allclose(to_target(raw), torch.nn.functional.normalize(raw - c, dim=-1), atol=1e-6)


def test_guidance_reaches_the_features_cft_fuses_in_and_training_does_not():
    """CFT reads the encoder features detached (official training); guidance differentiates through them."""
    torch.manual_seed(0)
    net = CodeFormer(TINY).eval()
    feats = tuple(f.detach().requires_grad_(True) for f in net.encode_features(torch.rand(1, 3, 64, 64) * 2 - 1))
    quant = net.quantize.lookup(net.codes_from_logits(net.predict_logits(feats[0])), TINY.latent_side)
    trained = torch.autograd.grad(net.decode_features(quant, feats, 0.5).sum(), feats[1:], allow_unused=True)
    assert all(g is None for g in trained)
    guided = torch.autograd.grad(net.decode_features(quant, feats, 0.5, detach_skips=False).sum(), feats[1:], allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in guided)


def test_options_validate_the_reference_controls():
    with pytest.raises(LikenessError, match="between 1 and 5"):
        RestoreOptions(num_references=6)
    with pytest.raises(LikenessError, match="≥ 0"):
        RestoreOptions(identity_guidance=-1)


@pytest.fixture(scope="module")
def restorer(tmp_path_factory) -> Restorer:
    root = tmp_path_factory.mktemp("store")
    torch.manual_seed(0)
    net = CodeFormer(TINY)
    net.attach_reference(ReferenceAdapter.for_network(net))
    save_codeformer(net, root / "tiny-ref.safetensors")
    store = ModelStore(root / "models")
    store.import_file(root / "tiny-ref.safetensors", name="tiny-ref")
    return Restorer(model="tiny-ref", device="cpu", store=store, backend="onnx")


@pytest.fixture(scope="module")
def album(tmp_path_factory):
    faces = shared_path("data", "faces")
    ids = (faces / "test_identities.txt").read_text().split()
    folder = tmp_path_factory.mktemp("album")
    paths = []
    for ident, count in ((ids[2], 4), (ids[3], 1)):
        for src in sorted((faces / "identities" / ident).glob("*.jpg"))[:count]:
            paths.append(shutil.copy(src, folder / f"{ident}_{src.name}"))
    return paths


def test_restoring_with_references_warns_about_the_wrong_person(restorer, album, tmp_path):
    photo, refs, stranger = album[0], album[1:4], album[4]
    opts = RestoreOptions(detector="hog", references=tuple(refs) + (stranger, tmp_path / "missing.jpg"), num_references=2)
    result = restorer.restore(RestoreRequest(photo, tmp_path / "out.png", opts))
    assert (tmp_path / "out.png").is_file() and result.faces[0].restored is not None
    text = "\n".join(result.warnings)
    assert "missing.jpg" in text
    assert f"reference {stranger.name} not used" in text
    plain = restorer.restore(RestoreRequest(photo, options=RestoreOptions(detector="hog")))
    assert plain.faces[0].restored.shape == result.faces[0].restored.shape


def test_a_face_too_damaged_to_check_is_restored_with_a_notice_instead_of_a_verdict(restorer, album, tmp_path):
    rgb = read_image(album[0]).rgb
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (w // 10, h // 10), interpolation=cv2.INTER_AREA)  # a ~15-pixel face, enlarged
    damaged = tmp_path / "damaged.png"
    write_image(damaged, cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC))
    opts = RestoreOptions(detector="hog", references=tuple(album[1:3]), num_references=2)
    result = restorer.restore(RestoreRequest(damaged, options=opts))
    assert result.faces and result.faces[0].restored is not None
    text = "\n".join(result.warnings)
    assert "too damaged to confirm that the references show this person" in text
    assert "may be a different person" not in text  # no false alarm on the right person's photos


def test_cli_takes_references(restorer, album, tmp_path, monkeypatch):
    from engine import cli

    monkeypatch.setattr(cli, "Restorer", None, raising=False)
    args = cli.build_parser().parse_args(["restore", str(album[0]), "--ref", str(album[1]), str(album[2]), "--num-refs", "2"])
    assert args.ref == [album[1], album[2]] and args.num_refs == 2 and args.guidance is None
    assert cli.main(["restore", str(album[0]), "--ref", str(tmp_path / "nope.jpg")]) == 2
