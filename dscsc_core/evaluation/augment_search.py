"""The augmentation search of ``dscsc tune --augment-search``: candidates drawn from a policy space.

After Abavisani et al. (NeurIPS 2020), whom the DSCSC paper follows: a policy is one or two image
operations with a magnitude and a probability of being applied to a sample; each policy is one short
child run, and the label-free criterion picks the winner. The operations are the ``policy``
augmentation's (declared once, in that plugin); the magnitude and probability levels are here.

Two baselines always run beside the drawn policies: the recipe's own augmentation, and none, so a
search shows whether augmenting helps at all, and whether it beats what the recipe does already.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dscsc_core.errors import ConfigError
from dscsc_core.evaluation.tuning import candidates
from dscsc_core.plugin_api.kinds import selection_setting
from dscsc_core.plugin_api.registry import Registry
from dscsc_core.run.pipeline import resolve_config

SEARCHED_AUGMENTATION = "policy"
NO_AUGMENTATION = "none"
# Levels of the space: five strengths and four probabilities, as coarse as a CPU budget of a few
# dozen child runs allows (Abavisani et al. discretise finer, for GPU-sized searches).
MAGNITUDES = (0.2, 0.4, 0.6, 0.8, 1.0)
PROBABILITIES = (0.25, 0.5, 0.75, 1.0)
# What a magnitude-free operation (a flip) is written with: one policy, not one per level.
UNUSED_MAGNITUDE = 1.0


@dataclass(frozen=True)
class PolicySearch:
    """How many policies to draw, from singles only or also from pairs of operations, with which seed."""

    policies: int = 8
    pairs: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.policies < 1:
            raise ConfigError(f"{{policies}} (how many policies the augmentation search draws) must be at least 1; "
                              f"got {self.policies}", policies="policies")
        if self.seed < 0:
            raise ConfigError(f"{{seed}} (the seed of the policy draw) must be at least 0; got {self.seed}",
                              seed="search_seed")


def policy_settings(ops: str, magnitude: float, p: float) -> dict[str, Any]:
    """One policy as a candidate's settings (its parameters named by kind, so no other plugin can take them)."""
    return {"augment": SEARCHED_AUGMENTATION, "augment.ops": ops, "augment.magnitude": magnitude, "augment.p": p}


def policy_space(registry: Registry, pairs: bool = False) -> list[dict[str, Any]]:
    """Every policy: each operation (and, with ``pairs``, each two of them) x magnitude x probability."""
    policy = registry.get("augmentation", SEARCHED_AUGMENTATION).factory
    combinations = [(name,) for name in policy.operations]
    if pairs:
        combinations += list(itertools.combinations(policy.operations, 2))
    space = []
    for names in combinations:
        magnitudes = (UNUSED_MAGNITUDE,) if set(names) <= set(policy.magnitude_free) else MAGNITUDES
        space += [policy_settings("+".join(names), m, p) for m in magnitudes for p in PROBABILITIES]
    return space


def draw_policies(registry: Registry, search: PolicySearch) -> list[dict[str, Any]]:
    """``search.policies`` distinct policies of the space, the same ones for the same seed."""
    space = policy_space(registry, search.pairs)
    return random.Random(search.seed).sample(space, min(search.policies, len(space)))


def baselines(registry: Registry, base_layers: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The recipe's own augmentation (with its parameters, as the recipe sets them) and no augmentation."""
    own = resolve_config(registry, *base_layers).augment
    return [{"augment": name} for name in dict.fromkeys((own, NO_AUGMENTATION))]


def search_candidates(registry: Registry, base_layers: Sequence[Mapping[str, Any]], search: PolicySearch,
                      grid: Mapping[str, Sequence[Any]] | None = None) -> list[dict[str, Any]]:
    """The baselines and the drawn policies, each crossed with ``grid`` (other settings searched with them)."""
    grid = dict(grid or {})
    chosen = [key for key in grid if _sets_augmentation(registry, key)]
    if chosen:
        raise ConfigError(f"the augmentation search chooses the augmentation and its parameters; leave "
                          f"{', '.join(chosen)} out of the grid")
    policies = baselines(registry, base_layers) + draw_policies(registry, search)
    return [{**policy, **other} for policy in policies for other in candidates(grid)]


def _sets_augmentation(registry: Registry, key: str) -> bool:
    prefix, _, name = key.rpartition(".")
    declared = {param.name for param in registry.get("augmentation", SEARCHED_AUGMENTATION).params}
    return selection_setting(key) == "augment" or selection_setting(prefix) == "augment" or (
        not prefix and name in declared)
