"""dscsc tune --augment-search: policies drawn reproducibly from the space, short child runs beside two baselines,
scored by both criteria from the same clusters."""

from __future__ import annotations

import ast
import tomllib

import pytest
from conftest import assert_one_line_error, invoke

from dscsc_core.errors import ConfigError
from dscsc_core.evaluation.augment_search import (
    MAGNITUDES,
    PROBABILITIES,
    PolicySearch,
    draw_policies,
    policy_space,
    search_candidates,
)
from dscsc_core.evaluation.tuning import Criterion, tune
from dscsc_core.training.trainer import Trainer
from dscsc_plugins.augmentations import OPERATIONS

TINY = {"dataset": "synthetic", "pretrain_epochs": 2, "epochs": 2,
        "params": {"subspaces": 3, "per_subspace": 10, "size": 8}}
SEARCH = ("tune", "--preset", "tiny-synthetic", "--augment-search", "--policies", "3", "--child-epochs", "2")


def _drawn(stderr: str) -> list[dict]:
    """The settings of each candidate tune announced, in the order it trained them."""
    return [ast.literal_eval(line[line.index("{"):]) for line in stderr.splitlines() if "{" in line]


def test_the_space_is_every_operation_at_every_level_and_pairs_on_request(registry):
    singles = policy_space(registry)
    magnitude_free = [name for name, op in OPERATIONS.items() if not op.scaled]
    levels = len(MAGNITUDES) * len(PROBABILITIES)
    assert len(singles) == (len(OPERATIONS) - len(magnitude_free)) * levels + len(magnitude_free) * len(PROBABILITIES)
    assert len({tuple(policy.items()) for policy in singles}) == len(singles)
    pairs = [policy for policy in policy_space(registry, pairs=True) if "+" in policy["augment.ops"]]
    assert len({policy["augment.ops"] for policy in pairs}) == len(OPERATIONS) * (len(OPERATIONS) - 1) // 2


def test_the_same_seed_draws_the_same_distinct_policies(registry):
    drawn = draw_policies(registry, PolicySearch(policies=6, seed=4))
    assert drawn == draw_policies(registry, PolicySearch(policies=6, seed=4))
    assert drawn != draw_policies(registry, PolicySearch(policies=6, seed=5))
    assert len({tuple(policy.items()) for policy in drawn}) == 6
    assert all(policy["augment"] == "policy" and "+" not in policy["augment.ops"] for policy in drawn)


def test_the_baselines_come_first_and_a_grid_is_tried_with_every_policy(registry):
    found = search_candidates(registry, [TINY], PolicySearch(policies=2), {"k": ["1", "2"]})
    assert [c["augment"] for c in found[:4]] == ["geometric", "geometric", "none", "none"]
    assert len(found) == (2 + 2) * 2 and {c["k"] for c in found} == {"1", "2"}
    only_none = search_candidates(registry, [{**TINY, "augment": "none"}], PolicySearch(policies=1))
    assert [c["augment"] for c in only_none] == ["none", "policy"]


@pytest.mark.parametrize("key", ["augment", "augmentation", "augment.magnitude", "ops", "p"])
def test_a_grid_may_not_choose_the_augmentation_the_search_chooses(registry, key):
    with pytest.raises(ConfigError, match="leave .* out of the grid"):
        search_candidates(registry, [TINY], PolicySearch(), {key: ["1"]})


def test_reported_criteria_come_from_the_same_clusters_without_more_training(registry, monkeypatch, tmp_path):
    fits = []
    original = Trainer.fit
    monkeypatch.setattr(Trainer, "fit", lambda self, *args, **kw: fits.append(1) or original(self, *args, **kw))
    settings = [{"augment": "none"}, *draw_policies(registry, PolicySearch(policies=1))]
    silhouette, subspace = Criterion("silhouette"), Criterion("subspace", dim=2)
    shared = {"registry": registry, "base_layers": [TINY, {"pretrain_objective": "drh"}], "grid": settings,
              "seeds": [0], "stage1_cache": tmp_path}  # one Stage I for all: augmentation enters Stage II only
    by_silhouette = tune(**shared, criterion=silhouette, reported=silhouette.others())
    assert len(fits) == 2  # one training per candidate, both criteria scored on it
    assert silhouette.others() == (Criterion("subspace"),)
    by_subspace = tune(**shared, criterion=subspace, reported=(silhouette,))
    ranked_fit = {str(c.settings): c.mean for c in by_subspace}
    reported_silhouette = {str(c.settings): c.reported_mean(silhouette) for c in by_subspace}
    assert reported_silhouette == {str(c.settings): c.mean for c in by_silhouette}
    assert set(ranked_fit) == reported_silhouette.keys()


def test_the_search_runs_end_to_end_and_shows_both_criteria_and_the_baselines(registry, tmp_path):
    best, cache = tmp_path / "best.toml", tmp_path / "stage1"
    # With a Stage I of reconstruction alone, augmentation enters only Stage II: one Stage I for every candidate.
    result = invoke(*SEARCH, "--write", str(best), "--pretrain-objective", "drh", "--stage1-cache", str(cache),
                    env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "candidates by mean silhouette" in result.stdout and "subspace (mean)" in result.stdout
    assert "augment=geometric (the recipe's own), augment=none (no augmentation)" in result.stdout
    announced = _drawn(result.stderr)
    assert announced[:2] == [{"augment": "geometric"}, {"augment": "none"}]
    assert announced[2:] == draw_policies(registry, PolicySearch(policies=3, seed=0))  # reproducible by seed
    assert all(line.startswith("silhouette ") and "  subspace " in line for line in result.stderr.splitlines())
    for policy in announced[2:]:
        assert f"augment.ops={policy['augment.ops']}" in result.stdout
    assert len(list(cache.glob("stage1-*.pt"))) == 1
    written = tomllib.loads(best.read_text())
    assert written["augment"] in {"geometric", "none", "policy"} and "epochs" not in written


@pytest.mark.parametrize("args, fragment", [
    (("--policies", "0"), "--policies (how many policies the augmentation search draws) must be at least 1"),
    (("--search-seed", "-1"), "--search-seed (the seed of the policy draw) must be at least 0"),
    (("--epochs", "3"), "--child-epochs and --epochs both set"),
    (("--grid", "augment=none,geometric"), "leave augment out of the grid"),
])
def test_bad_searches_are_one_line(args, fragment):
    assert_one_line_error(invoke(*SEARCH, *args), fragment)


def test_tune_needs_a_grid_or_the_search_and_its_options_need_the_search():
    assert_one_line_error(invoke("tune", "--preset", "tiny-synthetic"), "give --grid NAME=V1,V2,... (repeatable) or "
                          "--augment-search")
    assert_one_line_error(invoke("tune", "--preset", "tiny-synthetic", "--grid", "k=1", "--policies", "3"),
                          "add --augment-search")
