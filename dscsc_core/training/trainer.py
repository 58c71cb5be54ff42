"""The two-stage DSCSC training loop (Algorithm 1). It knows plugin kinds, never plugin names."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial

import numpy as np
import torch
from scipy import sparse
from torch.profiler import record_function

from dscsc_core.errors import ConfigError, DataError
from dscsc_core.plugin_api.interfaces import (
    AugmentationPolicy,
    Encoder,
    NegativeMiner,
    SelfExpressionRegularizer,
    StageTwoStep,
    TrainingObjective,
)
from dscsc_core.settings import TrainingConfig
from dscsc_core.training.checkpoint import Checkpoint, StageOne
from dscsc_core.training.distributed import Processes
from dscsc_core.training.host_memory import freed_memory_kept
from dscsc_core.training.lifecycle import Checkpointing, StageClock
from dscsc_core.training.losses import (
    LOSS_TERMS,
    default_alpha,
    default_gamma,
    drh_loss,
    sch_loss,
    sem_loss,
    weighted_total,
)
from dscsc_core.training.model import DSCSCNetwork
from dscsc_core.training.precision import reproducible_fp32
from dscsc_core.training.result import EpochReport, TrainingResult
from dscsc_core.training.stage1_reuse import StageOneReuse
from dscsc_core.training.supported_coef import nearest_support, stage2_batches

EpochCallback = Callable[[EpochReport], None]
Evaluator = Callable[[np.ndarray], dict[str, float]]

# Initial weights are drawn at most this many times while the autoencoder starts dead.
MAX_INITIAL_DRAWS = 10

# torch.profiler ranges around the parts of a Stage II step (benchmarks/profile_step.py reads them). The parts
# follow one another inside STEP, never nest; a part can open more than once a step (the losses: three times).
# The shared helpers open them in Stage I too. Without a running profiler a range costs about 6 µs (2026-12,
# 2 CPU cores): some 60 µs a step, against 6 ms for the smallest synthetic step.
STEP = "dscsc.step"
AUGMENTATION = "dscsc.augmentation"
ENCODER = "dscsc.encoder"  # both views in one pass
DECODER = "dscsc.decoder"  # C, the self-expression CᵀZ and the decoder of both views
LOSSES = "dscsc.losses"  # L_DRH, head, miner, L_SCH, L_SEM, an objective's terms, the weighted total, finiteness
BACKWARD = "dscsc.backward"
OPTIMIZER = "dscsc.optimizer"
STEP_PARTS = (AUGMENTATION, ENCODER, DECODER, LOSSES, BACKWARD, OPTIMIZER)


def _check_finite(losses: dict[str, torch.Tensor], stage: str, epoch: int, fed_by: dict[str, str]) -> None:
    for term, value in losses.items():
        if not torch.isfinite(value):
            raise DataError(f"loss term {term} became {value.item()} in {stage} epoch {epoch} (the last checkpoint, "
                            f"if any, is kept); the settings that feed it: {fed_by[term]}")


@contextmanager
def training_settings(device: torch.device) -> Iterator[None]:
    """The process-wide settings a run trains under, restored after: IEEE fp32 and deterministic kernels on a
    GPU, freed memory kept for the next step on the CPU. Benchmarks that time parts of a step use it too."""
    with reproducible_fp32(device), freed_memory_kept(device):
        yield


def _adam(network: DSCSCNetwork, lr: float, coef_lr: float | None = None) -> torch.optim.Optimizer:
    """Adam over the whole network; with ``coef_lr``, C's values in a group of their own at that rate."""
    # The fused kernel updates the N x N coefficient matrix several times faster than the
    # per-tensor loop (measured 8 ms vs 62 ms per step for N = 1797 on 2 CPU cores).
    if coef_lr is None or network.self_expression is None:
        return torch.optim.Adam(network.parameters(), lr=lr, fused=True)
    coef = list(network.self_expression.parameters())
    coef_ids = {id(p) for p in coef}
    rest = [p for p in network.parameters() if id(p) not in coef_ids]
    return torch.optim.Adam([{"params": rest}, {"params": coef, "lr": coef_lr}], lr=lr, fused=True)


def _norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.sqrt(sum((t.double() ** 2).sum() for t in tensors))


def _encoder_weights(network: DSCSCNetwork) -> list[torch.Tensor]:
    return [p for p in network.encoder.parameters() if p.requires_grad]


def _mean_squared_norm(features: torch.Tensor) -> float:
    return float(features.flatten(1).pow(2).sum(1).mean())


@dataclass
class _Views:
    """One epoch's images and features: the original view, and the augmented one when there is one."""

    x: torch.Tensor
    z: torch.Tensor
    x_aug: torch.Tensor | None = None
    z_aug: torch.Tensor | None = None


