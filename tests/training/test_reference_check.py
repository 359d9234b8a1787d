"""Calibration of the wrong-reference check: an abstain floor where identity is lost, a threshold above it."""

from __future__ import annotations

import numpy as np
import pytest

from training.reference_check import Pairs, calibrate, rates


def _pairs(rng, n_same, n_diff, noise_below=0.12, noise_above=0.015, edge=2.5) -> Pairs:
    """Same ≈ 0.94, different ≈ 0.82; below sharpness ``edge`` the cosines are mostly noise."""

    def side(n, mean):
        q = np.exp(rng.uniform(np.log(1.0), np.log(30.0), n))
        noise = np.where(q < edge, noise_below, noise_above)
        return mean + noise * rng.standard_normal(n), q

    same, qs = side(n_same, 0.94)
    diff, qd = side(n_diff, 0.82)
    return Pairs(same, qs, diff, qd)


def test_the_check_abstains_where_the_face_is_too_damaged_and_decides_above():
    rng = np.random.default_rng(0)
    fit = {"a": _pairs(rng, 3000, 30000), "b": _pairs(rng, 3000, 30000)}
    floor, t = calibrate(fit)
    assert 2.1 < floor < 3.2  # the synthetic edge is 2.5
    assert 0.86 < t < 0.90
    held = {"c": _pairs(np.random.default_rng(1), 3000, 30000)}
    r = rates(held, t, floor)["c"]
    # decided share ≈ share of log-uniform sharpness above the floor
    assert r["decided"] == pytest.approx(1 - np.log(floor) / np.log(30.0), abs=0.05)
    assert r["same_pass"] > 0.99 and r["different_warned"] > 0.99
    everything = rates(held, t, 0.0)["c"]
    assert everything["decided"] == 1.0 and everything["same_pass"] < 0.95  # guessing on noise costs false alarms


def test_pairs_filter_by_sharpness():
    p = Pairs(np.array([0.9, 0.95]), np.array([1.0, 5.0]), np.array([0.8, 0.7, 0.85]), np.array([4.0, 1.0, 6.0]))
    kept = p.above(3.0)
    assert kept.same.tolist() == [0.95] and kept.different.tolist() == [0.8, 0.85]
    assert Pairs.pooled([p, kept]).same.size == 3
