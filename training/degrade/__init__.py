"""Synthetic degradations that turn high-quality faces into training / evaluation inputs.

Two pipelines, both seeded and byte-for-byte reproducible:

* **First order** — the CodeFormer model (Zhou et al., "Towards Robust Blind Face Restoration with
  Codebook Lookup Transformer", NeurIPS 2022), as in its ``FFHQBlindDataset``::

      I_l = {[(I_h ⊛ k_σ)↓_r + n_δ]_JPEG_q}↑_r

  k_σ: isotropic / anisotropic Gaussian kernel (41×41 in the official config), ↓_r / ↑_r: bilinear
  resize by r, n_δ: Gaussian noise of std δ on the 0..255 scale, JPEG_q: JPEG at quality q. Then
  optional colour jitter (a random per-channel shift) and optional grayscale.

* **Second order** (``DegradationConfig.second_order``) — the "high-order" model of Real-ESRGAN
  (Wang et al., "Real-ESRGAN: Training Real-World Blind Super-Resolution with Pure Synthetic
  Data", ICCV Workshops 2021): two rounds of blur → random resize (area / bilinear / bicubic,
  up / down / keep) → Gaussian or Poisson noise (colour or gray) → JPEG, with kernels drawn from
  iso/aniso Gaussian, generalized Gaussian and plateau shapes (or a 2-D sinc), and a final
  resize to the target size with an optional sinc filter, in random order with the last JPEG.
  Here the "target size" is the HQ size / r and the result is brought back up (↑_r) to the HQ
  size, so both pipelines return an image the size of their input (what CodeFormer trains on).

Design: ``sample_params(config, rng)`` draws every random choice into a JSON-able
``DegradationParams`` (including an integer seed for the noise), and ``apply(hq, params)`` is a
pure function of the image and those params. So a run can be logged (``params.jsonl``) and any
image re-made exactly. Only ``np.random.Generator`` objects are used (never the global RNG);
OpenCV's resize / filter / JPEG codec are deterministic.

Presets (``PRESETS``; first order unless noted; all use a 41×41 iso/aniso 50/50 Gaussian kernel):

=============  ===========  ===========  ===========  ===========  ==========================
preset         σ (blur)     r (down)     δ (noise)    q (JPEG)     extras
=============  ===========  ===========  ===========  ===========  ==========================
mild           [0.5, 3]     [1, 4]       [0, 5]       [70, 95]     —
moderate       [2, 8]       [4, 12]      [0, 10]      [50, 80]     —
severe         [8, 15]      [16, 30]     [10, 20]     [30, 50]     —
sweep1         [2, 8]       [4, 12]      [0, 10]      [50, 80]     the reference sweep (``SWEEP``):
sweep2         [4, 10]      [8, 18]      [4, 13]      [44, 70]     sweep1 = moderate,
sweep3         [6, 12]      [12, 24]     [7, 16]      [37, 60]     sweep4 = severe,
sweep4         [8, 15]      [16, 30]     [10, 20]     [30, 50]     sweep5 beyond severe
sweep5         [12, 20]     [24, 40]     [15, 25]     [20, 40]
codeformer     [1, 15]      [4, 30]      [0, 20]      [30, 80]     colour jitter p=0.3 shift 20,
                                                                   grayscale p=0.01 (official
                                                                   stage II config)
realesrgan     [0.2, 3]     4 (fixed)    [1, 30]      [30, 95]     second order, Real-ESRGAN x4
                                                                   config (kernel 7..21, mixed
                                                                   kernel types, sinc, Poisson)
background_x2  [0.2, 1.5]   2 (fixed)    [0, 10]      [50, 95]     second order, milder (kernel
                                                                   7..15, last JPEG 40..95): the
                                                                   background upscaler's data
                                                                   (``apply(..., restore_size=
                                                                   False)`` keeps it small)
=============  ===========  ===========  ===========  ===========  ==========================

mild / moderate / severe are meant for graded evaluation sets, so they have no colour jitter or
grayscale (which would make PSNR against a colour HQ meaningless); ``dataclasses.replace`` any
preset to change that or to switch on ``second_order``. Note that CodeFormer's dataset, when it
grays the input, also grays the ground truth; ``apply`` only changes the LQ, so a trainer should
gray its HQ when ``params.grayscale`` is true.

Modules: ``config`` (configs, params, presets), ``sampling`` (``sample_params``), ``operators``
(``apply``, ``degrade``, the kernels), ``on_device`` (``apply_batch``: the first-order pipeline
on a batch on the training device, a GPU) and ``paired_set`` (``write_paired_set``).
"""

from .config import (
    KERNEL_TYPES,
    MIN_SIZE,
    PRESETS,
    RESIZE_MODES,
    SWEEP,
    DegradationConfig,
    DegradationParams,
    KernelParams,
    NoiseParams,
    Range,
    ResizeParams,
    SecondOrderParams,
)
from .operators import apply, degrade, lq_size, make_kernel
from .paired_set import write_paired_set
from .sampling import sample_params

__all__ = [
    "KERNEL_TYPES",
    "MIN_SIZE",
    "PRESETS",
    "RESIZE_MODES",
    "DegradationConfig",
    "DegradationParams",
    "KernelParams",
    "NoiseParams",
    "Range",
    "ResizeParams",
    "SWEEP",
    "SecondOrderParams",
    "apply",
    "degrade",
    "lq_size",
    "make_kernel",
    "sample_params",
    "write_paired_set",
]
