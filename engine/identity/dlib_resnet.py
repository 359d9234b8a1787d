"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1``) rebuilt in torch.

Network and weights are Davis E. King's (dlib.net; dlib's code is under the Boost Software
License, and the dlib-models README dedicates this trained model to the public domain). The
architecture is the one in dlib's ``examples/dnn_face_recognition_ex.cpp``::

    loss_metric<fc_no_bias<128, avg_pool_everything<
        alevel0<alevel1<alevel2<alevel3<alevel4<
        max_pool<3,3,2,2, relu<affine<con<32,7,7,2,2, input_rgb_image_sized<150>>>>>>>>>>>>>

with ``ares<N> = relu(x + affine(con3x3(relu(affine(con3x3(x))))))`` and ``ares_down`` using a
stride-2 first convolution and ``avg_pool<2,2,2,2>(x)`` on the shortcut; dlib's ``add_prev``
zero-pads the smaller operand (channels and the bottom/right border), which matters here
because stride-2 convolutions and pools have no padding (8 -> 3 vs 4 pixels at level 1).

The weights are read from the ``.dat`` shipped in ``face_recognition_models`` by our own parser
(:mod:`.dlib_format`), converted at first use and cached as safetensors in the user data dir;
no converted copy is committed. dlib itself is not needed at run time.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointFormatError, ModelMissingError
from ..files import atomic_path
from ..userdata import data_root
from .chip import chip_from_aligned
from .dlib_format import DlibNet, parse_dlib_dnn

DAT_NAME = "dlib_face_recognition_resnet_model_v1.dat"
CACHE_NAME = "dlib_resnet_v1.safetensors"
CACHE_FORMAT = "1"
AVG_RGB = (122.782, 117.001, 104.298)
"""dlib's ``input_rgb_image`` mean; it then divides by 256 (not a std)."""

# (channels, blocks, whether its first block downsamples) of each level, input side first:
# alevel4 .. alevel0.
LEVELS = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))
# (channels, downsample) of every residual block, input side first.
BLOCKS: tuple[tuple[int, bool], ...] = tuple(
    (channels, down and i == 0) for channels, count, down in LEVELS for i in range(count)
)


class Affine(nn.Module):
    """dlib's ``affine_`` (a batch-norm frozen into per-channel scale and shift)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma[:, None, None] + self.beta[:, None, None]


def add_prev(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev``: sum over the larger shape, the smaller operand zero-padded at the end."""
    if a.shape == b.shape:
        return a + b
    shape = [max(p, q) for p, q in zip(a.shape, b.shape, strict=True)]  # both (B,C,H,W)

    def grow(t: torch.Tensor) -> torch.Tensor:
        dc, dh, dw = (shape[i] - t.shape[i] for i in (1, 2, 3))
        return F.pad(t, (0, dw, 0, dh, 0, dc)) if dc or dh or dw else t

    return grow(a) + grow(b)


