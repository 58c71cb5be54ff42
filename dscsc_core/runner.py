"""Assembles a run from a RunConfig and a plugin registry and runs it (``outputs`` writes its files).

Everything that can be checked is checked in ``prepare`` before any training starts, so a bad
run fails fast and leaves nothing behind.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__
from .checkpoint import Checkpoint, CheckpointError, TrainingInterrupted, fingerprint
from .config import SELECTIONS, RunConfig
from .datapaths import DataRoot
from .errors import ConfigError, DataError, DeviceError
from .interfaces import Dataset
from .memory import check_memory
from .metrics import clustering_scores
from .outputs import CHECKPOINT
from .params import Component, RunContext
from .registry import ComponentInfo, Registry
from .stage1_cache import StageOneCache, stage1_fingerprint
from .trainer import EpochCallback, Trainer


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; an explicit CUDA request on a machine without it is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        if not torch.cuda.is_available():
            raise DeviceError(f"device '{name}' requested but CUDA is not available here; use --device cpu or auto")
        index = int(name[5:]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise DeviceError(f"device '{name}' does not exist; this machine has {torch.cuda.device_count()} GPU(s)")
        return torch.device(name)
    raise DeviceError(f"unknown device '{name}'; choose one of: auto, cpu, cuda, cuda:N")


def route_params(params: dict[str, Any], selected: dict[str, ComponentInfo]) -> dict[str, dict[str, Any]]:
    """Send each plugin parameter to the selected component that declares it.

    ``k`` goes to the one selected plugin declaring ``k``; ``miner.k`` names the kind explicitly.
    """
    routed: dict[str, dict[str, Any]] = {option: {} for option in selected}
    for key, value in params.items():
        option, name = _owner(key, selected)
        routed[option][name] = value
    return routed


def _declares(info: ComponentInfo, name: str) -> bool:
    return any(param.name == name for param in info.params)


def _owner(key: str, selected: dict[str, ComponentInfo]) -> tuple[str, str]:
    """(selection option, parameter name) that the plugin parameter ``key`` belongs to."""
    option, _, name = key.rpartition(".")
    name = name.replace("-", "_")
    if option:
        option = "augment" if option == "augmentation" else option
        if option not in selected:
            raise ConfigError(f"unknown plugin kind '{option}' in '{key}'; use one of: {', '.join(selected)}")
        if not _declares(selected[option], name):
            raise ConfigError(_unknown_param_message(key, [selected[option]]))
        return option, name
    owners = [opt for opt, info in selected.items() if _declares(info, name)]
    if not owners:
        raise ConfigError(_unknown_param_message(key, list(selected.values())))
    if len(owners) > 1:
        qualified = " or ".join(f"--{opt}.{name}" for opt in owners)
        raise ConfigError(f"option --{name} is declared by several selected plugins; write {qualified}")
    return owners[0], name


def _unknown_param_message(key: str, infos: list[ComponentInfo]) -> str:
    accepted = sorted({f"--{p.name.replace('_', '-')}" for info in infos for p in info.params})
    names = ", ".join(f"{info.kind} '{info.name}'" for info in infos)
    return (
        f"unknown option --{key.replace('_', '-')}: no selected plugin declares it "
        f"({names} accept: {', '.join(accepted) or 'nothing'})"
    )


@dataclass
class PreparedRun:
    config: RunConfig
    components: dict[str, Component]
    infos: dict[str, ComponentInfo]
    data: Dataset
    n_clusters: int
    device: torch.device
    load_seconds: float


@dataclass
class RunResult:
    summary: dict[str, Any]
    labels: np.ndarray
    coef: np.ndarray
    affinity: np.ndarray
    embedding: np.ndarray
    history: list = field(default_factory=list)
    truth: np.ndarray | None = None  # the dataset's labels, when it has them (for figures and reports)

    @property
    def metrics(self) -> dict[str, float] | None:
        return self.summary["metrics"]


def resolve_config(registry: Registry, *layers: dict[str, Any]) -> RunConfig:
    """defaults < the chosen dataset's suggested settings < ``layers`` (e.g. file, then flags)."""
    dataset = RunConfig.from_layers(*layers).dataset
    suggested = registry.get("dataset", dataset).factory.suggested_settings
    return RunConfig.from_layers(suggested, *layers)


def build_components(config: RunConfig, registry: Registry) -> tuple[dict[str, ComponentInfo], dict[str, Component]]:
    """The selected plugins, each built with the parameters routed to it (validated here)."""
    infos = {option: registry.get(kind, getattr(config, option)) for option, kind in SELECTIONS.items()}
    routed = route_params(config.params, infos)
    return infos, {option: info.factory(**routed[option]) for option, info in infos.items()}


