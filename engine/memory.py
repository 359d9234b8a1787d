"""How much memory a restoration needs, and the budget it must fit in (checked before any work).

Peak use is set by the largest images held at once: the decoded input while it is read (Pillow's
copy and the array), the input and the upscaled output while faces are pasted, and at the write
the output array beside Pillow's copy of it (4 bytes a pixel), and, for a photo of a few
megapixels, the background network at work. Measured: a 12000×9000 photo at ×2 peaks at 3.82 GiB
of resident memory with the default background network (338 s; 3.76 GiB with bicubic;
``benchmarks/large_photo.py``); the estimate is 3.82 GiB.
"""

from __future__ import annotations

import os

from .errors import LikenessError

#: Networks, detectors and the Python runtime, with a margin.
BASE_BYTES = 2**30
#: The background network's working set: one tile's activations (a 432² input tile of the slim
#: RDN) and the allocator's slack. With the input, its deblocked copy, the uint8 output and the
#: float32 strip (``STRIP_ROWS`` output rows, 12 bytes a pixel), a 4000×3000 photo at ×2 is
#: estimated at 1.67 GiB; measured 1.62 GiB (``benchmarks/large_photo.py --size 4000x3000``).
NETWORK_BYTES = 2**29
STRIP_ROWS = 2 * (384 + 2 * 24)
#: Share of the machine's memory a restoration may plan to use.
BUDGET_SHARE = 0.8
BUDGET_ENV = "LIKENESS_MEMORY_BUDGET_GB"


def bytes_needed(width: int, height: int, upscale: float) -> int:
    """Estimated peak bytes to restore a ``width``×``height`` photo at ``upscale``."""
    inp = width * height
    out_width = round(width * upscale)
    out = out_width * round(height * upscale)
    network = 4 * inp + out + NETWORK_BYTES + 12 * out_width * STRIP_ROWS  # the background network at work
    return BASE_BYTES + max(6 * inp, 3 * inp + 3 * out, 7 * out, network)


def memory_budget() -> int:
    """Bytes a restoration may use: ``$LIKENESS_MEMORY_BUDGET_GB``, else 80 % of the machine's memory."""
    text = os.environ.get(BUDGET_ENV)
    if text:
        try:
            return int(float(text) * 2**30)
        except ValueError:
            raise LikenessError(f"{BUDGET_ENV}={text!r} is not a number of gigabytes") from None
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not on this system: do not guess low
        return 2**62
    return int(total * BUDGET_SHARE)


def check_fits(name: str, width: int, height: int, upscale: float) -> None:
    """LikenessError naming the photo and the sizes when its restoration would not fit the budget."""
    needed, budget = bytes_needed(width, height, upscale), memory_budget()
    if needed > budget:
        out_w, out_h = round(width * upscale), round(height * upscale)
        raise LikenessError(
            f"{name}: a {out_w}×{out_h} result (×{upscale:g} of {width}×{height}) needs about "
            f"{needed / 2**30:.1f} GB of memory, more than the {budget / 2**30:.1f} GB available; "
            "choose a smaller --upscale"
        )
