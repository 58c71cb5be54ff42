import pytest
import torch

from dscsc_core import DataError, ParameterError
from dscsc_plugins.augmentations import GeometricAugmentation, NoAugmentation


@pytest.fixture
def batch():
    torch.manual_seed(0)
    image = torch.zeros(1, 1, 16, 16)
    image[:, :, 4:12, 6:9] = 1.0  # an asymmetric bar, so every transform shows
    return image.repeat(8, 1, 1, 1)


def test_none_is_identity(batch):
    assert torch.equal(NoAugmentation()(batch), batch)


def test_geometric_keeps_shape_dtype_and_range(batch):
    view = GeometricAugmentation()(batch)
    assert view.shape == batch.shape and view.dtype == batch.dtype
    assert view.min() >= -1e-6 and view.max() <= 1 + 1e-6


def test_geometric_draws_per_sample_parameters(batch):
    view = GeometricAugmentation(degrees=15)(batch)
    assert not torch.allclose(view, batch)
    flat = view.flatten(1)
    assert all(not torch.allclose(flat[0], flat[i]) for i in range(1, len(flat)))


def test_geometric_draws_fresh_parameters_on_every_call(batch):
    policy = GeometricAugmentation()
    assert not torch.allclose(policy(batch), policy(batch))


def test_zero_strength_is_identity(batch):
    policy = GeometricAugmentation(degrees=0, translate=0, shear=0, scale_max=1)
    assert torch.allclose(policy(batch), batch, atol=1e-5)


def test_rejects_non_batch_input():
    with pytest.raises(DataError):
        NoAugmentation()(torch.zeros(3, 8, 8))


def test_padding_decides_what_moves_in_from_outside_the_image():
    # A bright background (UMIST's, ORL's): zeros pads black wedges in, border repeats the edge.
    bright = torch.ones(4, 1, 16, 16)
    strong = {"degrees": 30.0, "translate": 0.2}
    assert GeometricAugmentation(**strong)(bright).min() < 0.5
    for padding in ("border", "reflection"):
        assert torch.allclose(GeometricAugmentation(padding=padding, **strong)(bright), bright, atol=1e-5)


def test_rejects_an_unknown_padding_in_one_line():
    with pytest.raises(ParameterError, match="padding.*zeros, border, reflection"):
        GeometricAugmentation(padding="wrap")
