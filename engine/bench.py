"""``likeness bench``: how fast this machine restores, measured now, against what it can do at best.

Every figure is measured in the run that prints it, on the sample photos:

- ``peak_gflops``: a 2048² fp32 matrix product in torch (and bf16, where the CPU or GPU has it),
  the yardstick the networks are compared with. It is torch's matrix product, not the silicon's
  limit: ONNX Runtime's convolutions do better than it on these CPUs (a fraction above 1);
- ``lite_ms_per_face``: the default path (likeness-lite with the fidelity path) per aligned face;
- ``official_ms_per_face``: the official CodeFormer configuration (random weights: they time
  exactly like the real ones, which cannot be downloaded everywhere) through the same back end,
  and its achieved GFLOP/s as a fraction of the fp32 peak (about 810 GFLOP a face);
- ``slider_ms``: a slider move, one decode at a new w;
- ``whole_photo_ms``: the first sample photo end to end, warm;
- ``detect_ms_per_photo``: the default face detector on the sample photos.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import api
from .api import LikenessError, ModelStore, RestoreOptions, RestoreRequest, read_image
from .samples import sample_photos

#: Multiply-adds ×2 of the official network on one 512² face (encoder, transformer, decoder with CFT).
OFFICIAL_GFLOP_PER_FACE = 810.0


def best_seconds(work: Callable[[], object], repeat: int = 3) -> float:
    """The fastest of ``repeat`` runs after one warm-up (the steadiest figure on a shared machine)."""
    work()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


#: CPU flags (Linux ``/proc/cpuinfo``) of native bf16 matrix arithmetic.
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether the CPU multiplies bf16 natively. Without it torch emulates bf16, and a 2048²
    product takes minutes instead of milliseconds (1.3 GFLOP/s on an AVX2-only EPYC), so the
    figure is left out rather than timed. Unknown (no ``/proc/cpuinfo``) counts as no."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.partition(":")[2].split())
    return bool(flags & BF16_CPU_FLAGS)


def peak_gflops(device: str = "cpu") -> dict[str, float]:
    """GFLOP/s of a 2048² matrix product in fp32, and in bf16 where the device has it natively."""
    import torch

    n = 2048
    out = {}
    kinds = [("fp32", torch.float32)]
    if not device.startswith("cpu") or cpu_has_native_bf16():
        kinds.append(("bf16", torch.bfloat16))
    for name, dtype in kinds:
        try:
            a = torch.randn(n, n, device=device, dtype=dtype)
            b = torch.randn(n, n, device=device, dtype=dtype)

            def product(a=a, b=b) -> None:
                torch.matmul(a, b)
                if device.startswith("cuda"):
                    torch.cuda.synchronize()

            out[name] = 2 * n**3 / best_seconds(product) / 1e9
        except (RuntimeError, TypeError):  # no bf16 on this device
            continue
    return out


def run_bench(device: str = "auto", official: bool = True) -> dict[str, object]:
    """Every figure of the module docstring, measured now."""
    photos = sample_photos()
    if not photos:
        raise LikenessError("no sample photos to measure with (resources/samples is empty)")
    restorer = api.Restorer(device=device)
    status = restorer.status()
    faces = restorer.find_faces(read_image(photos[0]).rgb, RestoreOptions())
    if not faces:
        raise LikenessError(f"{photos[0]}: no face found to measure with")
    crops = [f.aligned for f in faces]
    figures: dict[str, object] = {"device": status.device_label, "model": status.model}
    peak = peak_gflops(str(restorer.device))
    figures["peak_gflops"] = round(peak["fp32"], 1)
    if "bf16" in peak:
        figures["peak_gflops_bf16"] = round(peak["bf16"], 1)
    figures["lite_ms_per_face"] = round(1000 * best_seconds(lambda: restorer.restore_faces(crops, 0.5)) / len(crops), 1)
    encoded = restorer.encode_face(crops[0])
    figures["slider_ms"] = round(1000 * best_seconds(lambda: restorer.decode_face(encoded, crops[0], 0.7)), 1)
    with tempfile.TemporaryDirectory(prefix="likeness-bench-") as out:
        request = RequestFor(photos[0], Path(out))
        figures["whole_photo_ms"] = round(1000 * best_seconds(lambda: restorer.restore(request.next())), 1)
    detector = restorer.detector("auto")
    images = [read_image(p).rgb for p in photos]
    per_photo = [best_seconds(lambda rgb=rgb: detector.detect(rgb), repeat=1) for rgb in images]
    figures["detect_ms_per_photo"] = round(1000 * statistics.mean(per_photo), 1)
    if official:
        seconds = official_seconds_per_face(crops[0], device)
        figures["official_ms_per_face"] = round(1000 * seconds, 1)
        figures["official_gflops"] = round(OFFICIAL_GFLOP_PER_FACE / seconds, 1)
        figures["official_fraction_of_peak"] = round(OFFICIAL_GFLOP_PER_FACE / seconds / peak["fp32"], 3)
    return figures


class RequestFor:
    """A fresh output name per run, so the never-overwrite policy is not what is measured."""

    def __init__(self, photo: Path, folder: Path) -> None:
        self.photo, self.folder, self.n = photo, folder, 0

    def next(self) -> RestoreRequest:
        self.n += 1
        return RestoreRequest(self.photo, self.folder / f"{self.photo.stem}-{self.n}.png", RestoreOptions())


def official_seconds_per_face(face: np.ndarray, device: str) -> float:
    """The official configuration with random weights, through the default back end (the ONNX
    export is cached in the models folder of a private home, made once)."""
    import torch

    from .nets.codeformer import OFFICIAL, CodeFormer, save_codeformer

    home = Path(tempfile.gettempdir()) / "likeness-bench-official"
    weights = home / "random-official.safetensors"
    if not weights.is_file():
        home.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(0)
        save_codeformer(CodeFormer(OFFICIAL), weights)
    store = ModelStore(home / "models")
    if "random-official" not in {r.id for r in store.records()}:
        store.import_file(weights, name="random-official")
    restorer = api.Restorer(model="random-official", device=device, store=store, fidelity=None)
    return best_seconds(lambda: restorer.restore_faces([face], 0.5), repeat=2)


def main(as_json: bool, device: str = "auto", official: bool = True) -> int:
    figures = run_bench(device, official)
    if as_json:
        print(json.dumps(figures))
        return 0
    width = max(map(len, figures))
    for key, value in figures.items():
        print(f"{key:{width}}  {value}")
    print(f"(threads: {os.cpu_count()} CPUs visible; python {sys.version.split()[0]})")
    return 0
