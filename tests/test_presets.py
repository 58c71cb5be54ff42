"""Committed presets: the DSC-Net recipe per dataset, DSCSC built on it, traceable to their sources, runnable."""

from __future__ import annotations

import tomllib

import pytest

from dscsc_core.errors import ConfigError
from dscsc_core.plugin_api.datapaths import DataRoot
from dscsc_core.plugin_api.run_files import flatten_params
from dscsc_core.run.config import RunConfig
from dscsc_core.run.pipeline import execute, prepare, resolve_config

# Paper §4.1 / Table 1: SCH output size and encoder layout per dataset; the DSC-Net
# recipe each DSCSC preset builds on.
PAPER = {
    "orl": (64, "conv3", "orl", "dscnet-orl"),
    "umist": (64, "conv3", "umist", "dscnet-umist"),
    "yaleb": (128, "conv3", "yaleb", "dscnet-yaleb"),
    "yaleb-2432": (128, "conv3", "yaleb", "dscnet-yaleb"),
    "mnist1000": (64, "conv3", "mnist", "dscnet-mnist1000"),
    "coil20": (256, "conv1", "coil20", "dscnet-coil20"),
}
DSCNET = sorted({entry[3] for entry in PAPER.values()})
# DSC-Net's published balance (its code): alpha (= lambda2), the ||C||^2 weight and the pixel scale.
DSCNET_BALANCE = {"dscnet-orl": (0.2, 1.0, 255.0), "dscnet-coil20": (75.0, 0.5, 1.0),
                  "dscnet-yaleb": (10 ** 0.8, 1.0, 255.0)}


def raw(registry, name):
    with registry.preset(name).path.open("rb") as handle:
        return tomllib.load(handle)


def test_one_dscsc_preset_per_benchmark_dataset_and_one_dscnet_recipe_under_each(registry):
    assert set(PAPER) | set(DSCNET) <= set(registry.presets)
    for name, (*_, base) in PAPER.items():
        assert registry.preset(name).read()["dataset"] == name
        assert raw(registry, name).get("base") in (base, "yaleb-2432", "mnist1000")  # variants build on their row


@pytest.mark.parametrize("name", DSCNET)
def test_dscnet_recipe_is_dscsc_without_sch_and_augmentation(registry, name):
    preset = registry.preset(name).read()
    assert (preset["beta"], preset["augment"], preset["pretrain_objective"]) == (0.0, "none", "drh")
    assert (preset["regularizer"], preset["coef_diagonal"], preset["gamma"]) == ("l2", "free", 1.0)
    if name in DSCNET_BALANCE:
        alpha, weight, scale = DSCNET_BALANCE[name]
        assert preset["alpha"] == pytest.approx(alpha)
        assert flatten_params(preset["params"])["regularizer.weight"] == weight
        assert preset["input_scale"] == scale


@pytest.mark.parametrize("name", list(PAPER))
def test_dscsc_preset_keeps_its_recipes_balance_and_adds_sch(registry, name):
    head_dim, encoder, arch, base = PAPER[name]
    preset, recipe = registry.preset(name).read(), registry.preset(base).read()
    for key in ("alpha", "gamma", "input_scale", "coef_init", "coef_diagonal", "encoder", "lr", "regularizer"):
        assert preset[key] == recipe[key], key
    params = flatten_params(preset["params"])
    assert (preset["head_dim"], preset["encoder"], params["encoder.arch"]) == (head_dim, encoder, arch)
    assert preset["beta"] > 0 and preset["augment"] != "none"
    # The paper's eq. 8 miner, unless a label-free search chose another and the provenance says so.
    assert preset["miner"] == "knn" or preset["preset"]["provenance"].get("miner")
    assert preset["temperature"] == 0.1 and preset["lr"] == 0.001


