"""Committed presets: valid, complete, traceable to their sources, and runnable (tiny epochs)."""

from __future__ import annotations

import tomllib

import pytest

from dscsc_core.config import RunConfig
from dscsc_core.datapaths import DataRoot
from dscsc_core.runner import execute, prepare, resolve_config, route_params

# Paper §4.1 / Table 1: SCH output size and encoder layout per dataset.
PAPER = {
    "orl": (64, "conv3", "orl"),
    "umist": (64, "conv3", "umist"),
    "yaleb": (128, "conv3", "yaleb"),
    "yaleb-2432": (128, "conv3", "yaleb"),
    "mnist1000": (64, "conv3", "mnist"),
    "mnist-test": (64, "conv3", "mnist"),
    "coil20": (256, "conv1", "coil20"),
}
REQUIRED_TOP = ("dataset", "encoder", "augment", "miner", "clusterer", "pretrain_epochs", "epochs", "alpha", "beta",
                "gamma", "temperature", "head_dim", "input_scale", "lr")
REQUIRED_PLUGIN = {"encoder": ("arch",), "miner": ("k",), "clusterer": ("ratio", "dim", "power")}


def raw(registry, name):
    with registry.preset(name).path.open("rb") as handle:
        return tomllib.load(handle)


def test_one_preset_per_benchmark_dataset(registry):
    assert set(PAPER) <= set(registry.presets)
    for name in PAPER:
        assert raw(registry, name)["dataset"] == name


@pytest.mark.parametrize("name", list(PAPER))
def test_preset_is_complete_and_matches_the_paper(registry, name):
    preset = raw(registry, name)
    missing = [key for key in REQUIRED_TOP if key not in preset]
    missing += [f"{kind}.{key}" for kind, keys in REQUIRED_PLUGIN.items() for key in keys
                if key not in preset["params"].get(kind, {})]
    assert not missing, f"preset {name} lacks {missing}"
    head_dim, encoder, arch = PAPER[name]
    assert (preset["head_dim"], preset["encoder"], preset["params"]["encoder"]["arch"]) == (head_dim, encoder, arch)
    assert preset["alpha"] == pytest.approx(10 ** (_classes(name) / 10 - 3))  # alpha = 10^(n/10 - 3)
    assert (preset["beta"], preset["gamma"], preset["lr"]) == (10.0, 1.0, 0.001)


def _classes(name: str) -> int:
    return {"orl": 40, "umist": 20, "yaleb": 38, "yaleb-2432": 38, "mnist1000": 10, "mnist-test": 10,
            "coil20": 20}[name]


@pytest.mark.parametrize("name", list(PAPER))
def test_every_preset_value_says_where_it_came_from(registry, name):
    preset = raw(registry, name)
    provenance = preset["preset"]["provenance"]
    for key in ("encoder", "head_dim", "alpha", "beta", "gamma", "temperature", "k", "augment", "input_scale",
                "epochs", "clusterer"):
        assert provenance.get(key), f"preset {name}: no provenance for {key}"
    assert preset["preset"]["description"]


@pytest.mark.parametrize("name", list(PAPER))
def test_preset_resolves_and_routes_every_parameter(registry, name):
    config = resolve_config(registry, registry.preset(name).read())
    assert isinstance(config, RunConfig) and config.dataset == name
    infos = {option: registry.get(kind, getattr(config, option)) for option, kind in
             {"dataset": "dataset", "encoder": "encoder", "augment": "augmentation", "miner": "miner",
              "regularizer": "regularizer", "clusterer": "clusterer"}.items()}
    routed = route_params(config.params, infos)
    for option, params in routed.items():
        registry.create(infos[option].kind, infos[option].name, **params)  # validates types and ranges


# Small data sizes for the smoke runs: the full runs are benchmarks, not tests.
SMOKE_OVERRIDES = {"mnist-test": {"params": {"dataset": {"per_class": 10}}}}


# yaleb-2432 shares every setting with yaleb (only its file differs, and the loader tests read it).
@pytest.mark.parametrize("name", [name for name in PAPER if name != "yaleb-2432"])
def test_preset_smoke_run_with_tiny_epochs(registry, name):
    source = registry.get("dataset", name).factory
    relative = getattr(source, "relative_path", "mnist/t10k-images-idx3-ubyte.gz")
    if not (DataRoot.resolve().path / relative).is_file():
        pytest.skip(f"{relative} not under the data root")
    layers = [registry.preset(name).read(), SMOKE_OVERRIDES.get(name, {}), {"pretrain_epochs": 1, "epochs": 1}]
    result = execute(prepare(resolve_config(registry, *layers), registry))
    assert result.labels.shape[0] == result.summary["data"]["n_samples"]
    assert 0.0 <= result.metrics["acc"] <= 1.0
