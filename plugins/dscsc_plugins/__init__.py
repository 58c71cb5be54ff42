"""dscsc's built-in components. They register through the ``dscsc`` entry point like any plugin."""

from pathlib import Path

from dscsc_core import hookimpl

from .augmentations import GeometricAugmentation, NoAugmentation, PolicyAugmentation
from .benchmark_data import (
    Coil20Source,
    ExtendedYaleB2432Source,
    ExtendedYaleBSource,
    Mnist1000Source,
    MnistTestSource,
    OrlSource,
    UmistSource,
)
from .clusterers import DscPostClusterer, SparseSpectralClusterer, SpectralClusterer
from .datasets import DigitsSource, SyntheticSubspacesSource
from .encoders import Conv1Encoder, Conv3Encoder
from .features import ScatteringFeatures
from .miners import AffinityMiner, AllOthersMiner, ClassmatesMiner, KnnMiner
from .objectives import DascObjective, S2ConvSCNObjective
from .regularizers import FrobeniusRegularizer, L1Regularizer
from .solvers import (
    ElasticNetSubspaceClustering,
    KernelSparseSubspaceClustering,
    LeastSquaresRegression,
    LowRankRepresentation,
    LowRankSubspaceClustering,
    OrthogonalMatchingPursuit,
    SparseSubspaceClustering,
)
from .user_data import ArrayFileSource, ImageFolderSource, MatFileSource


@hookimpl
def dscsc_register_features(register):
    register(ScatteringFeatures)


@hookimpl
def dscsc_register_encoders(register):
    register(Conv3Encoder)
    register(Conv1Encoder)


@hookimpl
def dscsc_register_augmentations(register):
    register(NoAugmentation)
    register(GeometricAugmentation)
    register(PolicyAugmentation)


@hookimpl
def dscsc_register_miners(register):
    register(KnnMiner)
    register(AffinityMiner)
    register(AllOthersMiner)
    register(ClassmatesMiner)


@hookimpl
def dscsc_register_regularizers(register):
    register(FrobeniusRegularizer)
    register(L1Regularizer)


@hookimpl
def dscsc_register_clusterers(register):
    register(SpectralClusterer)
    register(DscPostClusterer)
    register(SparseSpectralClusterer)


@hookimpl
def dscsc_register_solvers(register):
    for solver in (SparseSubspaceClustering, ElasticNetSubspaceClustering, OrthogonalMatchingPursuit,
                   LeastSquaresRegression, LowRankRepresentation, LowRankSubspaceClustering,
                   KernelSparseSubspaceClustering):
        register(solver)


@hookimpl
def dscsc_register_objectives(register):
    register(S2ConvSCNObjective)
    register(DascObjective)


@hookimpl
def dscsc_register_datasets(register):
    register(DigitsSource)
    register(SyntheticSubspacesSource)
    for source in (OrlSource, Coil20Source, UmistSource, ExtendedYaleBSource, ExtendedYaleB2432Source,
                   Mnist1000Source, MnistTestSource, MatFileSource, ArrayFileSource, ImageFolderSource):
        register(source)


@hookimpl
def dscsc_register_defaults(register):
    """What a run uses when it names no plugin of a kind: the paper's choices, on a dataset that needs no download."""
    for kind, name in (("dataset", "digits"), ("encoder", "conv1"), ("augmentation", "geometric"), ("miner", "knn"),
                       ("regularizer", "l2"), ("clusterer", "dsc-post")):
        register(kind, name)


@hookimpl
def dscsc_register_presets(register):
    for path in sorted((Path(__file__).parent / "presets").glob("*.toml")):
        register(path)