@pytest.mark.parametrize("name", list(PAPER) + DSCNET)
def test_every_preset_value_says_where_it_came_from(registry, name):
    preset = registry.preset(name).read()
    provenance = preset["preset"]["provenance"]
    keys = ("encoder", "balance", "input_scale", "coef_init", "pretrain_objective", "pretrain_epochs", "epochs",
            "clusterer")
    keys += ("beta", "k", "augment", "head_dim", "temperature") if name in PAPER else ()
    for key in keys:
        assert provenance.get(key), f"preset {name}: no provenance for {key}"
    assert preset["preset"]["description"]
    assert "to be chosen" not in " ".join(provenance.values())  # nothing left open


@pytest.mark.parametrize("name", list(PAPER) + DSCNET)
def test_preset_resolves_and_builds_every_component(registry, name):
    config = resolve_config(registry, registry.preset(name).read())
    assert isinstance(config, RunConfig)
    from dscsc_core.run.pipeline import build_components

    infos, components = build_components(config, registry)  # validates every routed parameter
    # every plugin parameter the preset writes reached its plugin (none silently dropped)
    for key, value in config.params.items():
        option, _, param = key.rpartition(".")
        assert components[option].config[param] == infos[option].factory(**{param: value}).config[param]


def test_a_preset_built_on_another_takes_its_settings_and_overrides_them(registry, tmp_path):
    from dscsc_core.plugin_api.registry import PresetInfo

    (tmp_path / "child.toml").write_text('base = "dscnet-orl"\naugment = "geometric"\nbeta = 2.0\n'
                                         '[params.augment]\ndegrees = 5.0\n[preset.provenance]\nbeta = "why"\n')
    child = PresetInfo("child", tmp_path / "child.toml", "test", registry.presets).read()
    assert (child["dataset"], child["alpha"], child["beta"], child["augment"]) == ("orl", 0.2, 2.0, "geometric")
    assert child["params"]["augment.degrees"] == 5.0 and child["params"]["clusterer.ratio"] == 0.2
    assert child["preset"]["provenance"]["beta"] == "why" and child["preset"]["provenance"]["balance"]
    (tmp_path / "loop.toml").write_text('base = "loop"\n')
    catalogue = dict(registry.presets)
    catalogue["loop"] = PresetInfo("loop", tmp_path / "loop.toml", "test", catalogue)
    with pytest.raises(ConfigError, match="circle"):
        catalogue["loop"].read()
    (tmp_path / "orphan.toml").write_text('base = "nope"\n')
    with pytest.raises(ConfigError, match="base 'nope'"):
        PresetInfo("orphan", tmp_path / "orphan.toml", "test", registry.presets).read()


# Small data sizes for the smoke runs: the full runs are benchmarks, not tests.
# 100 of the 10,000 images: its Stage II batches (1000) are cut to fit them.
SMOKE_OVERRIDES = {"mnist-test": {"params": {"dataset": {"per_class": 10}}, "stage2_batch_size": 50}}


def test_mnist_test_is_mnist1000_on_scattering_features_and_the_scalable_path(registry):
    """Not a paper row: mnist1000's balance and SCH, on the features the large-scale MNIST results use, with
    every value that differs from mnist1000 explained."""
    preset = resolve_config(registry, registry.preset("mnist-test").read()).to_dict()
    recipe = resolve_config(registry, registry.preset("mnist1000").read()).to_dict()
    for key in ("alpha", "gamma", "input_scale", "coef_init", "coef_diagonal", "lr", "regularizer", "beta",
                "temperature", "head_dim", "miner"):
        assert preset[key] == recipe[key], key
    assert (preset["features"], preset["coef_support"], preset["clusterer"]) == ("scattering", 50, "sparse-spectral")
    provenance = registry.preset("mnist-test").read()["preset"]["provenance"]
    differing = [key for key in preset if key != "params" and preset[key] != recipe[key]]
    assert differing and all(provenance.get(key) for key in differing), differing