class Trainer:
    """Trains a DSCSCNetwork on one full batch of images; one epoch is one optimiser step.

    ``images`` are the data as loaded; the trainer multiplies them by ``input_scale``. Without a
    real augmentation (an identity policy) there is one view: DRH reconstructs the images once
    and SCH's positive pair is a sample with itself. With β = 0 SCH is not computed at all, so
    the DRH-only model is exactly DSC-Net.
    """

    def __init__(
        self,
        config: TrainingConfig,
        encoder: Encoder,
        augmentation: AugmentationPolicy,
        miner: NegativeMiner,
        regularizer: SelfExpressionRegularizer,
        device: torch.device | str = "cpu",
        on_epoch: EpochCallback | None = None,
        evaluate: Evaluator | None = None,
        checkpointing: Checkpointing | None = None,
        pseudo_labeler: Callable[[np.ndarray], np.ndarray] | None = None,
        objective: TrainingObjective | None = None,
    ):
        self.config = config
        self.encoder_plugin = encoder
        self.augment = augmentation
        self.miner = miner
        self.regularizer = regularizer
        self.device = torch.device(device)
        self.on_epoch = on_epoch or (lambda report: None)
        self.evaluate = evaluate
        self.checkpointing = checkpointing or Checkpointing()
        # Extra Stage II terms beside Algorithm 1's; C -> labels (the run's clusterer) for one that reads them.
        self.objective = objective
        self.pseudo_labeler = pseudo_labeler
        self._clock = StageClock()
        self._stage1 = StageOneReuse(config)
        self._processes = Processes()

    @property
    def _fed_by(self) -> dict[str, str]:
        """Each loss term's settings, named when the term stops being finite."""
        objective_terms = self.objective.terms if self.objective is not None else ()
        return {term.name: term.fed_by for term in (*LOSS_TERMS, *objective_terms)}

    @property
    def _stage1_scale(self) -> float:
        cfg = self.config
        return cfg.pretrain_input_scale if cfg.pretrain_input_scale is not None else cfg.input_scale

    def fit(self, images: torch.Tensor, n_clusters: int, resume: Checkpoint | None = None,
            stage1: StageOne | None = None, on_stage1: Callable[[StageOne], None] | None = None) -> TrainingResult:
        """Stage I then Stage II.

        ``resume`` continues from a checkpoint as if never interrupted. ``stage1`` is a finished
        Stage I made with the same settings: it replaces running Stage I (weights, random state and
        history are restored, so the run ends exactly as one that trained Stage I itself).
        ``on_stage1`` receives the finished Stage I of a run that trained it.
        """
        with training_settings(self.device):
            return self._fit(images, n_clusters, resume, stage1, on_stage1)

    def _fit(self, images: torch.Tensor, n_clusters: int, resume: Checkpoint | None, stage1: StageOne | None,
             on_stage1: Callable[[StageOne], None] | None) -> TrainingResult:
        cfg = self.config
        self._processes = Processes.current()
        if self._processes.several and not (cfg.coef_support > 0 and cfg.stage2_batch_size > 0):
            raise ConfigError(f"training in {self._processes.count} processes shares Stage II's mini-batches among "
                              "them: set {support} and {batch}", support="coef_support", batch="stage2_batch_size")
        self._check_stage2_options()
        if stage1 is not None and not self._stage1.can_start_from(stage1):
            stage1 = None
        torch.manual_seed(cfg.seed)
        # Channels-last lets oneDNN (CPU) and cuDNN (GPU) pick their fast convolution kernels
        # (measured 2-3x on the Yale B layers on 2 CPU cores); results are the same maths.
        images = images.to(self.device).contiguous(memory_format=torch.channels_last)
        x = images * cfg.input_scale
        result = TrainingResult(coef=np.zeros(0), embedding=np.zeros(0))
        trains_stage1 = stage1 is None and (resume is None or resume.stage == "pretrain")
        network = self._live_network(images * self._stage1_scale, result) if trains_stage1 else self._network(x)
        self._check_pixel_rescale(network)
        result.alpha = cfg.alpha if cfg.alpha is not None else default_alpha(n_clusters)
        result.gamma = cfg.gamma if cfg.gamma is not None else default_gamma(x.shape[0])
        if resume is not None:
            self._continue_records(result, resume)
        if resume is None or resume.stage != "finetune":  # else Stage I's weights come back with Stage II's
            self._stage1_into(network, images, x, result, stage1, resume, on_stage1)
            resume = None
        self._clock.start("finetune_s")
        self._attach_stage2_parts(network, x, n_clusters)
        if resume is None:
            self._warm_up(network, x, result.alpha)
        self._start_stage2_measures(network, result, resume)
        try:
            if self.config.coef_support > 0:
                self._finetune_batched(network, x, result, resume)
            else:
                self._finetune(network, x, result, resume)
        finally:
            self.config = cfg  # β as given, where sch_gradient_ratio replaced it for Stage II
        result.timings = self._clock.so_far(result.timings)
        self._read_out(network, x, result)
        return result

    def _check_stage2_options(self) -> None:
        cfg = self.config
        for setting in ("sch_gradient_ratio", "head_warmup_epochs"):
            if getattr(cfg, setting) and cfg.beta <= 0:
                raise ConfigError("{setting} acts on the contrastive head, which trains only with {beta} > 0",
                                  setting=setting, beta="beta")
        if cfg.coef_model != "table" and cfg.coef_support == 0:
            raise ConfigError(f"{{model}} {cfg.coef_model} computes C on a support of neighbours: set {{support}} "
                              "(the scalable path)", model="coef_model", support="coef_support")
        if cfg.sch_gradient_ratio is not None and self._processes.several:
            raise ConfigError("{setting} is measured in one process; train with one, or set {beta} instead",
                              setting="sch_gradient_ratio", beta="beta")

    # ------------------------------------------------------------------ before Stage II
    def _warm_up(self, network: DSCSCNetwork, x: torch.Tensor, alpha: float) -> None:
        """The optional warm-ups between the stages: the contrastive head, then C, each alone with its own
        optimiser on Stage I's fixed features, so neither starts Stage II untrained."""
        cfg = self.config
        if cfg.head_warmup_epochs:
            head = torch.optim.Adam(network.head.parameters(), lr=cfg.lr, fused=True)
            for epoch in range(1, cfg.head_warmup_epochs + 1):
                for rows in self._batch_rows(x.shape[0]):
                    with torch.no_grad():
                        views = self._encode(network, x[rows].contiguous(memory_format=torch.channels_last),
                                             augment=True)
                    loss = self._sch(network, views, coef=None)
                    self._step(head, loss, {"sch": loss}, "head warm-up", epoch)
        if cfg.coef_warmup_epochs:
            sem, features = network.self_expression, self._features(network, x)
            optimizer = torch.optim.Adam(sem.parameters(), lr=cfg.coef_lr or cfg.lr, fused=True)
            for epoch in range(1, cfg.coef_warmup_epochs + 1):
                for rows in self._batch_rows(x.shape[0]):
                    loss = self._fixed_features_sem(sem, features, rows, alpha)
                    self._step(optimizer, loss, {"sem": loss}, "C warm-up", epoch)

    def _fixed_features_sem(self, sem, features: torch.Tensor, rows: torch.Tensor, alpha: float) -> torch.Tensor:
        """L_SEM of the samples ``rows`` with the features fixed: only C gets a gradient."""
        if self.config.coef_support > 0:
            weights = sem.weights_of(rows)
            return sem_loss(features[rows], sem.express(rows, features[rows], weights=weights),
                            self.regularizer(weights), alpha)
        coef = sem.coefficients()
        return sem_loss(features, coef.T @ features, self.regularizer(coef), alpha)

    # ------------------------------------------------------------------ Stage II measures
    def _start_stage2_measures(self, network: DSCSCNetwork, result: TrainingResult,
                               resume: Checkpoint | None) -> None:
        """The encoder's weights as Stage II starts (to measure how far it moves; unknown after a resume), and
        whether β is still to be set by ``sch_gradient_ratio`` (a resumed run takes the β it found)."""
        self._encoder_start = None if resume is not None else [w.detach().clone() for w in _encoder_weights(network)]
        self._encoder_start_norm = None if resume is not None else _norm(self._encoder_start)
        self._beta_pending, self._measured, self._beta_found = self.config.sch_gradient_ratio is not None, {}, None
        found = [r.diagnostics["beta"] for r in result.history if r.diagnostics and "beta" in r.diagnostics]
        if self._beta_pending and found:
            self._set_beta(found[0])

    def _set_beta(self, beta: float) -> None:
        self.config, self._beta_pending, self._beta_found = replace(self.config, beta=beta), False, beta
        self._measured = {"beta": beta}

    def _calibrate_beta(self, network: DSCSCNetwork, terms: dict[str, torch.Tensor], gamma: float) -> None:
        """β such that the encoder's gradient of β·scale²·L_SCH is ``sch_gradient_ratio`` times that of the
        other terms, measured on the first Stage II step (before its own backward; no random numbers drawn)."""
        scale, weights = self.config.input_scale, _encoder_weights(network)
        rest = self._total({name: term for name, term in terms.items() if name != "sch"}, scale, gamma)
        norms = []
        for loss in (scale ** 2 * terms["sch"], rest):
            grads = torch.autograd.grad(loss, weights, retain_graph=True, allow_unused=True)
            norms.append(float(_norm([g for g in grads if g is not None])))
        if norms[0] == 0:
            raise DataError("L_SCH gives the encoder no gradient at Stage II's first step, so no beta meets "
                            "{setting}; set {beta} instead", setting="sch_gradient_ratio", beta="beta")
        self._set_beta(self.config.sch_gradient_ratio * norms[1] / norms[0])

    def _stage2_diagnostics(self, network: DSCSCNetwork, epoch: int,
                            sch_share: dict[str, float] | None = None) -> dict[str, float] | None:
        """An epoch's measurements: the β found (first epoch), SCH's gradient share (``sch_share``, measured on the
        epoch's first step) and, every ``sch_share_every`` epochs and at the last, ‖W − W_start‖ / ‖W_start‖ of
        the encoder in Stage II."""
        measured = {**self._measured, **(sch_share or {})}
        self._measured = {}
        every = self.config.sch_share_every
        if self._encoder_start is not None and every > 0 and (epoch % every == 0 or epoch == self.config.epochs):
            measured["encoder_moved"] = self._encoder_moved(network)
        return measured or None

    def _encoder_moved(self, network: DSCSCNetwork) -> float:
        now = _encoder_weights(network)
        moved = _norm([w.detach() - w0 for w, w0 in zip(now, self._encoder_start, strict=True)])
        return float(moved / self._encoder_start_norm)

    @property
    def _rescales(self) -> bool:
        """Stage I trains on another pixel scale than Stage II."""
        return self._stage1_scale != self.config.input_scale

    def _check_pixel_rescale(self, network: DSCSCNetwork) -> None:
        """Moving Stage I's weights to another pixel scale is exact only for a plain ReLU network."""
        cfg = self.config
        if self._rescales and not network.homogeneous:
            raise ConfigError(f"encoder '{self.encoder_plugin.name}' cannot move from pretrain_input_scale "
                              f"{self._stage1_scale:g} to input_scale {cfg.input_scale:g} (it is not a plain ReLU "
                              "network); leave pretrain_input_scale unset")

    @staticmethod
    def _continue_records(result: TrainingResult, resume: Checkpoint) -> None:
        """A resumed run carries on the interrupted one's history, timings and measurements."""
        result.history = [EpochReport(**report) for report in resume.history]
        result.timings = dict(resume.timings)
        result.pretrain_epochs_run = resume.pretrain_epochs_run
        result.feature_scale = dict(resume.feature_scale)

    def _stage1_into(self, network: DSCSCNetwork, images: torch.Tensor, x: torch.Tensor, result: TrainingResult,
                     stage1: StageOne | None, resume: Checkpoint | None,
                     on_stage1: Callable[[StageOne], None] | None) -> None:
        """Stage I's autoencoder in ``network``: restored from a stored Stage I, or trained (resumed)."""
        if stage1 is not None:
            self._stage1.restore(network, stage1, result)
        else:
            self._run_stage1(network, images * self._stage1_scale, result, resume, on_stage1)
        if self._rescales:
            network.change_pixel_scale(self.config.input_scale / self._stage1_scale)
        with torch.no_grad():
            features = torch.cat([network.encoder(part) for part in x.split(self._pass_size(x))])
            result.feature_scale["stage1_end"] = _mean_squared_norm(features)

    def _attach_stage2_parts(self, network: DSCSCNetwork, x: torch.Tensor, n_clusters: int) -> None:
        """C, and what a training objective trains with the network."""
        cfg, n_samples = self.config, x.shape[0]
        generator = torch.Generator().manual_seed(cfg.seed + 1)
        if cfg.coef_support > 0:
            features = self._features(network, x)
            network.attach_supported_self_expression(nearest_support(features, cfg.coef_support), features,
                                                     cfg.coef_init_scale, generator, cfg.coef_init, cfg.coef_model)
        else:
            network.attach_self_expression(n_samples, cfg.coef_init_scale, generator, cfg.coef_init,
                                           cfg.coef_diagonal)
        if self.objective is not None:
            network.attach_objective_modules(self.objective.setup(network.latent_dim, x.shape[0], n_clusters,
                                                                  self.device, cfg.lr))

    @torch.no_grad()
    def _read_out(self, network: DSCSCNetwork, x: torch.Tensor, result: TrainingResult) -> None:
        """The learned C (dense, or sparse on the scalable path) and the final features into ``result``."""
        assert network.self_expression is not None
        coef = network.self_expression.coefficients()
        result.coef = coef if sparse.issparse(coef) else coef.cpu().numpy().astype(np.float64)
        size = self._pass_size(x)
        features = torch.cat([network.encoder(part) for part in x.split(size)])
        result.embedding = features.cpu().numpy()
        result.feature_scale["final"] = _mean_squared_norm(features)
        if self._encoder_start is not None:
            result.stage2_measures["encoder_moved"] = self._encoder_moved(network)
        if self._beta_found is not None:
            result.stage2_measures["beta"] = self._beta_found

    # ------------------------------------------------------------------ the network
    def _network(self, x: torch.Tensor) -> DSCSCNetwork:
        parts = self.encoder_plugin.build(tuple(x.shape[1:]))  # the autoencoder is drawn first, then the head
        self._stage1.note_network_drawn(parts.latent_dim)
        network = DSCSCNetwork(parts, self.config.head_hidden, self.config.head_dim)
        return network.to(self.device, memory_format=torch.channels_last)

    def _live_network(self, x: torch.Tensor, result: TrainingResult) -> DSCSCNetwork:
        """A network whose encoder gets a gradient from Stage I's reconstruction of ``x``.

        A ReLU autoencoder can start dead: every unit off on these images, so no gradient reaches
        the encoder and Stage I never moves it (dscnet-mnist1000 seed 2: 96 % of the samples with
        all-zero features, the reconstruction loss the same at step 1000 as at step 1). Such a start
        is redrawn from the same seeded generator, so a run stays reproducible, and a run that starts
        alive draws exactly as before. ``result.dead_starts`` counts the redraws.
        """
        for draw in range(MAX_INITIAL_DRAWS):
            network = self._network(x)
            if _encoder_gets_gradient(network, x, self._pass_size(x)):
                result.dead_starts = draw
                return network
        raise DataError(f"the autoencoder starts dead on these images in {MAX_INITIAL_DRAWS} draws of its initial "
                        "weights (no gradient reaches the encoder: its ReLUs are all off); check the images' value "
                        "range, or set {setting} so the pixels are not all near 0", setting="input_scale")

    # ------------------------------------------------------------------ Stage I
    def _run_stage1(self, network: DSCSCNetwork, x: torch.Tensor, result: TrainingResult,
                    resume: Checkpoint | None, on_stage1: Callable[[StageOne], None] | None) -> None:
        self._clock.start("pretrain_s")
        with self._stage1.default_head_stream():
            result.pretrain_epochs_run = self._pretrain(network, x, result, resume)
            result.timings = self._clock.so_far(result.timings)
            if on_stage1 is not None:
                on_stage1(self._stage1.snapshot(network, result))

    def _pretrain(self, network: DSCSCNetwork, x: torch.Tensor, result: TrainingResult,
                  resume: Checkpoint | None) -> int:
        cfg = self.config
        optimizer = _adam(network, cfg.pretrain_lr if cfg.pretrain_lr is not None else cfg.lr)
        first = self.checkpointing.restore(network, optimizer, resume)
        recon_history: list[float] = list(resume.recon_history) if resume else []
        with_sch = cfg.pretrain_objective == "drh+sch"
        losses = self._processes.parallel(network, partial(self._pretrain_losses, network, with_sch=with_sch),
                                          self.device)
        for epoch in range(first, cfg.pretrain_epochs + 1):
            terms, total = self._pretrain_epoch(losses, optimizer, x, epoch)
            result.history.append(self._report("pretrain", epoch, cfg.pretrain_epochs, terms, total))
            recon_history.append(terms["drh"].item())
            if self._plateaued(recon_history):
                return epoch
            result.pretrain_epochs_run = epoch
            self._after_epoch("pretrain", epoch, network, optimizer, result, recon_history)
        return cfg.pretrain_epochs

    def _pretrain_epoch(self, losses: Callable, optimizer, x: torch.Tensor,
                        epoch: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """One pass over the images: DSC-Net's single full-batch step, or with ``pretrain_batch_size`` one
        step per mini-batch of a fresh shuffle (more updates per pass; Stage I has no N x N term to keep whole).
        Returns the loss terms and total summed over the pass, so the plateau rule sees a whole-data loss."""
        size = self.config.pretrain_batch_size
        whole = size == 0 or size >= x.shape[0]
        if whole and not self._processes.several:
            return self._pretrain_step(losses, optimizer, x, epoch)
        sums: dict[str, torch.Tensor] = {}
        total_sum = torch.zeros((), device=x.device)
        for batch in [x] if whole else x[torch.randperm(x.shape[0], device=x.device)].split(size):
            terms, total = self._pretrain_step(losses, optimizer, batch, epoch)
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + value.detach()
            total_sum = total_sum + total.detach()
        return sums, total_sum

    def _pretrain_step(self, losses: Callable, optimizer, x: torch.Tensor,
                       epoch: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        terms, total = losses(x)
        return self._descend(optimizer, terms, total, "pretrain", epoch)

    def _pretrain_losses(self, network: DSCSCNetwork, x: torch.Tensor,
                         with_sch: bool) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Stage I's loss terms and total on the images ``x`` (in several processes: on this process's share)."""
        views = self._encode(network, x, augment=with_sch, share=self._processes.share(x.shape[0]))
        terms = self._terms(network, views, decoded=views.z, with_sch=with_sch)
        return terms, self._total(terms, self._stage1_scale)

    def _plateaued(self, recon: list[float]) -> bool:
        cfg = self.config
        if cfg.pretrain_tol <= 0 or len(recon) <= cfg.pretrain_patience:
            return False
        before = recon[-cfg.pretrain_patience - 1]
        return (before - recon[-1]) <= cfg.pretrain_tol * abs(before)

    # ------------------------------------------------------------------ Stage II
    def _finetune(self, network: DSCSCNetwork, x: torch.Tensor, result: TrainingResult,
                  resume: Checkpoint | None) -> None:
        cfg = self.config
        sem = network.self_expression
        assert sem is not None
        optimizer = _adam(network, cfg.lr, cfg.coef_lr)
        first = self.checkpointing.restore(network, optimizer, resume)
        if resume is not None and self.objective is not None:
            self.objective.load_state_dict(resume.objective)
        labels = _restored_labels(resume, x.device)
        for epoch in range(first, cfg.epochs + 1):
            with record_function(STEP):
                views = self._encode(network, x, augment=True)
                with record_function(DECODER):
                    coef = sem.coefficients()
                    z_expressed = coef.T @ views.z
                terms = self._terms(network, views, decoded=z_expressed, with_sch=True, coef=coef)
                with record_function(LOSSES):
                    terms["sem"] = sem_loss(views.z, z_expressed, self.regularizer(coef), result.alpha)
                    if self.objective is not None:
                        labels, renewed = self._pseudo_labels(coef, epoch, labels)
                        terms.update(self.objective(StageTwoStep(epoch, views.z, coef, labels, renewed)))
                    if self._beta_pending:
                        self._calibrate_beta(network, terms, result.gamma)
                    total = self._total(terms, self.config.input_scale, result.gamma)
                sch_gradient = self._sch_gradient(network, terms, epoch)
                self._step(optimizer, total, terms, "finetune", epoch)
            result.history.append(self._report("finetune", epoch, cfg.epochs, terms, total, self._scores(sem, epoch),
                                               self._stage2_diagnostics(network, epoch,
                                                                        self._sch_share(network, sch_gradient))))
            self._after_epoch("finetune", epoch, network, optimizer, result, [], labels)

    def _finetune_batched(self, network: DSCSCNetwork, x: torch.Tensor, result: TrainingResult,
                          resume: Checkpoint | None) -> None:
        """Stage II on C's support, in mini-batches of ``stage2_batch_size`` (all of them: one per epoch): each
        step expresses its batch over the memory bank, whose entries it then renews. An epoch's reported terms
        are its batches' sums, as a full-batch epoch's are sums over the samples.

        In several processes each computes the losses of its share of every batch and DDP averages the
        gradients; the bank takes the whole batch's features in every process, so all banks stay the same."""
        cfg, sem = self.config, network.self_expression
        optimizer = _adam(network, cfg.lr, cfg.coef_lr)
        first = self.checkpointing.restore(network, optimizer, resume)
        # DDP all-reduces the gradient of C's N x k values whole, though only a batch's rows are non-zero: 4·N·k
        # bytes a step (2 MB at N = 10,000, k = 50), small beside the encoder's work at these sizes.
        losses = self._processes.parallel(
            network, partial(self._batch_losses, network, alpha=result.alpha, gamma=result.gamma), self.device)
        for epoch in range(first, cfg.epochs + 1):
            sums: dict[str, torch.Tensor] = {}
            share = None
            with record_function(STEP):
                for index, rows in enumerate(self._batch_rows(x.shape[0])):
                    terms, total, batch_features = losses(rows, x[rows].contiguous(memory_format=torch.channels_last))
                    # SCH's share on the epoch's first step; in several processes each holds its share's terms only.
                    measured = index == 0 and not self._processes.several
                    sch_gradient = self._sch_gradient(network, terms, epoch) if measured else None
                    terms, total = self._descend(optimizer, terms, total, "finetune", epoch)
                    share = share or self._sch_share(network, sch_gradient)
                    sem.remember(rows, batch_features)
                    for name, value in {**terms, "total": total}.items():
                        sums[name] = sums.get(name, 0.0) + value.detach()
            total = sums.pop("total")
            result.history.append(self._report("finetune", epoch, cfg.epochs, sums, total, self._scores(sem, epoch),
                                               self._stage2_diagnostics(network, epoch, share)))
            self._after_epoch("finetune", epoch, network, optimizer, result, [])

    def _batch_rows(self, n_samples: int) -> list[torch.Tensor]:
        """An epoch's Stage II batches: a fresh shuffle split in near-equal parts; one batch of all samples keeps
        their order and draws nothing, so it trains step for step as the full-batch path does."""
        sizes = stage2_batches(n_samples, self.config.stage2_batch_size)
        if len(sizes) == 1:
            return [torch.arange(n_samples, device=self.device)]
        return list(torch.randperm(n_samples, device=self.device).split(sizes))

    def _batch_losses(self, network: DSCSCNetwork, rows: torch.Tensor, x: torch.Tensor, alpha: float,
                      gamma: float) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """The loss terms and total of the Stage II batch ``rows`` (images ``x``) expressed over the memory bank,
        and the batch's features. In several processes: the terms of this process's share, and the features of
        the whole batch gathered from every share with their gradient, so a neighbour in the batch is as live
        as it is in one process."""
        sem = network.self_expression
        share = self._processes.share(rows.shape[0])
        views = self._encode(network, x, augment=True, share=share)
        batch_features = views.z if share is None else self._processes.gather(views.z, rows.shape[0])
        anchors = rows if share is None else rows[share]
        with record_function(DECODER):
            weights = sem.weights_of(anchors)
            z_expressed = sem.express(rows, batch_features, anchors, weights)
        block = sem.batch_block(anchors, weights)
        terms = self._terms(network, views, decoded=z_expressed, with_sch=True, coef=block)
        with record_function(LOSSES):
            terms["sem"] = sem_loss(views.z, z_expressed, self.regularizer(weights), alpha)
            if self._beta_pending:
                self._calibrate_beta(network, terms, gamma)
            total = self._total(terms, self.config.input_scale, gamma)
        return terms, total, batch_features

    def _pass_size(self, x: torch.Tensor) -> int:
        """Samples at a time in a pass over all images outside the training steps: Stage II's batch (all of them
        on the dense path, which holds N x N anyway)."""
        return self.config.stage2_batch_size or x.shape[0]

    def _features(self, network: DSCSCNetwork, x: torch.Tensor) -> torch.Tensor:
        """The encoder's features of every sample, without gradient, a bounded batch at a time."""
        size = self._pass_size(x)
        with torch.no_grad():
            return torch.cat([self._through(network.encoder, part) for part in x.split(size)])

    def _pseudo_labels(self, coef: torch.Tensor, epoch: int,
                       labels: torch.Tensor | None) -> tuple[torch.Tensor | None, bool]:
        """The objective's pseudo-labels from clustering the current C, renewed every ``relabel_every`` epochs
        (and whenever there are none yet); and whether they were renewed now. A resumed run starts with the
        labels its checkpoint kept, so it relabels exactly where the uninterrupted run does."""
        every = self.objective.relabel_every
        if every <= 0 or self.pseudo_labeler is None:
            return None, False
        if labels is not None and (epoch - 1) % every:
            return labels, False
        found = self.pseudo_labeler(coef.detach().cpu().numpy().astype(np.float64))
        return torch.as_tensor(np.asarray(found), dtype=torch.long, device=coef.device), True

    # ------------------------------------------------------------------ shared steps
    def _encode(self, network: DSCSCNetwork, x: torch.Tensor, augment: bool, share: slice | None = None) -> _Views:
        """Features of x, and of an augmented view when ``augment`` and the policy makes one; with ``share``, of
        the rows ``x[share]`` only."""
        if not augment or self.augment.identity:
            x = x if share is None else x[share]
            with record_function(ENCODER):
                return _Views(x, self._through(network.encoder, x))
        with record_function(AUGMENTATION):
            x_aug = self.augment(x)
        if share is not None:
            # Every process augments the whole batch, so all draw the same random numbers (their shuffles stay the
            # same) and each sample gets the view one process gives it; a warp per image is little beside the
            # encoder, which runs on the share alone.
            x, x_aug = x[share], x_aug[share]
        # One batched pass through the shared encoder for both views.
        with record_function(ENCODER):
            features = self._through(network.encoder,
                                     torch.cat([x, x_aug]).contiguous(memory_format=torch.channels_last))
        n = x.shape[0]
        return _Views(x, features[:n], x_aug, features[n:])

    def _through(self, layers: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        """``layers(x)`` in the run's precision, returned as fp32 so that C and the losses stay fp32."""
        if self.config.precision == "fp32":
            return layers(x)
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            return layers(x).float()

    def _terms(self, network: DSCSCNetwork, views: _Views, decoded: torch.Tensor, with_sch: bool,
               coef: torch.Tensor | None = None) -> dict:
        """L_DRH of every view (DRH decodes ``decoded`` for the original view, ẑ for the augmented
        one, Figure 1) and, when SCH is on and weighted, L_SCH."""
        with record_function(DECODER):
            if views.x_aug is None:
                pairs = [(views.x, self._through(network.decoder, decoded))]
            else:
                y_both = self._through(network.decoder, torch.cat([decoded, views.z_aug]))
                n = views.x.shape[0]
                pairs = [(views.x, y_both[:n]), (views.x_aug, y_both[n:])]
        with record_function(LOSSES):
            terms = {"drh": drh_loss(pairs, self.config.drh_views)}
            if with_sch and self.config.beta > 0:
                terms["sch"] = self._sch(network, views, coef)
        return terms

    def _sch(self, network: DSCSCNetwork, views: _Views, coef: torch.Tensor | None) -> torch.Tensor:
        """L_SCH of ``views`` through the head, the miner choosing each anchor's negatives."""
        h = network.head(views.z)
        h_aug = h if views.z_aug is None else network.head(views.z_aug)
        return sch_loss(h, h_aug, self.miner(views.z, coef), self.config.temperature, self.config.sch_denominator)

    def _total(self, terms: dict[str, torch.Tensor], pixel_scale: float, gamma: float = 0.0) -> torch.Tensor:
        extra = {} if self.objective is None else {
            term.name: self.objective.term_weight(term, pixel_scale) for term in self.objective.terms if term.weight}
        return weighted_total(terms, self.config, pixel_scale, gamma, extra)

    def _after_epoch(self, stage: str, epoch: int, network: DSCSCNetwork, optimizer, result: TrainingResult,
                     recon: list[float], labels: torch.Tensor | None = None) -> None:
        objective = self.objective.state_dict() if self.objective is not None and stage == "finetune" else {}
        self.checkpointing.after_epoch(stage, epoch, network, optimizer, result, recon,
                                       self._clock.so_far(result.timings), objective,
                                       labels.tolist() if labels is not None else None)

    def _descend(self, optimizer, terms: dict[str, torch.Tensor], total: torch.Tensor, stage: str,
                 epoch: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """One optimiser step on ``total``. Returns the step's terms and total as reported: this process's, or in
        several processes the sums of every process's (each computed its share's), the same in all of them."""
        processes = self._processes
        if not processes.several:
            self._step(optimizer, total, terms, stage, epoch)
            return terms, total
        summed = processes.summed({**terms, "total": total})
        with record_function(LOSSES):
            _check_finite(summed, stage, epoch, self._fed_by)  # on the sums: every process stops, or none
        # DDP averages the processes' gradients, and each loss is a sum over its share's samples: the count times
        # a share's loss makes the average the gradient of the whole batch's loss, as one process computes it.
        self._update(optimizer, processes.count * total)
        total_sum = summed.pop("total")
        return summed, total_sum

    def _step(self, optimizer, total: torch.Tensor, terms: dict[str, torch.Tensor], stage: str, epoch: int) -> None:
        with record_function(LOSSES):
            _check_finite({**terms, "total": total}, stage, epoch, self._fed_by)
        self._update(optimizer, total)

    @staticmethod
    def _update(optimizer, total: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        with record_function(BACKWARD):
            total.backward()
        with record_function(OPTIMIZER):
            optimizer.step()

    def _sch_gradient(self, network: DSCSCNetwork, terms: dict[str, torch.Tensor],
                      epoch: int) -> list[torch.Tensor] | None:
        """The encoder's gradient of β·scale²·L_SCH alone, every ``sch_share_every`` Stage II epochs (before the
        step's own backward; it draws no random numbers and leaves the step's gradients as they are)."""
        every = self.config.sch_share_every
        if "sch" not in terms or every <= 0 or epoch % every:
            return None
        weight = next(term for term in LOSS_TERMS if term.name == "sch").weight(self.config, self.config.input_scale, 0)
        weights = [p for p in network.encoder.parameters() if p.requires_grad]
        grads = torch.autograd.grad(weight * terms["sch"], weights, retain_graph=True, allow_unused=True)
        return [torch.zeros_like(p) if g is None else g for p, g in zip(weights, grads, strict=True)]

    @staticmethod
    def _sch_share(network: DSCSCNetwork, sch_gradient: list[torch.Tensor] | None) -> dict[str, float] | None:
        """|∇ SCH| / |∇ total| over the encoder's weights, the total's gradient being the step's own."""
        if sch_gradient is None:
            return None
        total = [p.grad for p in network.encoder.parameters() if p.requires_grad]
        total_norm = torch.sqrt(sum((g.double() ** 2).sum() for g in total if g is not None))
        sch_norm = torch.sqrt(sum((g.double() ** 2).sum() for g in sch_gradient))
        return {"sch_share": float(sch_norm / total_norm) if total_norm > 0 else float("nan")}

    def _scores(self, sem, epoch: int) -> dict[str, float] | None:
        every = self.config.eval_every
        if self.evaluate is None or every <= 0 or (epoch % every and epoch != self.config.epochs):
            return None
        with torch.no_grad():
            coef = sem.coefficients()
            return self.evaluate(coef if sparse.issparse(coef) else coef.cpu().numpy().astype(np.float64))

    def _report(self, stage: str, epoch: int, total_epochs: int, terms: dict[str, torch.Tensor], total,
                scores: dict[str, float] | None = None, diagnostics: dict[str, float] | None = None) -> EpochReport:
        losses = {name: float(value.detach()) for name, value in terms.items()}
        losses["total"] = float(total.detach())
        report = EpochReport(stage, epoch, total_epochs, losses, scores, diagnostics)
        self.on_epoch(report)
        return report


def _encoder_gets_gradient(network: DSCSCNetwork, x: torch.Tensor, batch_size: int) -> bool:
    """Whether the plain reconstruction loss of ``x`` gives any encoder weight a non-zero gradient, asked of
    batches in turn (a whole large dataset's activations would be the run's peak memory); it draws no
    random numbers."""
    weights = [p for p in network.encoder.parameters() if p.requires_grad]
    for part in x.split(batch_size):
        loss = drh_loss([(part, network.decoder(network.encoder(part)))])
        gradients = torch.autograd.grad(loss, weights, allow_unused=True)
        if any(g is not None and bool(g.any()) for g in gradients):
            return True
    return False


def _restored_labels(resume: Checkpoint | None, device: torch.device) -> torch.Tensor | None:
    if resume is None or resume.pseudo_labels is None:
        return None
    return torch.as_tensor(resume.pseudo_labels, dtype=torch.long, device=device)
