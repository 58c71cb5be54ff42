"""Benchmark dataset plugins against the real files, found through the data-root setting.

The files are never in the repository: these tests read ``$DSCSC_DATA`` (set by conftest.py to
``../shared/data`` when that folder exists) and are skipped when the data root has no such file.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dscsc_core import DataError
from dscsc_core.plugin_api.datapaths import DataRoot

# name: (N, H, W, classes, images per class or None when unequal, file)
EXPECTED = {
    "orl": (400, 32, 32, 40, 10, "orl/ORL_32x32.mat"),
    "coil20": (1440, 32, 32, 20, 72, "coil20/COIL20.mat"),
    "umist": (480, 32, 32, 20, 24, "umist/umist-32-32.mat"),
    "mnist1000": (1000, 28, 28, 10, 100, "mnist/mnist1000.mat"),
    "mnist-test": (10000, 28, 28, 10, None, "mnist/t10k-images-idx3-ubyte.gz"),
    "yaleb": (2414, 48, 42, 38, None, "yaleb/ExtendedYaleB.mat"),
    "yaleb-2432": (2432, 48, 42, 38, 64, "yaleb/YaleB_48x42_2432_rebuilt.npz"),
}
# Face set -> how much more left-right symmetric than top-bottom its mean face must be. UMIST
# mixes profiles with frontal views, so its margin is smaller (measured 0.069 vs 0.082; a
# transposed set would swap the two).
FACES = {"orl": 0.5, "umist": 0.9, "yaleb": 0.5, "yaleb-2432": 0.5}


def data_root() -> DataRoot:
    return DataRoot.resolve()


def needs_file(relative: str):
    return pytest.mark.skipif(not (data_root().path / relative).is_file(),
                              reason=f"{relative} not under the data root ({data_root().path})")


@pytest.fixture(scope="module")
def loaded():
    from dscsc_core.plugin_api.registry import load_registry

    registry = load_registry(strict=True)
    cache = {}

    def load(name: str, **params):
        key = (name, tuple(sorted(params.items())))
        if key not in cache:
            cache[key] = registry.create("dataset", name, **params).load()
        return cache[key]

    return load


@pytest.mark.parametrize("name", list(EXPECTED))
def test_shapes_labels_and_scaling(loaded, name):
    n, height, width, classes, per_class, relative = EXPECTED[name]
    if not (data_root().path / relative).is_file():
        pytest.skip(f"{relative} not under the data root")
    data = loaded(name)
    assert tuple(data.images.shape) == (n, 1, height, width)
    assert data.images.dtype == torch.float32
    assert data.n_clusters == classes
    assert set(np.unique(data.labels)) == set(range(classes))
    if name != "mnist-test":  # the IDX test set is in its original, unsorted order
        assert np.all(np.diff(data.labels) >= 0), "the files are sorted by class"
    if per_class:
        assert np.all(np.bincount(data.labels) == per_class)
    # Values in [0, 1], and the full range is used (no double scaling to ~0.004, no raw 0..255).
    assert 0.0 <= data.images.min() and data.images.max() <= 1.0
    assert data.images.max() > 0.9


def left_right_asymmetry(images: torch.Tensor) -> float:
    return float((images - images.flip(-1)).abs().mean())


def top_bottom_asymmetry(images: torch.Tensor) -> float:
    return float((images - images.flip(-2)).abs().mean())


@pytest.mark.parametrize("name, margin", list(FACES.items()))
def test_faces_are_upright(loaded, name, margin):
    """Frontal faces are nearly left-right symmetric but not top-bottom: a transposed image swaps the two."""
    relative = EXPECTED[name][5]
    if not (data_root().path / relative).is_file():
        pytest.skip(f"{relative} not under the data root")
    mean_face = loaded(name).images.mean(0, keepdim=True)
    assert left_right_asymmetry(mean_face) < margin * top_bottom_asymmetry(mean_face)
    transposed = mean_face.transpose(-1, -2)
    assert left_right_asymmetry(transposed) > top_bottom_asymmetry(transposed)


@needs_file("mnist/mnist1000.mat")
def test_digits_are_upright(loaded):
    """A '1' is a tall stroke: in an upright image its ink spreads over more rows than columns."""
    ones = loaded("mnist1000").images[loaded("mnist1000").labels == 1].mean(0)[0]
    rows_with_ink = int((ones.sum(1) > 0.5).sum())
    columns_with_ink = int((ones.sum(0) > 0.5).sum())
    assert rows_with_ink > columns_with_ink


@needs_file("coil20/COIL20.mat")
def test_coil20_keeps_its_stored_scale(loaded):
    # COIL20 is stored as block means / 255 (multiples of 1/4080): it must not be divided again.
    values = loaded("coil20").images.double().flatten()[:5000] * 4080
    assert torch.allclose(values, values.round(), atol=1e-3)


@needs_file("yaleb/YaleB_48x42_2432_rebuilt.npz")
def test_yaleb_2432_can_drop_the_corrupted_images(loaded):
    kept = loaded("yaleb-2432", drop_bad=True)
    assert kept.images.shape[0] == 2414
    assert kept.n_clusters == 38


@needs_file("yaleb/YaleB_48x42_2432_rebuilt.npz")
@needs_file("yaleb/ExtendedYaleB.mat")
def test_yaleb_2432_without_bad_images_equals_the_2414_file(loaded):
    kept, reference = loaded("yaleb-2432", drop_bad=True), loaded("yaleb")
    assert torch.equal(kept.images, reference.images)
    assert np.array_equal(kept.labels, reference.labels)


@needs_file("mnist/t10k-images-idx3-ubyte.gz")
def test_mnist_test_first_per_class(loaded):
    subset = loaded("mnist-test", per_class=100)
    assert subset.images.shape[0] == 1000
    assert np.all(np.bincount(subset.labels) == 100)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_missing_file_says_what_where_and_how(tmp_path, name):
    from dscsc_core.plugin_api.registry import load_registry

    source = load_registry(strict=True).create("dataset", name)
    with pytest.raises(DataError) as info:
        source.load(DataRoot(tmp_path, "data_root"))
    message = str(info.value)
    assert "\n" not in message
    assert EXPECTED[name][5].split("/")[0] in message  # which file
    assert str(tmp_path) in message  # where it looked
    assert "'data_root'" in message and "DSCSC_DATA" in message  # how to point dscsc at it, in library words
    assert "--data-root DIR" in info.value.render(lambda name: "--" + name.replace("_", "-"))


def test_data_root_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("DSCSC_DATA", str(tmp_path / "env"))
    assert DataRoot.resolve(tmp_path / "flag") == DataRoot(tmp_path / "flag", "data_root")
    assert DataRoot.resolve() == DataRoot(tmp_path / "env", "DSCSC_DATA")
    monkeypatch.delenv("DSCSC_DATA")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert DataRoot.resolve() == DataRoot(tmp_path / "xdg" / "dscsc", "default")