class ResBlock(nn.Module):
    """``ares`` / ``ares_down``: two 3x3 convolutions with affine, identity or avg-pool shortcut."""

    def __init__(self, in_ch: int, out_ch: int, down: bool) -> None:
        super().__init__()
        self.down = down
        stride = 2 if down else 1
        # dlib's default padding is 0 for strided layers, kernel/2 otherwise.
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 0 if down else 1)
        self.aff1 = Affine(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1)
        self.aff2 = Affine(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.aff2(self.conv2(F.relu(self.aff1(self.conv1(x)))))
        shortcut = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(add_prev(y, shortcut))


class DlibFaceEmbedder(nn.Module):
    """dlib's 128-D face descriptor network; ``forward`` maps 150x150 RGB chips (0..255) to raw descriptors.

    Differentiable end to end; :meth:`embed_aligned` adds the chip extraction from FFHQ-aligned
    faces so identity losses can flow back to a generator's output.
    """

    avg_rgb: torch.Tensor  # a buffer, registered in __init__

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("avg_rgb", torch.tensor(AVG_RGB).view(1, 3, 1, 1), persistent=False)
        self.conv = nn.Conv2d(3, 32, 7, 2, 0)
        self.aff = Affine(32)
        blocks = []
        in_ch = 32
        for ch, down in BLOCKS:
            blocks.append(ResBlock(in_ch, ch, down))
            in_ch = ch
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(256, 128, bias=False)

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        """(B,3,150,150) RGB in 0..255 -> (B,128) raw (not unit-norm) descriptors, like dlib's."""
        x = (chips - self.avg_rgb) / 256.0
        x = F.max_pool2d(F.relu(self.aff(self.conv(x))), 3, 2)
        for block in self.blocks:
            x = block(x)
        return self.fc(x.mean(dim=(2, 3)))

    def embed_aligned(self, faces: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W) FFHQ-aligned RGB faces in [-1,1] -> (B,128) unit descriptors, differentiable."""
        chips = chip_from_aligned((faces + 1.0) * 127.5)
        return normalize_descriptor(self(chips))

    def descriptor_from_chip(self, chip: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Raw descriptor(s) of dlib-style chip(s): uint8 HxWx3 / BxHxWx3 arrays or float tensors."""
        return descriptor_from_chip(self, chip)

    @property
    def res_blocks(self) -> list[ResBlock]:
        """``blocks``, typed: every one is a :class:`ResBlock`."""
        return [cast(ResBlock, block) for block in self.blocks]

    def layers_in_dlib_order(self) -> Iterator[tuple[str, nn.Module | None]]:
        """(kind, module) of every dlib computational layer, input side first, as the .dat stores them."""
        yield "con", self.conv
        yield "affine", self.aff
        yield "relu", None
        yield "max_pool", None
        for block in self.res_blocks:
            yield "con", block.conv1
            yield "affine", block.aff1
            yield "relu", None
            yield "con", block.conv2
            yield "affine", block.aff2
            if block.down:
                yield "avg_pool", None
            yield "add_prev", None
            yield "relu", None
        yield "avg_pool", None
        yield "fc", self.fc


def normalize_descriptor(desc: torch.Tensor) -> torch.Tensor:
    """Unit-length descriptors (dlib's are raw; its 0.6 distance threshold applies to raw ones)."""
    return F.normalize(desc, dim=-1)


def descriptor_from_chip(model: DlibFaceEmbedder, chip: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Raw descriptors of 150x150 chips given as uint8 HWC / BHWC arrays or (B,3,150,150) tensors."""
    if isinstance(chip, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(chip)).float()
        if t.ndim == 3:
            t = t[None]
        t = t.permute(0, 3, 1, 2)
    else:
        t = chip.float()
        if t.ndim == 3:
            t = t[None]
    param = next(model.parameters())
    return model(t.to(param.device, param.dtype))


# ---------------------------------------------------------------------------------------
# Conversion from dlib's file


def _expected_versions() -> list[int]:
    """The wrapper-version chain dlib writes for this architecture (loss=1, layer=2, tag/skip=1)."""
    chain = [1, 2, 2]  # loss_metric, fc_no_bias, avg_pool_everything
    for _, down in reversed(BLOCKS):
        if down:  # relu, add_prev2, avg_pool, skip1, tag2, affine, con, relu, affine, con, tag1
            chain += [2, 2, 2, 1, 1, 2, 2, 2, 2, 2, 1]
        else:  # relu, add_prev1, affine, con, relu, affine, con, tag1
            chain += [2, 2, 2, 2, 2, 2, 2, 1]
    return chain + [2, 2, 2, 3]  # max_pool, relu, affine, con on the input


def state_dict_from_dlib(net: DlibNet, model: DlibFaceEmbedder | None = None) -> dict[str, torch.Tensor]:
    """Map a parsed dlib network onto :class:`DlibFaceEmbedder`'s state dict, checking every shape."""
    model = model or DlibFaceEmbedder()
    if net.versions != _expected_versions():
        raise CheckpointFormatError(f"{DAT_NAME}: layer structure differs from dlib_face_recognition_resnet_model_v1")
    slots = list(model.layers_in_dlib_order())
    if [k for k, _ in slots] != [layer.kind for layer in net.layers]:
        raise CheckpointFormatError(f"{DAT_NAME}: layer sequence differs from dlib_face_recognition_resnet_model_v1")
    names = {id(m): n for n, m in model.named_modules()}
    out: dict[str, torch.Tensor] = {}
    for (kind, module), layer in zip(slots, net.layers, strict=True):  # same kinds: same length
        if module is None:
            continue
        prefix = names[id(module)]
        p = torch.from_numpy(np.asarray(layer.params, dtype=np.float32).copy())
        # The kinds match dlib's (checked above) and each kind is one module class.
        if kind == "con" and isinstance(module, nn.Conv2d):
            w = module.weight
            if (
                layer.fields["filters"] != tuple(w.shape)
                or layer.fields["stride_y"] != module.stride[0]
                or layer.fields["padding_y"] != module.padding[0]
            ):
                raise CheckpointFormatError(f"{DAT_NAME}: convolution {prefix} has unexpected shape")
            n = w.numel()
            out[f"{prefix}.weight"] = p[:n].view_as(w)
            out[f"{prefix}.bias"] = p[n:].clone()
        elif kind == "affine" and isinstance(module, Affine):
            c = module.gamma.numel()
            if p.numel() != 2 * c or layer.fields["mode"] != 0:
                raise CheckpointFormatError(f"{DAT_NAME}: affine {prefix} has unexpected shape")
            out[f"{prefix}.gamma"], out[f"{prefix}.beta"] = p[:c].clone(), p[c:].clone()
        elif kind == "fc" and isinstance(module, nn.Linear):
            n_in, n_out = layer.fields["num_inputs"], layer.fields["num_outputs"]
            if (n_out, n_in) != tuple(module.weight.shape) or layer.fields["bias_mode"] != 1:
                raise CheckpointFormatError(f"{DAT_NAME}: fc layer has unexpected shape")
            out[f"{prefix}.weight"] = p.view(n_in, n_out).t().contiguous()  # dlib stores (in, out)
    return {key: t.contiguous() for key, t in out.items()}


def find_dlib_model(name: str = DAT_NAME) -> Path:
    """The .dat inside the installed ``face_recognition_models`` (without importing it: pkg_resources)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissingError(f"{name} not found: install it with `pip install face_recognition_models`")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / name
    if not path.is_file():
        raise ModelMissingError(
            f"{path} is missing: reinstall it with `pip install --force-reinstall face_recognition_models`"
        )
    return path


def cache_dir() -> Path:
    """``$LIKENESS_HOME/cache`` or the platform's user data dir + ``/cache``."""
    return data_root() / "cache"


def _source_stamp(src: Path) -> dict[str, str]:
    st = src.stat()
    return {
        "format": CACHE_FORMAT,
        "source": src.name,
        "source_size": str(st.st_size),
        "source_mtime_ns": str(st.st_mtime_ns),
    }


def convert_dlib_model(src: Path, dst: Path) -> dict[str, torch.Tensor]:
    """Parse ``src``, write the torch weights to ``dst`` atomically (temp file + rename), return them."""
    from safetensors.torch import save_file

    state = state_dict_from_dlib(parse_dlib_dnn(src))
    with atomic_path(dst) as tmp:
        save_file(state, str(tmp), metadata=_source_stamp(src))
    return state


def _read_cache(dst: Path, src: Path) -> dict[str, torch.Tensor] | None:
    """Cached weights if they were converted from this very source file (same size and mtime)."""
    from safetensors import safe_open

    if not dst.is_file():
        return None
    try:
        with safe_open(str(dst), framework="pt") as f:
            if f.metadata() != _source_stamp(src):
                return None
            return {k: f.get_tensor(k) for k in f.keys()}
    except Exception:  # a damaged cache is rebuilt, never fatal
        return None


def load_dlib_embedder(device: str | torch.device = "cpu", source: str | Path | None = None) -> DlibFaceEmbedder:
    """The frozen embedder in eval mode; converts the .dat on first use and caches the result.

    The cache (``<data dir>/cache/dlib_resnet_v1.safetensors``) is rebuilt when the source's
    size or mtime changes. Gradients still flow to inputs; parameters have requires_grad False.
    """
    src = Path(source) if source is not None else find_dlib_model()
    dst = cache_dir() / CACHE_NAME
    state = _read_cache(dst, src)
    if state is None:
        state = convert_dlib_model(src, dst)
    model = DlibFaceEmbedder()
    model.load_state_dict(state)
    model.requires_grad_(False)
    return model.eval().to(device)
