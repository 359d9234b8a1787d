"""Training data: aligned high-quality faces, and their on-the-fly degraded inputs.

Two sources give the same thing, a list of :class:`FaceItem` (an aligned uint8 RGB face at the
model's size plus its identity label):

* :func:`faces_from_folder` — any folder of aligned faces (``<root>/<identity>/<file>``; images
  directly in ``root`` get the identity ``""``), any size, resized to the model's.
* :func:`faces_from_cache` — the aligned-face cache written by ``training.face_import`` (index
  records carry identity, ``scale`` and ``sharpness``), filtered so targets are sharp.

The faces are decoded once and kept in memory (2,243 training faces at 128² are 110 MB), so a
step costs no disk reads. :class:`PairSampler` turns them into batches; on a GPU the
degradation itself can run on the device (``on_device``, ``degrade.on_device``), so workers
only draw it. Everything random about a batch — which faces, the flip, the colour jitter, the
degradation — is drawn from
``np.random.default_rng((seed, step))``, so a batch is a pure function of (seed, step): resuming
at step k gives exactly the batches an uninterrupted run would have seen, with no data-loader state
to save, and any batch can be re-made for debugging.

Test identities (``test_identities.txt``) are removed by :func:`exclude_identities` before any
of this; the trainer refuses to start if one slips through.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from engine.imageio import read_image

from .degrade import PRESETS, DegradationConfig, DegradationParams, apply, sample_params
from .face_import import FaceRecord, load_crop, read_index
from .imaging import resize_square

log = logging.getLogger(__name__)

#: ``PairSampler.arrays``: HQ, LQ (or None), identities, the drawn params (or None).
BatchArrays = tuple[np.ndarray, np.ndarray | None, list[str], list[DegradationParams] | None]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
#: The degradation presets describe faces aligned at 512 px (the FFHQ template).
REFERENCE_SIZE = 512


@dataclass(frozen=True)
class FaceItem:
    """One aligned HQ face at the model's size."""

    image: np.ndarray  # (S, S, 3) uint8 RGB
    identity: str
    name: str


def faces_from_folder(root: str | os.PathLike[str], size: int) -> list[FaceItem]:
    """Aligned faces under ``root``; the identity is the first folder below ``root``."""
    root = Path(root)
    items = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
        rel = path.relative_to(root)
        identity = rel.parts[0] if len(rel.parts) > 1 else ""
        items.append(FaceItem(resize_square(read_image(path).rgb, size), identity, str(rel.with_suffix(""))))
    return items


@dataclass(frozen=True)
class CacheFilter:
    """Which cached faces are sharp enough to be training targets.

    ``scale`` is aligned-512 pixels per photo pixel: a face enlarged more than
    ``REFERENCE_SIZE / size`` times is blurrier than the model's resolution, so the default
    keeps ``scale <= max_scale_factor * 512 / size`` (a little enlargement is invisible after the
    resize down). ``min_sharpness`` drops crops whose Laplacian variance says they are blurred
    in the photo itself (motion, focus).
    """

    max_scale_factor: float = 1.25
    min_sharpness: float = 20.0

    def keep(self, record: FaceRecord, size: int) -> bool:
        return record.scale <= self.max_scale_factor * REFERENCE_SIZE / size and record.sharpness >= self.min_sharpness


def faces_from_cache(
    cache_dir: str | os.PathLike[str],
    size: int,
    *,
    identities: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
    flt: CacheFilter | None = CacheFilter(),
) -> list[FaceItem]:
    """Cached aligned faces (``training.face_import``), filtered, resized to ``size``."""
    wanted = set(identities) if identities is not None else None
    excluded = set(exclude)
    items = []
    for rec in read_index(cache_dir):
        if rec.identity in excluded or (wanted is not None and rec.identity not in wanted):
            continue
        if flt is not None and not flt.keep(rec, size):
            continue
        items.append(FaceItem(resize_square(load_crop(cache_dir, rec), size), rec.identity, rec.name))
    return items


def read_identity_list(path: str | os.PathLike[str]) -> set[str]:
    return {line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()}


def exclude_identities(items: Sequence[FaceItem], held_out: Iterable[str]) -> list[FaceItem]:
    held = set(held_out)
    return [it for it in items if it.identity not in held]


def split_validation(items: Sequence[FaceItem], n_identities: int) -> tuple[list[FaceItem], list[FaceItem]]:
    """(train, val): the last ``n_identities`` identities (sorted) are kept for validation."""
    ids = sorted({it.identity for it in items})
    val_ids = set(ids[-n_identities:]) if n_identities > 0 else set()
    return [it for it in items if it.identity not in val_ids], [it for it in items if it.identity in val_ids]


# ----------------------------------------------------------------------------- degradation


