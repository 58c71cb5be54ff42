"""Every core setting of a run, declared once: name, type, default, range, help, and its role.

A setting's ``Role`` says what its value decides: whether it enters a run's identity (the resume check, the
record key of ``bench``/``ablate``/``tune``), whether it shapes C or acts only after it, how it enters Stage
I's identity (the Stage I cache key), the value under which a run trains as it did before the setting existed
(so older records and caches still match), whether the scikit-learn estimator exposes it, whether a shallow
solver on the pixels reads it. Every key, check and list of settings is
derived from these declarations (``dscsc_core.run.identity``, ``RunConfig``, the command line, the estimator),
so adding a setting is one ``Setting`` here plus the code that uses it (docs/architecture.md has an example).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, make_dataclass
from typing import Any

from dscsc_core.plugin_api.kinds import PLUGIN_KINDS
from dscsc_core.plugin_api.params import Param

PRETRAIN_OBJECTIVES = ("drh+sch", "drh")
# How L_DRH combines the original and the augmented view (see training.losses.drh_loss).
DRH_VIEW_COMBINES = ("mean", "sum")
COEF_INITS = ("normal", "constant")
COEF_DIAGONALS = ("zero", "free")
# On the scalable path: C's values on the support stored as parameters, or computed by a network (SENet).
COEF_MODELS = ("table", "network")
# Arithmetic of the autoencoder's layers: fp32, or bfloat16 under autocast (C, the head and the losses
# stay fp32). bf16 is for speed on CPUs with AMX/AVX-512-bf16 and on GPUs; it moves every number.
PRECISIONS = ("fp32", "bf16")
# Eq. 4's denominator: every anchor (as printed), or the anchor and its mined negatives only, sparing the
# neighbours the miner spared as eq. 5 does.
SCH_DENOMINATORS = ("all", "negatives")
SOLVER_INPUTS = ("pixels", "features")

# How a setting enters Stage I's identity: always; only when Stage I trains the contrastive head
# (pretrain_objective "drh+sch"); only when Stage I trains SCH on augmented views (the same objective, which
# also brings in the augmentation and the miner); or through the one pixel scale Stage I trains at.
STAGE1_ALWAYS, STAGE1_WITH_HEAD, STAGE1_WITH_SCH, STAGE1_PIXEL_SCALE = "always", "with_head", "with_sch", "pixel_scale"


class _AlwaysExisted:
    def __repr__(self) -> str:
        return "ALWAYS_EXISTED"


ALWAYS_EXISTED = _AlwaysExisted()


@dataclass(frozen=True)
class Role:
    """What a setting's value decides (see the module docstring)."""

    shapes_result: bool = True  # False: where and how a run is carried out (device, threads, folders, logging)
    shapes_coef: bool = True  # False: acts only after C is learned (the clusterer)
    stage1: str | None = None  # how it enters Stage I's identity: one of the STAGE1_* words, or None
    # The value under which a run trains as before the setting existed: a setting at it is left out of every
    # key, so records, checkpoints and Stage I caches made before it still match.
    earlier: Any = ALWAYS_EXISTED
    estimator: bool = True  # a constructor parameter of the scikit-learn estimator
    pixel_solver: bool = False  # read by a shallow solver on the pixels, whose record key holds only these

    def at_earlier_value(self, value: Any) -> bool:
        return self.earlier is not ALWAYS_EXISTED and self.earlier == value


@dataclass(frozen=True)
class Setting(Param):
    """A core run setting: a ``Param`` and its ``Role``."""

    role: Role = Role()


# Roles that many settings share.
IN_STAGE1 = Role(stage1=STAGE1_ALWAYS)
IN_STAGE1_WITH_SCH = Role(stage1=STAGE1_WITH_SCH)
IN_STAGE1_WITH_HEAD = Role(stage1=STAGE1_WITH_HEAD)


def added_later(earlier: Any, **role: Any) -> Role:
    """The role of a setting added after stored results were made: at ``earlier`` it is left out of every key."""
    return Role(earlier=earlier, **role)


# Where and how a run is carried out, not what it computes; a fit of the estimator decides these itself.
RUNTIME = Role(shapes_result=False, estimator=False)

# The role of each selection setting (``miner`` picks the miner); a kind not named here has the plain Role().
_SELECTION_ROLES = {
    "dataset": Role(estimator=False, pixel_solver=True),
    "features": added_later(None, stage1=STAGE1_ALWAYS, pixel_solver=True),
    "encoder": IN_STAGE1,
    "augment": IN_STAGE1_WITH_SCH,
    "miner": IN_STAGE1_WITH_SCH,
    "clusterer": Role(shapes_coef=False, pixel_solver=True),
    "solver": added_later(None, pixel_solver=True),
    "objective": added_later(None),
}
# One setting per plugin kind picks the plugin; unset, the registry's default for the kind (named by
# the plugins, e.g. the built-ins) is used, so that the core never names a plugin.
SELECTION_SETTINGS: tuple[Setting, ...] = tuple(
    Setting(kind.option, str, None, kind.help, role=_SELECTION_ROLES.get(kind.option, Role())) for kind in PLUGIN_KINDS
)

