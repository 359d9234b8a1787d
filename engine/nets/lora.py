"""Low-rank adapters (LoRA) for a CodeFormer network: a person's adapter on top of frozen weights.

Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models" (ICLR 2022); for faces, LAFR
(methods.md §4) fine-tunes convolutions with rank 4. A target weight W (out × in·k·k for a
convolution, out × in for a linear layer or an attention projection) becomes

    W' = W + (α / r) · B A,   A: r × in·k·k,  B: out × r,  B = 0 at the start,

so an adapter just attached changes nothing. Attaching uses ``torch.nn.utils.parametrize``: the
modules keep their types and the base weights stay where they were, frozen and untouched (under
``<module>.parametrizations.<name>.original``); only A and B train.

:func:`default_targets` picks the parts that map the damaged face to codes and features: the
encoder, the lookup transformer (attention and MLP, the token embedding and the code head), the
CFT fuse blocks, and the reference layers where the network has them. The codebook and the
generator (decoder) are never targets.

An adapter file is safetensors: ``<module>.<param>.lora_A`` / ``.lora_B`` tensors, and metadata
naming the format, the base model (name and sha256), rank, alpha and targets. :func:`merged`
folds an adapter into a copy of the network: plain weights, no overhead, exportable to ONNX.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar, cast

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from torch import nn
from torch.nn.utils import parametrize

from ..errors import LikenessError
from ..files import write_bytes

FORMAT = "likeness-lora/1"
DEFAULT_RANK = 4
#: Module-name prefixes whose layers an adapter adapts by default.
TARGET_PREFIXES = ("encoder.", "feat_emb", "ft_layers.", "idx_pred_layer.", "fuse_convs_dict.", "reference.")
#: Never adapted: the codebook and the decoder are what every person's faces are made of.
FROZEN_PREFIXES = ("quantize.", "generator.")
_A, _B = "lora_A", "lora_B"
NetT = TypeVar("NetT", bound=nn.Module)


class AdapterError(LikenessError):
    """An adapter file that is unreadable, not an adapter, or made for another network."""


class LoRADelta(nn.Module):
    """The parametrization ``W ↦ W + scale · (B A).view_as(W)`` of one weight."""

    def __init__(self, weight: torch.Tensor, rank: int, alpha: float) -> None:
        super().__init__()
        out_features = weight.shape[0]
        in_features = weight[0].numel()
        self.rank, self.alpha = rank, alpha
        self.scale = alpha / rank
        self.lora_A = nn.Parameter(torch.empty(rank, in_features, device=weight.device, dtype=torch.float32))
        self.lora_B = nn.Parameter(torch.zeros(out_features, rank, device=weight.device, dtype=torch.float32))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # as nn.Linear initialises its weight

    def delta(self) -> torch.Tensor:
        return (self.lora_B @ self.lora_A) * self.scale

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + self.delta().view_as(weight).to(weight.dtype)


@dataclass(frozen=True)
class Adapter:
    """An adapter read from a file (or made in memory): LoRA tensors and what they were made for."""

    state: dict[str, torch.Tensor]
    rank: int
    alpha: float
    targets: tuple[str, ...]
    model: str = ""
    model_sha256: str = ""
    path: Path | None = None
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return str(self.path) if self.path is not None else "the adapter"


# ----------------------------------------------------------------------------- targets


def _adaptable(module: nn.Module) -> list[str]:
    """The weights of ``module`` itself that LoRA can adapt (none for grouped convolutions)."""
    if isinstance(module, nn.Conv2d):
        return ["weight"] if module.groups == 1 else []
    if isinstance(module, nn.Linear):
        return ["weight"]
    if isinstance(module, nn.MultiheadAttention):
        # out_proj is a Linear of its own; a separate q/k/v projection (kdim != dim) is not used here.
        return ["in_proj_weight"] if module.in_proj_weight is not None else []
    return []


def default_targets(net: nn.Module) -> list[str]:
    """``"module.path:param"`` of every weight a personal adapter adapts (see the module docstring)."""
    targets = []
    for name, module in net.named_modules():
        prefixed = name + "."
        if not name or prefixed.startswith(FROZEN_PREFIXES) or not prefixed.startswith(TARGET_PREFIXES):
            continue
        targets += [f"{name}:{param}" for param in _adaptable(module)]
    return targets


def _split(target: str) -> tuple[str, str]:
    module, _, param = target.rpartition(":")
    if not module or not param:
        raise ValueError(f"a LoRA target is 'module.path:param', got {target!r}")
    return module, param


def _key(target: str, which: str) -> str:
    module, param = _split(target)
    return f"{module}.{param}.{which}"


def _target_of(key: str) -> str:
    stem, _, _ = key.rpartition(".")
    module, _, param = stem.rpartition(".")
    return f"{module}:{param}"


# ----------------------------------------------------------------------------- attaching


def _parametrizations(module: nn.Module) -> nn.ModuleDict:
    return cast(nn.ModuleDict, module.parametrizations)


def lora_modules(net: nn.Module) -> dict[str, LoRADelta]:
    """The LoRA parametrizations attached to ``net``, by target."""
    found = {}
    for name, module in net.named_modules():
        if not parametrize.is_parametrized(module):
            continue
        for param, plist in _parametrizations(module).items():
            for p in cast(nn.ModuleList, plist):
                if isinstance(p, LoRADelta):
                    found[f"{name}:{param}"] = p
    return found


def add_lora(
    net: nn.Module, rank: int = DEFAULT_RANK, alpha: float | None = None, targets: Sequence[str] | None = None
) -> list[nn.Parameter]:
    """Attaches a zero-initialised adapter to ``net`` in place; returns its (trainable) parameters.

    Every other parameter of ``net`` is frozen. ``alpha`` defaults to ``rank`` (scale 1).
    """
    if rank < 1:
        raise ValueError(f"LoRA rank must be at least 1, got {rank}")
    alpha = float(rank if alpha is None else alpha)
    targets = default_targets(net) if targets is None else list(targets)
    if not targets:
        raise ValueError("no layer to adapt")
    net.requires_grad_(False)
    attached = lora_modules(net)
    params: list[nn.Parameter] = []
    for target in targets:
        if target in attached:
            raise ValueError(f"{target} has an adapter already")
        module_name, param = _split(target)
        module = net.get_submodule(module_name)
        delta = LoRADelta(getattr(module, param).detach(), rank, alpha)
        parametrize.register_parametrization(module, param, delta, unsafe=True)
        params += [delta.lora_A, delta.lora_B]
    return params


def adapter_state(net: nn.Module) -> dict[str, torch.Tensor]:
    """The attached adapter's tensors (float32, on the CPU), keyed ``module.param.lora_A/B``."""
    state = {}
    for target, delta in lora_modules(net).items():
        state[_key(target, _A)] = delta.lora_A.detach().float().cpu().clone()
        state[_key(target, _B)] = delta.lora_B.detach().float().cpu().clone()
    return state


