"""Every core setting of a run, declared once: name, type, default, range and help.

``TrainingConfig`` (what the trainer reads) is derived from ``TRAINING_SETTINGS``; ``RunConfig``
and ``RUN_PARAMS`` (dscsc_core.config), the command line and the scikit-learn estimator derive
theirs from these declarations. Adding a setting is one ``Param`` here plus the code that uses it.
"""

from __future__ import annotations

from dataclasses import asdict, field, make_dataclass
from typing import Any

from .losses import DRH_VIEW_COMBINES
from .params import Param

PRETRAIN_OBJECTIVES = ("drh+sch", "drh")
COEF_INITS = ("normal", "constant")
COEF_DIAGONALS = ("zero", "free")
# Arithmetic of the autoencoder's layers: fp32, or bfloat16 under autocast (C, the head and the losses
# stay fp32). bf16 is for speed on CPUs with AMX/AVX-512-bf16 and on GPUs; it moves every number.
PRECISIONS = ("fp32", "bf16")
SOLVER_INPUTS = ("pixels", "features")

# Settings the trainer reads (the method itself). Defaults per §4.1 of the paper unless noted.
TRAINING_SETTINGS: tuple[Param, ...] = (
    Param("pretrain_epochs", int, 150, "Stage I epochs (full-batch steps), no self-expression", min=0),
    Param("epochs", int, 150, "Stage II epochs (full-batch steps) with self-expression", min=0),
    Param("lr", float, 1e-3, "Adam learning rate", min=0),
    Param("pretrain_lr", float, None, "Adam learning rate of Stage I (default: lr)", min=0),
    Param("pretrain_batch_size", int, 0,
          "Stage I mini-batch size: one Adam step per batch of a fresh shuffle each epoch (0: the full batch, "
          "one step per epoch, as DSC-Net)", min=0),
    Param("alpha", float, None, "weight alpha of ||Z - ZC||^2 in L_SEM (eq. 3); default 10^(K/10-3)", min=0),
    Param("beta", float, 10.0, "weight of L_SCH (scaled by input_scale^2, see docs/method.md)", min=0),
    Param("gamma", float, None, "weight of L_SEM; default N, the number of samples (the paper's printed balance)",
          min=0),
    Param("temperature", float, 0.1, "temperature rho of the contrastive loss", min=1e-6),
    Param("head_dim", int, 64, "output size of the contrastive head (paper: 64/128/256)", min=1,
          max=4096),
    Param("head_hidden", int, 256, "hidden width of the contrastive head", min=1, max=8192),
    Param("pretrain_objective", str, "drh+sch",
          "Stage I loss: drh+sch (eq. 10, both views) or drh (DSC-Net's autoencoder on the images alone)",
          choices=PRETRAIN_OBJECTIVES),
    Param("pretrain_tol", float, 0.0, "stop Stage I when reconstruction improves less (relative)", min=0),
    Param("pretrain_patience", int, 20, "window in epochs of the Stage I plateau rule", min=1),
    Param("coef_init", str, "normal", "initial C: normal (N(0, scale^2)) or constant (every entry = scale)",
          choices=COEF_INITS),
    Param("coef_init_scale", float, 1e-4, "std (normal) or value (constant) of the initial coefficients", min=0),
    Param("coef_diagonal", str, "zero", "diag(C): zero at every step (eq. 1) or free (DSC-Net's code)",
          choices=COEF_DIAGONALS),
    Param("drh_views", str, "mean",
          "L_DRH over the two views: mean (eq. 9 as printed) or sum (each view at DSC-Net's weight)",
          choices=DRH_VIEW_COMBINES),
    Param("precision", str, "fp32",
          "arithmetic of the encoder and decoder: fp32, or bf16 (autocast; C, the head and the losses stay fp32)",
          choices=PRECISIONS),
    Param("pseudo_label_every", int, 0,
          "re-cluster C into pseudo-labels every E Stage II epochs, for S2ConvSCN's and DASC's terms (0: off)", min=0),
    Param("label_agreement_weight", float, 0.0,
          "S2ConvSCN lambda3: weight of sum |C_ij| over pairs the pseudo-labels put apart", min=0),
    Param("pseudo_label_weight", float, 0.0,
          "S2ConvSCN lambda4: weight of a linear classifier's cross-entropy (summed) on the pseudo-labels", min=0),
    Param("adversarial_weight", float, 0.0,
          "DASC: weight of the generator's adversarial term, its fakes' residual on the discriminator's "
          "subspaces (needs pseudo_label_every > 0; 0: off)", min=0),
    Param("adversarial_dim", int, 4, "DASC: dimension of each cluster's subspace in the discriminator", min=1,
          max=1024),
    Param("adversarial_real_fraction", float, 0.8,
          "DASC: share of each cluster (best fitted by its subspace) taken as real samples", min=0.01, max=1.0),
    Param("adversarial_margin", float, 0.5,
          "DASC: relative residual the discriminator pushes fakes above (hinge margin, 0..1)", min=0, max=1.0),
    Param("input_scale", float, 1.0, "multiply pixel values by this before training", min=1e-6),
    Param("pretrain_input_scale", float, None,
          "pixel scale of Stage I (default: input_scale); a ReLU autoencoder then moves to input_scale exactly",
          min=1e-6),
    Param("seed", int, 0, "seed of init, augmentation and clustering", min=0, max=2**32 - 1),
    Param("eval_every", int, 0, "score C with the clusterer every E Stage II epochs when labels exist (0: off)",
          min=0),
    Param("checkpoint_every", int, 0, "save a checkpoint every E epochs (0: only when asked to stop)", min=0),
)