def degradation_for_size(config: DegradationConfig, size: int) -> DegradationConfig:
    """A 512-px degradation config expressed at ``size`` px.

    Blur σ, the downscale factor r and the kernel size are lengths in pixels of the 512 template,
    so they scale with ``size / 512`` (r stays ≥ 1): a face that is 1/8 of a 512 crop in the
    photo is 1/2 of a 128 crop. Noise and JPEG act at the low resolution and are kept.
    """
    f = size / REFERENCE_SIZE
    if f == 1:
        return config

    def odd(k: float) -> int:
        k = max(3, int(round(k)))
        return k if k % 2 else k + 1

    return dataclasses.replace(
        config,
        name=f"{config.name}@{size}",
        blur_sigma=(config.blur_sigma[0] * f, config.blur_sigma[1] * f),
        downscale=(max(1.0, config.downscale[0] * f), max(1.0, config.downscale[1] * f)),
        kernel_size=(odd(config.kernel_size[0] * f), odd(config.kernel_size[1] * f)),
    )


def make_degradation(spec: dict | str, size: int) -> DegradationConfig:
    """From a stage config's ``degradation`` entry: a preset name, or ``{"preset": name, **overrides}``.

    Overrides are in 512-px units like the presets; the result is scaled to ``size``.
    """
    if isinstance(spec, str):
        spec = {"preset": spec}
    spec = dict(spec)
    base = PRESETS[spec.pop("preset", "codeformer")]
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()}
    return degradation_for_size(dataclasses.replace(base, **overrides), size)


# ----------------------------------------------------------------------------- batches


@dataclass(frozen=True)
class Augment:
    """Augmentations applied to the HQ target (and so to its LQ)."""

    hflip: float = 0.5
    color_jitter: float = 0.0  # probability of a brightness/contrast/saturation jitter of the HQ
    jitter_strength: float = 0.1


@dataclass
class Batch:
    hq: torch.Tensor  # (B,3,S,S) in [-1,1]
    lq: torch.Tensor  # same; equals hq when no degradation is configured, or until ``degraded``
    identity: list[str]
    params: list[DegradationParams] | None = None  # drawn but not yet applied (on-device degradation)

    def to(self, device: torch.device | str) -> Batch:
        return Batch(self.hq.to(device), self.lq.to(device), self.identity, self.params)

    def degraded(self) -> Batch:
        """The batch with its drawn degradations applied where it is (``degrade.on_device``)."""
        if self.params is None:
            return self
        from .degrade.on_device import apply_batch

        return Batch(self.hq, apply_batch(self.hq, self.params), self.identity)


def to_tensor(images: Sequence[np.ndarray] | np.ndarray) -> torch.Tensor:
    """uint8 RGB faces (a list, or a (B,S,S,3) stack) as a (B,3,S,S) float batch in [-1, 1]."""
    arr = np.asarray(images).astype(np.float32).transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(arr)) / 127.5 - 1.0


