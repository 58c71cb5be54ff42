"""A local test plugin: datasets with broken data, loaded through the same PluginLoader path."""

import time
from pathlib import Path

import numpy as np
import torch

from dscsc_core import Dataset, DatasetSource, Param, SelfExpressionRegularizer, hookimpl


class NanImages(DatasetSource):
    name = "nan-images"
    summary = "ten 8x8 images, one pixel NaN"
    bad_value = float("nan")

    def read(self):
        images = torch.rand(10, 1, 8, 8)
        images[3, 0, 2, 2] = self.bad_value
        return Dataset(self.name, images, np.arange(10) % 2, None)


class InfImages(NanImages):
    name = "inf-images"
    summary = "ten 8x8 images, one pixel Inf"
    bad_value = float("inf")


class Tiny(DatasetSource):
    name = "tiny"
    summary = "a handful of random images (the same on every load), labels optional"
    params = (Param("count", int, 6, "number of images", min=0), Param("labelled", bool, True, "with labels"))

    def read(self):
        # Seeded: the same images on every load, as a file's would be (a resume refuses other data).
        images = torch.rand(self.count, 1, 8, 8, generator=torch.Generator().manual_seed(self.count))
        labels = np.arange(self.count) % 2 if self.labelled else None
        return Dataset(self.name, images, labels, 2 if self.labelled else None)


class Gated(Tiny):
    """Tiny, but loading waits until the file ``gate`` exists: holds a run at a known point (after it
    has taken its folder, before it trains) so that a test can act while it runs."""

    name = "gated"
    summary = "tiny images that load once a gate file exists"
    params = (*Tiny.params, Param("gate", str, "", "file whose existence lets loading proceed"))

    def read(self):
        deadline = time.monotonic() + 120
        while not Path(self.gate).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return super().read()


@hookimpl
def dscsc_register_datasets(register):
    register(NanImages)
    register(InfImages)
    register(Tiny)
    register(Gated)


@hookimpl
def dscsc_register_presets(register):
    register(Path(__file__).parent / "support_presets" / "tiny-synthetic.toml")


class NanAfter(SelfExpressionRegularizer):
    """Returns NaN from its ``after``-th call on: a loss that blows up mid-training."""

    name = "nan-after"
    summary = "L2 penalty that turns NaN after a number of calls"
    params = (Param("after", int, 3, "calls before the penalty becomes NaN", min=0),)

    def penalty(self, coef):
        self.calls = getattr(self, "calls", 0) + 1
        value = coef.pow(2).sum()
        return value * float("nan") if self.calls > self.after else value


@hookimpl
def dscsc_register_regularizers(register):
    register(NanAfter)