# Settings the trainer reads (the method itself). Defaults per §4.1 of the paper unless noted.
TRAINING_SETTINGS: tuple[Setting, ...] = (
    Setting("pretrain_epochs", int, 150, "Stage I epochs (full-batch steps), no self-expression", min=0,
            role=IN_STAGE1),
    Setting("epochs", int, 150, "Stage II epochs (full-batch steps) with self-expression", min=0),
    Setting("lr", float, 1e-3, "Adam learning rate", min=0, role=IN_STAGE1),
    Setting("pretrain_lr", float, None, "Adam learning rate of Stage I (default: lr)", min=0,
            role=added_later(None, stage1=STAGE1_ALWAYS)),
    Setting("pretrain_batch_size", int, 0,
            "Stage I mini-batch size: one Adam step per batch of a fresh shuffle each epoch (0: the full batch, "
            "one step per epoch, as DSC-Net)", min=0, role=added_later(0, stage1=STAGE1_ALWAYS)),
    Setting("alpha", float, None, "weight alpha of ||Z - ZC||^2 in L_SEM (eq. 3); default 10^(K/10-3)", min=0),
    Setting("beta", float, 10.0, "weight of L_SCH (scaled by input_scale^2, see docs/method.md)", min=0,
            role=IN_STAGE1_WITH_SCH),
    Setting("gamma", float, None, "weight of L_SEM; default N, the number of samples (the paper's printed balance)",
            min=0),
    Setting("temperature", float, 0.1, "temperature rho of the contrastive loss", min=1e-6, role=IN_STAGE1_WITH_SCH),
    Setting("head_dim", int, 64, "output size of the contrastive head (paper: 64/128/256)", min=1, max=4096,
            role=IN_STAGE1_WITH_HEAD),
    Setting("head_hidden", int, 256, "hidden width of the contrastive head", min=1, max=8192,
            role=IN_STAGE1_WITH_HEAD),
    Setting("pretrain_objective", str, "drh+sch",
            "Stage I loss: drh+sch (eq. 10, both views) or drh (DSC-Net's autoencoder on the images alone)",
            choices=PRETRAIN_OBJECTIVES, role=IN_STAGE1),
    Setting("pretrain_tol", float, 0.0, "stop Stage I when reconstruction improves less (relative)", min=0,
            role=IN_STAGE1),
    Setting("pretrain_patience", int, 20, "window in epochs of the Stage I plateau rule", min=1, role=IN_STAGE1),
    Setting("coef_init", str, "normal", "initial C: normal (N(0, scale^2)) or constant (every entry = scale)",
            choices=COEF_INITS),
    Setting("coef_init_scale", float, 1e-4, "std (normal) or value (constant) of the initial coefficients", min=0),
    Setting("coef_diagonal", str, "zero", "diag(C): zero at every step (eq. 1) or free (DSC-Net's code)",
            choices=COEF_DIAGONALS),
    Setting("coef_support", int, 0,
            "express each sample by its k nearest neighbours in Stage I's features only: C held as N x k, never "
            "N x N (the scalable path; 0: eq. 1's dense C)", min=0, role=added_later(0)),
    Setting("stage2_batch_size", int, 0,
            "Stage II mini-batch size: each step expresses a batch over a memory bank of every sample's latent "
            "(needs coef_support > 0; 0: the full batch)", min=0, role=added_later(0)),
    Setting("coef_model", str, "table",
            "on the scalable path, C's values on the support: table (N x k parameters) or network (computed from "
            "the two samples' features by a query and a key network, as SENet: parameters independent of N)",
            choices=COEF_MODELS, role=added_later("table")),
    Setting("sch_denominator", str, "all",
            "eq. 4's softmax over every anchor (all, as printed) or over the anchor and its mined negatives only "
            "(negatives: the miner's spared neighbours are not pushed away in eq. 4 either, as in eq. 5)",
            choices=SCH_DENOMINATORS, role=added_later("all", stage1=STAGE1_WITH_SCH)),
    Setting("sch_gradient_ratio", float, None,
            "set beta at Stage II's first step so that the encoder's gradient of the weighted L_SCH is this "
            "multiple of the other terms' (norms over the encoder's weights); the beta found is metrics.csv's "
            "column beta (default: beta as given)", min=0, role=added_later(None)),
    Setting("head_warmup_epochs", int, 0,
            "before Stage II, train the contrastive head alone on L_SCH for E passes, the encoder fixed, so SCH "
            "does not start Stage II from an untrained head (0: off)", min=0, role=added_later(0)),
    Setting("coef_warmup_epochs", int, 0,
            "before Stage II, fit C alone to Stage I's fixed features for E passes (L_SEM only; then Stage II "
            "starts with fresh optimiser state) (0: off)", min=0, role=added_later(0)),
    Setting("coef_lr", float, None, "Adam learning rate of C, in its warm-up and Stage II (default: lr)", min=0,
            role=added_later(None)),
    Setting("drh_views", str, "mean",
            "L_DRH over the two views: mean (eq. 9 as printed) or sum (each view at DSC-Net's weight)",
            choices=DRH_VIEW_COMBINES, role=added_later("mean", stage1=STAGE1_WITH_SCH)),
    Setting("precision", str, "fp32",
            "arithmetic of the encoder and decoder: fp32, or bf16 (autocast; C, the head and the losses stay fp32)",
            choices=PRECISIONS, role=added_later("fp32", stage1=STAGE1_ALWAYS)),
    Setting("input_scale", float, 1.0, "multiply pixel values by this before training", min=1e-6,
            role=Role(stage1=STAGE1_PIXEL_SCALE, pixel_solver=True)),
    Setting("pretrain_input_scale", float, None,
            "pixel scale of Stage I (default: input_scale); a ReLU autoencoder then moves to input_scale exactly",
            min=1e-6, role=Role(stage1=STAGE1_PIXEL_SCALE)),
    Setting("seed", int, 0, "seed of init, augmentation and clustering", min=0, max=2**32 - 1,
            role=Role(stage1=STAGE1_ALWAYS, estimator=False)),  # the estimator's random_state
    Setting("eval_every", int, 0, "score C with the clusterer every E Stage II epochs when labels exist (0: off)",
            min=0, role=RUNTIME),
    Setting("checkpoint_every", int, 0, "save a checkpoint every E epochs (0: only when asked to stop)", min=0,
            role=RUNTIME),
    Setting("sch_share_every", int, 10,
            "every E Stage II epochs, measure SCH's share of the encoder's gradient (metrics.csv column sch_share: "
            "|grad of beta-weighted L_SCH| / |grad of the total| over the encoder's weights, above 1 where the "
            "terms pull against each other; one extra backward "
            "through the head and encoder, about a fifth of a step on digits; 0: off)", min=0, role=RUNTIME),
)

