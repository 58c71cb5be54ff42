"""dscsc core: contracts for the plugin kinds, the DSCSC losses and the two-stage trainer."""

__version__ = "0.1.0"  # first: submodules read it while the package initialises

from dscsc_core.errors import (
    ConfigError,
    DataError,
    DeviceError,
    DscscError,
    ParameterError,
    PluginError,
    UnknownComponentError,
)
from dscsc_core.plugin_api.hookspecs import hookimpl, hookspec
from dscsc_core.plugin_api.interfaces import (
    AugmentationPolicy,
    AutoEncoderParts,
    Clusterer,
    Clustering,
    Dataset,
    DatasetSource,
    Encoder,
    FeatureExtractor,
    NegativeMiner,
    ObjectiveTerm,
    SelfExpressionRegularizer,
    SelfExpressionSolver,
    StageTwoStep,
    TrainingObjective,
    symmetric_affinity,
)
from dscsc_core.plugin_api.params import Component, Param, RunContext

__all__ = [
    "AugmentationPolicy", "AutoEncoderParts", "Clusterer", "Clustering", "Component", "ConfigError",
    "DataError", "Dataset", "DatasetSource", "DeviceError", "DscscError", "Encoder", "FeatureExtractor",
    "NegativeMiner",
    "ObjectiveTerm", "Param", "ParameterError", "PluginError", "RunContext", "SelfExpressionRegularizer",
    "SelfExpressionSolver", "StageTwoStep", "TrainingObjective", "UnknownComponentError", "hookimpl", "hookspec",
    "symmetric_affinity", "__version__",
]
