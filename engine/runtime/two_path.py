"""Two restoration paths per face and the learned, per-region choice between them.

The generative path (a CodeFormer network: likeness-lite, the official model, a reference-guided
decode) rebuilds a face from its codebook; the fidelity path (``engine.nets.fidelity``) cleans
the face the photo shows. ``RegionBlend`` says, per region, how damaged the face is there, i.e.
how much of the generative face it needs; the fidelity slider moves every region between the two
(``slider_weight``): w = 0 is the purely generative face, the default w = 0.5 the learned mix,
w = 1 the fidelity path alone, as sharp and as much the person as the photo.

Detail is never lost to the networks' resolution: the fidelity network works at its training
size (256² for a 512 template) and what it *changes* is added to the face at full size, so a face
keeps every pixel of detail it had wherever the blend keeps the fidelity path. Faces larger in
the photo than the 512 template are restored on a crop as large as their detail (``detail_side``).

``TwoPathRestorer`` has the interface of ``FaceRestorer`` (``encode`` → something cached,
``decode(cached, w)``): everything the slider does not change (the generative encoding, the
fidelity output, the damage map) is computed once, so a slider move costs one generative decode
and a blend.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from ..faces.align import FFHQ_SIZE
from ..files import atomic_path
from ..nets.fidelity import FidelityModel, detail_sigma, slider_detail, slider_weight

#: The largest crop a face is restored on (a 2048² face is 48 MB per float copy).
MAX_DETAIL_SIDE = 2048
#: w at which the damage map is estimated (the generative output it reads is the default's).
DAMAGE_W = 0.5


def detail_side(affine_zoom: float) -> int:
    """Side of the aligned crop that holds all of a face's detail, ≥ 512, a multiple of 64.

    ``affine_zoom``: template-512 pixels per photo pixel (``engine.faces.align.affine_scale``).
    Below 1 the 512 template would shrink the face and drop detail the photo has.
    """
    if affine_zoom >= 1:
        return FFHQ_SIZE
    side = int(np.ceil(FFHQ_SIZE / max(affine_zoom, 1e-6) / 64) * 64)
    return min(side, MAX_DETAIL_SIDE)


def _to_tensor(faces: list[np.ndarray], device: torch.device) -> torch.Tensor:
    arr = np.stack(faces).astype(np.float32).transpose(0, 3, 1, 2) / 127.5 - 1
    return torch.from_numpy(np.ascontiguousarray(arr)).to(device)


def _resize(face: np.ndarray, side: int) -> np.ndarray:
    if face.shape[0] == side:
        return face
    return cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA if face.shape[0] > side else cv2.INTER_CUBIC)


class FidelityPath:
    """The fidelity U-Net and the region blend on a torch device (uint8/float32 RGB faces).

    ``onnx``: an ONNX graph of the U-Net's correction (``export_correction``) to run it with ONNX
    Runtime instead, twice as fast as torch on the CPU (35 vs 72 ms at 256², 2 cores).
    """

    def __init__(self, model: FidelityModel, device: torch.device, onnx: Path | None = None) -> None:
        self.model = model.float().to(device).eval()
        self.device = device
        self.onnx_file = onnx
        self._session = None
        if onnx is not None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.log_severity_level = 3
            # Several graphs run one after another per face: threads that spin-wait after a run
            # would take the cores from the next graph (measured: the fidelity U-Net 43 → 90 ms).
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._session = ort.InferenceSession(str(onnx), options, providers=["CPUExecutionProvider"])

    @property
    def work_size(self) -> int:
        return self.model.config.work_size

    @torch.inference_mode()
    def _correction(self, small: list[np.ndarray]) -> np.ndarray:
        """The U-Net's correction, (B, S, S, 3) float32 in 0..255 units."""
        x = _to_tensor(small, self.device)
        if self._session is not None:
            out = np.asarray(self._session.run(None, {"face": x.numpy()})[0])
        else:
            out = self.model.net.correction(x).float().cpu().numpy()
        return out.transpose(0, 2, 3, 1) * 127.5

    def clean(self, faces: list[np.ndarray]) -> list[np.ndarray]:
        """The fidelity path's faces (float32 RGB 0..255, each the size of its input).

        The U-Net runs at its work size; its correction is upsampled and added to the face at
        full size, so detail the face has is kept and a clean face comes back nearly unchanged.
        """
        correction = self._correction([_resize(f, self.work_size) for f in faces])
        out = []
        for face, corr in zip(faces, correction, strict=True):
            if face.shape[0] != corr.shape[0]:
                corr = cv2.resize(corr, (face.shape[1], face.shape[0]), interpolation=cv2.INTER_CUBIC)
            out.append(np.clip(face.astype(np.float32) + corr, 0, 255))
        return out

    @torch.inference_mode()
    def damage(
        self, faces: list[np.ndarray], fidelity: list[np.ndarray], generative: list[np.ndarray]
    ) -> list[np.ndarray]:
        """Per-region damage maps (grid × grid, float32 in [0, 1]): the generative share at w = 0.5."""
        side = self.model.config.blend_size
        lq, fid, gen = (
            _to_tensor([_resize(np.asarray(f, np.float32), side) for f in group], self.device)
            for group in (faces, fidelity, generative)
        )
        return list(self.model.blend(lq, fid, gen)[:, 0].float().cpu().numpy())


