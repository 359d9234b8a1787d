"""Reading and writing CodeFormer weights.

Two formats: the official release (``.pth`` holding ``params_ema`` or ``params``, loaded with
``torch.load(weights_only=True)`` so no code in the file ever runs), and the project's own
``.safetensors`` whose header carries the :class:`CodeFormerConfig` as JSON. For official files
the config is deduced from tensor shapes (spandrel's approach), so compact official-format
checkpoints load too.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ...errors import CheckpointFormatError
from ..state_dict import StateDict, read_checkpoint
from .config import OFFICIAL, CodeFormerConfig
from .network import CodeFormer

#: Keys whose presence identifies a CodeFormer state dict.
IDENTIFYING_KEYS = ("position_emb", "quantize.embedding.weight", "feat_emb.weight", "idx_pred_layer.1.weight")
CONFIG_METADATA_KEY = "likeness_config"


def read_state_dict(path: str | Path) -> tuple[StateDict, CodeFormerConfig | None]:
    """Tensors of a CodeFormer file and, for safetensors, the config from its header.

    Raises CheckpointFormatError naming the file and what was expected.
    """
    state, meta = _read(path)
    return state, header_config(meta, path)


def _read(path: str | Path) -> tuple[StateDict, dict[str, str]]:
    """(state dict, header metadata) of a file that must hold CodeFormer weights."""
    state, meta = read_checkpoint(path, expected="CodeFormer weights such as the official codeformer.pth")
    if not is_codeformer_state(state):
        if Path(path).suffix == ".safetensors":
            raise CheckpointFormatError(f"{path}: safetensors file does not hold CodeFormer weights")
        raise CheckpointFormatError(
            f"{path}: not a CodeFormer checkpoint; expected a dict with 'params_ema' or 'params' "
            f"holding CodeFormer weights (found {sorted(state)[:6]})"
        )
    return state, meta


def header_config(meta: Mapping[str, str], path: str | Path) -> CodeFormerConfig | None:
    """The config a safetensors header carries, None when it has none (official files)."""
    if CONFIG_METADATA_KEY not in meta:
        return None
    try:
        return CodeFormerConfig.from_json(meta[CONFIG_METADATA_KEY])
    except (ValueError, TypeError) as exc:
        raise CheckpointFormatError(f"{path}: invalid config in header ({exc})") from None


def is_codeformer_state(state: Mapping[str, object]) -> bool:
    """Whether a (canonical) state dict holds CodeFormer weights: its identifying keys are tensors."""
    return all(isinstance(state.get(k), torch.Tensor) for k in IDENTIFYING_KEYS)


def codeformer_config(state: StateDict, meta: Mapping[str, str], path: str | Path) -> CodeFormerConfig:
    """The header's config where there is one (our own files), else the one the shapes give."""
    return header_config(meta, path) or deduce_config(state)


