"""Plugin loading: built-ins come through the entry point, registry.toml matches, broken plugins are contained."""

import os
import sys
import tomllib
import types
import zipfile
from pathlib import Path

import pytest

from dscsc_core import DscscError, NegativeMiner, PluginError, UnknownComponentError, hookimpl
from dscsc_core.plugin_api.kinds import KIND_NAMES
from dscsc_core.plugin_api.manifest import builtin_entries, builtin_presets
from dscsc_core.plugin_api.registry import PluginLoader, PluginOrigin

ROOT = Path(__file__).resolve().parents[1]


def test_builtins_load_through_the_entry_point(registry):
    providers = {info.provider for info in registry}
    assert providers == {"builtins"}
    assert all(info.distribution == "dscsc" for info in registry)


def test_every_kind_has_builtins(registry):
    assert {info.kind for info in registry} == set(KIND_NAMES)


REGENERATE = "regenerate: python -m dscsc_core.plugin_api.manifest > registry.toml"


def test_registry_toml_matches_registered_builtins(registry):
    manifest = tomllib.loads((ROOT / "registry.toml").read_text())["component"]
    registered = builtin_entries(registry)

    def key(entry):
        return entry["kind"], entry["name"]

    assert sorted(map(key, manifest)) == sorted(map(key, registered)), REGENERATE
    by_key = {key(entry): entry for entry in registered}
    for entry in manifest:
        expected = by_key[key(entry)]
        assert entry["object"] == expected["object"]
        assert entry["summary"] == expected["summary"]
        assert entry.get("defaults", {}) == expected["defaults"], f"defaults of {key(entry)} differ"


def test_registry_toml_lists_the_registered_presets(registry):
    manifest = tomllib.loads((ROOT / "registry.toml").read_text()).get("preset", [])
    assert manifest == builtin_presets(registry.presets.values()), REGENERATE
    assert {p["name"] for p in manifest} >= {"orl", "umist", "yaleb", "yaleb-2432", "coil20", "mnist1000"}


def test_unknown_name_suggests_closest(registry):
    with pytest.raises(UnknownComponentError) as caught:
        registry.get("miner", "knnn")
    assert caught.value.suggestion == "knn"
    assert "knn, none" in str(caught.value)


class _EchoMiner(NegativeMiner):
    name = "echo"
    summary = "test miner"

    def mine(self, z, coef):
        return z.new_ones(z.shape[0], z.shape[0], dtype=bool)


def _module(name, **attrs):
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    return module


def test_third_party_module_registers_like_builtins():
    @hookimpl
    def dscsc_register_miners(register):
        register(_EchoMiner)

    loader = PluginLoader(strict=True)
    loader.load_entry_points()
    loader.add_plugin(_module("echo_plugin", dscsc_register_miners=dscsc_register_miners), "echo_plugin")
    registry = loader.collect()
    assert registry.get("miner", "echo").provider == "echo_plugin"
    assert "knn" in registry.names("miner")


def test_broken_plugin_is_skipped_with_a_warning():
    @hookimpl
    def dscsc_register_miners(register):
        raise RuntimeError("boom")

    loader = PluginLoader(strict=False)
    loader.load_entry_points()
    loader.add_plugin(_module("broken", dscsc_register_miners=dscsc_register_miners), "broken")
    registry = loader.collect()
    assert registry.names("miner") == ["affinity", "classmates", "knn", "none"]
    assert len(registry.warnings) == 1 and "broken" in registry.warnings[0] and "boom" in registry.warnings[0]


def test_broken_plugin_raises_when_strict():
    @hookimpl
    def dscsc_register_miners(register):
        register(object)

    loader = PluginLoader(strict=True)
    loader.add_plugin(_module("bad", dscsc_register_miners=dscsc_register_miners), "bad")
    with pytest.raises(PluginError, match="not a NegativeMiner"):
        loader.collect()


class _ForgetfulMiner(NegativeMiner):
    name = "forgetful"
    summary = "declares itself a miner but never writes mine()"


def test_a_plugin_without_its_kinds_method_is_refused_when_it_registers_not_when_it_runs():
    @hookimpl
    def dscsc_register_miners(register):
        register(_ForgetfulMiner)

    loader = PluginLoader(strict=False)
    loader.load_entry_points()
    loader.add_plugin(_module("forgetful", dscsc_register_miners=dscsc_register_miners), "forgetful")
    registry = loader.collect()
    assert "forgetful" not in registry.names("miner") and "knn" in registry.names("miner")
    assert len(registry.warnings) == 1 and "without its mine method" in registry.warnings[0]
    with pytest.raises(TypeError, match="abstract"):
        _ForgetfulMiner()


def test_presets_from_two_plugins_with_one_name_name_both_providers(tmp_path):
    (tmp_path / "fast.toml").write_text("epochs = 1\n")

    @hookimpl
    def dscsc_register_presets(register):
        register(tmp_path / "fast.toml")

    loader = PluginLoader(strict=True)
    loader.add_plugin(_module("first", dscsc_register_presets=dscsc_register_presets), "first")
    loader.add_plugin(_module("second", dscsc_register_presets=dscsc_register_presets), "second")
    with pytest.raises(PluginError, match="preset 'fast' is registered by plugin 'first' and by plugin 'second'"):
        loader.collect()


class _OtherKnn(NegativeMiner):
    name = "knn"
    summary = "a third party's knn"

    def mine(self, z, coef):
        return z.new_ones(z.shape[0], z.shape[0], dtype=bool)


