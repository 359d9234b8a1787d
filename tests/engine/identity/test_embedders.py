"""The identity interface: unit vectors, gradients to the input, names, similarity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.errors import ModelMissingError
from engine.identity import embedder_names, make_embedder, similarity


def test_dlib_backend_gives_unit_vectors_and_gradients():
    emb = make_embedder("dlib")
    faces = (torch.rand(2, 3, 128, 128) * 2 - 1).requires_grad_()
    vec = emb.embed(faces)
    assert vec.shape == (2, 128)
    assert torch.allclose(vec.norm(dim=1), torch.ones(2), atol=1e-5)
    vec[:, 0].sum().backward()
    assert faces.grad is not None and faces.grad.abs().sum() > 0


def test_embed_images_takes_any_square_size_alike():
    emb = make_embedder("dlib")
    rng = np.random.default_rng(0)
    face = rng.integers(0, 255, (512, 512, 3), dtype=np.uint8)
    import cv2

    small = cv2.resize(face, (256, 256), interpolation=cv2.INTER_AREA)
    a, b = emb.embed_images([face, small])
    assert similarity(a, b) > 0.98
    with pytest.raises(ValueError, match="square"):
        emb.embed_images([face[:, :300]])


def test_similarity_matches_between_numpy_and_torch():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(3, 8)), rng.normal(size=(3, 8))
    np.testing.assert_allclose(
        similarity(a, b), similarity(torch.from_numpy(a), torch.from_numpy(b)).numpy(), rtol=1e-6
    )
    assert similarity(a[0], a[0]) == pytest.approx(1.0)


def test_unknown_backend_is_a_clear_error():
    assert "dlib" in embedder_names()
    with pytest.raises(ModelMissingError, match="Unknown identity network 'nope'"):
        make_embedder("nope")
