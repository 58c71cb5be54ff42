"""Label-free tuning: pick settings by a criterion of the clustering they produce, never by labels.

Labels are never read here. Each candidate is trained, clustered, and scored by one of two criteria:

* ``silhouette`` (the paper's, after Abavisani et al.): the mean silhouette of the predicted
  clusters with the cosine distance (subspaces pass through the origin, so direction matters, not
  length). It rewards compact clusters, which subspace clusters need not be: one face under many
  lightings spreads far in pixel space, and grouping by lighting can score higher than by person.
* ``subspace``: the share of the data's energy that one ``dim``-dimensional linear subspace per
  predicted cluster explains (the k-subspaces objective), on unit-norm input rows. It measures the
  structure self-expression assumes: every cluster should be low-rank, however spread out.

Candidates are the product of the value lists given per setting, or a list of settings (the
augmentation search's, ``augment_search``). A grid over the clusterer alone trains once per seed and
re-clusters that C for each candidate. Besides the criterion that ranks, others can be reported for
every candidate: all are computed from the same predicted clusters, at no extra training.

Where the silhouette is measured matters. By default (``space="input"``) it is the input pixels,
one fixed space for every candidate, so scores are comparable. In each candidate's own encoder
space (``space="embedding"``) a candidate that collapses its features into a few tight directions
scores well while clustering badly (measured on ORL: feature collapse in Stage II gave embedding
silhouette 0.21 at 58 % ACC against 0.16 at 73 % without collapse; in pixel space 0.062 vs 0.096).
"""

from __future__ import annotations

import dataclasses
import itertools
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import silhouette_score

from dscsc_core.errors import ConfigError
from dscsc_core.plugin_api.kinds import selection_setting
from dscsc_core.plugin_api.registry import Registry
from dscsc_core.run.config import CORE_SETTINGS, RunConfig
from dscsc_core.run.identity import training_fingerprint
from dscsc_core.run.pipeline import LoadedDatasets, PreparedRun, cluster, execute, prepare, resolve_config
from dscsc_core.run.results import RunResult

SPACES = ("input", "embedding")
CRITERIA = ("silhouette", "subspace")
# Per-cluster subspace dimension of the ``subspace`` criterion when neither the user nor the run's
# clusterer (``Clusterer.subspace_dim``) gives one: faces under varying light lie close to a
# low-dimensional subspace, and a handful of dimensions is the usual choice for them.
DEFAULT_SUBSPACE_DIM = 4


def _check_space(space: str) -> None:
    if space not in SPACES:
        raise ConfigError(f"silhouette space must be one of {', '.join(SPACES)}; got {space!r}")


def silhouette(result: RunResult, images: torch.Tensor | None = None, space: str = "input") -> float:
    """Mean cosine silhouette of the predicted clusters in ``space``; -1 if degenerate."""
    _check_space(space)
    if space == "input" and images is None:
        raise ConfigError("the input-space silhouette needs the run's images")
    labels = np.asarray(result.labels)
    if len(np.unique(labels)) < 2 or len(np.unique(labels)) >= len(labels):
        return -1.0
    points = result.embedding if space == "embedding" else images.reshape(len(images), -1).cpu().numpy()
    return float(silhouette_score(points, labels, metric="cosine"))


def _check_subspace_dim(dim: int) -> None:
    if dim < 1:
        raise ConfigError(f"the subspace dimension must be at least 1; got {dim}")


def subspace_fit(images: torch.Tensor, labels: np.ndarray, dim: int) -> float:
    """Share of the energy of the unit-norm input rows that one ``dim``-dim subspace per cluster explains.

    1 − (1/N) Σ_k Σ_{i>dim} σ_i(X_k)², with X_k the rows predicted in cluster k: in [0, 1], higher
    is better, 1 when every predicted cluster lies in a ``dim``-dimensional linear subspace.
    """
    _check_subspace_dim(dim)
    rows = torch.nn.functional.normalize(images.reshape(len(images), -1).double().cpu(), dim=1)
    groups = torch.as_tensor(np.asarray(labels))
    # One SVD per cluster (K of them), not per sample.
    residual = sum(float(torch.linalg.svdvals(rows[groups == k])[dim:].pow(2).sum()) for k in groups.unique())
    return 1.0 - residual / len(rows)