def load_adapter_state(net: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Copies adapter tensors into the adapter attached to ``net`` (same targets and rank)."""
    attached = lora_modules(net)
    targets = _targets_in(state)
    if set(targets) != set(attached):
        raise ValueError("the adapter's targets are not the ones attached to the network")
    with torch.no_grad():
        for target, delta in attached.items():
            delta.lora_A.copy_(state[_key(target, _A)])
            delta.lora_B.copy_(state[_key(target, _B)])


def remove_lora(net: nn.Module, *, merge: bool = False) -> nn.Module:
    """Detaches the adapter in place: the weights come back as they were, or with it folded in."""
    for target in lora_modules(net):
        module_name, param = _split(target)
        parametrize.remove_parametrizations(net.get_submodule(module_name), param, leave_parametrized=merge)
    return net


def _targets_in(state: Mapping[str, torch.Tensor]) -> list[str]:
    return sorted({_target_of(k) for k in state})


# ----------------------------------------------------------------------------- files


def save_adapter(path: str | Path, state: Mapping[str, torch.Tensor], meta: Mapping[str, object]) -> Path:
    """Writes ``state`` as a safetensors adapter, atomically.

    ``meta`` needs ``rank`` and ``alpha`` and should name the base ``model`` and its
    ``model_sha256``; ``format`` and ``targets`` are added here.
    """

    for needed in ("rank", "alpha"):
        if needed not in meta:
            raise ValueError(f"adapter metadata needs {needed!r}")
    header = {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}
    header["format"] = FORMAT
    header["targets"] = json.dumps(_targets_in(state))
    tensors = {k: v.detach().float().cpu().contiguous() for k, v in state.items()}
    path = Path(path)
    write_bytes(path, save(tensors, metadata=header))
    return path


def load_adapter(path: str | Path, *, model_sha256: str | None = None) -> Adapter:
    """An adapter file; AdapterError (a LikenessError naming the file) when it is not one, or, with
    ``model_sha256``, when it was made for another model file."""

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            header = dict(f.metadata() or {})
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no iterator)
    except FileNotFoundError:
        raise AdapterError(f"{path}: the adapter file is missing") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise AdapterError(f"{path}: not a readable adapter file ({exc})") from None
    if header.get("format") != FORMAT:
        raise AdapterError(f"{path}: not a Likeness adapter (format {header.get('format')!r}, expected {FORMAT})")
    try:
        rank, alpha = int(header["rank"]), float(header["alpha"])
        targets = tuple(json.loads(header["targets"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise AdapterError(f"{path}: damaged adapter metadata ({exc})") from None
    if not state or set(targets) != set(_targets_in(state)):
        raise AdapterError(f"{path}: damaged adapter (its tensors do not match its targets)")
    for target in targets:
        a, b = state.get(_key(target, _A)), state.get(_key(target, _B))
        if a is None or b is None or a.ndim != 2 or b.ndim != 2 or a.shape[0] != rank or b.shape[1] != rank:
            raise AdapterError(f"{path}: damaged adapter (tensor shapes of {target} do not fit rank {rank})")
    adapter = Adapter(
        state, rank, alpha, targets, header.get("model", ""), header.get("model_sha256", ""), path, header
    )
    if model_sha256 is not None and adapter.model_sha256 and adapter.model_sha256 != model_sha256:
        raise AdapterError(
            f"{path}: this adapter was trained for another file of {adapter.model or 'its model'} "
            f"(sha256 {adapter.model_sha256[:12]}…, this one is {model_sha256[:12]}…); train it again"
        )
    return adapter


# ----------------------------------------------------------------------------- folding


def adapter_deltas(net: nn.Module, adapter: Adapter) -> dict[str, torch.Tensor]:
    """Each target's weight change, shaped like its weight; AdapterError when they do not fit ``net``."""
    deltas = {}
    scale = adapter.alpha / adapter.rank
    for target in adapter.targets:
        module_name, param = _split(target)
        try:
            weight = getattr(net.get_submodule(module_name), param)
        except AttributeError:
            weight = None
        a, b = adapter.state[_key(target, _A)], adapter.state[_key(target, _B)]
        if not isinstance(weight, torch.Tensor) or weight.shape[0] != b.shape[0] or weight[0].numel() != a.shape[1]:
            raise AdapterError(
                f"{adapter.label}: made for another network ({adapter.model or 'unknown model'}): "
                f"{target} does not fit this one"
            )
        deltas[target] = ((b.float() @ a.float()) * scale).view(weight.shape)
    return deltas


def merged(net: NetT, adapter: Adapter) -> NetT:
    """A copy of ``net`` with ``adapter`` folded into its weights (``net`` itself is not changed).

    An adapter attached to ``net`` (training) is left out of the copy first: the result is the
    base network plus ``adapter``.
    """
    out = _plain_copy(net)
    with torch.no_grad():
        for target, delta in adapter_deltas(out, adapter).items():
            module_name, param = _split(target)
            weight = getattr(out.get_submodule(module_name), param)
            weight.add_(delta.to(weight.device, weight.dtype))
    return out


def _plain_copy(net: NetT) -> NetT:
    """A deep copy of ``net`` without its LoRA parametrizations (base weights only).

    Not ``remove_parametrizations`` on a copy: a deep copy shares the parametrized module classes
    with the original, and removing deletes the weight's property from that shared class.
    """
    out = copy.deepcopy(net)
    for module in out.modules():
        if not parametrize.is_parametrized(module):
            continue
        plists = _parametrizations(module)
        if not all(isinstance(p, LoRADelta) for plist in plists.values() for p in cast(nn.ModuleList, plist)):
            raise ValueError("the network has parametrizations other than LoRA")
        originals = {name: cast(torch.Tensor, plist.original) for name, plist in plists.items()}
        module.__class__ = module.__class__.__bases__[0]  # the class before parametrization
        del module._modules["parametrizations"]
        for name, weight in originals.items():
            module.register_parameter(name, nn.Parameter(weight.detach(), requires_grad=weight.requires_grad))
    return out


def trainable_count(params: Iterable[nn.Parameter]) -> int:
    return sum(p.numel() for p in params)
