"""The run pipeline: resolve a RunConfig, prepare it (plugins, data, every check), execute it.

Every front end goes through these three steps: ``dscsc run``, ``tune``, ``ablate``, ``bench``,
the scikit-learn estimator (over an in-memory source) and the scripts in ``benchmarks/``.
Everything that can be checked is checked in ``prepare`` before any training starts, so a bad run
fails fast and leaves nothing behind; ``outputs`` writes a finished run's files.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import platform
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dscsc_core import __version__
from dscsc_core.errors import ConfigError, DataError, DeviceError, DscscWarning
from dscsc_core.files import make_folder
from dscsc_core.metrics import clustering_scores
from dscsc_core.plugin_api.datapaths import DataRoot
from dscsc_core.plugin_api.interfaces import Clusterer, Clustering, Dataset, DatasetSource, FeatureExtractor
from dscsc_core.plugin_api.kinds import PLUGIN_KINDS
from dscsc_core.plugin_api.params import Component, RunContext
from dscsc_core.plugin_api.registry import ComponentInfo, Registry
from dscsc_core.run.config import RunConfig
from dscsc_core.run.identity import data_digest, resume_mismatch, run_fingerprint, stage1_fingerprint
from dscsc_core.run.memory import check_memory, dense_fits, estimated_bytes
from dscsc_core.run.outputs import CHECKPOINT
from dscsc_core.run.parameters import parameter_owner, route_params, typed_params
from dscsc_core.run.processes import check_processes, process_count, process_device
from dscsc_core.run.results import LearnedC, RunResult, RunTimings, Scored, StageOneUse
from dscsc_core.run.threads import blas_threads, cpu_threads
from dscsc_core.settings import TrainingConfig
from dscsc_core.training.checkpoint import Checkpoint, CheckpointError, TrainingInterrupted
from dscsc_core.training.distributed import Processes
from dscsc_core.training.lifecycle import Checkpointing
from dscsc_core.training.result import STAGE1_STORED_S, TrainingResult
from dscsc_core.training.stage1_cache import StageOneCache
from dscsc_core.training.supported_coef import stage2_batches
from dscsc_core.training.trainer import EpochCallback, Trainer


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; an explicit CUDA request on a machine without it is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        if not torch.cuda.is_available():
            raise DeviceError(f"device '{name}' requested but CUDA is not available here; use device cpu or auto")
        index = int(name[5:]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise DeviceError(f"device '{name}' does not exist; this machine has {torch.cuda.device_count()} GPU(s)")
        return torch.device(name)
    raise DeviceError(f"unknown device '{name}'; choose one of: auto, cpu, cuda, cuda:N")


# --------------------------------------------------------------------------- resolving
def resolve_config(registry: Registry, *layers: Mapping[str, Any]) -> RunConfig:
    """The registry's default plugins < the chosen dataset's suggested settings < ``layers`` (e.g.
    preset, file, flags). Plugin parameters given as text (flags, grids) take their declared types."""
    defaults = registry.default_selections()
    dataset = RunConfig.from_layers(defaults, *layers).dataset
    suggested = registry.get("dataset", dataset).factory.suggested_settings if dataset is not None else {}
    config = RunConfig.from_layers(defaults, suggested, *layers)
    config.params = typed_params(config.params, selected_infos(config, registry))
    return config


def selected_infos(config: RunConfig, registry: Registry) -> dict[str, ComponentInfo]:
    """The plugin each selection setting names, by setting (``{"miner": <knn>, ...}``)."""
    infos = {}
    for kind in PLUGIN_KINDS:
        name = getattr(config, kind.option)
        if name is None and kind.optional:
            continue
        if name is None:
            raise ConfigError(f"no {kind.name} is selected and no plugin names a default one; set {{option}}",
                              option=kind.option)
        infos[kind.option] = registry.get(kind.name, name)
    return infos


def build_components(config: RunConfig, registry: Registry) -> tuple[dict[str, ComponentInfo], dict[str, Component]]:
    """The selected plugins, each built with the parameters routed to it (validated here)."""
    infos = selected_infos(config, registry)
    routed = route_params(config.params, infos)
    return infos, {option: info.factory(**routed[option]) for option, info in infos.items()}


# --------------------------------------------------------------------------- preparing
@dataclass
class PreparedRun:
    config: RunConfig
    components: dict[str, Component]
    infos: dict[str, ComponentInfo]
    data: Dataset
    n_clusters: int
    device: torch.device
    load_seconds: float  # reading the data, and computing its fixed features where a run has them
    # What the network (or a shallow solver) sees: the images, or the fixed features computed from them.
    inputs: torch.Tensor

    @cached_property
    def data_digest(self) -> str:
        """Digest of the images and labels as loaded: every reuse (resume, Stage I cache, stored records) is
        keyed on it, so none survives a change of the data's content."""
        return data_digest(self.data.images, self.data.labels)


