"""Scores of restored faces against their ground truth, and their summary per method.

Metrics (``METRICS``) are computed at ``EVAL_SIZE`` (256²; the faces in the shared data are
rarely sharper than that, so the 512² ground truth is itself an enlargement):

* ``psnr_y``/``ssim_y`` on BT.601 luma and ``psnr``/``ssim`` on RGB (basicsr's definitions,
  ``training.metrics``); PSNR of identical images is capped at ``PSNR_CAP``.
* ``ids_<net>``: cosine of identity embeddings output ↔ ground truth, for the independent
  evaluator, each of its two networks (mobileface, faceres-pool) on its own, and dlib (what
  training optimises); ``idsref_<net>`` output ↔ first reference.
* ``lmd``: mean distance of dlib's 68 landmarks output ↔ ground truth over the inter-ocular
  distance (in %), the predictor placed on the ground truth's face box for both.
* ``niqe``: no-reference naturalness with the faces' own pristine model (``training.niqe``).
* LPIPS and FID need pretrained weights; they are reported as skipped unless installed.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from engine.errors import LikenessError, ModelMissingError

from . import metrics, niqe

EVAL_SIZE = 256
PSNR_CAP = 60.0
#: The combined evaluator, each independent network on its own, and dlib (what training optimises):
#: a gain counts only when every independent network shows it.
IDENTITY_NETS = ("evaluator", "mobileface", "faceres-pool", "dlib")
#: metric -> (label, higher is better)
METRICS: dict[str, tuple[str, bool]] = {
    "psnr_y": ("PSNR-Y", True),
    "ssim_y": ("SSIM-Y", True),
    "psnr": ("PSNR", True),
    "ssim": ("SSIM", True),
    "ids_evaluator": ("IDS (evaluator)", True),
    "ids_mobileface": ("IDS (mobileface)", True),
    "ids_faceres-pool": ("IDS (faceres-pool)", True),
    "ids_dlib": ("IDS (dlib)", True),
    "idsref_evaluator": ("IDS(REF) (evaluator)", True),
    "idsref_mobileface": ("IDS(REF) (mobileface)", True),
    "idsref_faceres-pool": ("IDS(REF) (faceres-pool)", True),
    "idsref_dlib": ("IDS(REF) (dlib)", True),
    "lmd": ("LMD %", False),
    "niqe": ("NIQE", False),
    "lpips": ("LPIPS", False),
}
FID_SKIPPED = (
    "needs pretrained Inception-v3 weights (pt_inception-2015-12-05), which are not installed "
    "and cannot be downloaded here"
)


def to_eval_size(img: np.ndarray) -> np.ndarray:
    if img.shape[0] == EVAL_SIZE:
        return img
    interp = cv2.INTER_AREA if img.shape[0] > EVAL_SIZE else cv2.INTER_CUBIC
    return np.asarray(cv2.resize(img, (EVAL_SIZE, EVAL_SIZE), interpolation=interp))


def capped_psnr(a: np.ndarray, b: np.ndarray, *, y_channel: bool = False) -> float:
    """PSNR capped at ``PSNR_CAP``: identical images would otherwise average to infinity."""
    value = metrics.psnr(a, b, y_channel=y_channel)
    return PSNR_CAP if not math.isfinite(value) else min(value, PSNR_CAP)


class Landmarks68:
    """dlib's 68-point predictor on aligned faces; the box comes from the ground truth."""

    def __init__(self) -> None:
        from engine.faces.detect import dlib_model_path

        dlib: Any = importlib.import_module("dlib")  # compiled, without type information
        self._dlib = dlib
        self._predictor = dlib.shape_predictor(str(dlib_model_path("shape_predictor_68_face_landmarks.dat")))
        self._hog = dlib.get_frontal_face_detector()

    def box(self, face: np.ndarray) -> Any:
        """dlib's face box (a ``dlib.rectangle``); the template's when HOG finds none."""
        rects = self._hog(face, 0)
        if len(rects):
            return max(rects, key=lambda r: r.area())
        s = face.shape[0] / 512  # where the FFHQ template puts a frontal face's dlib box
        return self._dlib.rectangle(round(120 * s), round(150 * s), round(392 * s), round(420 * s))

    def points(self, face: np.ndarray, box: Any) -> np.ndarray:
        shape = self._predictor(np.ascontiguousarray(face), box)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)


