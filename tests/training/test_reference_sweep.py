"""The reference sweep's figures: paired gains per judge, the gain curve, the cost ratio."""

from __future__ import annotations

import pytest

from training.degrade import PRESETS, SWEEP
from training.reference_sweep import busy_cpu_note, markdown, paired, summarise


def rows(values: dict[str, list[float]]) -> list[dict[str, float | str]]:
    names = [f"f{i}" for i in range(len(next(iter(values.values()))))]
    return [{"name": n, **{f"ids_{j}": v[i] for j, v in values.items()}} for i, n in enumerate(names)]


def method(values: dict[str, list[float]], seconds: float) -> dict:
    return {"rows": rows(values), "seconds_per_face": seconds, "summary": {}}


def fake_report() -> dict:
    judges = ("evaluator", "mobileface", "faceres-pool", "dlib")
    inp = {j: [0.25, 0.55, 0.8] for j in judges}
    base = {j: [0.40, 0.60, 0.85] for j in judges}
    one = {j: [0.55, 0.62, 0.85] for j in judges}
    five = {j: [0.60, 0.63, 0.84] for j in judges}
    methods = {
        "input": {**method(inp, 0.0), "summary": {f"ids_{j}": {"mean": 0.533} for j in judges}},
        "m N=0": method(base, 0.2),
        "m N=1": method(one, 0.5),
        "m N=5": method(five, 0.7),
    }
    return {"presets": {"sweep4": methods}}


def test_gains_are_paired_per_face_and_per_judge():
    report = fake_report()
    gain = paired(report["presets"]["sweep4"], "m N=0", "m N=1", "mobileface")
    assert gain["gain"] == pytest.approx((0.15 + 0.02 + 0.0) / 3)
    assert gain["up"] == pytest.approx(2 / 3) and gain["n"] == 3
    summary = summarise(report, "m", [1, 5])
    level = summary["levels"]["sweep4"]
    assert level["5"]["faceres-pool"]["gain"] == pytest.approx((0.20 + 0.03 - 0.01) / 3)
    assert level["seconds_per_face"] == {"0": 0.2, "1": 0.5, "5": 0.7}
    # the curve bins faces by the input's evaluator IDS: the damaged face gains, the clear one not
    curve = {(b["from"], b["faces"]): b["gain"] for b in summary["curve"]["evaluator"]}
    assert curve[(0.0, 1)] == pytest.approx(0.15) and curve[(0.7, 1)] == pytest.approx(0.0)
    text = markdown(summary, "m", [1, 5], {"model": "m"})
    assert "| sweep4 | mobileface | 0.533 | 0.617 | 0.673, +0.057" in text
    assert "0.500 (2.5×)" in text


def test_the_sweep_runs_from_moderate_to_beyond_severe():
    assert PRESETS[SWEEP[0]].blur_sigma == PRESETS["moderate"].blur_sigma
    assert PRESETS[SWEEP[3]].downscale == PRESETS["severe"].downscale
    worst, severe = PRESETS[SWEEP[4]], PRESETS["severe"]
    assert worst.blur_sigma[0] > severe.blur_sigma[0] and worst.jpeg_quality[1] < severe.jpeg_quality[1]
    lows = [PRESETS[level].downscale[0] for level in SWEEP]
    assert lows == sorted(lows)


def test_a_busy_cpu_is_named_in_the_report():
    assert busy_cpu_note([0.4, 1.9], 2) is None
    note = busy_cpu_note([0.4, 3.6, 2.2], 2)
    assert note is not None and "3.6 on 2 cores" in note and "not comparable" in note
    assert busy_cpu_note([], 2) is None and busy_cpu_note([5.0], None) is None
