"""Fixed crops of FFHQ-aligned faces onto other networks' templates (``engine.identity.crops``)."""

from __future__ import annotations

import numpy as np
import torch

from engine.faces.align import FFHQ_TEMPLATE_512
from engine.identity.crops import ARCFACE_TEMPLATE_112, AlignedCrop, arcface_to_ffhq_affine, box_to_ffhq_affine


def test_arcface_template_lands_on_the_ffhq_points():
    a = arcface_to_ffhq_affine(112)
    mapped = np.c_[ARCFACE_TEMPLATE_112, np.ones(5)] @ a.T
    # a least-squares similarity between two slightly different templates: within a few pixels of 512
    assert np.abs(mapped - FFHQ_TEMPLATE_512).max() < 8
    assert 3.3 < np.sqrt(np.linalg.det(a[:, :2])) < 3.5  # about 3.4 FFHQ-512 px per crop px


def test_box_crop_of_the_whole_face_is_a_resize():
    crop = AlignedCrop(64, box_to_ffhq_affine(64, 256, 256, 512))
    faces = torch.rand(2, 3, 64, 64)
    assert torch.allclose(crop(faces), faces, atol=1e-5)


def test_crop_marks_the_eye_where_the_template_says():
    face = torch.zeros(1, 3, 512, 512)
    x, y = FFHQ_TEMPLATE_512[0].round().astype(int)
    face[..., y - 6 : y + 7, x - 6 : x + 7] = 1
    out = AlignedCrop(112, arcface_to_ffhq_affine(112))(face)[0, 0]
    yy, xx = np.unravel_index(out.argmax().item(), out.shape)
    assert abs(xx - ARCFACE_TEMPLATE_112[0, 0]) < 3 and abs(yy - ARCFACE_TEMPLATE_112[0, 1]) < 3