def landmark_distance(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean point distance over the inter-ocular distance of ``truth`` (eye centres), in %."""
    iod = np.linalg.norm(truth[36:42].mean(0) - truth[42:48].mean(0))
    return float(np.linalg.norm(pred - truth, axis=1).mean() / max(float(iod), 1e-6) * 100)


def lpips_network() -> tuple[Any, None] | tuple[None, str]:
    """(LPIPS-AlexNet, None) when the lpips package and its AlexNet weights are installed, else (None, why)."""
    try:
        lpips: Any = importlib.import_module("lpips")  # optional, and without type information
    except ImportError:
        return (
            None,
            "needs the lpips package and pretrained AlexNet weights, which are not installed (no download here)",
        )
    import torch

    hub = Path(torch.hub.get_dir()) / "checkpoints"
    if not any(hub.glob("alexnet-*.pth")):
        return None, f"the lpips package is installed but the AlexNet weights are not (expected in {hub})"
    return lpips.LPIPS(net="alex", verbose=False).eval(), None


def lpips_distance(net: Any, a: np.ndarray, b: np.ndarray) -> float:
    import torch

    def t(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x).permute(2, 0, 1)[None].float() / 127.5 - 1

    with torch.no_grad():
        return float(net(t(a), t(b)).item())


class Scorer:
    """Computes every available metric; unavailable ones are listed in ``skipped`` with a reason."""

    def __init__(self, identity_nets: Sequence[str] = IDENTITY_NETS, device: str = "cpu") -> None:
        from engine.identity import make_embedder

        self.skipped: dict[str, str] = {}
        self.embedders = {}
        for name in identity_nets:
            try:
                self.embedders[name] = make_embedder(name, device)
            except (ModelMissingError, LikenessError) as exc:
                self.skipped[f"ids_{name}"] = str(exc)
        self.landmarks: Landmarks68 | None
        try:
            self.landmarks = Landmarks68()
        except Exception as exc:  # dlib or its model missing
            self.landmarks = None
            self.skipped["lmd"] = f"dlib 68-point predictor unavailable: {exc}"
        try:
            self.niqe_model = niqe.load_model()
        except FileNotFoundError as exc:
            self.niqe_model = None
            self.skipped["niqe"] = str(exc)
        self.lpips, reason = lpips_network()
        if reason is not None:
            self.skipped["lpips"] = reason
        self.skipped["fid"] = FID_SKIPPED

    def embed(self, faces: list[np.ndarray]) -> dict[str, np.ndarray]:
        return {name: emb.embed_images(faces) for name, emb in self.embedders.items()}

    def score(
        self,
        outs: list[np.ndarray],
        gts: list[np.ndarray],
        gt_emb: dict[str, np.ndarray],
        ref_emb: dict[str, list[np.ndarray | None]],
        gt_landmarks: list[tuple[Any, np.ndarray]],
    ) -> list[dict[str, float]]:
        """One row of metrics per output; ``gt_landmarks`` holds (box, points) of each ground truth."""
        outs = [to_eval_size(o) for o in outs]
        out_emb = self.embed(outs)
        rows = []
        for i, (out, gt) in enumerate(zip(outs, gts, strict=True)):
            row = {
                "psnr_y": capped_psnr(out, gt, y_channel=True),
                "ssim_y": metrics.ssim(out, gt, y_channel=True),
                "psnr": capped_psnr(out, gt),
                "ssim": metrics.ssim(out, gt),
            }
            for name, emb in out_emb.items():
                row[f"ids_{name}"] = float(np.dot(emb[i], gt_emb[name][i]))
                ref = ref_emb[name][i]
                if ref is not None:
                    row[f"idsref_{name}"] = float(np.dot(emb[i], ref))
            if self.landmarks is not None:
                box, truth = gt_landmarks[i]
                row["lmd"] = landmark_distance(self.landmarks.points(out, box), truth)
            if self.niqe_model is not None:
                row["niqe"] = niqe.niqe(out, self.niqe_model)
            if self.lpips is not None:
                row["lpips"] = lpips_distance(self.lpips, out, gt)
            rows.append(row)
        return rows


def summarize(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """metric -> {mean, std, n} over the rows that have it."""
    out = {}
    for key in METRICS:
        vals = np.array([r[key] for r in rows if key in r and r[key] is not None], dtype=np.float64)
        if vals.size:
            out[key] = {"mean": float(vals.mean()), "std": float(vals.std()), "n": int(vals.size)}
    return out
