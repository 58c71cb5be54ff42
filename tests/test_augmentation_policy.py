"""The searched augmentation `policy`: every operation of its space, batched, per sample, in the images' own range."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from conftest import assert_one_line_error, invoke

from dscsc_core import ParameterError
from dscsc_core.testing import check_augmentation
from dscsc_plugins.augmentations import OPERATIONS, PolicyAugmentation

SCALED = [name for name, op in OPERATIONS.items() if op.scaled]
USAGE = Path(__file__).resolve().parent.parent / "docs" / "usage.md"


@pytest.fixture
def batch():
    """One random 32 x 32 image sixteen times: any difference between the views is the policy's own draw."""
    image = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    return image.repeat(16, 1, 1, 1)


def test_the_space_has_a_dozen_or_more_common_operations():
    assert 12 <= len(OPERATIONS) <= 16
    assert {"rotate", "translate", "shear", "zoom", "hflip", "brightness", "contrast", "cutout", "blur",
            "noise"} <= set(OPERATIONS)


@pytest.mark.parametrize("ops", list(OPERATIONS))
def test_every_operation_keeps_shape_dtype_device_and_draws_per_sample_and_per_call(ops, batch):
    check_augmentation(PolicyAugmentation(ops=ops, magnitude=0.7, p=0.5))  # the plugin authors' contract
    torch.manual_seed(0)
    policy = PolicyAugmentation(ops=ops, magnitude=1.0, p=0.5)
    view = policy(batch)
    assert view.shape == batch.shape and view.dtype == batch.dtype and view.device == batch.device
    assert len(torch.unique(view.flatten(1), dim=0)) > 1, f"{ops}: every sample got the same view"
    assert not torch.equal(view, policy(batch)), f"{ops}: two calls drew the same"


@pytest.mark.parametrize("ops", ["rotate+contrast", "cutout+noise"])
def test_two_operations_compose_and_keep_colour_images_whole(ops):
    images = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    view = PolicyAugmentation(ops=ops, magnitude=0.8, p=1.0)(images)
    assert view.shape == images.shape and not torch.allclose(view, images)


@pytest.mark.parametrize("ops", list(OPERATIONS))
def test_probability_zero_is_the_identity(ops, batch):
    assert torch.equal(PolicyAugmentation(ops=ops, magnitude=1.0, p=0.0)(batch), batch)


@pytest.mark.parametrize("ops", SCALED)
def test_magnitude_zero_leaves_the_images_unchanged(ops, batch):
    assert torch.allclose(PolicyAugmentation(ops=ops, magnitude=0.0, p=1.0)(batch * 255), batch * 255, atol=1e-3)


@pytest.mark.parametrize("ops", list(OPERATIONS))
def test_a_magnitude_means_the_same_whatever_the_images_range(ops, batch):
    """Images arrive as 0..1 or 0..255 (a preset's input_scale): a photometric op may not assume [0, 1]."""
    policy = PolicyAugmentation(ops=ops, magnitude=0.8, p=1.0)
    torch.manual_seed(3)
    unit = policy(batch)
    torch.manual_seed(3)
    pixels = policy(batch * 255)
    assert torch.allclose(pixels, unit * 255, atol=1e-2), ops
    assert pixels.min() >= batch.min() * 255 - 1e-3 and pixels.max() <= batch.max() * 255 + 1e-3


@pytest.mark.parametrize("ops, problem", [
    ("spin", "unknown operation 'spin'"), ("rotate+", "an empty operation name"), ("", "an empty operation name"),
    ("rotate+blur+noise", "3 operations"), ("blur+blur", "an operation twice"),
])
def test_bad_operations_are_refused_naming_what_is_allowed(ops, problem):
    with pytest.raises(ParameterError, match=re.escape(problem)) as refused:
        PolicyAugmentation(ops=ops, p=0.0)  # refused even where nothing would be applied
    assert "one operation or two joined by +" in str(refused.value) and ", ".join(OPERATIONS) in str(refused.value)


def test_an_unknown_operation_is_one_line_on_the_command_line():
    assert_one_line_error(invoke("run", "--preset", "tiny-synthetic", "--augment", "policy", "--ops", "rotate+spin"),
                          "unknown operation 'spin'", "rotate, translate")


def test_the_usage_docs_list_every_operation_with_its_magnitude_mapping():
    text = USAGE.read_text()
    for name, op in OPERATIONS.items():
        assert f"| `{name}` | {op.strength} |" in text, f"docs/usage.md: no row for {name}, or not '{op.strength}'"
