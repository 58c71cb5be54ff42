"""tune trains once per seed for candidates that differ only in their clusterer, and re-clusters that C."""

from __future__ import annotations

import pytest
from conftest import assert_one_line_error, invoke

from dscsc_core.errors import ConfigError
from dscsc_core.evaluation.tuning import Criterion, tune
from dscsc_core.plugin_api.registry import load_registry
from dscsc_core.run.identity import training_fingerprint
from dscsc_core.run.pipeline import prepare, resolve_config
from dscsc_core.training.trainer import Trainer

TINY = {"dataset": "synthetic", "pretrain_epochs": 2, "epochs": 2, "miner": "knn",
        "params": {"subspaces": 3, "per_subspace": 10}}
SUBSPACE = Criterion("subspace", dim=2)


@pytest.fixture(scope="module")
def registry():
    return load_registry(strict=True)


@pytest.fixture
def fits(monkeypatch):
    """Counts the trainings that tune starts."""
    calls = []
    original = Trainer.fit
    monkeypatch.setattr(Trainer, "fit", lambda self, *args, **kw: calls.append(1) or original(self, *args, **kw))
    return calls


def _scores(ranked):
    return {tuple(sorted(c.settings.items())): c.scores for c in ranked}


def test_a_grid_over_the_clusterer_trains_once_per_seed_and_scores_as_separate_trainings(registry, fits):
    grid = {"dim": ["1", "2"], "power": ["1", "3.5"]}
    shared = tune(registry, [TINY], grid, [0, 1], criterion=SUBSPACE)
    assert len(fits) == 2  # 4 candidates x 2 seeds, one training per seed
    apart = [tune(registry, [TINY], {"dim": [d], "power": [p]}, [0, 1], criterion=SUBSPACE)[0]
             for d in grid["dim"] for p in grid["power"]]
    assert len(fits) == 2 + 4 * 2
    assert _scores(shared) == _scores(apart)
    # the candidates did cluster differently, or the test could not tell sharing from not clustering again
    assert len({c.scores for c in shared}) > 1


def test_candidates_that_train_differently_each_train(registry, fits):
    tune(registry, [TINY], {"k": ["1", "2"], "dim": ["2"]}, [0], criterion=SUBSPACE)
    assert len(fits) == 2


def test_the_training_fingerprint_ignores_the_clusterer_unless_training_uses_it(registry):
    def key(**settings):
        layer = {**TINY, **settings, "params": {**TINY["params"], **settings.pop("params", {})}}
        return training_fingerprint(prepare(resolve_config(registry, layer), registry))

    plain = key()
    assert plain == key(params={"dim": 3, "ratio": 0.5}) == key(clusterer="spectral")
    assert plain != key(params={"k": 2}) and plain != key(epochs=3)
    # S2ConvSCN-like training clusters C for its pseudo-labels: its clusterer decides C too.
    assert key(objective="s2convscn", params={"objective.every": 1}) is None


def test_a_grid_over_the_clusterers_dim_needs_one_subspace_dimension_for_the_criterion(registry, fits):
    with pytest.raises(ConfigError, match="--subspace-dim"):
        tune(registry, [TINY], {"dim": ["1", "2"]}, [0], criterion=Criterion("subspace"))
    assert not fits  # refused before any training
    assert len(tune(registry, [TINY], {"dim": ["1", "2"]}, [0], criterion=Criterion("silhouette"))) == 2


def test_the_cli_says_so_in_one_line():
    assert_one_line_error(invoke("tune", "--preset", "tiny-synthetic", "--grid", "dim=1,2", "--criterion", "subspace"),
                          "fix one with --subspace-dim")
