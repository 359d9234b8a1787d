"""Reader for dlib's binary serialization of a ``dnn`` network (our own code, no dlib needed).

The format is dlib's (Davis E. King, dlib.net, Boost Software License; see ``dlib/serialize.h``
and ``dlib/dnn/{core,layers,input,loss,tensor}.h``). Numbers use dlib's compact encoding:
an integer is a control byte (bit 7 = negative, low 4 bits = byte count) followed by the
magnitude in little-endian bytes; a float is two such integers, mantissa then exponent
(value = mantissa * 2**exponent); a bool is the ASCII byte ``'1'``/``'0'``; a string is its
length then its bytes. Tensors (version 2) are 4 dims then raw little-endian float32.

A network is written outside-in: every wrapper (loss, add_layer, tag, skip) first writes its
version and then its subnetwork, so the file opens with the chain of versions (loss=1,
add_layer=2, tag/skip=1) down to the input add_layer (version 3), which writes the input layer;
then the computational layers follow input-side first, each as its details (a version string
such as ``"con_4"`` and its fields) followed by the add_layer's state (three bools, cached
tensors). Tags and skips carry no data: which tag a skip or add_prev refers to lives in the
C++ type, so the reader returns the flat layer list and the version chain for the caller to
check against the known architecture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CheckpointFormatError

# float_details' special exponents (dlib/float_details.h).
_EXP_INF, _EXP_NINF, _EXP_NAN = 32000, 32001, 32002


@dataclass
class DlibLayer:
    """One computational layer: its kind (``"con"``, ``"affine"``, ...), fields and parameters."""

    kind: str
    tag: str
    fields: dict[str, Any] = field(default_factory=dict)
    params: np.ndarray | None = None

    @property
    def num_params(self) -> int:
        """Learnable values stored by dlib for this layer (its ``params`` tensor size)."""
        return 0 if self.params is None else int(self.params.size)


@dataclass
class DlibNet:
    """A parsed dlib network: version chain, loss, input layer and layers from input to output."""

    versions: list[int]
    loss: dict[str, Any]
    input: dict[str, Any]
    layers: list[DlibLayer]

    @property
    def num_params(self) -> int:
        """Total learnable values, as dlib counts them (sum of every layer's params)."""
        return sum(layer.num_params for layer in self.layers)


class DlibReader:
    """Sequential decoder of dlib's primitive encodings over an in-memory buffer."""

    def __init__(self, data: bytes, name: str = "<bytes>") -> None:
        self.data = memoryview(data)
        self.pos = 0
        self.name = name

    def fail(self, what: str) -> CheckpointFormatError:
        """A format error naming the file and the byte offset."""
        return CheckpointFormatError(f"{self.name}: not a dlib network this reader knows ({what} at byte {self.pos})")

    def _take(self, n: int) -> memoryview:
        if self.pos + n > len(self.data):
            raise self.fail("unexpected end of file")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def int(self) -> int:
        """dlib's integer: control byte (sign bit 0x80, size in the low nibble), little-endian magnitude."""
        control = self._take(1)[0]
        size = control & 0x0F
        if size > 8:
            raise self.fail(f"integer of {size} bytes")
        value = int.from_bytes(self._take(size), "little")
        return -value if control & 0x80 else value

    def float(self) -> float:
        """dlib's float: mantissa then exponent, both dlib integers."""
        mantissa, exponent = self.int(), self.int()
        if exponent == _EXP_INF:
            return math.inf
        if exponent == _EXP_NINF:
            return -math.inf
        if exponent == _EXP_NAN:
            return math.nan
        return math.ldexp(mantissa, exponent)

    def bool(self) -> bool:
        """dlib's bool: ASCII '1' or '0'."""
        ch = self._take(1)[0]
        if ch not in (0x30, 0x31):
            raise self.fail(f"bool byte {ch:#x}")
        return ch == 0x31

    def string(self) -> str:
        """Length (dlib integer) then raw bytes."""
        n = self.int()
        if not 0 <= n < 1 << 16:
            raise self.fail(f"string length {n}")
        return bytes(self._take(n)).decode("latin-1")

    def tensor(self) -> np.ndarray:
        """A ``resizable_tensor``: version, (n, k, nr, nc), then the values (float32)."""
        version = self.int()
        dims = [self.int() for _ in range(4)]
        if any(d < 0 for d in dims):
            raise self.fail(f"tensor dims {dims}")
        count = math.prod(dims)
        if version == 2:  # raw little-endian IEEE floats
            values = np.frombuffer(self._take(4 * count), dtype="<f4").astype(np.float32)
        elif version == 1:  # older files: dlib-encoded floats
            values = np.array([self.float() for _ in range(count)], dtype=np.float32)
        else:
            raise self.fail(f"tensor version {version}")
        return values.reshape(dims)

    def alias(self) -> tuple[int, int, int, int]:
        """An ``alias_tensor`` (a view into params): version 1 then its four dims."""
        version = self.int()
        if version != 1:
            raise self.fail(f"alias_tensor version {version}")
        n, k, nr, nc = (self.int() for _ in range(4))
        return (n, k, nr, nc)

    def expect(self, *names: str) -> str:
        """Read a version string, failing unless it is one of ``names``."""
        got = self.string()
        if got not in names:
            raise self.fail(f"expected {' or '.join(names)}, found {got!r}")
        return got


def _read_layer(r: DlibReader) -> DlibLayer:
    """Details of one computational layer, dispatched on its version string."""
    start = r.pos
    tag = r.string()
    f: dict[str, Any] = {}
    if tag == "con_4" or tag == "con_5":
        params = r.tensor()
        for key in ("num_filters", "nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x"):
            f[key] = r.int()
        f["filters"], f["biases"] = r.alias(), r.alias()
        f["multipliers"] = [r.float() for _ in range(4)]
        if tag == "con_5":
            f["use_bias"] = r.bool()
        return DlibLayer("con", tag, f, params.reshape(-1))
    if tag == "affine_":
        params = r.tensor()
        f["gamma"], f["beta"] = r.alias(), r.alias()
        f["mode"] = r.int()  # layer_mode: 0 = CONV_MODE (per channel), 1 = FC_MODE
        return DlibLayer("affine", tag, f, params.reshape(-1))
    if tag == "relu_":
        return DlibLayer("relu", tag, f)
    if tag == "add_prev_":
        return DlibLayer("add_prev", tag, f)
    if tag in ("max_pool_2", "avg_pool_2"):
        for key in ("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x"):
            f[key] = r.int()
        return DlibLayer(tag[:-2], tag, f)
    if tag in ("fc_2", "fc_3"):
        f["num_outputs"], f["num_inputs"] = r.int(), r.int()
        params = r.tensor()
        f["weights"], f["biases"] = r.alias(), r.alias()
        f["bias_mode"] = r.int()  # 0 = FC_HAS_BIAS, 1 = FC_NO_BIAS
        f["multipliers"] = [r.float() for _ in range(4)]
        if tag == "fc_3":
            f["use_bias"] = r.bool()
        return DlibLayer("fc", tag, f, params.reshape(-1))
    r.pos = start
    raise r.fail(f"layer type {tag!r}")


def _read_add_layer_state(r: DlibReader, input_level: bool) -> None:
    """The add_layer bookkeeping after each layer's details (flags and cached tensors)."""
    r.bool()  # this_layer_setup_called
    r.bool()  # gradient_input_is_stale
    r.bool()  # get_output_and_gradient_input_disabled
    r.tensor()  # x_grad
    r.tensor()  # cached_output
    r.tensor()  # params_grad (grad_final for the input-level add_layer)
    if input_level:
        r.int()  # _sample_expansion_factor


def parse_dlib_dnn(path: str | Path) -> DlibNet:
    """Parse a dlib ``dnn`` file whose loss is ``loss_metric`` and input ``input_rgb_image_sized``.

    Raises CheckpointFormatError when the bytes do not follow that layout.
    """
    path = Path(path)
    r = DlibReader(path.read_bytes(), path.name)
    versions: list[int] = [r.int()]  # add_loss_layer
    if versions[0] != 1:
        raise r.fail(f"loss layer version {versions[0]}")
    loss_tag = r.expect("loss_metric_", "loss_metric_2")
    loss = {"tag": loss_tag, "margin": r.float(), "distance_threshold": r.float()}
    while True:  # the chain of wrapper versions, outermost first
        v = r.int()
        versions.append(v)
        if v == 3:
            break
        if v not in (1, 2) or len(versions) > 10_000:
            raise r.fail(f"wrapper version {v}")
    input_tag = r.expect("input_rgb_image_sized")
    inp = {"tag": input_tag, "avg_rgb": (r.float(), r.float(), r.float()), "nr": r.int(), "nc": r.int()}
    num_layers = sum(1 for v in versions[1:] if v in (2, 3))
    layers = []
    for i in range(num_layers):
        layers.append(_read_layer(r))
        _read_add_layer_state(r, input_level=(i == 0))
    if r.pos != len(r.data):
        raise r.fail(f"{len(r.data) - r.pos} trailing bytes")
    return DlibNet(versions=versions, loss=loss, input=inp, layers=layers)