# Settings added after stored results were made, with the value under which a run trains as it did
# before the setting existed: at that value a setting is left out of fingerprints, so earlier
# bench records, checkpoints and Stage I caches still match the runs they describe.
ADDED_LATER: dict[str, Any] = {"drh_views": "mean", "solver": None, "solver_input": "pixels", "pseudo_label_every": 0,
                               "label_agreement_weight": 0.0, "pseudo_label_weight": 0.0,
                               "adversarial_weight": 0.0, "adversarial_dim": 4, "adversarial_real_fraction": 0.8,
                               "adversarial_margin": 0.5, "pretrain_lr": None,
                               "pretrain_batch_size": 0, "precision": "fp32"}


# The same for plugin parameters, by their ``kind.name`` key in a run's ``params``.
ADDED_LATER_PARAMS: dict[str, Any] = {"augment.padding": "zeros"}


def without_added_later_defaults(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` less the later-added settings that sit at their earlier behaviour."""
    kept = _without_defaults(settings, ADDED_LATER)
    if isinstance(kept.get("params"), dict):
        kept["params"] = _without_defaults(kept["params"], ADDED_LATER_PARAMS)
    return kept


def _without_defaults(values: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if key not in defaults or defaults[key] != value}


# Settings of a run around the trainer.
RUN_ONLY_SETTINGS: tuple[Param, ...] = (
    Param("solver_input", str, "pixels",
          "what a selected solver expresses: pixels, or features (Stage I's autoencoder features, as AE+SSC)",
          choices=SOLVER_INPUTS),
    Param("n_clusters", int, None, "number of clusters; default: from the dataset's labels", min=2),
    Param("data_root", str, None, "folder holding dataset files; default $DSCSC_DATA, else ~/.local/share/dscsc"),
    Param("device", str, "auto", "auto, cpu, cuda or cuda:N"),
    Param("threads", int, None, "CPU threads for training (torch) and clustering (BLAS); a seed's numbers depend "
          "on it; default: the process's own", min=1),
)

_PYTHON_TYPES = {int: int, float: float, str: str, bool: bool}


def _fields(settings: tuple[Param, ...]) -> list[tuple[str, Any, Any]]:
    return [(p.name, _PYTHON_TYPES.get(p.type, Any) | None, field(default=p.default)) for p in settings]


def _as_dict(self) -> dict[str, Any]:
    return asdict(self)


TrainingConfig = make_dataclass(
    "TrainingConfig", _fields(TRAINING_SETTINGS), namespace={"to_dict": _as_dict, "__module__": __name__}
)
TrainingConfig.__doc__ = "Hyper-parameters of the method itself, one field per entry of TRAINING_SETTINGS."
