"""NIQE, a no-reference quality score, with its "pristine" model fitted on this project's faces.

Mittal, Soundararajan and Bovik, "Making a 'Completely Blind' Image Quality Analyzer", IEEE
Signal Processing Letters 2013. Natural images' mean-subtracted contrast-normalised (MSCN)
coefficients follow regular statistics that blur, noise and compression disturb; NIQE fits a
multivariate Gaussian (MVG) to 36 such statistics over patches of pristine images and scores an
image by the distance of its own MVG to that model (lower = more natural).

Why it fits here: it needs no pretrained network (MUSIQ, LPIPS and FID all do), and its
model can be fitted on exactly the kind of image Likeness outputs — aligned faces. The published
model was fitted on 125 landscape/people photos at 96 px patches; ours is fitted on sharp
aligned 256² faces of the *training* identities (``fit_pristine``), with 32 px patches so a 256²
face gives 64 patches (a 96 px patch would give 4). Scores are therefore on their own scale:
compare methods with each other, not with published NIQE values.

Features per patch and scale (two scales: the image and its bicubic half): the AGGD shape and
mean variance of the MSCN coefficients (2), and for the four neighbour products (horizontal,
vertical, two diagonals) the AGGD shape, mean, and left/right variances (16): 18 × 2 = 36.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from scipy.special import gamma as gamma_fn

PATCH = 32
SHARP_FRACTION = 0.75  # pristine patches: local sharpness above this fraction of the image's best
MODEL_FILE = Path(__file__).with_name("niqe_faces.json")

_GAM = np.arange(0.2, 10.001, 0.001)
_R_GAM = gamma_fn(2 / _GAM) ** 2 / (gamma_fn(1 / _GAM) * gamma_fn(3 / _GAM))


def _gaussian_window(size: int = 7, sigma: float = 7 / 6) -> np.ndarray:
    ax = np.arange(size) - (size - 1) / 2
    g = np.exp(-(ax**2) / (2 * sigma**2))
    w = np.outer(g, g)
    return w / w.sum()


_WINDOW = _gaussian_window()


def luminance(rgb: np.ndarray) -> np.ndarray:
    """float64 luma (BT.601, 0..255) of an RGB or gray uint8 image."""
    if rgb.ndim == 2:
        return rgb.astype(np.float64)
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    return 0.299 * r + 0.587 * g + 0.114 * b


def mscn(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MSCN coefficients and the local standard deviation (the sharpness map)."""
    mu = cv2.filter2D(gray, -1, _WINDOW, borderType=cv2.BORDER_REPLICATE)
    var = cv2.filter2D(gray * gray, -1, _WINDOW, borderType=cv2.BORDER_REPLICATE) - mu * mu
    sigma = np.sqrt(np.abs(var))
    return (gray - mu) / (sigma + 1), sigma


def aggd(x: np.ndarray) -> tuple[float, float, float]:
    """Asymmetric generalised Gaussian fit by moment matching: (shape α, left std, right std)."""
    x = x.ravel()
    left, right = x[x < 0], x[x > 0]
    left_std = math.sqrt(np.mean(left**2)) if left.size else 1e-6
    right_std = math.sqrt(np.mean(right**2)) if right.size else 1e-6
    gamma_hat = left_std / max(right_std, 1e-12)
    mean_sq = np.mean(x**2)
    r_hat = (np.mean(np.abs(x)) ** 2) / max(mean_sq, 1e-12)
    r_norm = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / ((gamma_hat**2 + 1) ** 2)
    alpha = float(_GAM[np.argmin((_R_GAM - r_norm) ** 2)])
    return alpha, left_std, right_std


def patch_features(block: np.ndarray) -> list[float]:
    """The 18 statistics of one MSCN patch."""
    alpha, left, right = aggd(block)
    feats = [alpha, (left**2 + right**2) / 2]
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        shifted = np.roll(block, shift=(-dy, -dx), axis=(0, 1))
        alpha, left, right = aggd(block * shifted)
        # The AGGD mean, from the scale parameters β = std · sqrt(Γ(1/α) / Γ(3/α)).
        beta = math.sqrt(gamma_fn(1 / alpha) / gamma_fn(3 / alpha))
        mean = (right - left) * beta * gamma_fn(2 / alpha) / gamma_fn(1 / alpha)
        feats.extend([alpha, mean, left**2, right**2])
    return feats


