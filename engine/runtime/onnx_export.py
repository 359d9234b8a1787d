"""ONNX export of the two CodeFormer halves, with the fidelity w as a tensor input.

Two graphs mirror the torch split: the encoder graph gives codes and LQ features once per face;
the decoder graph takes them plus ``w`` so a slider move re-runs only the decoder in ONNX Runtime.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from ..nets.codeformer import CodeFormer


class _EncoderGraph(nn.Module):
    def __init__(self, net: CodeFormer) -> None:
        super().__init__()
        self.net = net

    def forward(self, face: torch.Tensor):
        feats = self.net.encode_features(face)
        logits = self.net.predict_logits(feats[0])
        return (self.net.codes_from_logits(logits), logits, *feats)


class _DecoderGraph(nn.Module):
    def __init__(self, net: CodeFormer) -> None:
        super().__init__()
        self.net = net

    def forward(self, codes: torch.Tensor, w: torch.Tensor, *lq_features: torch.Tensor):
        return self.net.decode(codes, tuple(lq_features), w.reshape(-1, 1, 1, 1))


def feature_names(net: CodeFormer) -> list[str]:
    return ["lq_latent", *[f"skip_{s}" for s in net.config.connect_list]]


def export_onnx(net: CodeFormer, folder: str | Path, opset: int = 17) -> tuple[Path, Path]:
    """Writes ``encoder.onnx`` and ``decoder.onnx`` (batch size dynamic) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    net = net.eval().float().cpu()
    size = net.config.img_size
    face = torch.zeros(1, 3, size, size)
    names = feature_names(net)
    enc_path, dec_path = folder / "encoder.onnx", folder / "decoder.onnx"
    # The TorchScript exporter is deprecated in favour of torch.export, which needs onnxscript;
    # its notes about constant folding are harmless, and users should not see them.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        codes, _, *feats = _EncoderGraph(net)(face)
        batch = {0: "batch"}
        torch.onnx.export(
            _EncoderGraph(net), (face,), str(enc_path), input_names=["face"],
            output_names=["codes", "logits", *names], opset_version=opset, dynamo=False,
            dynamic_axes={name: batch for name in ["face", "codes", "logits", *names]},
        )  # fmt: skip
        torch.onnx.export(
            _DecoderGraph(net), (codes, torch.tensor([0.5]), *feats), str(dec_path),
            input_names=["codes", "w", *names], output_names=["image"], opset_version=opset,
            dynamo=False, dynamic_axes={name: batch for name in ["codes", "w", *names, "image"]},
        )  # fmt: skip
    return enc_path, dec_path