class LoadedDatasets:
    """Datasets already read in this process, by source, parameters and data root, and their fixed features:
    ``tune``, ``ablate`` and ``bench`` read each once, and compute each feature plugin's maps once, however
    many candidates and seeds train on it. The seconds stay the ones measured the first time."""

    def __init__(self) -> None:
        self._loaded: dict[str, tuple[Dataset, float]] = {}
        self._features: dict[str, tuple[torch.Tensor, float]] = {}

    def load(self, source: DatasetSource, data_root: DataRoot) -> tuple[Dataset, float]:
        key = json.dumps([source.name, source.config, str(data_root.path)], sort_keys=True, default=str)
        if key not in self._loaded:
            self._loaded[key] = _timed_load(source, data_root)
        return self._loaded[key]

    def features(self, extractor: FeatureExtractor, data: Dataset, device: torch.device) -> tuple[torch.Tensor, float]:
        """``extractor``'s maps of ``data`` (a dataset this cache holds, so its identity names its content)."""
        key = json.dumps([id(data), extractor.name, extractor.config, str(device)], sort_keys=True, default=str)
        if key not in self._features:
            self._features[key] = _timed_features(extractor, data.images, device)
        return self._features[key]


def _timed_load(source: DatasetSource, data_root: DataRoot) -> tuple[Dataset, float]:
    start = time.perf_counter()
    data = source.load(data_root)
    return data, time.perf_counter() - start


