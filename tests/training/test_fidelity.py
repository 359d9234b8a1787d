"""Training the fidelity path: pure-function batches, the degradation mixture, a short run that learns."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from engine.nets.fidelity import TINY_FIDELITY, FidelityModel
from training import data as D
from training import fidelity as T


def synthetic_faces(n: int, size: int = 256) -> list[D.FaceItem]:
    rng = np.random.default_rng(0)
    items = []
    for i in range(n):
        img = cv2.GaussianBlur(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), (0, 0), 2.0)
        items.append(D.FaceItem(cv2.normalize(img, np.empty_like(img), 0, 255, cv2.NORM_MINMAX), f"id{i % 3}", f"f{i}"))
    return items


def test_a_batch_is_a_pure_function_of_seed_and_step():
    items, configs = synthetic_faces(6), T._configs(256)
    a = T.batch(items, 3, 0, 4, T.MIXTURE, configs, 64)
    b = T.batch(items, 3, 0, 4, T.MIXTURE, configs, 64)
    c = T.batch(items, 4, 0, 4, T.MIXTURE, configs, 64)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[1], c[1])
    assert a[0].shape == (4, 3, 64, 64)


def test_the_mixture_includes_clean_faces_and_every_preset():
    items, configs = synthetic_faces(2), T._configs(256)
    clean = 0
    for step in range(40):
        hq, lq = T.degraded_pair(items[0], np.random.default_rng((0, step)), T.MIXTURE, configs)
        clean += np.array_equal(hq, lq)
    assert 2 <= clean <= 14  # 15 % of 40 draws, loosely
    assert abs(sum(p for _, p in T.MIXTURE) - 1) < 1e-9 and abs(sum(p for _, p in T.BLEND_MIXTURE) - 1) < 1e-9


def test_a_short_run_cleans_blur_and_keeps_clean_faces():
    torch.manual_seed(0)
    items = synthetic_faces(8)
    model = FidelityModel(TINY_FIDELITY)
    history = T.train_net(model, items, items, minutes=0, steps=60, batch_size=4, lr=2e-3, log_every=1000)
    val = history[-1]
    assert val["clean"]["output"] > 35  # a clean face passes through nearly untouched
    assert val["mild"]["output"] > val["mild"]["input"]  # and blur is reduced


def test_the_damage_target_is_zero_where_the_fidelity_face_is_right_and_one_where_it_is_lost():
    torch.manual_seed(0)
    hq = torch.rand(2, 3, 64, 64) * 2 - 1
    close = hq + 0.02 * torch.randn_like(hq)  # RMS 0.01 in [0, 1] units: a mild face
    lost = hq.clone()
    lost[1, :, :32] = 0.0  # the top half of the second face is gone
    assert T.damage_target(close, hq, 8).max() == 0
    target = T.damage_target(lost, hq, 8)
    assert target[0].max() == 0
    assert target[1, :, :2].min() > 0.9 and target[1, :, 6:].max() < 0.1
