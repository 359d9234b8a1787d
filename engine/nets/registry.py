"""Which network a weights file holds, and how to build it: spandrel's approach, for our families.

``ARCHITECTURES`` lists every network family the engine can load, in detection order. Each
:class:`Architecture` recognises a state dict by its keys and deduces the hyper-parameters from
tensor shapes (or takes them from the header of the project's own safetensors files); the
result is a :class:`NetDescriptor`: what the weights are (architecture, purpose, config, input
size) and how to get a network from them (``build()`` untrained, ``load()`` with the weights).

    descriptor = describe_file("codeformer.pth")   # CheckpointFormatError naming an unknown file
    descriptor.arch, descriptor.purpose, descriptor.input_size   # "codeformer", "restoration", 512
    net = descriptor.load()

Families know nothing of this module; this module is the one place that knows them all. The
model store imports it to check what a user imports; nothing here imports the store or the
identity backends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from torch import nn

from ..errors import CheckpointFormatError
from .codeformer.checkpoint import codeformer_config, codeformer_from_state, is_codeformer_state
from .codeformer.config import CodeFormerConfig
from .codeformer.network import CodeFormer
from .iresnet import INPUT_SIZE as IRESNET_INPUT_SIZE
from .iresnet import IResNet, IResNetConfig, iresnet_from_state, is_iresnet
from .state_dict import StateDict, read_checkpoint

Purpose = Literal["restoration", "identity"]
ConfigT = TypeVar("ConfigT")
NetT = TypeVar("NetT", bound=nn.Module)


@dataclass(frozen=True)
class NetDescriptor(Generic[ConfigT, NetT]):
    """What a state dict holds, and the network it makes.

    Attributes:
        arch: Architecture id, as the model catalogue's ``arch`` field spells it ("codeformer").
        purpose: What the engine uses such a network for ("restoration", "identity").
        config: The hyper-parameters (a ``CodeFormerConfig``, an ``IResNetConfig``).
        input_size: Side in pixels of the square face the network takes.
        source: The file (or other name) the state dict came from, for messages.
    """

    arch: str
    purpose: Purpose
    config: ConfigT
    input_size: int
    source: str
    _build: Callable[[], NetT] = field(repr=False, compare=False)
    _load: Callable[[], NetT] = field(repr=False, compare=False)

    def build(self) -> NetT:
        """A new network of this config with fresh (untrained) weights."""
        return self._build()

    def load(self) -> NetT:
        """The network holding the weights, on the CPU in eval mode.

        Raises CheckpointFormatError naming the source when the weights do not fit the deduced
        architecture (a truncated or edited file).
        """
        return self._load()


@dataclass(frozen=True)
class Architecture(Generic[ConfigT, NetT]):
    """One network family: how to recognise its weights and make a network of them.

    Attributes:
        id: Architecture id (``NetDescriptor.arch``).
        purpose: What its networks are for.
        detect: Whether a canonical state dict is of this family (by its keys: cheap, never raises).
        config: The hyper-parameters of a detected state dict, given the file's header metadata.
        build: A network of a config, untrained.
        load: A network of a config holding a state dict (args: state, config, metadata, source).
        input_size: The input side of a config.
    """

    id: str
    purpose: Purpose
    detect: Callable[[Mapping[str, object]], bool]
    config: Callable[[StateDict, Mapping[str, str], str], ConfigT]
    build: Callable[[ConfigT], NetT]
    load: Callable[[StateDict, ConfigT, Mapping[str, str], str], NetT]
    input_size: Callable[[ConfigT], int]

    def describe(self, state: StateDict, metadata: Mapping[str, str], source: str) -> NetDescriptor[ConfigT, NetT]:
        """The descriptor of a state dict ``detect`` accepted; CheckpointFormatError naming
        ``source`` when its shapes give no valid config."""
        try:
            config = self.config(state, metadata, source)
        except (KeyError, IndexError, ValueError, TypeError, AttributeError) as exc:
            raise CheckpointFormatError(f"{source}: {self.id} weights of an unexpected layout ({exc!r})") from None
        return NetDescriptor(
            arch=self.id,
            purpose=self.purpose,
            config=config,
            input_size=self.input_size(config),
            source=source,
            _build=lambda: self.build(config),
            _load=lambda: self.load(state, config, metadata, source),
        )


def _iresnet_config(state: StateDict, metadata: Mapping[str, str], source: str) -> IResNetConfig:
    return IResNetConfig.from_state(state)


CODEFORMER: Architecture[CodeFormerConfig, CodeFormer] = Architecture(
    id="codeformer",
    purpose="restoration",
    detect=is_codeformer_state,
    config=codeformer_config,
    build=CodeFormer,
    load=codeformer_from_state,
    input_size=lambda config: config.img_size,
)

IRESNET: Architecture[IResNetConfig, IResNet] = Architecture(
    id="iresnet",
    purpose="identity",
    detect=is_iresnet,
    config=_iresnet_config,
    build=IResNet.from_config,
    load=lambda state, config, metadata, source: iresnet_from_state(state, config, source),
    input_size=lambda config: IRESNET_INPUT_SIZE,
)

#: Every family the engine loads, in detection order (the first whose ``detect`` accepts wins).
ARCHITECTURES: tuple[Architecture[Any, Any], ...] = (CODEFORMER, IRESNET)


def architecture(arch_id: str) -> Architecture[Any, Any] | None:
    """The family called ``arch_id`` (a catalogue record's ``arch``), None when the engine has none."""
    return next((a for a in ARCHITECTURES if a.id == arch_id), None)


def detect(
    state: Mapping[str, Any], metadata: Mapping[str, str] | None = None, *, source: str | Path = "state dict"
) -> NetDescriptor[Any, Any]:
    """The descriptor of a canonical state dict (see ``state_dict.canonical_state_dict``).

    Raises CheckpointFormatError (a LikenessError) naming ``source`` when no family recognises it.
    """
    weights: StateDict = dict(state)
    for arch in ARCHITECTURES:
        if arch.detect(weights):
            return arch.describe(weights, metadata or {}, str(source))
    keys = ", ".join(sorted(str(k) for k in state)[:6]) or "none"
    known = ", ".join(a.id for a in ARCHITECTURES)
    raise CheckpointFormatError(
        f"{source}: not a network Likeness knows (it recognises {known}); its first keys: {keys}"
    )


def describe_file(path: str | Path, *, name: str | Path | None = None) -> NetDescriptor[Any, Any]:
    """The descriptor of a weights file (``.pth`` or ``.safetensors``).

    ``name`` is how messages call the file (default ``path``). Raises CheckpointFormatError naming
    it when the file is missing, unreadable or holds no network the registry knows.
    """
    shown = path if name is None else name
    known = ", ".join(a.id for a in ARCHITECTURES)
    state, metadata = read_checkpoint(path, expected=f"the weights of a {known} network", name=shown)
    return detect(state, metadata, source=shown)


def identify_file(path: str | Path) -> NetDescriptor[Any, Any] | None:
    """The descriptor of a weights file, or None for anything else, unreadable files included."""
    try:
        return describe_file(path)
    except CheckpointFormatError:
        return None
