"""The five plugin kinds plus dataset sources and shallow solvers: contracts the trainer relies on
(listed in ``kinds``).

Each base class keeps its public entry point (``__call__``, ``build``, ``fit_predict``, ``load``)
for validation and leaves the decision to one abstract method a subclass implements.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from scipy import sparse
from torch import nn

from dscsc_core.errors import DataError, ParameterError, PluginError
from dscsc_core.plugin_api.datapaths import DataRoot
from dscsc_core.plugin_api.params import Component, RunContext


def _check_same_device(made: torch.Tensor, given: torch.Tensor, what: str, whose: str, hint: str) -> None:
    """A run trains on one device (a GPU when there is one): a component's tensor made on another one,
    e.g. with ``torch.arange(n)`` on the CPU, would stop the step with a bare device mismatch."""
    if made.device != given.device:
        raise PluginError(f"{what} on {made.device}, but {whose} on {given.device}; {hint}")


# --------------------------------------------------------------------------- encoders
@dataclass
class AutoEncoderParts:
    """An encoder (images -> N x latent_dim) and its mirrored decoder (N x latent_dim -> images)."""

    encoder: nn.Module
    decoder: nn.Module
    latent_dim: int
    # True when scaling the input and every bias by c > 0 scales every activation by c (ReLU layers
    # without normalisation): then a network trained at one pixel scale moves to another exactly.
    homogeneous: bool = False


class Encoder(Component):
    """Builds an encoder and a decoder that returns exactly the input shape."""

    kind = "encoder"

    def build(self, input_shape: tuple[int, int, int]) -> AutoEncoderParts:
        if len(input_shape) != 3 or min(input_shape) < 1:
            raise ParameterError(f"encoder input shape must be (C, H, W) with positive sizes; got {input_shape}")
        parts = self.make(tuple(int(s) for s in input_shape))
        if parts.latent_dim < 1:
            raise PluginError(f"encoder '{self.name}' built a latent space of size {parts.latent_dim}")
        return parts

    @abstractmethod
    def make(self, input_shape: tuple[int, int, int]) -> AutoEncoderParts:
        """Return the modules for images of ``input_shape``."""


# --------------------------------------------------------------------------- fixed features
class FeatureExtractor(Component):
    """Turns the images into fixed feature maps once, before training: the network, the augmentation and
    a shallow solver then see the maps in place of the pixels (figures still show the pixels).

    ``extractor(images)`` checks the N x C x H x W batch, calls ``features`` without gradients and checks
    its answer: one N x C' x H' x W' float map per image, finite, on the images' device.
    """

    kind = "feature"

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[0] < 1:
            raise DataError(f"features expect an N x C x H x W batch; got shape {tuple(images.shape)}")
        with torch.no_grad():
            maps = self.features(images)
        if maps.ndim != 4 or maps.shape[0] != images.shape[0] or min(maps.shape) < 1:
            raise PluginError(f"features '{self.name}' must return one C x H x W map per image; "
                              f"got shape {tuple(maps.shape)} for {images.shape[0]} images")
        _check_same_device(maps, images, f"features '{self.name}' returned its maps", "the images are",
                           "compute them where the images are")
        if not torch.isfinite(maps).all():
            raise PluginError(f"features '{self.name}' returned NaN or Inf values")
        return maps.float().contiguous()

    @abstractmethod
    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Return the N x C' x H' x W' feature maps of ``images`` (N x C x H x W, float32)."""


# --------------------------------------------------------------------------- augmentation
class AugmentationPolicy(Component):
    """Returns an augmented view of a batch, with fresh per-sample randomness on every call.

    A policy whose ``identity`` is True returns the images unchanged; the trainer then keeps one
    view (no second reconstruction, SCH's positive is the sample itself) and never calls it.
    """

    kind = "augmentation"
    identity: ClassVar[bool] = False

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4:
            raise DataError(f"augmentation expects an N x C x H x W batch; got shape {tuple(images.shape)}")
        view = self.augment(images)
        if view.shape != images.shape:
            raise PluginError(
                f"augmentation '{self.name}' changed the batch shape {tuple(images.shape)} -> {tuple(view.shape)}"
            )
        _check_same_device(view, images, f"augmentation '{self.name}' returned its view", "the images are",
                           "augment them where they are")
        return view

    @abstractmethod
    def augment(self, images: torch.Tensor) -> torch.Tensor:
        """Augment ``images`` on their own device."""


