"""Reference-guided restoration: test-time identity guidance and the API/CLI plumbing of references."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest
import torch

from engine.api import RestoreOptions, Restorer, RestoreRequest
from engine.errors import LikenessError
from engine.identity import make_embedder
from engine.imageio import read_image, write_image
from engine.models import ModelStore
from engine.nets.codeformer import TINY, CodeFormer, save_codeformer
from engine.nets.codeformer.reference import ReferenceAdapter
from engine.references.guide import (
    VIEW_MOVES,
    IdentityGuidance,
    ReferencePrior,
    apply_reference_prior,
    centred_identity,
    embed_views,
    identity_guided_decode,
    identity_views,
)
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


def test_guidance_with_codes_only_or_one_view_runs_and_still_never_moves_away():
    """``features=0`` (codes only) and ``views=False`` (the face as decoded) are valid settings."""
    torch.manual_seed(1)
    net = CodeFormer(TINY).eval()
    emb = make_embedder("dlib")
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    target = emb.embed(torch.rand(1, 3, 64, 64) * 2 - 1)
    with torch.no_grad():
        feats = net.encode_features(x)
        logits = net.predict_logits(feats[0])
    plans = (IdentityGuidance(features=0.0), IdentityGuidance(views=False), IdentityGuidance(features=0, views=False))
    for plan in plans:
        out, stats = identity_guided_decode(net, logits, feats, 0.5, target, emb, plan)
        assert out.shape == (1, 3, 64, 64) and stats["cos_after"] >= stats["cos_before"]


def test_identity_views_are_the_face_its_mirror_and_slightly_moved_copies():
    x = torch.rand(2, 3, 128, 128) * 2 - 1
    views = identity_views(x)
    assert views.shape == (2 * (2 + len(VIEW_MOVES)), 3, 128, 128)
    assert torch.equal(views[:2], x) and torch.equal(views[2:4], torch.flip(x, dims=[3]))
    torch.manual_seed(0)
    coarse = torch.rand(1, 3, 6, 6) * 2 - 1  # features about 20 px across
    face = torch.nn.functional.interpolate(coarse, size=128, mode="bicubic", align_corners=False)
    inner = (slice(None), slice(24, 104), slice(24, 104))
    for moved in identity_views(face)[2:]:  # a few pixels and degrees: the same face, reframed
        a, b = moved[inner].flatten(), face[0][inner].flatten()
        assert not torch.equal(a, b) and torch.corrcoef(torch.stack([a, b]))[0, 1] > 0.9


def test_views_identity_is_the_mean_of_the_views_identities():
    emb = make_embedder("dlib")
    embed, _ = centred_identity(emb)
    x = torch.rand(2, 3, 96, 96) * 2 - 1
    each = embed(identity_views(x)).view(-1, 2, emb.dim)
    expected = torch.nn.functional.normalize(each.mean(0), dim=-1)
    assert torch.allclose(embed_views(embed, x), expected, atol=1e-5)


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
    guided = torch.autograd.grad(
        net.decode_features(quant, feats, 0.5, detach_skips=False).sum(), feats[1:], allow_unused=True
    )
    assert any(g is not None and g.abs().sum() > 0 for g in guided)


def test_the_reference_prior_reaches_only_the_faces_too_damaged_to_carry_their_identity():
    torch.manual_seed(0)
    net = CodeFormer(TINY).eval()
    prior = ReferencePrior(codes=0.5, features=0.4)
    rng = np.random.default_rng(0)
    sharp = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
    blurred = cv2.resize(
        cv2.resize(sharp, (16, 16), interpolation=cv2.INTER_AREA), (512, 512), interpolation=cv2.INTER_CUBIC
    )
    weights = prior.weights([sharp, blurred])
    assert weights.tolist() == [0.0, 1.0]
    with torch.no_grad():
        feats = net.encode_features(torch.rand(2, 3, 64, 64) * 2 - 1)
        logits = net.predict_logits(feats[0])
        refs = net.encode_features(torch.rand(3, 3, 64, 64) * 2 - 1)
        new_logits, new_feats = apply_reference_prior(net, logits, feats, refs, weights, prior)
        ref_logp = torch.log_softmax(net.predict_logits(refs[0]), -1).mean(0)
    assert torch.equal(new_logits[0], logits[0])
    assert all(torch.equal(a[0], b[0]) for a, b in zip(new_feats, feats, strict=True))
    assert torch.allclose(new_logits[1], logits[1] + 0.5 * ref_logp, atol=1e-5)
    assert torch.equal(new_feats[0], feats[0])  # the transformer's input is left alone
    for f, r, g in zip(feats[1:], refs[1:], new_feats[1:], strict=True):  # 40 % of the way to the references' mean
        assert torch.allclose(g[1], 0.6 * f[1] + 0.4 * r.mean(0), atol=1e-5)
    untouched = apply_reference_prior(net, logits, feats, refs, torch.zeros(2), prior)
    assert untouched[0] is logits and untouched[1] is feats


def test_guidance_goes_only_to_faces_too_damaged_to_identify():
    """A face the identity check can still verify is restored from the photo alone."""
    from engine.references.guide import restore_with_references
    from engine.runtime.face_restorer import FaceRestorer

    torch.manual_seed(0)
    restorer = FaceRestorer(CodeFormer(TINY), torch.device("cpu"))
    emb = make_embedder("dlib")
    rng = np.random.default_rng(1)
    sharp = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
    damaged = cv2.resize(
        cv2.resize(sharp, (16, 16), interpolation=cv2.INTER_AREA), (512, 512), interpolation=cv2.INTER_CUBIC
    )
    ref = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
    plan = IdentityGuidance(steps=1)
    plain, _ = restore_with_references(restorer, [sharp], 0.5, [ref], emb)
    out, stats = restore_with_references(restorer, [sharp], 0.5, [ref], emb, plan)
    assert stats == {} and np.array_equal(out[0], plain[0])  # not guided
    _, forced = restore_with_references(restorer, [sharp], 0.5, [ref], emb, plan, guide_identifiable=True)
    _, guided = restore_with_references(restorer, [damaged], 0.5, [ref], emb, plan)
    assert "cos_before" in forced and "cos_before" in guided
    _, tiny = restore_with_references(restorer, [sharp], 0.5, [ref], emb, plan, face_sizes=[20.0])
    assert "cos_before" in tiny  # a 20-pixel face is guided however sharp its enlargement
    both, _ = restore_with_references(restorer, [sharp, damaged], 0.5, [ref], emb, plan)
    assert np.abs(both[0].astype(int) - plain[0]).max() <= 2  # in a batch, per face (batched conv rounding)


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
    opts = RestoreOptions(
        detector="hog", references=tuple(refs) + (stranger, tmp_path / "missing.jpg"), num_references=2
    )
    result = restorer.restore(RestoreRequest(photo, tmp_path / "out.png", opts))
    assert (tmp_path / "out.png").is_file() and result.faces[0].restored is not None
    text = "\n".join(result.warnings)
    assert "missing.jpg" in text
    assert f"reference {stranger.name} not used" in text
    plain = restorer.restore(RestoreRequest(photo, options=RestoreOptions(detector="hog")))
    assert plain.faces[0].restored.shape == result.faces[0].restored.shape


def test_references_leave_another_persons_photo_exactly_as_without_them(restorer, album, tmp_path):
    """References of one person, a photo of someone else: restored as without references, and
    one line says why they were not used (no "different person" alarm per reference)."""
    stranger, refs = album[4], tuple(album[1:4])
    result = restorer.restore(RestoreRequest(stranger, options=RestoreOptions(detector="hog", references=refs)))
    plain = restorer.restore(RestoreRequest(stranger, options=RestoreOptions(detector="hog")))
    assert np.array_equal(result.image, plain.image)
    assert result.warnings == [
        f"{stranger.name}: the references show someone other than the faces in this photo; they were not used"
    ]


def test_a_clear_face_is_restored_from_the_photo_alone_when_the_network_has_no_adapter(album, tmp_path):
    root = tmp_path / "store"
    root.mkdir()
    torch.manual_seed(0)
    save_codeformer(CodeFormer(TINY), root / "tiny-plain.safetensors")
    store = ModelStore(root / "models")
    store.import_file(root / "tiny-plain.safetensors", name="tiny-plain")
    restorer = Restorer(model="tiny-plain", device="cpu", store=store, backend="onnx")
    opts = RestoreOptions(detector="hog", references=tuple(album[1:3]), num_references=2)
    result = restorer.restore(RestoreRequest(album[0], options=opts))
    assert any("clear enough to be restored from the photo itself" in w for w in result.warnings), result.warnings
    plain = restorer.restore(RestoreRequest(album[0], options=RestoreOptions(detector="hog")))
    assert np.array_equal(result.faces[0].restored, plain.faces[0].restored)  # the same path as without references


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
    args = cli.build_parser().parse_args(
        ["restore", str(album[0]), "--ref", str(album[1]), str(album[2]), "--num-refs", "2"]
    )
    assert args.ref == [album[1], album[2]] and args.num_refs == 2 and args.guidance is None
    assert cli.main(["restore", str(album[0]), "--ref", str(tmp_path / "nope.jpg")]) == 2