# Settings of a run around the trainer.
RUN_ONLY_SETTINGS: tuple[Setting, ...] = (
    Setting("solver_input", str, "pixels",
            "what a selected solver expresses: pixels, or features (Stage I's autoencoder features, as AE+SSC)",
            choices=SOLVER_INPUTS, role=added_later("pixels", pixel_solver=True)),
    Setting("n_clusters", int, None, "number of clusters; default: from the dataset's labels", min=2,
            role=Role(estimator=False, pixel_solver=True)),  # the estimator has its own n_clusters
    Setting("data_root", str, None, "folder holding dataset files; default $DSCSC_DATA, else ~/.local/share/dscsc",
            role=RUNTIME),
    Setting("device", str, "auto", "auto, cpu, cuda or cuda:N", role=RUNTIME),
    Setting("threads", int, None, "CPU threads for training (torch) and clustering (BLAS); a seed's numbers depend "
            "on it; default: the process's own", min=1, role=Role(shapes_result=False)),
    Setting("nproc", int, 1, "processes that train the run together (dscsc run only; torch DDP, launched through "
            "torchrun; each takes a share of every mini-batch, on its own GPU with CUDA; needs coef_support and "
            "stage2_batch_size); a seed's numbers depend on it", min=1, role=RUNTIME),
)

# Every scalar setting of a run, in the order the command line lists them.
RUN_SETTINGS: tuple[Setting, ...] = (*SELECTION_SETTINGS, *TRAINING_SETTINGS, *RUN_ONLY_SETTINGS)
SETTING_BY_NAME: dict[str, Setting] = {setting.name: setting for setting in RUN_SETTINGS}

# Plugin parameters added after stored results were made, by their ``kind.name`` key in a run's ``params``,
# with the value under which a plugin behaves as before (a plugin's own declaration cannot be read without
# loading it, and a key must be computable from a stored record alone).
ADDED_LATER_PARAMS: dict[str, Any] = {"augment.padding": "zeros"}


def without_earlier_values(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` less the settings (and plugin parameters) that sit at the value they behaved as before they
    existed: what keeps older records, checkpoints and caches matching the runs they describe."""
    kept = {key: value for key, value in settings.items()
            if key not in SETTING_BY_NAME or not SETTING_BY_NAME[key].role.at_earlier_value(value)}
    if isinstance(kept.get("params"), dict):
        kept["params"] = {key: value for key, value in kept["params"].items()
                          if key not in ADDED_LATER_PARAMS or ADDED_LATER_PARAMS[key] != value}
    return kept


def names_where(predicate) -> tuple[str, ...]:
    """The run settings whose role satisfies ``predicate`` (``lambda role: not role.shapes_result``)."""
    return tuple(setting.name for setting in RUN_SETTINGS if predicate(setting.role))


_PYTHON_TYPES = {int: int, float: float, str: str, bool: bool}


def _fields(settings: tuple[Param, ...]) -> list[tuple[str, Any, Any]]:
    return [(p.name, _PYTHON_TYPES.get(p.type, Any) | None, field(default=p.default)) for p in settings]


def _as_dict(self) -> dict[str, Any]:
    return asdict(self)


TrainingConfig = make_dataclass(
    "TrainingConfig", _fields(TRAINING_SETTINGS), namespace={"to_dict": _as_dict, "__module__": __name__}
)
TrainingConfig.__doc__ = "Hyper-parameters of the method itself, one field per entry of TRAINING_SETTINGS."