# --------------------------------------------------------------------------- negative mining
class NegativeMiner(Component):
    """Decides, for each anchor i, which other samples are its negatives.

    ``miner(z, coef)`` validates the features (N x d) and the optional current coefficient
    matrix (N x N), calls ``mine`` without gradients, checks the boolean N x N mask it returns,
    and clears the diagonal so that no sample is its own negative.
    """

    kind = "miner"

    def __call__(self, z: torch.Tensor, coef: torch.Tensor | None = None) -> torch.Tensor:
        if z.ndim != 2 or z.shape[0] < 2:
            raise DataError(f"miner expects features of shape N x d with N >= 2; got {tuple(z.shape)}")
        n = z.shape[0]
        if coef is not None and tuple(coef.shape) != (n, n):
            raise DataError(f"miner expects a {n} x {n} coefficient matrix; got {tuple(coef.shape)}")
        with torch.no_grad():
            mask = self.mine(z.detach(), None if coef is None else coef.detach())
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or tuple(mask.shape) != (n, n):
            got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise PluginError(f"miner '{self.name}' must return a boolean {n} x {n} mask; got {got}")
        _check_same_device(mask, z, f"miner '{self.name}' returned its mask", "the features are",
                           "make it on z.device")
        return mask & ~torch.eye(n, dtype=torch.bool, device=mask.device)

    @abstractmethod
    def mine(self, z: torch.Tensor, coef: torch.Tensor | None) -> torch.Tensor:
        """Return a boolean N x N mask; row i marks the negatives of anchor i."""


# --------------------------------------------------------------------------- regularizers
class SelfExpressionRegularizer(Component):
    """A differentiable penalty R(C) on the coefficient matrix."""

    kind = "regularizer"

    def __call__(self, coef: torch.Tensor) -> torch.Tensor:
        value = self.penalty(coef)
        if value.ndim != 0:
            raise PluginError(f"regularizer '{self.name}' must return a scalar; got shape {tuple(value.shape)}")
        _check_same_device(value, coef, f"regularizer '{self.name}' returned its penalty", "C is",
                           "compute it from C")
        return value

    @abstractmethod
    def penalty(self, coef: torch.Tensor) -> torch.Tensor:
        """Return R(coef) as a 0-dim tensor."""


# --------------------------------------------------------------------------- training objectives
@dataclass(frozen=True)
class ObjectiveTerm:
    """A loss term a training objective adds to Stage II: its key in the run's history and ``metrics.csv``,
    what it means, and the parameters to look at when it stops being finite. ``weight`` names the objective's
    parameter that weighs it into the total (None: recorded only); ``by_pixel_scale`` multiplies that weight by
    the pixel scale², as β is for L_SCH, so that the term's balance against L_DRH does not depend on the units."""

    name: str
    meaning: str
    fed_by: str
    weight: str | None = None
    by_pixel_scale: bool = False


@dataclass(frozen=True)
class StageTwoStep:
    """What a training objective sees of one Stage II step: never the trainer, its optimiser or the network."""

    epoch: int
    features: torch.Tensor  # the original view's encoder features, N x d, with their gradient
    coef: torch.Tensor  # C, N x N, with its gradient
    labels: torch.Tensor | None  # the run's clusterer on the current C, renewed every ``relabel_every`` epochs
    relabelled: bool  # whether ``labels`` were renewed at this step