@dataclass(frozen=True)
class Criterion:
    """How ``tune`` scores a candidate's clustering without labels (higher is better)."""

    name: str = "silhouette"
    space: str = "input"  # silhouette only: the input pixels or the run's own embedding
    dim: int | None = None  # subspace only: None takes the clusterer's ``subspace_dim``, else DEFAULT_SUBSPACE_DIM

    def __post_init__(self) -> None:
        if self.name not in CRITERIA:
            raise ConfigError(f"tuning criterion must be one of {', '.join(CRITERIA)}; got {self.name!r}")
        _check_space(self.space)
        if self.dim is not None:
            _check_subspace_dim(self.dim)

    def describe(self) -> str:
        if self.name == "silhouette":
            return f"silhouette in the {self.space} space"
        return "subspace fit" + (f" (d = {self.dim})" if self.dim is not None else " (d = the clusterer's dim)")

    def score(self, result: RunResult, prepared: PreparedRun) -> float:
        # On what the run clusters: the pixels, or the fixed features computed from them.
        if self.name == "silhouette":
            return silhouette(result, prepared.inputs, self.space)
        return subspace_fit(prepared.inputs, result.labels, self.subspace_dim(prepared))

    def others(self) -> tuple[Criterion, ...]:
        """The other built-in criteria, with this one's space and dimension: what tune reports beside it."""
        return tuple(Criterion(name, self.space, self.dim) for name in CRITERIA if name != self.name)

    def subspace_dim(self, prepared: PreparedRun) -> int:
        if self.dim is not None:
            return self.dim
        assumed = prepared.components["clusterer"].subspace_dim
        return DEFAULT_SUBSPACE_DIM if assumed is None else int(assumed)


@dataclass(frozen=True)
class Candidate:
    settings: dict[str, Any]
    scores: tuple[float, ...]  # one score of the ranking criterion per seed
    # Criteria reported beside the ranking one, not ranked by: their scores per seed.
    reported: dict[Criterion, tuple[float, ...]] = field(default_factory=dict)

    @property
    def mean(self) -> float:
        return statistics.mean(self.scores)

    def reported_mean(self, criterion: Criterion) -> float:
        return statistics.mean(self.reported[criterion])


def candidates(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The product of the grid's value lists, e.g. {"k": [5, 10], "temperature": [0.1]} -> 2 settings."""
    empty = [name for name, values in grid.items() if not values]
    if empty:
        raise ConfigError(f"tuning grid for '{empty[0]}' has no values")
    names = list(grid)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*(grid[n] for n in names))]


