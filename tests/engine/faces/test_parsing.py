"""The optional ParseNet mask loads from a local file only and feeds face_mask."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.errors import CheckpointFormatError, ModelMissingError
from engine.faces.parsing import FaceParser
from engine.faces.paste import face_mask


@pytest.mark.slow
def test_parser_from_local_weights_gives_a_mask_for_face_mask(tmp_path, facexlib_offline):
    from facexlib.parsing.parsenet import ParseNet

    with pytest.raises(ModelMissingError):
        FaceParser(tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(CheckpointFormatError):
        FaceParser(bad)

    torch.manual_seed(0)
    weights = tmp_path / "parsenet.pth"
    torch.save(ParseNet(in_size=512, out_size=512, parsing_ch=19).state_dict(), weights)
    parser = FaceParser(weights)
    face = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    region = parser.face_region(face)
    assert region.shape == (256, 256) and region.dtype == np.float32
    assert set(np.unique(region)) <= {0.0, 1.0}
    mask = face_mask(256, region)
    assert mask.min() >= 0.0 and mask.max() <= 1.0 and mask[0].max() == 0.0
