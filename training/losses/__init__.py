"""Losses of the CodeFormer stages.

``common`` holds the primitives (perceptual, adversarial, identity), ``terms`` the weighted terms
several stages add up, and ``stage1`` … ``stage3`` each stage's objective.
"""

from .common import (
    VGG19_FILE,
    DlibFeatureLoss,
    IdentityLoss,
    MSSSIMLoss,
    NLayerDiscriminator,
    VGGPerceptualLoss,
    adaptive_weight,
    full_precision,
    generator_adv_loss,
    hinge_d_loss,
    make_perceptual,
    mean_embedding,
    vgg19_weights,
)

__all__ = [
    "VGG19_FILE",
    "DlibFeatureLoss",
    "IdentityLoss",
    "MSSSIMLoss",
    "NLayerDiscriminator",
    "VGGPerceptualLoss",
    "adaptive_weight",
    "full_precision",
    "generator_adv_loss",
    "hinge_d_loss",
    "make_perceptual",
    "mean_embedding",
    "vgg19_weights",
]
