"""Augmentation policies: batched kornia transforms with per-sample parameters drawn on every call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import kornia.augmentation as K
import torch

from dscsc_core import AugmentationPolicy, Param, ParameterError


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


# --------------------------------------------------------------------------- searched policies
@dataclass(frozen=True)
class Operation:
    """One operation of the policy space: what magnitude m sets, and its kornia augmentation."""

    strength: str  # what m in [0, 1] sets (the docs' table and `dscsc plugins show` read it)
    build: Callable[[float, float, str], torch.nn.Module]  # (magnitude, p, padding) -> kornia augmentation
    scaled: bool = True  # False: m does not enter (a flip, histogram equalisation)


def _affine(p: float, padding: str, **ranges) -> K.RandomAffine:
    return K.RandomAffine(**{"degrees": 0.0, **ranges}, p=p, padding_mode=padding)


# The policy space, declared once: operation -> how magnitude m in [0, 1] maps to its kornia range.
# Photometric ranges are in units of the batch's value range (see PolicyAugmentation.augment).
OPERATIONS: dict[str, Operation] = {
    "rotate": Operation("rotation within ±30·m degrees", lambda m, p, pad: _affine(p, pad, degrees=30 * m)),
    "translate": Operation("shift within ±0.2·m of the side, on each axis",
                           lambda m, p, pad: _affine(p, pad, translate=(0.2 * m, 0.2 * m))),
    "shear": Operation("shear within ±20·m degrees, on each axis",
                       lambda m, p, pad: _affine(p, pad, shear=(-20 * m, 20 * m, -20 * m, 20 * m))),
    "zoom": Operation("scale within 1 ± 0.25·m", lambda m, p, pad: _affine(p, pad, scale=(1 - m / 4, 1 + m / 4))),
    "perspective": Operation("corners moved by up to 0.25·m of the side",
                             lambda m, p, pad: K.RandomPerspective(distortion_scale=0.5 * m, p=p)),
    "hflip": Operation("mirror left-right (m unused)", lambda m, p, pad: K.RandomHorizontalFlip(p=p), scaled=False),
    "brightness": Operation("shift the values within ±0.4·m of the range",
                            lambda m, p, pad: K.RandomBrightness(brightness=(1 - 0.4 * m, 1 + 0.4 * m), p=p)),
    "contrast": Operation("multiply the values by 1 ± 0.6·m",
                          lambda m, p, pad: K.RandomContrast(contrast=(1 - 0.6 * m, 1 + 0.6 * m), p=p)),
    "gamma": Operation("raise to a power within [1/(1+m), 1+m]",
                       lambda m, p, pad: K.RandomGamma(gamma=(1 / (1 + m), 1 + m), p=p)),
    "sharpness": Operation("sharpness factor within 1 ± 0.9·m (below 1 smooths, above sharpens)",
                           lambda m, p, pad: K.RandomSharpness(sharpness=(1 - 0.9 * m, 1 + 0.9 * m), p=p)),
    "posterize": Operation("keep 8 − 4·m to 8 bits of each value",
                           lambda m, p, pad: K.RandomPosterize(bits=(8 - 4 * m, 8), p=p)),
    "equalize": Operation("equalise the histogram (m unused; no effect on images under 256 pixels)",
                          lambda m, p, pad: K.RandomEqualize(p=p), scaled=False),
    "cutout": Operation("set a rectangle of 0.05·m to 0.25·m of the area to the darkest value",
                        lambda m, p, pad: K.RandomErasing(scale=(0.05 * m, 0.25 * m), p=p)),
    "blur": Operation("Gaussian blur, 5×5 kernel, σ within 0.1 to 0.1 + 1.9·m pixels",
                      lambda m, p, pad: K.RandomGaussianBlur(kernel_size=5, sigma=(0.1, 0.1 + 1.9 * m), p=p)),
    "noise": Operation("add Gaussian noise of std 0.1·m of the range",
                       lambda m, p, pad: K.RandomGaussianNoise(std=0.1 * m, p=p)),
}
MAX_OPERATIONS = 2


def parse_operations(ops: str) -> tuple[str, ...]:
    """``"rotate+contrast"`` -> ``("rotate", "contrast")``: one or two distinct operations of OPERATIONS."""
    names = tuple(name.strip() for name in ops.split("+"))
    problem = _operations_problem(names)
    if problem is not None:
        raise ParameterError(f"augmentation 'policy' parameter 'ops' must name one operation or two joined by + "
                             f"(e.g. rotate+contrast); got {ops!r} ({problem}); operations: {', '.join(OPERATIONS)}")
    return names


def _operations_problem(names: tuple[str, ...]) -> str | None:
    unknown = [name for name in names if name not in OPERATIONS]
    if unknown:
        return f"unknown operation {unknown[0]!r}" if unknown[0] else "an empty operation name"
    if len(names) > MAX_OPERATIONS:
        return f"{len(names)} operations"
    if len(set(names)) < len(names):
        return "an operation twice"
    return None


class PolicyAugmentation(AugmentationPolicy):
    name = "policy"
    summary = "one or two operations (rotate+contrast, ...) at a magnitude, each applied with probability p: searchable"
    params = (
        Param("ops", str, "rotate", "one operation or two joined by +, e.g. rotate+contrast; from: "
              + ", ".join(OPERATIONS)),
        Param("magnitude", float, 0.5, "strength m in [0, 1] of every operation (0: none, but hflip and equalize "
              "ignore m)", min=0, max=1),
        Param("p", float, 0.5, "probability that each operation is applied to a sample", min=0, max=1),
        Param("padding", str, "zeros", "what fills pixels that rotate, translate, shear or zoom move in: zeros "
              "(the batch's darkest value), border (the nearest edge pixel) or reflection",
              choices=("zeros", "border", "reflection")),
    )
    operations: ClassVar[tuple[str, ...]] = tuple(OPERATIONS)
    magnitude_free: ClassVar[tuple[str, ...]] = tuple(name for name, op in OPERATIONS.items() if not op.scaled)

    def __init__(self, **values):
        super().__init__(**values)
        chosen = [OPERATIONS[name] for name in parse_operations(self.ops)]
        # At p = 0, and at magnitude 0 for an operation that m scales, nothing is applied, so that the view is
        # exactly the images (kornia's cutout would still erase one pixel at m = 0).
        applied = [op for op in chosen if self.p > 0 and (self.magnitude > 0 or not op.scaled)]
        modules = [op.build(self.magnitude, self.p, self.padding) for op in applied]
        self.pipeline = K.AugmentationSequential(*modules) if modules else None

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        if self.pipeline is None:
            return images
        # kornia's photometric operations assume values in [0, 1] and clip to it, but images arrive in their
        # own range (0..255 once a preset's input_scale multiplies them, as ORL's does; a user's files in
        # theirs). Mapping the batch's range onto [0, 1] and back keeps every range intact, and a magnitude
        # means the same on each. Noise alone leaves [0, 1]: clamped, every view stays in the batch's range.
        low, high = images.amin(), images.amax()
        span = (high - low).clamp_min(torch.finfo(images.dtype).tiny)
        return self.pipeline((images - low) / span).clamp(0, 1) * span + low
