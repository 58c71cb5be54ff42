"""The plugin kinds, in one table: each kind's base class, the run setting that selects it, and its hook.

Everything that enumerates kinds derives from ``PLUGIN_KINDS``: the pluggy hook specifications
(``dscsc_register_<kind>s``), the registry's checks and listing order, the run settings that pick
one plugin of each kind (``RunConfig.dataset``, ``.augment``, ...) and the words accepted for a
kind (its name, and its setting where that differs: ``augmentation`` or ``augment``). Adding a kind
is one row here plus its base class in ``dscsc_core.plugin_api.interfaces``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from dscsc_core.errors import UnknownComponentError
from dscsc_core.plugin_api.interfaces import (
    AugmentationPolicy,
    Clusterer,
    DatasetSource,
    Encoder,
    FeatureExtractor,
    NegativeMiner,
    SelfExpressionRegularizer,
    SelfExpressionSolver,
    TrainingObjective,
)
from dscsc_core.plugin_api.params import Component


@dataclass(frozen=True)
class PluginKind:
    base: type[Component]
    option: str  # the run setting that selects this kind's plugin (also a prefix of its parameters)
    help: str  # what that setting selects
    # An optional kind may be left unselected: no solver means C comes from the trained network.
    optional: bool = False

    @property
    def name(self) -> str:
        return self.base.kind

    @property
    def hook(self) -> str:
        return f"dscsc_register_{self.name}s"

    @property
    def words(self) -> tuple[str, ...]:
        """Every word that names this kind: its name and, where different, its setting."""
        return tuple(dict.fromkeys((self.name, self.option)))


# In the order of a run: the data, its optional fixed features, the network, the second view, the negatives,
# the penalty, the labels; then the optional shallow solver that replaces the network, and the optional extra
# Stage II objective.
PLUGIN_KINDS: tuple[PluginKind, ...] = (
    PluginKind(DatasetSource, "dataset", "dataset source"),
    PluginKind(FeatureExtractor, "features",
               "fixed features computed from the images once, before training (e.g. a wavelet scattering "
               "transform); none: the pixels", optional=True),
    PluginKind(Encoder, "encoder", "encoder + mirrored decoder"),
    PluginKind(AugmentationPolicy, "augment", "augmentation policy building the positive view"),
    PluginKind(NegativeMiner, "miner", "negative miner of the contrastive head"),
    PluginKind(SelfExpressionRegularizer, "regularizer", "penalty R(C) of the self-expression loss"),
    PluginKind(Clusterer, "clusterer", "turns C into labels"),
    PluginKind(SelfExpressionSolver, "solver",
               "shallow solver finding C from the pixels instead of training the network (Tables 2-3 baselines)",
               optional=True),
    PluginKind(TrainingObjective, "objective",
               "extra Stage II terms beside Algorithm 1's (a deep baseline's: S2ConvSCN's, DASC's)", optional=True),
)

KIND_NAMES: tuple[str, ...] = tuple(kind.name for kind in PLUGIN_KINDS)
# Run settings of the kinds every run selects (result.json always names these components).
REQUIRED_SELECTIONS: tuple[str, ...] = tuple(kind.option for kind in PLUGIN_KINDS if not kind.optional)
# Run setting -> the kind of plugin it selects.
SELECTIONS: dict[str, str] = {kind.option: kind.name for kind in PLUGIN_KINDS}
_BY_WORD = {word: kind for kind in PLUGIN_KINDS for word in kind.words}


def plugin_kind(word: str) -> PluginKind:
    """The kind that ``word`` names (``miner``, ``augmentation``, ``augment``, ...)."""
    try:
        return _BY_WORD[word]
    except KeyError:
        close = difflib.get_close_matches(word, list(_BY_WORD), n=1, cutoff=0.6)
        raise UnknownComponentError("plugin kind", word, list(KIND_NAMES), close[0] if close else None) from None


def selection_setting(word: str) -> str:
    """The run setting a word stands for: a kind's name becomes its selection setting
    (``augmentation`` -> ``augment``); any other word is already a setting or parameter name."""
    return _BY_WORD[word].option if word in _BY_WORD else word