class TrainingObjective(Component):
    """Extra Stage II terms beside Algorithm 1's (a baseline's self-supervision, an adversary, ...).

    ``setup`` is called once before Stage II with the sizes of the run and returns the modules the trainer
    optimises with the network (and saves in checkpoints); an objective may also keep modules it trains itself
    (an adversary with its own optimiser) and hands their state over through ``state_dict``. Each Stage II step
    ``objective(step)`` calls ``losses`` and checks that it returned finite scalars, only of the declared
    ``terms``, on the features' device. With ``relabel_every`` > 0 the step carries pseudo-labels: the run's own
    clusterer on the current C.
    """

    kind = "objective"
    terms: ClassVar[tuple[ObjectiveTerm, ...]] = ()

    @property
    def relabel_every(self) -> int:
        """Stage II epochs between re-clusterings of C into pseudo-labels; 0: the objective needs none."""
        return 0

    def setup(self, latent_dim: int, n_samples: int, n_clusters: int, device: torch.device,
              lr: float) -> list[nn.Module]:
        """Build what the objective trains; return the modules the trainer optimises with the network."""
        return []

    def __call__(self, step: StageTwoStep) -> dict[str, torch.Tensor]:
        terms = self.losses(step)
        declared = {term.name for term in self.terms}
        for name, value in terms.items():
            if name not in declared:
                raise PluginError(f"objective '{self.name}' returned a term '{name}' it does not declare; declared: "
                                  f"{', '.join(sorted(declared)) or 'none'}")
            if not isinstance(value, torch.Tensor) or value.ndim != 0:
                raise PluginError(f"objective '{self.name}' must return 0-dim tensors; '{name}' is not one")
            _check_same_device(value, step.features, f"objective '{self.name}' returned '{name}'",
                               "the features are", "compute it from them")
        return terms

    def term_weight(self, term: ObjectiveTerm, pixel_scale: float) -> float:
        """The weight of ``term`` in the total: its ``weight`` parameter (× the pixel scale² where declared)."""
        value = getattr(self, term.weight)
        return value * pixel_scale ** 2 if term.by_pixel_scale else value

    @abstractmethod
    def losses(self, step: StageTwoStep) -> dict[str, torch.Tensor]:
        """The objective's terms at this step, summed over samples like every term, by their declared names."""

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint must keep beyond the modules ``setup`` returned (e.g. an adversary's optimiser)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned (after ``setup``), so a resumed run ends as an uninterrupted one."""


# --------------------------------------------------------------------------- shallow solvers
class SelfExpressionSolver(Component):
    """Finds C from the data matrix directly (SSC, LRR, ...): the shallow baselines of Tables 2-3.

    ``solver.solve(data)`` takes the N x D data matrix (one sample per row, float64), checks it,
    calls ``coefficients`` and checks the N x N answer. The convention is the trainer's: column i
    of C expresses sample i, x_i ≈ Σ_j C[j, i] x_j, so the same clusterers read it.
    """

    kind = "solver"

    def solve(self, data: np.ndarray) -> np.ndarray:
        data = np.asarray(data, dtype=np.float64)
        if data.ndim != 2 or data.shape[0] < 2:
            raise DataError(f"solver expects an N x D data matrix with N >= 2; got shape {data.shape}")
        if not np.isfinite(data).all():
            raise DataError("solver got a data matrix with NaN or Inf entries")
        coef = np.asarray(self.coefficients(data))
        n = data.shape[0]
        if coef.shape != (n, n):
            raise PluginError(f"solver '{self.name}' must return a {n} x {n} coefficient matrix; got {coef.shape}")
        if not np.isfinite(coef).all():
            raise PluginError(f"solver '{self.name}' returned NaN or Inf coefficients; try other parameters")
        return coef

    @abstractmethod
    def coefficients(self, data: np.ndarray) -> np.ndarray:
        """Return C (N x N) for ``data`` (N x D, one sample per row)."""


# --------------------------------------------------------------------------- clusterers
@dataclass
class Clustering:
    """Labels (0..K-1 per sample) and the affinity matrix that produced them (dense, or a scipy.sparse CSR
    matrix from a clusterer that keeps only each sample's strongest links)."""

    labels: np.ndarray
    affinity: np.ndarray | sparse.csr_matrix


class Clusterer(Component):
    """From a coefficient matrix C and a cluster count K to labels.

    C is a dense N x N array, or (for a clusterer whose ``accepts_sparse`` is True) a scipy.sparse matrix that
    holds only some entries per row, as the scalable path keeps it: N x N dense never exists there.
    """

    kind = "clusterer"
    accepts_sparse: ClassVar[bool] = False

    @property
    def subspace_dim(self) -> int | None:
        """The dimension this clusterer assumes each cluster's subspace has, if it assumes one
        (``dscsc tune --criterion subspace`` measures the fit at that dimension)."""
        return None

    def fit_predict(self, coef: np.ndarray | sparse.spmatrix, n_clusters: int, seed: int = 0) -> Clustering:
        if sparse.issparse(coef):
            if not self.accepts_sparse:
                raise DataError(f"clusterer '{self.name}' needs a dense C, and this C is sparse (only the strongest "
                                "coefficients of each sample are kept); choose a clusterer that takes a sparse C, "
                                "e.g. sparse-spectral")
            coef = sparse.csr_matrix(coef, dtype=np.float64)
            values = coef.data
        else:
            coef = np.asarray(coef, dtype=np.float64)
            values = coef
        if coef.ndim != 2 or coef.shape[0] != coef.shape[1]:
            raise DataError(f"clusterer expects a square coefficient matrix; got shape {coef.shape}")
        if not np.isfinite(values).all():
            raise DataError("clusterer got a coefficient matrix with NaN or Inf entries")
        if not 1 <= n_clusters <= coef.shape[0]:
            raise DataError(f"cannot make {n_clusters} clusters from {coef.shape[0]} samples")
        result = self.cluster(coef, n_clusters, seed)
        labels = np.asarray(result.labels)
        if labels.shape != (coef.shape[0],):
            raise PluginError(f"clusterer '{self.name}' returned {labels.shape} labels for {coef.shape[0]} samples")
        affinity = result.affinity if sparse.issparse(result.affinity) else np.asarray(result.affinity)
        return Clustering(labels=labels.astype(np.int64), affinity=affinity)

    @abstractmethod
    def cluster(self, coef: np.ndarray, n_clusters: int, seed: int) -> Clustering:
        """Cluster the samples described by ``coef``."""


def symmetric_affinity(coef: np.ndarray) -> np.ndarray:
    """The paper's affinity A = (|C| + |C|^T) / 2."""
    magnitude = np.abs(coef)
    return 0.5 * (magnitude + magnitude.T)


# --------------------------------------------------------------------------- datasets
@dataclass
class Dataset:
    """Images (N x C x H x W float32), optional labels (N,) and the number of clusters."""

    name: str
    images: torch.Tensor
    labels: np.ndarray | None
    n_clusters: int | None

    def validate(self) -> Dataset:
        if self.images.ndim != 4:
            raise DataError(f"dataset '{self.name}' images must be N x C x H x W; got {tuple(self.images.shape)}")
        if self.images.shape[0] == 0:
            raise DataError(f"dataset '{self.name}' is empty")
        if not torch.isfinite(self.images).all():
            raise DataError(f"dataset '{self.name}' contains NaN or Inf pixel values")
        if self.labels is not None and len(self.labels) != self.images.shape[0]:
            raise DataError(
                f"dataset '{self.name}' has {len(self.labels)} labels for {self.images.shape[0]} images"
            )
        return self


class DatasetSource(Component):
    """A named source of images (and labels when known).

    ``suggested_settings`` are run settings that suit this data (e.g. ``input_scale``); they sit
    between the defaults and a config file, so a file or a flag still overrides them.
    """

    kind = "dataset"
    suggested_settings: ClassVar[dict[str, Any]] = {}
    data_root: DataRoot

    def load(self, data_root: DataRoot | None = None) -> Dataset:
        """Read, normalise types and validate; file-based sources find their files under ``data_root``."""
        self.data_root = data_root or DataRoot.resolve()
        data = self.read()
        data.images = data.images.float()
        if data.labels is not None:
            # Any label values (1..40, strings) become 0..K-1 in sorted order of the originals.
            classes, data.labels = np.unique(np.asarray(data.labels).ravel(), return_inverse=True)
            data.labels = data.labels.astype(np.int64)
            if data.n_clusters is None:
                data.n_clusters = len(classes)
        return data.validate()

    @abstractmethod
    def read(self) -> Dataset:
        """Read the data."""


__all__ = [
    "AutoEncoderParts", "Encoder", "AugmentationPolicy", "NegativeMiner", "SelfExpressionRegularizer",
    "Clustering", "Clusterer", "Dataset", "DatasetSource", "RunContext", "symmetric_affinity",
]