def deduce_config(state: dict[str, torch.Tensor]) -> CodeFormerConfig:
    """Network config from tensor shapes and key counts of a CodeFormer state dict."""
    codebook_size, codebook_dim = state["quantize.embedding.weight"].shape
    latent_size, dim_embd = state["position_emb"].shape
    latent_side = math.isqrt(latent_size)
    nf = state["encoder.blocks.0.weight"].shape[0]
    n_layers = len({m.group(1) for k in state if (m := re.match(r"ft_layers\.(\d+)\.", k))})
    dim_mlp = state["ft_layers.0.linear1.weight"].shape[0]

    n_blocks = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"encoder\.blocks\.(\d+)\.", k)))
    # Blocks 1 .. n-6 are the per-level ones; the last five are res, attn, res, norm, conv.
    levels: list[list[int]] = [[]]
    attn_levels: set[int] = set()
    for i in range(1, n_blocks - 5):
        prefix = f"encoder.blocks.{i}."
        if prefix + "conv1.weight" in state:
            levels[-1].append(state[prefix + "conv1.weight"].shape[0])
        elif prefix + "q.weight" in state:
            attn_levels.add(len(levels) - 1)
        elif prefix + "conv.weight" in state:
            levels.append([])
    img_size = latent_side * 2 ** (len(levels) - 1)
    connect = sorted(int(m.group(1)) for k in state if (m := re.match(r"fuse_convs_dict\.(\d+)\.scale\.0\.weight$", k)))
    return CodeFormerConfig(
        img_size=img_size,
        nf=nf,
        ch_mult=tuple(level[-1] // nf for level in levels),
        res_blocks=len(levels[0]),
        attn_resolutions=tuple(sorted(img_size // 2**i for i in attn_levels)),
        codebook_size=codebook_size,
        codebook_dim=codebook_dim,
        dim_embd=dim_embd,
        # Not recoverable from shapes: the official model uses 64-wide heads.
        n_head=max(1, dim_embd // 64),
        n_layers=n_layers,
        dim_mlp=dim_mlp,
        connect_list=tuple(connect),
        # Not recoverable from shapes either: 32 (official) when the widths allow it.
        norm_groups=math.gcd(OFFICIAL.norm_groups, nf),
    )


def load_codeformer(path: str | Path, device: str | torch.device = "cpu") -> CodeFormer:
    """Builds the network a checkpoint describes and loads its weights exactly (eval mode)."""
    state, meta = _read(path)
    return codeformer_from_state(state, codeformer_config(state, meta, path), meta, path).to(device)


def codeformer_from_state(
    state: StateDict, config: CodeFormerConfig, meta: Mapping[str, str], path: str | Path
) -> CodeFormer:
    """A ``CodeFormer(config)`` in eval mode holding ``state`` exactly, with the reference adapter
    the header describes when the weights carry one; CheckpointFormatError naming ``path`` when
    they do not fit."""
    net = CodeFormer(config)
    reference = {k[len(REFERENCE_PREFIX) :]: v for k, v in state.items() if k.startswith(REFERENCE_PREFIX)}
    if reference:
        _load_reference(net, reference, meta, path)
        state = {k: v for k, v in state.items() if not k.startswith(REFERENCE_PREFIX)}
    expected = {k: v for k, v in net.state_dict().items() if not k.startswith(REFERENCE_PREFIX)}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        raise CheckpointFormatError(
            f"{path}: CodeFormer weights do not fit the deduced architecture "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]}, wrong shape {wrong[:3]})"
        )
    net.load_state_dict({k: state[k].float() for k in expected}, strict=not reference)
    return net.eval()


REFERENCE_PREFIX = "reference."
REFERENCE_METADATA_KEY = "likeness_reference_config"


def _load_reference(net: CodeFormer, state: StateDict, meta: Mapping[str, str], path: str | Path) -> None:
    """Rebuilds the reference adapter a checkpoint carries (its config is in the header)."""
    from .reference import ReferenceAdapter, ReferenceConfig

    if REFERENCE_METADATA_KEY not in meta:
        raise CheckpointFormatError(f"{path}: reference weights without their config in the header")
    config = ReferenceConfig.from_json(meta[REFERENCE_METADATA_KEY])
    adapter = net.attach_reference(ReferenceAdapter.for_network(net, config))
    try:
        adapter.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    except RuntimeError as exc:
        raise CheckpointFormatError(f"{path}: reference weights do not fit their config ({exc})") from exc


def save_codeformer(
    net: CodeFormer, path: str | Path, *, half: bool = False, metadata: dict[str, str] | None = None
) -> None:
    """Writes ``net`` as safetensors with its config in the header, atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    dtype = torch.float16 if half else torch.float32
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in net.state_dict().items()}
    meta = {CONFIG_METADATA_KEY: net.config.to_json(), "arch": "codeformer", **(metadata or {})}
    if net.reference is not None:
        meta[REFERENCE_METADATA_KEY] = net.reference.config.to_json()
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)


def identify_checkpoint(path: str | Path) -> str | None:
    """``"codeformer"`` if the file holds CodeFormer weights, else None (never raises)."""
    try:
        _read(path)
    except CheckpointFormatError:
        return None
    return "codeformer"


def json_header(path: str | Path) -> dict[str, Any]:
    """The metadata of a safetensors file (for the model card and ``likeness info``)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    return {k: json.loads(v) if k == CONFIG_METADATA_KEY else v for k, v in meta.items()}
