"""Augmentation policies: batched kornia transforms with per-sample parameters drawn on every call."""

from __future__ import annotations

import kornia.augmentation as K
import torch

from dscsc_core import AugmentationPolicy, Param


class NoAugmentation(AugmentationPolicy):
    name = "none"
    summary = "identity: one view, the positive of x_i is x_i itself (Table 4's rows without augmentation)"
    identity = True

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        return images


class GeometricAugmentation(AugmentationPolicy):
    name = "geometric"
    summary = "light random affine (rotation, translation, shear, scale) per sample; flips off by default"
    params = (
        Param("degrees", float, 10.0, "max rotation in degrees", min=0, max=180),
        Param("translate", float, 0.08, "max translation as a fraction of the image size", min=0, max=1),
        Param("shear", float, 5.0, "max shear in degrees", min=0, max=90),
        Param("scale_max", float, 1.1, "zoom drawn from [1, scale_max]", min=1, max=4),
        Param("hflip", bool, False, "also flip horizontally with probability 0.5 (never for digits)"),
        Param("p", float, 1.0, "probability of applying the affine transform to a sample", min=0, max=1),
        Param("padding", str, "zeros", "what fills the pixels a transform moves in from outside the image: "
              "zeros (black), border (the nearest edge pixel) or reflection",
              choices=("zeros", "border", "reflection")),
    )

    def __init__(self, **values):
        super().__init__(**values)
        transforms = [
            K.RandomAffine(
                degrees=self.degrees,
                translate=(self.translate, self.translate),
                scale=(1.0, self.scale_max),
                shear=self.shear,
                p=self.p,
                padding_mode=self.padding,
            )
        ]
        if self.hflip:
            transforms.append(K.RandomHorizontalFlip(p=0.5))
        self.pipeline = K.AugmentationSequential(*transforms)

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        return self.pipeline(images)