def combine(
    fidelity: np.ndarray, generative: np.ndarray, damage: np.ndarray, w: float, generative_size: int
) -> np.ndarray:
    """The face at slider ``w``: per region, ``slider_weight`` of the generative face (with
    ``slider_detail`` of the fidelity face's fine detail), the rest fidelity. uint8 out.

    The same arithmetic as ``engine.nets.fidelity.mix`` (which training uses), in OpenCV: a
    third of torch's time at 512², and a slider move runs it every time.
    """
    side = fidelity.shape[0]
    share = slider_weight(torch.from_numpy(damage), w).numpy()
    share = cv2.resize(share, (side, side), interpolation=cv2.INTER_LINEAR)[..., None]
    gen = _resize(generative, side).astype(np.float32)
    sigma, detail = detail_sigma(side, generative_size), slider_detail(w)
    if sigma > 0 and detail > 0:
        radius = max(1, int(np.ceil(3 * sigma)))
        band = fidelity - cv2.GaussianBlur(
            fidelity, (2 * radius + 1, 2 * radius + 1), sigma, borderType=cv2.BORDER_REFLECT_101
        )
        gen += detail * band
    return np.clip(np.rint(share * gen + (1 - share) * fidelity), 0, 255).astype(np.uint8)


def export_correction(model: FidelityModel, model_file: Path, cache_root: Path) -> Path:
    """The U-Net's correction as an ONNX graph, exported once per model file (size, mtime)."""
    stat = model_file.stat()
    target = cache_root / f"{model_file.stem}-{stat.st_size}-{stat.st_mtime_ns}.onnx"
    if target.is_file():
        return target
    graph = _Correction(model.net.float().cpu().eval())
    x = torch.zeros(1, 3, model.config.work_size, model.config.work_size)
    with atomic_path(target) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            (x,),
            str(tmp),
            input_names=["face"],
            output_names=["correction"],
            opset_version=17,
            dynamo=False,
            dynamic_axes={"face": {0: "batch", 2: "side", 3: "side"}},
        )
    return target


class _Correction(torch.nn.Module):
    def __init__(self, net) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.correction(x)


@dataclass
class PreparedFaces:
    """What a slider move does not change, for a batch of faces."""

    encoded: object  # the generative network's encoding (EncodedFaces)
    fidelity: list[np.ndarray]  # float32 RGB, each its face's size
    damage: list[np.ndarray]  # grid × grid
    at_default: list[np.ndarray]  # the generative faces at DAMAGE_W (reused when w is the default)


class TwoPathRestorer:
    """A generative ``FaceRestorer`` (torch or ONNX) and a ``FidelityPath`` behind one interface.

    Faces may be any square size (the generative network resizes to its own); outputs have
    each input's size.
    """

    def __init__(self, generative, fidelity: FidelityPath) -> None:
        self.generative = generative
        self.fidelity = fidelity
        self.name = getattr(generative, "name", "")
        self.backend = generative.backend
        self.device = generative.device

    @property
    def size(self) -> int:
        return self.generative.size

    def encode(self, faces: list[np.ndarray]) -> PreparedFaces:
        encoded = self.generative.encode([_resize(f, FFHQ_SIZE) for f in faces])
        at_default = self.generative.decode(encoded, DAMAGE_W)
        return self.prepare(faces, encoded, at_default)

    def prepare(self, faces: list[np.ndarray], encoded, generative: list[np.ndarray]) -> PreparedFaces:
        """The fidelity faces and damage maps, given the generative faces at the default w."""
        fidelity = self.fidelity.clean(faces)
        damage = self.fidelity.damage(faces, fidelity, generative)
        return PreparedFaces(encoded, fidelity, damage, list(generative))

    def decode(self, prepared: PreparedFaces, w: float) -> list[np.ndarray]:
        if w >= 1.0:  # the generative face has no share at w = 1
            generative = prepared.fidelity
        elif w == DAMAGE_W:
            generative = prepared.at_default
        else:
            generative = self.generative.decode(prepared.encoded, w)
        return self.finish(prepared, generative, w)

    def finish(self, prepared: PreparedFaces, generative: list[np.ndarray], w: float) -> list[np.ndarray]:
        """Combines generative faces (any source: a plain or reference-guided decode) at ``w``."""
        size = self.generative.size
        parts = zip(prepared.fidelity, generative, prepared.damage, strict=True)
        return [combine(f, g, d, w, size) for f, g, d in parts]

    def restore(self, faces: list[np.ndarray], w: float) -> list[np.ndarray]:
        return self.decode(self.encode(faces), w)

    def moved_to(self, device: torch.device) -> TwoPathRestorer:
        onnx = self.fidelity.onnx_file if device.type == "cpu" else None
        return TwoPathRestorer(self.generative.moved_to(device), FidelityPath(self.fidelity.model, device, onnx))