def as_layer(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Core settings stay top-level (a kind's name counts as its selection setting); anything else
    is a plugin parameter."""
    named = {selection_setting(key): value for key, value in settings.items()}
    layer: dict[str, Any] = {k: v for k, v in named.items() if k in CORE_SETTINGS}
    layer["params"] = {k: v for k, v in named.items() if k not in CORE_SETTINGS}
    return layer


def tune(
    registry: Registry,
    base_layers: Sequence[dict[str, Any]],
    grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
    seeds: Sequence[int],
    on_candidate: Callable[[Candidate], None] | None = None,
    criterion: Criterion = Criterion(),
    stage1_cache: Path | str | None = None,
    reported: Sequence[Criterion] = (),
) -> list[Candidate]:
    """Train every candidate on every seed; return them best first by their mean ``criterion`` score.

    ``grid`` is a grid (``{"k": [5, 10]}``, its product is tried) or the candidates' settings
    themselves (``[{"k": 5}, {"k": 10, "beta": 1}]``). ``reported`` criteria are scored on the same
    clusters and kept beside the ranking one. A candidate's settings come back with their declared
    types (``k=10`` from a grid is 10). The dataset is read once; with ``stage1_cache`` candidates that
    differ only after Stage I share one Stage I per seed. Candidates that differ only in the clusterer
    (e.g. dsc-post's ``dim`` or ``power``) share one trained C per seed, clustered once per candidate,
    since they train alike.
    """
    datasets = LoadedDatasets()
    criteria = (criterion, *reported)
    configs = _checked_configs(registry, base_layers, _settings_list(grid), criteria, datasets)
    results = []
    trained: dict[str, RunResult] = {}
    for settings, config in configs:
        per_seed = [_score(registry, dataclasses.replace(config, seed=seed), criteria, stage1_cache, datasets,
                           trained) for seed in seeds]
        by_criterion = [tuple(scores) for scores in zip(*per_seed, strict=True)]
        results.append(Candidate(settings, by_criterion[0], dict(zip(reported, by_criterion[1:], strict=True))))
        if on_candidate is not None:
            on_candidate(results[-1])
    return sorted(results, key=lambda c: -c.mean)


def _settings_list(grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    if isinstance(grid, Mapping):
        return candidates(grid)
    if not grid:
        raise ConfigError("tuning has no candidates")
    return list(grid)


def _checked_configs(registry: Registry, base_layers: Sequence[dict[str, Any]],
                     settings_list: Sequence[Mapping[str, Any]], criteria: Sequence[Criterion],
                     datasets: LoadedDatasets) -> list[tuple[dict[str, Any], RunConfig]]:
    """Every candidate's settings (typed) and run, each validated before the first (long) training starts."""
    configs, dims = [], set()
    for settings in settings_list:
        config = resolve_config(registry, *base_layers, as_layer(settings))
        prepared = prepare(config, registry, datasets=datasets)
        configs.append((_typed(settings, config), config))
        dims.update(c.subspace_dim(prepared) for c in criteria if c.name == "subspace")
    if len(dims) > 1:
        raise ConfigError(f"the candidates' clusterers assume different subspace dimensions ({sorted(dims)}), so "
                          "their subspace fits would not be comparable; fix one with --subspace-dim")
    return configs


def _typed(settings: Mapping[str, Any], config: RunConfig) -> dict[str, Any]:
    """A candidate's settings as the resolved run holds them: core settings and plugin parameters typed."""
    layer = as_layer(settings)
    return {**{key: getattr(config, key) for key in layer if key != "params"},
            **{key: config.params[key] for key in layer["params"]}}


def _score(registry: Registry, config: RunConfig, criteria: Sequence[Criterion], stage1_cache: Path | str | None,
           datasets: LoadedDatasets, trained: dict[str, RunResult]) -> list[float]:
    """One candidate's score by each criterion on one seed. Candidates that differ only in their clusterer
    share the C the first of them trained (``trained``, by training fingerprint) and only re-cluster it."""
    prepared = prepare(config, registry, datasets=datasets)
    key = training_fingerprint(prepared)
    shared = trained.get(key) if key is not None else None
    if shared is None:
        result = execute(prepared, stage1_cache=stage1_cache)
        if key is not None:
            trained[key] = result
    else:
        result = dataclasses.replace(shared, labels=cluster(prepared, shared.coef).labels)
    return [criterion.score(result, prepared) for criterion in criteria]


def parse_grid(items: Sequence[str]) -> dict[str, list[str]]:
    """``["k=5,10", "temperature=0.1"]`` -> ``{"k": ["5", "10"], ...}``; values are parsed when a run resolves."""
    grid: dict[str, list[str]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        name = selection_setting(name.strip().lstrip("-").replace("-", "_"))
        parts = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not name or not parts:
            raise ConfigError(f"bad grid '{item}'; write NAME=V1,V2,... (e.g. k=5,10,20)")
        if name in grid:
            raise ConfigError(f"grid setting '{name}' given twice")
        grid[name] = parts
    return grid
