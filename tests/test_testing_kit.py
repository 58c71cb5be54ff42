"""The plugin authors' kit: every built-in passes its contract check, and broken plugins fail them."""

from __future__ import annotations

import pytest
import torch

from dscsc_core import NegativeMiner, Param, SelfExpressionRegularizer
from dscsc_core.testing import (
    check_augmentation,
    check_clusterer,
    check_dataset,
    check_encoder,
    check_miner,
    check_objective,
    check_regularizer,
)

CHECKS = {"miner": check_miner, "encoder": check_encoder, "augmentation": check_augmentation,
          "regularizer": check_regularizer, "clusterer": check_clusterer, "objective": check_objective}


def builtins(kind):
    from dscsc_core.plugin_api.registry import load_registry

    return [info for info in load_registry(strict=True) if info.kind == kind and info.provider == "builtins"]


@pytest.mark.parametrize("kind", list(CHECKS))
def test_every_builtin_passes_its_check(kind):
    infos = builtins(kind)
    assert infos
    for info in infos:
        if kind == "encoder":
            check_encoder(info.factory, (1, 32, 32))
        else:
            CHECKS[kind](info.factory)


@pytest.mark.parametrize("name", ["digits", "synthetic"])
def test_embedded_datasets_pass_the_dataset_check(name):
    from dscsc_core.plugin_api.registry import load_registry

    check_dataset(load_registry(strict=True).get("dataset", name).factory)


class SelfNegativeMiner(NegativeMiner):
    """Broken on purpose: a random mask that changes each call."""

    name = "random"
    summary = "random negatives"

    def mine(self, z, coef):
        return torch.rand(z.shape[0], z.shape[0]) > 0.5


class NegativePenalty(SelfExpressionRegularizer):
    name = "negative"
    summary = "a penalty that rewards large C"
    params = (Param("weight", float, 1.0, "weight"),)

    def penalty(self, coef):
        return -coef.pow(2).sum()


class NoHelp(NegativeMiner):
    name = "no-help"
    summary = "parameters without help"
    params = (Param("k", int, 3),)

    def mine(self, z, coef):
        return torch.ones(z.shape[0], z.shape[0], dtype=torch.bool)


@pytest.mark.parametrize("check, component, message", [
    (check_miner, SelfNegativeMiner, "same input, different negatives"),
    (check_regularizer, NegativePenalty, "must not be negative"),
    (check_miner, NoHelp, "needs help text"),
])
def test_broken_plugins_fail_with_the_rule_they_break(check, component, message):
    with pytest.raises(AssertionError, match=message):
        check(component)


def test_the_objective_check_catches_an_undeclared_term_and_a_term_that_trains_nothing():
    from dscsc_core import ObjectiveTerm, TrainingObjective

    class Undeclared(TrainingObjective):
        name, summary = "undeclared", "returns a term it never declared"
        params = (Param("weight", float, 1.0, "weight"),)
        terms = (ObjectiveTerm("declared", "a term", "objective.weight", weight="weight"),)

        def losses(self, step):
            return {"other": step.coef.abs().sum()}

    class Detached(Undeclared):
        name, summary = "detached", "a weighted term without a gradient"

        def losses(self, step):
            return {"declared": step.coef.detach().abs().sum()}

    with pytest.raises(Exception, match="does not declare"):
        check_objective(Undeclared)
    with pytest.raises(Exception, match="reaches neither z nor C"):
        check_objective(Detached)