def prepare(config: RunConfig, registry: Registry) -> PreparedRun:
    """Resolve plugins and parameters, load and check the data; raise before anything is trained."""
    infos, components = build_components(config, registry)
    device = resolve_device(config.device)

    start = time.perf_counter()
    data_root = DataRoot.resolve(config.data_root)
    data = components["dataset"].load(data_root)
    load_seconds = time.perf_counter() - start
    n_clusters = config.n_clusters or data.n_clusters
    if n_clusters is None:
        raise DataError(f"dataset '{data.name}' has no labels; give the number of clusters with --n-clusters")
    if n_clusters < 2:
        raise DataError(f"dataset '{data.name}' has labels of one class only; clustering needs at least 2 "
                        "(give --n-clusters K to cluster it anyway)")
    n_samples = data.images.shape[0]
    if n_samples < max(n_clusters, 2):
        raise DataError(
            f"dataset '{data.name}' has {n_samples} samples, fewer than the {n_clusters} clusters asked for"
        )
    check_memory(n_samples, device)
    context = RunContext(n_samples, n_clusters, tuple(data.images.shape[1:]), data_root=data_root)
    for component in components.values():
        component.check_context(context)
    return PreparedRun(config, components, infos, data, n_clusters, device, load_seconds)


def run_fingerprint(run: PreparedRun) -> str:
    return fingerprint({**run.config.to_dict(), "data_shape": list(run.data.images.shape)})


def execute(
    run: PreparedRun,
    on_epoch: EpochCallback | None = None,
    checkpoint_dir: Path | str | None = None,
    resume: Checkpoint | None = None,
    should_stop: Callable[[], bool] | None = None,
    stage1_cache: Path | str | None = None,
) -> RunResult:
    """Train (Stage I + II), cluster and score a prepared run.

    With ``checkpoint_dir`` a checkpoint is kept there (every ``checkpoint_every`` epochs and when
    ``should_stop`` asks to stop) and removed once the run has finished. With ``stage1_cache`` a
    finished Stage I of the same settings, data and seed is reused from that folder, and a Stage I
    this run trains is stored there.
    """
    config, parts = run.config, run.components
    key = run_fingerprint(run)
    if resume is not None and resume.fingerprint != key:
        raise CheckpointError("the checkpoint was made by a different run configuration or dataset")
    path = Path(checkpoint_dir) / CHECKPOINT if checkpoint_dir is not None else None
    trainer = Trainer(
        config.training(), parts["encoder"], parts["augment"], parts["miner"], parts["regularizer"],
        device=run.device, on_epoch=on_epoch, evaluate=_evaluator(run),
        checkpointer=(lambda state: _save_checkpoint(state, path)) if path is not None else None,
        should_stop=should_stop, fingerprint=key, settings=config.to_dict(),
    )
    cache = StageOneCache(stage1_cache) if stage1_cache is not None else None
    stage1_key = stage1_fingerprint(run) if cache is not None else None
    stored = cache.load(stage1_key) if cache is not None and resume is None else None
    store = (lambda stage1: cache.save(stage1_key, stage1)) if cache is not None and stored is None else None
    try:
        trained = trainer.fit(run.data.images, run.n_clusters, resume=resume, stage1=stored, on_stage1=store)
    except TrainingInterrupted as stopped:
        hint = f"; continue with: dscsc run --resume {checkpoint_dir}" if path is not None else ""
        raise TrainingInterrupted(f"{stopped}{hint}") from None
    start = time.perf_counter()
    clustering = parts["clusterer"].fit_predict(trained.coef, run.n_clusters, seed=config.seed)
    cluster_seconds = time.perf_counter() - start
    metrics = clustering_scores(run.data.labels, clustering.labels) if run.data.labels is not None else None
    timings = {"load_s": run.load_seconds, **trained.timings, "cluster_s": cluster_seconds}
    timings["total_s"] = sum(timings.values())
    summary = {
        "dscsc_version": __version__,
        "config": {**config.to_dict(), "alpha": trained.alpha},
        "components": {
            option: {
                "kind": info.kind, "name": info.name, "params": parts[option].config,
                "provider": info.provider, "distribution": info.distribution, "version": info.version,
            }
            for option, info in run.infos.items()
        },
        "data": {"n_samples": int(run.data.images.shape[0]), "n_clusters": run.n_clusters,
                 "input_shape": list(run.data.images.shape[1:]), "has_labels": run.data.labels is not None},
        "seed": config.seed,
        "device": str(run.device),
        "machine": {"platform": platform.platform(), "torch": torch.__version__, "threads": torch.get_num_threads()},
        "pretrain_epochs_run": trained.pretrain_epochs_run,
        "stage1": {"reused": trained.stage1_reused, "fingerprint": stage1_key,
                   "stored_seconds": stored.seconds if stored is not None else None},
        "feature_scale": trained.feature_scale,
        "final_losses": trained.history[-1].losses if trained.history else {},
        "metrics": metrics,
        "timings": timings,
    }
    return RunResult(summary, clustering.labels, trained.coef, clustering.affinity, trained.embedding, trained.history,
                     run.data.labels)


def _save_checkpoint(state: Checkpoint, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    state.save(path)


def _evaluator(run: PreparedRun):
    """Scores an intermediate C with the run's own clusterer (only when the data has labels)."""
    if run.data.labels is None:
        return None

    def evaluate(coef: np.ndarray) -> dict[str, float]:
        labels = run.components["clusterer"].fit_predict(coef, run.n_clusters, seed=run.config.seed).labels
        return clustering_scores(run.data.labels, labels)

    return evaluate
