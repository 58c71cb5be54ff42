"""The label-free criteria of dscsc tune: the silhouette rewards compact clusters, the subspace fit low-rank ones."""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import assert_one_line_error, invoke
from sklearn.metrics import silhouette_score

from dscsc_core.errors import ConfigError
from dscsc_core.evaluation.tuning import DEFAULT_SUBSPACE_DIM, Criterion, subspace_fit
from dscsc_core.plugin_api.registry import load_registry


def union_of_planes(per_plane: int = 30, planes: int = 3, ambient: int = 12) -> tuple[torch.Tensor, np.ndarray]:
    generator = torch.Generator().manual_seed(0)
    bases = [torch.linalg.qr(torch.randn(ambient, 2, generator=generator))[0] for _ in range(planes)]
    rows = torch.cat([(basis @ torch.randn(2, per_plane, generator=generator)).T for basis in bases])
    return rows.double(), np.repeat(np.arange(planes), per_plane)


def lit_faces(per_group: int = 20) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two identities, each a plane span(light, face_k), lit from the left or the right (Yale B in miniature)."""
    light, faces = np.eye(6)[0], np.eye(6)[1:3]
    side = np.tile(np.repeat([-1.0, 1.0], per_group), 2)
    identity = np.repeat([0, 1], 2 * per_group)
    face_weight = np.tile(np.linspace(0.2, 0.6, 2 * per_group), 2)
    rows = side[:, None] * light + face_weight[:, None] * faces[identity]
    return rows, identity, (side > 0).astype(int)


def test_subspace_fit_is_one_for_the_true_planes_and_lower_for_a_wrong_partition():
    rows, truth = union_of_planes()
    assert subspace_fit(rows, truth, 2) == pytest.approx(1.0)
    assert subspace_fit(rows, np.tile([0, 1, 2], 30), 2) < 0.8
    assert subspace_fit(rows, truth, 1) < 0.9  # one dimension per plane cannot explain them


def test_subspace_fit_ignores_scale_and_the_order_of_the_labels():
    rows, truth = union_of_planes()
    shuffled = np.random.default_rng(0).permutation(len(truth))
    partition = np.tile([0, 1, 2], 30)
    score = subspace_fit(rows, partition, 2)
    assert subspace_fit(255 * rows, partition, 2) == pytest.approx(score)
    assert subspace_fit(rows[shuffled], partition[shuffled], 2) == pytest.approx(score)
    assert subspace_fit(rows, (partition + 1) % 3, 2) == pytest.approx(score)


def test_subspace_fit_prefers_identities_where_the_silhouette_prefers_lighting():
    rows, identity, lighting = lit_faces()
    assert silhouette_score(rows, lighting, metric="cosine") > silhouette_score(rows, identity, metric="cosine")
    points = torch.from_numpy(rows)
    assert subspace_fit(points, identity, 2) > subspace_fit(points, lighting, 2)


def test_the_subspace_dimension_comes_from_the_user_then_the_clusterer_then_the_default():
    rows, truth = union_of_planes()
    images = rows.float().reshape(len(rows), 1, 3, 4)
    result = SimpleNamespace(labels=truth)

    def prepared(name, **params):
        clusterer = load_registry(strict=True).create("clusterer", name, **params)
        return SimpleNamespace(data=SimpleNamespace(images=images), inputs=images, components={"clusterer": clusterer})

    assert Criterion("subspace", dim=1).score(result, prepared("dsc-post", dim=2)) < 0.9
    assert Criterion("subspace").score(result, prepared("dsc-post", dim=2)) == pytest.approx(1.0, abs=1e-6)
    assert Criterion("subspace").subspace_dim(prepared("spectral")) == DEFAULT_SUBSPACE_DIM  # assumes none


def test_bad_criteria_are_config_errors():
    with pytest.raises(ConfigError, match="silhouette, subspace"):
        Criterion("accuracy")
    with pytest.raises(ConfigError, match="at least 1"):
        Criterion("subspace", dim=0)
    with pytest.raises(ConfigError, match="at least 1"):
        subspace_fit(torch.eye(3), np.array([0, 1, 1]), 0)


def test_tune_by_subspace_fit_names_the_criterion_and_writes_it(tmp_path):
    best = tmp_path / "best.toml"
    result = invoke("tune", "--preset", "tiny-synthetic", "--grid", "k=1,2", "--criterion", "subspace",
                    "--subspace-dim", "2", "--write", str(best))
    assert result.exit_code == 0, result.output
    assert "subspace fit" in result.stdout and "silhouette" not in result.stdout
    assert "highest mean subspace fit (d = 2)" in best.read_text()
    # Five decimals: on real data the candidates' fits differ in the fourth.
    assert re.search(r"^subspace [01]\.\d{5}  \{'k': 1\}$", result.stderr, re.MULTILINE), result.stderr


def test_tune_rejects_an_unknown_criterion_in_one_line():
    assert_one_line_error(invoke("tune", "--preset", "tiny-synthetic", "--grid", "k=2", "--criterion", "accuracy"),
                          "must be one of silhouette, subspace")
