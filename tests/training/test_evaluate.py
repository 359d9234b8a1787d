"""The evaluation module end to end on real faces: sets per preset, baselines, sanity of the numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import shared_path
from training.evaluate import PSNR_CAP, PairedSet, bicubic_unsharp, build_sets, main, run_eval
from training.face_import import import_faces, read_index

IDENTITIES = 4
PHOTOS = 3


@pytest.fixture(scope="module")
def face_cache(tmp_path_factory) -> tuple[Path, Path]:
    """A face cache of a few held-out identities (3 photos each), and a test list naming them."""
    faces = shared_path("data", "faces")
    held_out = (faces / "test_identities.txt").read_text().split()[:IDENTITIES]
    photos = [p for ident in held_out for p in sorted((faces / "identities" / ident).glob("*.jpg"))[:PHOTOS]]
    out = tmp_path_factory.mktemp("faces")
    for item in import_faces(photos, out, root=faces / "identities"):
        assert not isinstance(item, str), item
    test_list = out / "test.txt"
    test_list.write_text("\n".join(held_out) + "\n")
    return out, test_list


@pytest.fixture(scope="module")
def report(face_cache, tmp_path_factory) -> dict:
    cache, test_list = face_cache
    out = tmp_path_factory.mktemp("report")
    sets = build_sets(cache, out / "sets", test_list=test_list, per_identity=PHOTOS, refs_per_identity=2)

    def ground_truth(lq, records):  # a perfect restorer: returns the HQ itself
        return [PairedSet.open(Path(r["_set"])).hq(r["name"]) for r in records]

    for root in sets.values():  # lets the oracle find its set from the records
        lines = [json.loads(x) for x in (root / "params.jsonl").read_text().splitlines()]
        (root / "params.jsonl").write_text("".join(json.dumps({**x, "_set": str(root)}) + "\n" for x in lines))
    md, js = run_eval(sets, out, extra_methods={"oracle": ground_truth}, identity_nets=("dlib",))
    data = json.loads(js.read_text())
    data["_md"] = md.read_text()
    data["_out"] = out
    return data


def mean(report: dict, preset: str, method: str, metric: str) -> float:
    return report["presets"][preset]["methods"][method]["summary"][metric]["mean"]


def test_sets_hold_the_held_out_faces_with_references(face_cache, report):
    cache, _ = face_cache
    assert len(read_index(cache)) == IDENTITIES * PHOTOS
    pset = PairedSet.open(report["presets"]["mild"]["set"])
    assert len(pset.records) == IDENTITIES * PHOTOS
    assert pset.hq(pset.names[0]).shape == (512, 512, 3)
    for name, refs in pset.references.items():
        assert 1 <= len(refs) <= 2
        assert all(
            name.split("_")[-1] != ref.split("_")[-1] or ref.rsplit("_", 1)[0] != name.rsplit("_", 1)[0] for ref in refs
        ), "a face is never its own reference"
        assert all((pset.root / "refs" / f"{r}.png").is_file() for r in refs)


def test_an_image_against_itself_scores_perfectly(report):
    for preset in ("mild", "moderate", "severe"):
        assert mean(report, preset, "oracle", "ids_dlib") == pytest.approx(1.0, abs=1e-5)
        assert mean(report, preset, "oracle", "psnr") == PSNR_CAP
        assert mean(report, preset, "oracle", "ssim_y") == pytest.approx(1.0)
        assert mean(report, preset, "oracle", "lmd") == pytest.approx(0.0, abs=1e-9)


def test_harder_presets_lose_more_identity_and_quality(report):
    ids = [mean(report, p, "input", "ids_dlib") for p in ("mild", "moderate", "severe")]
    psnr = [mean(report, p, "input", "psnr_y") for p in ("mild", "moderate", "severe")]
    niqe = [mean(report, p, "input", "niqe") for p in ("mild", "moderate", "severe")]
    lmd = [mean(report, p, "input", "lmd") for p in ("mild", "moderate", "severe")]
    assert ids[0] > ids[1] > ids[2]
    assert psnr[0] > psnr[1] > psnr[2]
    assert niqe[0] < niqe[1] < niqe[2]
    assert lmd[0] < lmd[2]
    # IDS(REF) of the ground truth: another photo of the same person, well above chance (≈ 0.82 for dlib).
    assert mean(report, "mild", "oracle", "idsref_dlib") > 0.88


def test_report_has_tables_rows_sheets_and_skips(report):
    md = report["_md"]
    for preset in ("mild", "moderate", "severe"):
        assert f"## {preset} ({IDENTITIES * PHOTOS} faces)" in md
        assert (report["_out"] / f"contact_{preset}.png").is_file()
        rows = report["presets"][preset]["methods"]["bicubic+unsharp"]["rows"]
        assert len(rows) == IDENTITIES * PHOTOS and {"name", "psnr_y", "ids_dlib", "niqe"} <= rows[0].keys()
    assert "| input |" in md and "| bicubic+unsharp |" in md and "per-image rows" in md
    assert "lpips" in report["skipped"] and "not installed" in report["skipped"]["lpips"]


def test_unsharp_baseline_sharpens_without_changing_size():
    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    import cv2

    lq = cv2.resize(small, (128, 128), interpolation=cv2.INTER_LINEAR)
    out = bicubic_unsharp([lq], [{"lq_size": [32, 32]}])[0]
    assert out.shape == lq.shape and out.dtype == np.uint8
    bicubic = cv2.resize(
        cv2.resize(lq, (32, 32), interpolation=cv2.INTER_AREA), (128, 128), interpolation=cv2.INTER_CUBIC
    )
    assert cv2.Laplacian(out, cv2.CV_64F).var() > 1.2 * cv2.Laplacian(bicubic, cv2.CV_64F).var()


def test_cli_reports_a_missing_set_clearly(tmp_path, capsys):
    assert main(["--set", str(tmp_path / "nope"), "-o", str(tmp_path / "r")]) == 2
    assert "not a paired set" in capsys.readouterr().out


def test_lpips_is_measured_only_when_package_and_weights_are_installed(monkeypatch, tmp_path):
    import sys
    import types

    import torch

    from training import eval_scoring

    class FakeLPIPS(torch.nn.Module):
        def __init__(self, net, verbose):
            super().__init__()

        def forward(self, a, b):
            return (a - b).abs().mean().view(1, 1, 1, 1)

    monkeypatch.setitem(sys.modules, "lpips", types.SimpleNamespace(LPIPS=FakeLPIPS))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    net, reason = eval_scoring.lpips_network()
    assert net is None and reason is not None and "AlexNet weights are not" in reason
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "alexnet-owt-7be5be79.pth").write_bytes(b"")
    net, reason = eval_scoring.lpips_network()
    assert net is not None and reason is None
    img = np.zeros((8, 8, 3), np.uint8)
    assert eval_scoring.lpips_distance(net, img, img) == 0.0
    assert eval_scoring.lpips_distance(net, img, img + 255) == pytest.approx(2.0)