def image_features(rgb: np.ndarray, patch: int = PATCH, sharp_only: bool = False) -> np.ndarray:
    """(n_patches, 36) features over a grid of patches (scale 1 and 1/2 side by side).

    ``sharp_only`` keeps the patches whose mean local σ is ≥ SHARP_FRACTION of the sharpest
    patch's, as NIQE's pristine model does.
    """
    gray = luminance(rgb)
    h, w = (gray.shape[0] // patch) * patch, (gray.shape[1] // patch) * patch
    if h == 0 or w == 0:
        raise ValueError(f"image {gray.shape} smaller than one {patch}px patch")
    gray = gray[:h, :w]
    half = cv2.resize(gray, (w // 2, h // 2), interpolation=cv2.INTER_CUBIC)
    per_scale = []
    sharpness = None
    for img, p in ((gray, patch), (half, patch // 2)):
        coeffs, sigma = mscn(img)
        rows = []
        sharp = []
        for y in range(0, img.shape[0] - p + 1, p):
            for x in range(0, img.shape[1] - p + 1, p):
                rows.append(patch_features(coeffs[y : y + p, x : x + p]))
                sharp.append(sigma[y : y + p, x : x + p].mean())
        per_scale.append(np.array(rows))
        if sharpness is None:
            sharpness = np.array(sharp)
    feats = np.concatenate(per_scale, axis=1)
    if sharp_only:
        feats = feats[sharpness >= SHARP_FRACTION * sharpness.max()]
    return feats


def fit_pristine(images: Iterable[np.ndarray], patch: int = PATCH) -> dict:
    """The pristine MVG (mean, covariance) over sharp patches of ``images``."""
    feats = np.concatenate([image_features(im, patch, sharp_only=True) for im in images])
    feats = feats[np.isfinite(feats).all(axis=1)]
    return {
        "patch": patch,
        "n_patches": int(len(feats)),
        "mean": feats.mean(0).tolist(),
        "cov": np.cov(feats, rowvar=False).tolist(),
    }


@lru_cache(maxsize=4)
def load_model(path: str | None = None) -> dict:
    file = Path(path) if path else MODEL_FILE
    if not file.is_file():
        raise FileNotFoundError(f"{file}: NIQE model missing; fit it with `python -m training.niqe fit CACHE`")
    model = json.loads(file.read_text(encoding="utf-8"))
    model["mean"] = np.asarray(model["mean"])
    model["cov"] = np.asarray(model["cov"])
    return model


def niqe(rgb: np.ndarray, model: dict | None = None) -> float:
    """NIQE of an image (lower is more natural) against the faces' pristine model."""
    model = model or load_model()
    feats = image_features(rgb, model["patch"])
    feats = feats[np.isfinite(feats).all(axis=1)]
    mu = feats.mean(0)
    cov = np.cov(feats, rowvar=False) if len(feats) > 1 else np.zeros_like(model["cov"])
    diff = model["mean"] - mu
    inv = np.linalg.pinv((model["cov"] + cov) / 2)
    return float(math.sqrt(max(diff @ inv @ diff, 0.0)))


if __name__ == "__main__":  # python -m training.niqe fit CACHE [--count N]
    import argparse

    from .face_import import DEFAULT_TEST_LIST, load_crop, read_index, split_identities

    parser = argparse.ArgumentParser(description="Fit NIQE's pristine model on sharp training-identity faces.")
    parser.add_argument("command", choices=["fit"])
    parser.add_argument("cache", help="face cache made by training.face_import")
    parser.add_argument("--test-list", default=str(DEFAULT_TEST_LIST))
    parser.add_argument("--count", type=int, default=400)
    args = parser.parse_args()
    records = read_index(args.cache)
    train, _ = split_identities(records, args.test_list)
    # Pristine = faces not enlarged by the alignment (scale ≤ 2 at the 512 template means a 256 crop
    # is at least native resolution), sharpest first.
    candidates = sorted((r for r in train if r.scale <= 2.0), key=lambda r: -r.sharpness)[: args.count]
    model = fit_pristine(load_crop(args.cache, r) for r in candidates)
    model["source"] = (
        f"{len(candidates)} sharpest training-identity faces (scale ≤ 2) of {args.cache}, "
        f"{PATCH}px patches, sharp patches ≥ {SHARP_FRACTION} of the best"
    )
    MODEL_FILE.write_text(json.dumps(model) + "\n", encoding="utf-8")
    summary = f"wrote {MODEL_FILE} from {model['n_patches']} patches of {len(candidates)} faces"
    print(summary)
