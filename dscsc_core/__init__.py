"""dscsc core: contracts for the plugin kinds, the DSCSC losses and the two-stage trainer."""

from .errors import (
    ConfigError,
    DataError,
    DeviceError,
    DscscError,
    ParameterError,
    PluginError,
    UnknownComponentError,
)
from .hookspecs import hookimpl, hookspec
from .interfaces import (
    AugmentationPolicy,
    AutoEncoderParts,
    Clusterer,
    Clustering,
    Dataset,
    DatasetSource,
    Encoder,
    NegativeMiner,
    SelfExpressionRegularizer,
    SelfExpressionSolver,
    symmetric_affinity,
)
from .params import Component, Param, RunContext

__version__ = "0.1.0"

__all__ = [
    "AugmentationPolicy", "AutoEncoderParts", "Clusterer", "Clustering", "Component", "ConfigError",
    "DataError", "Dataset", "DatasetSource", "DeviceError", "DscscError", "Encoder", "NegativeMiner",
    "Param", "ParameterError", "PluginError", "RunContext", "SelfExpressionRegularizer", "SelfExpressionSolver",
    "UnknownComponentError", "hookimpl", "hookspec", "symmetric_affinity", "__version__",
]