# yaleb shares every setting with yaleb-2432 but its file, and Yale B's full size makes a slow smoke run.
@pytest.mark.parametrize("name", [name for name in PAPER if not name.startswith("yaleb")] + ["mnist-test"])
def test_preset_smoke_run_with_tiny_epochs(registry, name):
    source = registry.get("dataset", name).factory
    relative = getattr(source, "relative_path", "mnist/t10k-images-idx3-ubyte.gz")
    if not (DataRoot.resolve().path / relative).is_file():
        pytest.skip(f"{relative} not under the data root")
    layers = [registry.preset(name).read(), SMOKE_OVERRIDES.get(name, {}), {"pretrain_epochs": 1, "epochs": 2}]
    result = execute(prepare(resolve_config(registry, *layers), registry))
    n = result.summary["data"]["n_samples"]
    assert result.labels.shape == (n,) and result.coef.shape == (n, n)
    assert len(set(result.labels.tolist())) > 1
    assert set(result.history[-1].losses) == {"drh", "sch", "sem", "total"}  # every term of eq. 11 trained


S2CONVSCN = {f"s2convscn-{name}": f"dscnet-{name}" for name in ("orl", "umist", "coil20", "mnist1000", "yaleb")}
SELF_SUPERVISION = ("every", "agreement_weight", "classifier_weight")
DASC = {f"dasc-{name}": f"dscnet-{name}" for name in ("orl", "umist", "coil20", "mnist1000", "yaleb")}
ADVERSARIAL = ("every", "weight", "margin", "dim", "real_fraction")
# Baselines that are a DSC-Net recipe plus a training objective: preset -> (its recipe, the objective's parameters).
LABEL_GUIDED = {**{name: (base, SELF_SUPERVISION) for name, base in S2CONVSCN.items()},
                **{name: (base, ADVERSARIAL) for name, base in DASC.items()}}


@pytest.mark.parametrize("name", list(LABEL_GUIDED))
def test_label_guided_preset_is_its_dscnet_recipe_plus_its_terms(registry, name):
    base, added = LABEL_GUIDED[name]
    preset = registry.preset(name).read()
    config = resolve_config(registry, preset).to_dict()
    recipe = resolve_config(registry, registry.preset(base).read()).to_dict()
    own = {key: config["params"].pop(f"objective.{key}") for key in added}
    assert config.pop("objective") == name.split("-")[0] and recipe.pop("objective") is None
    assert config == recipe and all(value > 0 for value in own.values()) and config["regularizer"] == "l2"
    provenance = preset["preset"]["provenance"]
    assert all(provenance.get(key) for key in (*added, "objective"))


@pytest.mark.parametrize("name", list(DASC))
def test_dasc_subspaces_have_the_dimension_dsc_post_assumes(registry, name):
    config = resolve_config(registry, registry.preset(name).read()).to_dict()
    assert config["params"]["objective.dim"] == config["params"]["clusterer.dim"]


@pytest.mark.parametrize("name, terms", [("s2convscn-orl", ("agreement", "pseudo")),
                                         ("dasc-orl", ("adversarial", "discriminator"))])
def test_label_guided_preset_smoke_run_with_tiny_epochs(registry, name, terms):
    if not (DataRoot.resolve().path / "orl" / "ORL_32x32.mat").is_file():
        pytest.skip("orl/ORL_32x32.mat not under the data root")
    layers = [registry.preset(name).read(), {"pretrain_epochs": 1, "epochs": 6}]
    result = execute(prepare(resolve_config(registry, *layers), registry))
    last = result.history[-1].losses
    assert all(last[term] > 0 for term in terms) and len(result.labels) == 400


def test_dscnet_l1_smoke_run_with_tiny_epochs(registry):
    """Table 2's DSCNet-L1 row: the recipe with the l1 regulariser swapped in."""
    if not (DataRoot.resolve().path / "orl" / "ORL_32x32.mat").is_file():
        pytest.skip("orl/ORL_32x32.mat not under the data root")
    layers = [registry.preset("dscnet-orl").read(), {"regularizer": "l1", "pretrain_epochs": 1, "epochs": 2}]
    result = execute(prepare(resolve_config(registry, *layers), registry))
    assert result.summary["components"]["regularizer"]["name"] == "l1"
    assert result.history[-1].losses["sem"] > 0 and len(set(result.labels.tolist())) > 1
