"""Where tune measures the silhouette: the input pixels (comparable across candidates) or each embedding."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import assert_one_line_error, invoke

from dscsc_core.errors import ConfigError
from dscsc_core.evaluation.tuning import silhouette


def two_directions(n: int, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.repeat(np.eye(2, 6), n // 2, axis=0)
    return base + noise * rng.standard_normal(base.shape)


def test_input_space_ignores_how_tight_a_collapsed_embedding_looks():
    images = torch.from_numpy(two_directions(40, 0.05, 0)).float().reshape(40, 1, 2, 3)
    right = np.repeat([0, 1], 20)
    wrong = np.tile([0, 1], 20)
    # A collapsed embedding puts whatever it clustered into two tight points: a perfect
    # silhouette in its own space, even for the wrong clusters.
    collapsed = np.eye(2)[wrong] + 1e-6
    bad = SimpleNamespace(labels=wrong, embedding=collapsed)
    good = SimpleNamespace(labels=right, embedding=two_directions(40, 0.5, 1))
    assert silhouette(bad, space="embedding") > silhouette(good, space="embedding")
    assert silhouette(good, images, "input") > 0.8 > 0.0 > silhouette(bad, images, "input")


def test_unknown_space_and_missing_images_are_config_errors():
    result = SimpleNamespace(labels=np.array([0, 1, 0, 1]), embedding=np.eye(4))
    with pytest.raises(ConfigError, match="input, embedding"):
        silhouette(result, space="pixels")
    with pytest.raises(ConfigError, match="needs the run's images"):
        silhouette(result)


def test_tune_reports_the_space_and_rejects_a_bad_one():
    result = invoke("tune", "--preset", "tiny-synthetic", "--grid", "k=2", "--space", "embedding")
    assert result.exit_code == 0, result.output
    assert "embedding space" in result.stdout
    assert_one_line_error(invoke("tune", "--preset", "tiny-synthetic", "--grid", "k=2", "--space", "pixels"),
                          "must be one of input, embedding")