def to_images(t: torch.Tensor) -> list[np.ndarray]:
    """The inverse of ``to_tensor``: a batch in [-1, 1] as uint8 RGB faces."""
    arr = ((t.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return list(arr)


def _gray(img: np.ndarray) -> np.ndarray:
    g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    return np.repeat(g[..., None], 3, axis=2)


def _jitter(img: np.ndarray, rng: np.random.Generator, s: float) -> np.ndarray:
    x = img.astype(np.float32)
    b, c, sat = rng.uniform(1 - s, 1 + s, 3)
    x = x * b
    x = (x - x.mean()) * c + x.mean()
    g = x.mean(axis=2, keepdims=True)
    x = (x - g) * sat + g
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


class PairSampler:
    """Batches of (HQ, LQ) faces as a pure function of (seed, step).

    Each epoch visits every face once in an order drawn from ``(seed, epoch)``; the batch of step
    k is faces ``k*B .. k*B+B-1`` of that infinite sequence. Per-sample randomness (flip, jitter,
    degradation) comes from ``(seed, step, slot)``.

    ``on_device``: the degradations are drawn here but applied later, on the device the batch
    trains on (``Batch.degraded``); the LQ is then the same draw, made by the device's ops.
    """

    def __init__(
        self,
        items: Sequence[FaceItem],
        batch_size: int,
        seed: int,
        degradation: DegradationConfig | None = None,
        augment: Augment = Augment(),
        on_device: bool = False,
    ) -> None:
        if not items:
            raise ValueError("no training faces")
        self.items = list(items)
        self.batch_size = batch_size
        self.seed = seed
        self.degradation = degradation
        self.augment = augment
        self.on_device = on_device and degradation is not None
        self._perm_cache: dict[int, np.ndarray] = {}

    def _order(self, epoch: int) -> np.ndarray:
        perm = self._perm_cache.get(epoch)
        if perm is None:
            perm = np.random.default_rng((self.seed, 0xDA7A, epoch)).permutation(len(self.items))
            self._perm_cache = {epoch: perm}
        return perm

    def indices(self, step: int) -> list[int]:
        n = len(self.items)
        out = []
        for pos in range(step * self.batch_size, (step + 1) * self.batch_size):
            out.append(int(self._order(pos // n)[pos % n]))
        return out

    def sample(
        self, item: FaceItem, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray | None, DegradationParams | None]:
        """(HQ, LQ, params): LQ is None when it is left to the device (``on_device``)."""
        hq = item.image
        if rng.uniform() < self.augment.hflip:
            hq = hq[:, ::-1]
        if self.augment.color_jitter and rng.uniform() < self.augment.color_jitter:
            hq = _jitter(hq, rng, self.augment.jitter_strength)
        hq = np.ascontiguousarray(hq)
        if self.degradation is None:
            return hq, hq, None
        params = sample_params(self.degradation, rng)
        lq = None if self.on_device else apply(hq, params)
        if params.grayscale:  # as CodeFormer's dataset: a gray input has a gray target
            hq = _gray(hq)
        return hq, lq, params

    def arrays(self, step: int) -> BatchArrays:
        """The batch of ``step`` as uint8 (B,S,S,3) stacks: HQ, LQ (None without degradation or
        when it is left to the device), identities, and the drawn params when left to the device."""
        hqs, lqs, ids, drawn = [], [], [], []
        for slot, idx in enumerate(self.indices(step)):
            rng = np.random.default_rng((self.seed, step, slot))
            hq, lq, params = self.sample(self.items[idx], rng)
            hqs.append(hq)
            lqs.append(lq)
            drawn.append(params)
            ids.append(self.items[idx].identity)
        made_here = self.degradation is not None and not self.on_device
        return np.stack(hqs), (np.stack(lqs) if made_here else None), ids, (drawn if self.on_device else None)

    def batch(self, step: int) -> Batch:
        return batch_from_arrays(*self.arrays(step))

    def fixed_batch(self, n: int, seed: int) -> Batch:
        """A reproducible batch of ``n`` faces spread over the items (for validation)."""
        picks = np.linspace(0, len(self.items) - 1, min(n, len(self.items))).round().astype(int)
        hqs, lqs, ids = [], [], []
        for slot, idx in enumerate(picks):
            rng = np.random.default_rng((seed, 0x7A1, slot))
            item = self.items[int(idx)]
            hq = item.image
            if self.degradation is None:
                lq = hq
            else:
                params = sample_params(self.degradation, rng)
                lq = apply(hq, params)
                if params.grayscale:
                    hq = _gray(hq)
            hqs.append(hq)
            lqs.append(lq)
            ids.append(item.identity)
        return Batch(to_tensor(hqs), to_tensor(lqs), ids)


def batch_from_arrays(
    hq: np.ndarray, lq: np.ndarray | None, ids: list[str], params: list[DegradationParams] | None = None
) -> Batch:
    hq_t = to_tensor(hq)
    return Batch(hq_t, hq_t if lq is None else to_tensor(lq), ids, params)


_WORKER_SAMPLER: PairSampler | None = None  # the sampler a worker process builds batches with


#: How long a batch may take in a worker before the training process builds it itself.
WORKER_TIMEOUT_S = 300.0


def _worker_init(sampler: PairSampler) -> None:
    global _WORKER_SAMPLER
    _WORKER_SAMPLER = sampler
    cv2.setNumThreads(1)  # the workers are the parallelism


def _worker_arrays(step: int) -> BatchArrays:
    if _WORKER_SAMPLER is None:
        raise RuntimeError("the worker process was started without a sampler")
    return _WORKER_SAMPLER.arrays(step)


class Prefetcher:
    """Builds the batches of the next steps in worker processes while the network trains.

    On a GPU the degradation of each batch (CPU work) would otherwise leave the accelerator
    idle most of the time. Batches stay a pure function of the step (``PairSampler``), so
    results equal the synchronous path and ``--resume`` stays exact; a request for a step other
    than the next one restarts the queue there. ``ahead`` bounds memory.

    Workers are *spawned*, each receiving the sampler (its faces) once: forked workers inherit
    OpenCV's and torch's thread pools mid-state and can deadlock on their first cv2 call (seen
    in the test suite, after other tests had used cv2 in the parent).
    """

    def __init__(self, sampler: PairSampler, workers: int, ahead: int | None = None) -> None:
        from collections import deque

        self.ahead = ahead or 2 * workers
        self._sampler = sampler
        self._pool = multiprocessing.get_context("spawn").Pool(workers, initializer=_worker_init, initargs=(sampler,))
        self._broken = False
        self._queue: deque = deque()
        self._next = 0  # the step the queue's tail will submit next

    def _fill(self) -> None:
        while len(self._queue) < self.ahead:
            self._queue.append((self._next, self._pool.apply_async(_worker_arrays, (self._next,))))
            self._next += 1

    def batch(self, step: int) -> Batch:
        """The step's batch; built here instead when the workers stopped answering (a worker
        that dies leaves its task unanswered for ever), which gives the same batch, slower."""
        if self._broken:
            return batch_from_arrays(*self._sampler.arrays(step))
        if not self._queue or self._queue[0][0] != step:
            self._queue.clear()
            self._next = step
        self._fill()
        _, result = self._queue.popleft()
        try:
            return batch_from_arrays(*result.get(timeout=WORKER_TIMEOUT_S))
        except multiprocessing.TimeoutError:
            log.warning("batch workers stopped answering; building batches in the training process")
            self._broken = True
            self._queue.clear()
            self._pool.terminate()
            return batch_from_arrays(*self._sampler.arrays(step))

    def close(self) -> None:
        self._pool.terminate()
        self._pool.join()