def prepare(config: RunConfig, registry: Registry, source: DatasetSource | None = None,
            datasets: LoadedDatasets | None = None) -> PreparedRun:
    """Resolve plugins and parameters, load and check the data; raise before anything is trained.

    ``source`` replaces the configured dataset (the estimator's in-memory X); ``datasets`` keeps
    data already read by earlier runs of the same process.
    """
    infos, components = build_components(config, registry)
    if source is not None:
        components["dataset"] = source
        infos["dataset"] = ComponentInfo("dataset", source.name, type(source), "in-memory", "", "")
    device = resolve_device(config.device)
    data_root = DataRoot.resolve(config.data_root)
    if source is not None:
        datasets = None  # the estimator's X: read here, held by no cache
    if datasets is not None:
        data, load_seconds = datasets.load(components["dataset"], data_root)
    else:
        data, load_seconds = _timed_load(components["dataset"], data_root)
    n_clusters = _cluster_count(config, data)
    n_samples = data.images.shape[0]
    if n_samples < max(n_clusters, 2):
        raise DataError(
            f"dataset '{data.name}' has {n_samples} samples, fewer than the {n_clusters} clusters asked for"
        )
    if config.stage2_batch_size > 0 and config.coef_support == 0:
        raise ConfigError("Stage II in mini-batches ({batch}) needs C on a support of neighbours: set {support} "
                          "(e.g. 50), or {batch} to 0", batch="stage2_batch_size", support="coef_support")
    if config.coef_support == 0 and not dense_fits(n_samples, device):
        config, infos, components = _scalable_instead(config, registry, infos, components, n_samples, device)
    if config.coef_support > 0:
        _check_scalable_path(config, components, n_samples)
    processes = process_count(config)
    check_processes(config, device, n_samples, processes)
    device = process_device(device, processes)
    inputs, features_seconds = _inputs(components.get("features"), data, device, datasets)
    _warn_if_augmenting_features(components)
    # What a miner sees at once: the smallest batch, or in several processes the smallest share of one.
    context = RunContext(n_samples, n_clusters, tuple(inputs.shape[1:]), data_root=data_root,
                         batch_samples=min(stage2_batches(n_samples, config.stage2_batch_size)) // processes)
    for component in components.values():
        component.check_context(context)
    return PreparedRun(config, components, infos, data, n_clusters, device, load_seconds + features_seconds, inputs)


def _warn_if_augmenting_features(components: dict[str, Component]) -> None:
    """An augmentation made for images (rotations, crops, flips) acts on a feature plugin's maps instead."""
    extractor, augment = components.get("features"), components["augment"]
    if extractor is not None and not augment.identity:
        warnings.warn(DscscWarning(
            f"augmentation '{augment.name}' acts on the '{extractor.name}' maps, not on the images "
            "(the features are computed once, before training); --augment none keeps each sample as its own "
            "positive"), stacklevel=3)


def _inputs(extractor: FeatureExtractor | None, data: Dataset, device: torch.device,
            datasets: LoadedDatasets | None) -> tuple[torch.Tensor, float]:
    """The run's inputs and the seconds they took: the images, or their fixed features, computed once before
    any training (once per process where ``datasets`` keeps them)."""
    if extractor is None:
        return data.images, 0.0
    if datasets is not None:
        return datasets.features(extractor, data, device)
    return _timed_features(extractor, data.images, device)


def _timed_features(extractor: FeatureExtractor, images: torch.Tensor,
                    device: torch.device) -> tuple[torch.Tensor, float]:
    """The maps, computed on the run's device and kept where the images are (the trainer moves its inputs)."""
    start = time.perf_counter()
    inputs = extractor(images.to(device)).to(images.device)
    return inputs, time.perf_counter() - start


# What a run takes when the dense C would not fit: each sample expressed by this many neighbours, Stage II in
# batches of at most this many samples (the first measured setting, docs/running.md), a clusterer of sparse C.
SCALABLE_SUPPORT, SCALABLE_BATCH, SCALABLE_CLUSTERER = 50, 1000, "sparse-spectral"


def _scalable_instead(config: RunConfig, registry: Registry, infos: dict[str, ComponentInfo],
                      components: dict[str, Component], n_samples: int, device: torch.device):
    """The run on the scalable path, with a warning that says why and what it chose. A training objective needs
    the dense C, so such a run is refused as before."""
    if components.get("objective") is not None:
        check_memory(n_samples, device)
    changes = {"coef_support": min(SCALABLE_SUPPORT, n_samples - 1),
               "stage2_batch_size": min(SCALABLE_BATCH, n_samples)}
    if config.pretrain_objective == "drh+sch" and config.pretrain_batch_size == 0:
        changes["pretrain_batch_size"] = min(SCALABLE_BATCH, n_samples)  # Stage I's SCH, batch by batch
    # Each plugin parameter named by its owner: a plain "k" must keep its plugin when another one joins.
    owned = {key: parameter_owner(key, infos) for key in config.params}
    params = {f"{option}.{name}": config.params[key] for key, (option, name) in owned.items()}
    if not components["clusterer"].accepts_sparse:
        changes["clusterer"] = SCALABLE_CLUSTERER
        params = {key: value for key, value in params.items() if not key.startswith("clusterer.")}
    scalable = dataclasses.replace(config, **changes, params=params)
    needed = estimated_bytes(n_samples)
    size = f"{needed / 2**30:.1f} GiB" if needed >= 2**30 else f"{needed / 2**20:.1f} MiB"
    warnings.warn(DscscWarning(
        f"{n_samples} samples need {size} for a dense C on {device}, more than it has free: this run takes the "
        "scalable path (" + ", ".join(f"{k} {v}" for k, v in changes.items())
        + "; docs/running.md, 'Large datasets')"), stacklevel=3)
    new_infos, new_components = build_components(scalable, registry)
    new_infos["dataset"], new_components["dataset"] = infos["dataset"], components["dataset"]
    return scalable, new_infos, new_components


def _check_scalable_path(config: RunConfig, components: dict[str, Component], n_samples: int) -> None:
    """C on a support of k neighbours (``coef_support``) leaves as a sparse matrix: what it needs, before training."""
    if config.coef_support >= n_samples:
        raise ConfigError(f"{{support}} must be smaller than the {n_samples} samples (each is expressed by at most "
                          f"N-1 others); got {config.coef_support}", support="coef_support")
    if config.stage2_batch_size > n_samples:
        raise ConfigError(f"{{batch}} must be at most the {n_samples} samples; got {config.stage2_batch_size}",
                          batch="stage2_batch_size")
    if config.pretrain_objective == "drh+sch" and config.pretrain_batch_size == 0:
        raise ConfigError("Stage I trains SCH over all samples at once ({objective} drh+sch), an N x N matrix; set "
                          "{batch} (e.g. 1000), or {objective} to drh", objective="pretrain_objective",
                          batch="pretrain_batch_size")
    clusterer = components["clusterer"]
    if not clusterer.accepts_sparse:
        raise ConfigError(f"{{support}} keeps C sparse, and clusterer '{clusterer.name}' needs a dense C; choose a "
                          "clusterer that takes a sparse one (e.g. sparse-spectral)", support="coef_support")
    if components.get("objective") is not None:
        raise ConfigError("a training objective reads the dense C; leave {objective} unset with {support}",
                          objective="objective", support="coef_support")


def _cluster_count(config: RunConfig, data: Dataset) -> int:
    """K: the setting, else the dataset's own (from its labels, or stated by an unlabelled source)."""
    n_clusters = config.n_clusters or data.n_clusters
    if n_clusters is None:
        raise DataError(f"dataset '{data.name}' has no labels; set {{setting}} to the number of clusters",
                        setting="n_clusters")
    if n_clusters < 2 and data.labels is not None:
        raise DataError(f"dataset '{data.name}' has labels of one class only; clustering needs at least 2 "
                        "(set {setting} to cluster it anyway)", setting="n_clusters")
    return n_clusters


def cluster(run: PreparedRun, coef: np.ndarray) -> Clustering:
    """``coef`` clustered by the run's own clusterer, with the run's seed and threads."""
    with cpu_threads(run.config.threads):
        return _timed_clustering(run.components["clusterer"], coef, run)[0]


# --------------------------------------------------------------------------- executing
CheckpointSink = Callable[[Checkpoint], None]


def _trainer(run: PreparedRun, training: TrainingConfig, key: str, checkpoint: Path | None,
             on_epoch: EpochCallback | None, should_stop: Callable[[], bool] | None,
             checkpoint_sink: CheckpointSink | None = None) -> Trainer:
    """The run's plugins in a Trainer; the run's clusterer also gives the pseudo-labels where an objective reads
    them. Of several processes only the first reports epochs, scores C and keeps checkpoints; a stop request of
    any stops them all after the same epoch."""
    config, parts = run.config, run.components
    processes = Processes.current()
    stop = should_stop or (lambda: False)
    leads = processes.leads
    return Trainer(
        training, parts["encoder"], parts["augment"], parts["miner"], parts["regularizer"],
        device=run.device, on_epoch=on_epoch if leads else None, evaluate=_evaluator(run) if leads else None,
        checkpointing=Checkpointing(
            save=_checkpoint_saver(checkpoint, checkpoint_sink) if leads else None,
            should_stop=(lambda: processes.any(stop(), run.device)) if processes.several else stop,
            every=training.checkpoint_every, fingerprint=key, settings=config.to_dict(), data=run.data_digest),
        pseudo_labeler=lambda coef: parts["clusterer"].fit_predict(coef, run.n_clusters, seed=config.seed).labels,
        objective=parts.get("objective"),
    )


def _checkpoint_saver(path: Path | None, sink: CheckpointSink | None) -> CheckpointSink | None:
    """Where each checkpoint goes: the file at ``path``, and a copy (its own tensors) to ``sink``."""
    if path is None and sink is None:
        return None

    def save(state: Checkpoint) -> None:
        if path is not None:
            _save_checkpoint(state, path)
        if sink is not None:
            sink(copy.deepcopy(state))  # the state dicts hold the live network's tensors

    return save


def _stage1_sharing(run: PreparedRun, stage1_cache: Path | str | None, resume: Checkpoint | None):
    """(key, stored Stage I or None, callback storing a freshly trained one or None) for ``stage1_cache``."""
    if stage1_cache is None:
        return None, None, None
    leads = Processes.current().leads  # of several processes, all read the cache (so all start alike), one writes
    cache = StageOneCache(stage1_cache, store=leads)
    key = stage1_fingerprint(run)
    stored = cache.load(key) if resume is None else None
    # Called only when the trainer trains Stage I itself (none stored, or one it cannot start from).
    return key, stored, (lambda stage1: cache.save(key, stage1)) if leads else None


def execute(
    run: PreparedRun,
    on_epoch: EpochCallback | None = None,
    checkpoint_dir: Path | str | None = None,
    resume: Checkpoint | None = None,
    should_stop: Callable[[], bool] | None = None,
    stage1_cache: Path | str | None = None,
    clusterers: Mapping[str, Clusterer] | None = None,
    checkpoint_sink: CheckpointSink | None = None,
) -> RunResult | None:
    """Train (Stage I + II), cluster and score a prepared run.

    With ``checkpoint_dir`` a checkpoint is kept there (every ``checkpoint_every`` epochs and when
    ``should_stop`` asks to stop) and removed once the run has finished. With ``stage1_cache`` a
    finished Stage I of the same settings, data and seed is reused from that folder, and a Stage I
    this run trains is stored there. ``clusterers`` (by name) also cluster the learned C, beside
    the run's own clusterer, so that they are compared on identical training. ``checkpoint_sink`` receives
    every checkpoint the run makes (the same ones, at the same epochs, as ``checkpoint_dir`` would keep), each a
    copy the sink may keep, with or without ``checkpoint_dir``; the run computes exactly what it computes
    without it.

    Of several processes training the run together (``torch.distributed`` initialised, see ``run.processes``),
    only the first clusters, keeps checkpoints and stores Stage I, and returns the result; the others return
    None once training is over.
    """
    with cpu_threads(run.config.threads):
        return _execute(run, on_epoch, checkpoint_dir, resume, should_stop, stage1_cache, clusterers,
                        checkpoint_sink)


def _execute(run: PreparedRun, on_epoch: EpochCallback | None, checkpoint_dir: Path | str | None,
             resume: Checkpoint | None, should_stop: Callable[[], bool] | None, stage1_cache: Path | str | None,
             clusterers: Mapping[str, Clusterer] | None, checkpoint_sink: CheckpointSink | None) -> RunResult:
    config, parts = run.config, run.components
    key = run_fingerprint(run)
    if resume is not None and resume.fingerprint != key:
        raise CheckpointError(f"cannot resume: {resume_mismatch(resume.settings, resume.data, run)}")
    solver = parts.get("solver")
    if solver is not None and config.solver_input == "pixels":
        pixels = run.inputs.flatten(1).double().numpy() * config.input_scale
        return _finish(run, _solve(solver, pixels, None), StageOneUse(), clusterers)
    # With a solver on features, the network stops after Stage I (no Stage II steps).
    training = config.training() if solver is None else dataclasses.replace(config.training(), epochs=0)
    path = Path(checkpoint_dir) / CHECKPOINT if checkpoint_dir is not None else None
    trainer = _trainer(run, training, key, path, on_epoch, should_stop, checkpoint_sink)
    stage1_key, stored, store = _stage1_sharing(run, stage1_cache, resume)
    try:
        trained = trainer.fit(run.inputs, run.n_clusters, resume=resume, stage1=stored, on_stage1=store)
    except TrainingInterrupted as stopped:
        raise TrainingInterrupted(f"{stopped} in {checkpoint_dir}" if path is not None else str(stopped),
                                  checkpoint_dir=checkpoint_dir if path is not None else None) from None
    if not Processes.current().leads:
        return None
    stage1 = StageOneUse(trained.stage1_reused, stage1_key, trained.timings.get(STAGE1_STORED_S))
    if solver is not None:
        return _finish(run, _solve(solver, trained.embedding.astype(np.float64), trained), stage1, clusterers)
    return _finish(run, LearnedC(trained.coef, trained.embedding, trained.timings, trained), stage1, clusterers)


def _solve(solver, data: np.ndarray, trained: TrainingResult | None) -> LearnedC:
    """A solver's C for ``data`` (one sample per row; the pixels, or a trained Stage I's features), in place of
    Stage II: its time stands as Stage II's."""
    start = time.perf_counter()
    coef = solver.solve(data)
    seconds = {**(trained.timings if trained is not None else {}), "finetune_s": time.perf_counter() - start}
    return LearnedC(coef, data, seconds, trained)


def _finish(run: PreparedRun, learned: LearnedC, stage1: StageOneUse,
            clusterers: Mapping[str, Clusterer] | None) -> RunResult:
    """Cluster and score a finished C (trained or solved) and describe the run."""
    config, parts = run.config, run.components
    own, own_seconds = _timed_clustering(parts["clusterer"], learned.coef, run)
    clusterings = {config.clusterer: _scored(run, own.labels, own_seconds)}
    for name, clusterer in (clusterers or {}).items():
        if name not in clusterings:
            extra, seconds = _timed_clustering(clusterer, learned.coef, run)
            clusterings[name] = _scored(run, extra.labels, seconds)
    timings = RunTimings(run.load_seconds, learned.seconds.get("pretrain_s", 0.0), learned.seconds["finetune_s"],
                         own_seconds, stage1)
    summary = _summary(run, learned.training, timings, clusterings[config.clusterer].scores)
    history = learned.training.history if learned.training is not None else []
    return RunResult(summary, own.labels, learned.coef, own.affinity, learned.embedding, timings, history,
                     run.data.labels, clusterings)


def _summary(run: PreparedRun, trained: TrainingResult | None, timings: RunTimings,
             scores: dict[str, float] | None) -> dict[str, Any]:
    """What summary.json says about a finished run: settings, plugins, data, machine, scores and timings."""
    config, parts = run.config, run.components
    return {
        "dscsc_version": __version__,
        "config": {**config.to_dict(),
                   **({} if "solver" in parts else {"alpha": trained.alpha, "gamma": trained.gamma})},
        "components": {
            option: {
                "kind": info.kind, "name": info.name, "params": parts[option].config,
                "provider": info.provider, "distribution": info.distribution, "version": info.version,
            }
            for option, info in run.infos.items()
        },
        "data": {"n_samples": int(run.data.images.shape[0]), "n_clusters": run.n_clusters,
                 "input_shape": list(run.inputs.shape[1:]), "has_labels": run.data.labels is not None},
        "seed": config.seed,
        "device": str(run.device),
        "machine": {"platform": platform.platform(), "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "blas_threads": blas_threads(), "processes": Processes.current().count},
        "pretrain_epochs_run": trained.pretrain_epochs_run if trained is not None else 0,
        "dead_starts": trained.dead_starts if trained is not None else 0,
        "stage1": timings.stage1.to_dict(),
        "feature_scale": trained.feature_scale if trained is not None else {},
        "stage2_measures": trained.stage2_measures if trained is not None else {},
        "final_losses": trained.history[-1].losses if trained is not None and trained.history else {},
        "metrics": scores,
        "timings": timings.to_dict(),
    }


def _timed_clustering(clusterer: Clusterer, coef: np.ndarray, run: PreparedRun) -> tuple[Clustering, float]:
    start = time.perf_counter()
    clustering = clusterer.fit_predict(coef, run.n_clusters, seed=run.config.seed)
    return clustering, time.perf_counter() - start


def _scored(run: PreparedRun, labels: np.ndarray, seconds: float) -> Scored:
    scores = clustering_scores(run.data.labels, labels) if run.data.labels is not None else None
    return Scored(labels, scores, seconds)


def _save_checkpoint(state: Checkpoint, path: Path) -> None:
    make_folder(path.parent)
    state.save(path)


def _evaluator(run: PreparedRun):
    """Scores an intermediate C with the run's own clusterer (only when the data has labels)."""
    if run.data.labels is None:
        return None

    def evaluate(coef: np.ndarray) -> dict[str, float]:
        labels = run.components["clusterer"].fit_predict(coef, run.n_clusters, seed=run.config.seed).labels
        return clustering_scores(run.data.labels, labels)

    return evaluate
