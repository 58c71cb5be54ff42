"""Settings: declared once, merged as defaults < dataset suggestions < file < flags, validated."""

import pytest

from dscsc_core import ConfigError, ParameterError
from dscsc_core.errors import UnknownParameterError
from dscsc_core.plugin_api.run_files import flatten_params, read_toml
from dscsc_core.run.config import RunConfig
from dscsc_core.run.parameters import route_params
from dscsc_core.run.pipeline import resolve_config
from dscsc_core.settings import RUN_SETTINGS


def test_every_declared_setting_is_a_field_with_its_default():
    config = RunConfig()
    for param in RUN_SETTINGS:
        assert getattr(config, param.name) == param.default


def test_training_config_carries_the_method_settings():
    training = RunConfig.from_layers({"beta": 3, "epochs": "7", "temperature": 0.08}).training()
    assert (training.beta, training.epochs, training.temperature) == (3.0, 7, 0.08)


def test_later_layers_win_and_none_means_unset():
    config = RunConfig.from_layers({"epochs": 5, "seed": 2}, {"epochs": 9, "seed": None})
    assert (config.epochs, config.seed) == (9, 2)


def test_dataset_suggestions_sit_between_defaults_and_the_file(registry):
    assert resolve_config(registry, {"dataset": "synthetic"}).input_scale == 10.0
    assert resolve_config(registry, {"dataset": "synthetic"}, {"input_scale": 2}).input_scale == 2.0
    assert resolve_config(registry, {"dataset": "digits"}).input_scale == 1.0


@pytest.mark.parametrize("layer", [{"epochs": -1}, {"lr": "fast"}, {"seed": 1.5}, {"temperature": 0}])
def test_bad_values_are_rejected(layer):
    with pytest.raises(ParameterError):
        RunConfig.from_layers(layer)


def test_unknown_setting_is_rejected():
    with pytest.raises(ConfigError, match="unknown setting 'epoch'"):
        RunConfig.from_layers({"epoch": 3})


def test_nested_params_flatten_to_qualified_names():
    assert flatten_params({"k": 3, "miner": {"k": 4}, "encoder": {"channels": [1, 2, 3]}}) == {
        "k": 3, "miner.k": 4, "encoder.channels": [1, 2, 3]
    }


def test_params_route_to_the_declaring_plugin(registry):
    selected = {option: registry.get(kind, name) for option, kind, name in [
        ("miner", "miner", "knn"), ("augment", "augmentation", "geometric"), ("encoder", "encoder", "conv3"),
    ]}
    routed = route_params({"k": 3, "augmentation.degrees": 4, "arch": "mnist"}, selected)
    assert routed == {"miner": {"k": 3}, "augment": {"degrees": 4}, "encoder": {"arch": "mnist"}}


def test_ambiguous_params_ask_for_the_qualified_form(registry):
    selected = {"regularizer": registry.get("regularizer", "l2"), "other": registry.get("regularizer", "l1")}
    with pytest.raises(UnknownParameterError, match="write one of: 'regularizer.weight', 'other.weight'"):
        route_params({"weight": 1}, selected)


def test_parameter_errors_speak_of_parameters_and_a_front_end_can_name_its_flags(registry):
    selected = {"miner": registry.get("miner", "knn")}
    with pytest.raises(UnknownParameterError) as caught:
        route_params({"zzz": 1}, selected)
    assert str(caught.value) == ("unknown plugin parameter 'zzz': no selected plugin declares it "
                                 "(miner 'knn' accept: 'k')")
    assert "--zzz" not in str(caught.value)
    assert caught.value.render(lambda name: f"--{name}") == (
        "unknown plugin parameter --zzz: no selected plugin declares it (miner 'knn' accept: --k)")


def test_text_plugin_parameters_are_stored_with_their_declared_types(registry):
    config = resolve_config(registry, {"dataset": "synthetic", "params": {"k": "20", "augment.hflip": "true",
                                                                             "degrees": 5}})
    assert config.params == {"k": 20, "augment.hflip": True, "degrees": 5}


def test_plugins_come_from_the_registered_defaults_not_from_the_core(registry):
    from dscsc_core.settings import SELECTION_SETTINGS

    assert all(param.default is None for param in SELECTION_SETTINGS)
    registry.defaults.pop("miner")
    assert resolve_config(registry, {"miner": "none"}).miner == "none"
    with pytest.raises(ConfigError, match="no miner is selected and no plugin names a default one; set 'miner'"):
        resolve_config(registry, {})


def test_read_toml_normalises_dashes(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('pretrain-epochs = 3\n[params]\nk = 2\n')
    assert read_toml(path) == {"pretrain_epochs": 3, "params": {"k": 2}}


def test_swapping_a_plugin_drops_the_earlier_plugins_qualified_parameters():
    from dscsc_core.run.config import RunConfig

    preset = {"augment": "geometric", "miner": "knn", "params": {"augment": {"degrees": 15}, "miner": {"k": 5}}}
    swapped = RunConfig.from_layers(preset, {"augment": "none"})
    assert swapped.params == {"miner.k": 5}
    same = RunConfig.from_layers(preset, {"augment": "geometric"})
    assert same.params == {"augment.degrees": 15, "miner.k": 5}
    later = RunConfig.from_layers(preset, {"augment": "none"}, {"params": {"augment": {"p": 1}}})
    assert later.params == {"miner.k": 5, "augment.p": 1}  # given after the swap: kept (and checked later)


def test_a_layer_keeps_the_parameters_it_gives_the_plugin_it_picks_whatever_its_key_order():
    from dscsc_core.run.config import RunConfig

    layer = {"params": {"miner": {"k": 3}}, "miner": "affinity"}  # params written before the pick
    assert RunConfig.from_layers({"miner": "knn"}, layer).params == {"miner.k": 3}