def _installed_clash(strict):
    """A distribution 'dscsc-dupe' whose plugin 'dupe' registers a second miner 'knn' and a new one,
    loaded before the built-ins, so that only the ranking of built-ins first can keep their name."""

    @hookimpl
    def dscsc_register_miners(register):
        register(_OtherKnn)
        register(_EchoMiner)

    @hookimpl
    def dscsc_register_defaults(register):
        register("miner", "echo")

    loader = PluginLoader(strict=strict)
    module = _module("dupe", dscsc_register_miners=dscsc_register_miners,
                     dscsc_register_defaults=dscsc_register_defaults)
    loader.add_plugin(module, "dupe", PluginOrigin("dscsc-dupe", "0.3"))
    loader.load_entry_points()
    return loader


def test_a_clash_keeps_the_builtin_and_warns_once_naming_the_distribution():
    registry = _installed_clash(strict=False).collect()
    assert registry.get("miner", "knn").factory.__module__ == "dscsc_plugins.miners"
    assert registry.get("miner", "echo").provider == "dupe"  # the rest of the plugin still loads
    assert registry.default_selections()["miner"] == "knn"  # a default is a name like any other
    assert len(registry.warnings) == 2
    clash = registry.warnings[0]
    assert clash.startswith("miner 'knn' is registered by plugin 'builtins' (distribution dscsc ")
    assert "plugin 'dupe' (distribution dscsc-dupe 0.3); 'builtins' keeps it" in clash
    assert clash.endswith("uninstall dscsc-dupe or set DSCSC_DISABLE_PLUGINS=dupe")
    assert registry.warnings[1].startswith("the default miner is registered by plugin 'builtins'")


def test_a_clash_is_an_error_when_strict():
    with pytest.raises(PluginError, match="miner 'knn' is registered by plugin 'builtins'.*'dupe'"):
        _installed_clash(strict=True).collect()


def test_a_clash_from_a_plugin_the_user_named_is_an_error(tmp_path):
    path = tmp_path / "knn_again.py"
    path.write_text("from dscsc_core import hookimpl\nfrom dscsc_plugins.miners import KnnMiner\n\n"
                    "class Again(KnnMiner):\n    pass\n\n"
                    "@hookimpl\ndef dscsc_register_miners(register):\n    register(Again)\n")
    loader = PluginLoader(strict=False)
    loader.load_entry_points()
    loader.add_local(str(path))
    with pytest.raises(PluginError, match=f"'builtins' keeps it: rename it in {path}"):
        loader.collect()


def test_a_module_already_installed_and_named_again_is_used_once():
    loader = PluginLoader(strict=True)
    loader.load_entry_points()
    loader.add_local("dscsc_plugins")
    registry = loader.collect()
    assert registry.warnings == [f"plugin 'dscsc_plugins' is already loaded as {loader.describe('builtins')}; "
                                 "using that"]
    assert registry.get("miner", "knn").provider == "builtins"


def test_missing_preset_file_is_a_plugin_warning(tmp_path):
    @hookimpl
    def dscsc_register_presets(register):
        register(tmp_path / "nope.toml")

    loader = PluginLoader(strict=False)
    loader.add_plugin(_module("lost", dscsc_register_presets=dscsc_register_presets), "lost")
    registry = loader.collect()
    assert registry.presets == {}
    missing = tmp_path / "nope.toml"
    assert registry.warnings == [
        f"plugin 'lost' failed to register its presets: PluginError: preset file {missing} does not exist"]


def test_misspelled_hook_is_reported():
    @hookimpl
    def dscsc_register_miner(register):  # singular: no such hook
        pass

    loader = PluginLoader(strict=True)
    loader.add_plugin(_module("typo", dscsc_register_miner=dscsc_register_miner), "typo")
    with pytest.raises(DscscError, match="'typo' implements unknown hook 'dscsc_register_miner'; did you mean "
                                         "'dscsc_register_miners'"):
        loader.collect()


def test_disabled_plugins_are_not_loaded(monkeypatch):
    monkeypatch.setenv("DSCSC_DISABLE_PLUGINS", "builtins")
    loader = PluginLoader()
    loader.load_entry_points()
    assert list(loader.collect()) == []


@pytest.mark.skipif(not (ROOT / "pyproject.toml").exists(), reason="needs the source tree")
def test_wheel_ships_three_import_names_and_the_entry_point(tmp_path):
    import subprocess

    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next(tmp_path.glob("dscsc-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top_level == {"dscsc_core", "dscsc_plugins", "dscsc_cli"}
    assert "dscsc_plugins/presets/orl.toml" in names, "the presets must ship in the wheel"
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[dscsc]" in text and "builtins = dscsc_plugins" in text
    assert "dscsc = dscsc_cli.main:main" in text

    # Installed from the wheel (ahead of any editable install on the path), the built-ins still load.
    target = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "--target", str(target), str(wheel)],
        capture_output=True, text=True,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    probe = (
        "from dscsc_core.plugin_api.registry import load_registry; import dscsc_plugins; "
        "r = load_registry(strict=True); print(len(list(r)), dscsc_plugins.__file__)"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(target)},
        cwd=tmp_path,
    )
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    count, location = loaded.stdout.split()
    assert int(count) == len(tomllib.loads((ROOT / "registry.toml").read_text())["component"])
    assert location.startswith(str(target))
