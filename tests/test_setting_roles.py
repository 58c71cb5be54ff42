"""Every key, check and list of settings follows the role each setting declares, for every setting there is:
a setting whose role puts it in a key moves that key when its value moves, one whose role keeps it out does
not, and a later-added setting at its earlier value is as if it did not exist."""

from __future__ import annotations

import dataclasses

import pytest

from dscsc_core.estimator import ESTIMATOR_SETTINGS
from dscsc_core.plugin_api.registry import load_registry
from dscsc_core.run.identity import record_fingerprint, run_fingerprint, stage1_fingerprint, training_fingerprint
from dscsc_core.run.pipeline import prepare, resolve_config
from dscsc_core.settings import (
    ALWAYS_EXISTED,
    RUN_SETTINGS,
    SELECTION_SETTINGS,
    STAGE1_ALWAYS,
    STAGE1_PIXEL_SCALE,
    STAGE1_WITH_HEAD,
    STAGE1_WITH_SCH,
)

TINY = {"dataset": "synthetic", "pretrain_epochs": 1, "epochs": 1, "device": "cpu",
        "params": {"subspaces": 3, "per_subspace": 8}}
SCALARS = [s for s in RUN_SETTINGS if s not in SELECTION_SETTINGS]


def other_value(setting):
    """A valid value other than the default (and other than the value before the setting existed)."""
    if setting.choices:
        return next(c for c in setting.choices if c != setting.default and c != setting.role.earlier)
    if setting.type is int:
        value = (setting.default or 0) + 3
        return min(value, int(setting.max)) if setting.max is not None else value
    if setting.type is float:
        value = (setting.default or 0.25) * 0.5 + 0.125
        return max(value, setting.min or 0.0)
    return "elsewhere"


@pytest.fixture(scope="module")
def runs():
    registry = load_registry(strict=True)
    return {objective: prepare(resolve_config(registry, TINY, {"pretrain_objective": objective}), registry)
            for objective in ("drh+sch", "drh")}


def _with(run, **values):
    return dataclasses.replace(run, config=dataclasses.replace(run.config, **values))


def _keys(run):
    return {"run": run_fingerprint(run), "record": record_fingerprint(run.config.to_dict()),
            "training": training_fingerprint(run), "stage1": stage1_fingerprint(run)}


def _in_stage1(role, objective: str) -> bool:
    return (role.stage1 in (STAGE1_ALWAYS, STAGE1_PIXEL_SCALE)
            or (role.stage1 == STAGE1_WITH_HEAD and objective != "drh")
            or (role.stage1 == STAGE1_WITH_SCH and objective == "drh+sch"))


@pytest.mark.parametrize("setting", SCALARS, ids=[s.name for s in SCALARS])
@pytest.mark.parametrize("objective", ["drh+sch", "drh"])
def test_each_key_moves_exactly_as_the_settings_role_says(runs, setting, objective):
    if setting.name == "pretrain_objective":
        pytest.skip("the objective decides which roles enter Stage I's key: covered by the objective axis")
    base = runs[objective]
    before, after = _keys(base), _keys(_with(base, **{setting.name: other_value(setting)}))
    role = setting.role
    expected = {
        "run": role.shapes_result,
        # The record key holds no seed: the seed is stored beside it.
        "record": role.shapes_result and setting.name != "seed",
        "training": role.shapes_result and role.shapes_coef,
        "stage1": _in_stage1(role, objective),
    }
    moved = {key: before[key] != after[key] for key in before}
    assert moved == expected, setting.name


@pytest.mark.parametrize("setting", [s for s in RUN_SETTINGS if s.role.earlier is not ALWAYS_EXISTED],
                         ids=lambda s: s.name)
def test_a_later_setting_at_its_earlier_value_is_as_if_it_did_not_exist(runs, setting):
    settings = {**runs["drh+sch"].config.to_dict(), setting.name: setting.role.earlier}
    absent = {key: value for key, value in settings.items() if key != setting.name}
    assert record_fingerprint(settings) == record_fingerprint(absent)


def test_the_estimator_exposes_the_settings_whose_role_says_so():
    assert [s.name for s in ESTIMATOR_SETTINGS] == [s.name for s in RUN_SETTINGS if s.role.estimator]
    assert {"seed", "device", "data_root", "n_clusters"}.isdisjoint(s.name for s in ESTIMATOR_SETTINGS)


def test_a_pixel_solver_is_keyed_only_by_what_its_role_says_it_reads(runs):
    settings = {**runs["drh+sch"].config.to_dict(), "solver": "lsr"}
    readers = [s.name for s in RUN_SETTINGS if s.role.pixel_solver]
    for setting in SCALARS:
        moved = record_fingerprint({**settings, setting.name: other_value(setting)}) != record_fingerprint(settings)
        assert moved == (setting.name in readers), setting.name
