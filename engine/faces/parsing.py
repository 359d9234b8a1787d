"""Optional face parsing (facexlib's ParseNet) for paste-back masks that follow the face outline.

facexlib's ``init_parsing_model`` downloads its weights, so the network is built from its class
here and a local file is loaded strictly; nothing is ever fetched.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import CheckpointFormatError, ModelMissingError

PARSE_SIZE = 512
# CelebAMask-HQ labels kept as "face" (facexlib's paste mask): skin, brows, eyes, glasses, ears,
# earrings, nose, mouth, lips; left out: background (0), neck (14), cloth (16), hair (17), hat (18).
FACE_LABELS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15)


class FaceParser:
    """ParseNet on a device; ``face_region`` gives the face's hard mask in an aligned crop."""

    def __init__(self, weights_path: str | Path, device: str = "cpu") -> None:
        import torch
        from facexlib.parsing.parsenet import ParseNet

        path = Path(weights_path)
        if not path.is_file():
            raise ModelMissingError(f"{path}: face parsing weights not found; install the parsenet model")
        net = ParseNet(in_size=PARSE_SIZE, out_size=PARSE_SIZE, parsing_ch=19)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            net.load_state_dict(state, strict=True)
        except (RuntimeError, AttributeError, ValueError, OSError) as exc:
            raise CheckpointFormatError(f"{path}: not ParseNet face parsing weights ({exc})") from None
        self._torch = torch
        self._device = torch.device(device)
        self._net = net.to(self._device).eval()
        self._keep = torch.zeros(19, dtype=torch.float32, device=self._device)
        self._keep[list(FACE_LABELS)] = 1.0

    def face_region(self, face: np.ndarray) -> np.ndarray:
        """float32 (size, size) mask, 1 where an aligned uint8 RGB face crop shows the face."""
        size = face.shape[0]
        if size != PARSE_SIZE:
            face = cv2.resize(face, (PARSE_SIZE, PARSE_SIZE), interpolation=cv2.INTER_LINEAR)
        x = self._torch.from_numpy(np.ascontiguousarray(face)).permute(2, 0, 1)[None].float().to(self._device)
        x = x / 127.5 - 1.0
        with self._torch.inference_mode():
            labels = self._net(x)[0].argmax(dim=1)[0]
        region = self._keep[labels].cpu().numpy()
        if size != PARSE_SIZE:
            region = cv2.resize(region, (size, size), interpolation=cv2.INTER_NEAREST)
        return region
