"""Stored benchmark runs are found by their training settings, under whatever case name they were saved."""

from __future__ import annotations

import pytest

from dscsc_core import Clusterer, DatasetSource
from dscsc_core.evaluation.repeats import BenchCase, BenchRecord, RecordStore, run_bench, run_case
from dscsc_core.evaluation.tuning import tune
from dscsc_core.plugin_api.registry import load_registry
from dscsc_core.run.identity import result_fingerprint
from dscsc_core.run.pipeline import execute, prepare, resolve_config

BASE = {"dataset": "synthetic", "pretrain_epochs": 3, "epochs": 2}


@pytest.fixture(scope="module")
def registry():
    return load_registry(strict=True)


def saved(store: RecordStore, case: BenchCase, registry, seed: int = 0, acc: float = 0.5,
          data: str | None = "the case's own") -> BenchRecord:
    """A stored record of ``case`` made on the case's own data (its digest), on other data, or (None) before
    records carried their data's digest."""
    if data == "the case's own":
        data = prepare(resolve_config(registry, *case.layers), registry).data_digest
    scores = {"dsc-post": {"acc": acc, "nmi": acc, "ari": acc, "seconds": 0.1}}
    record = BenchRecord(case.name, case.group, seed, case.fingerprint(registry), 1.0, scores, data=data)
    store.save(case, record)
    return record


def test_descriptive_metadata_does_not_change_the_fingerprint(registry):
    plain = BenchCase("a", (BASE,))
    described = BenchCase("a", ({**BASE, "preset": {"description": "edited", "provenance": {"k": "why"}}},))
    assert plain.fingerprint(registry) == described.fingerprint(registry)
    assert plain.fingerprint(registry) != BenchCase("a", ({**BASE, "epochs": 3},)).fingerprint(registry)
    # a value equal to the default is the same run as leaving it out
    assert plain.fingerprint(registry) == BenchCase("a", ({**BASE, "coef_diagonal": "zero"},)).fingerprint(registry)


def test_a_parameter_added_later_keeps_earlier_runs_found_at_its_old_behaviour(registry):
    # augment.padding came after runs were stored with black padding: "zeros" must not orphan them.
    augmented = {**BASE, "augment": "geometric"}
    plain = BenchCase("a", (augmented,)).fingerprint(registry)
    assert BenchCase("a", (augmented, {"params": {"augment": {"padding": "zeros"}}})).fingerprint(registry) == plain
    assert BenchCase("a", (augmented, {"params": {"augment": {"padding": "border"}}})).fingerprint(registry) != plain


def test_a_run_stored_under_another_name_is_reused_under_the_name_asked_for(registry, tmp_path):
    ablation = BenchCase("orl diagonal=free", (BASE, {"coef_diagonal": "free"}))
    saved(RecordStore(tmp_path), ablation, registry, seed=1, acc=0.7)
    adopted = BenchCase("orl", ({**BASE, "coef_diagonal": "free"},))
    store = RecordStore(tmp_path)  # a fresh index, as a later session would build
    record = store.find(adopted, adopted.fingerprint(registry), 1)
    assert record is not None and record.case == "orl" and record.scores["dsc-post"]["acc"] == 0.7
    assert store.find(adopted, adopted.fingerprint(registry), 0) is None  # other seed: not stored
    other = BenchCase("orl", (BASE,))
    assert store.find(other, other.fingerprint(registry), 1) is None  # other settings: not reused


def test_run_bench_trains_only_what_is_missing(registry, tmp_path):
    case = BenchCase("tiny", (BASE,))
    saved(RecordStore(tmp_path), BenchCase("renamed", (BASE,)), registry, seed=0, acc=0.25)
    seen = []
    records = run_bench(registry, [case], [0, 1], ["dsc-post"], tmp_path,
                        on_record=lambda record, reused: seen.append((record.seed, reused)))
    assert seen == [(0, True), (1, False)]
    assert records[0].scores["dsc-post"]["acc"] == 0.25
    # a new run records the label-free criteria of dscsc tune and its own labels beside its scores
    assert records[1].silhouette is not None and -1.0 <= records[1].silhouette <= 1.0
    assert records[1].subspace_fit is not None and 0.0 <= records[1].subspace_fit <= 1.0
    assert records[1].labels is not None and len(records[1].labels) == 200 and set(records[1].labels) <= set(range(5))
    assert len(list((tmp_path / "tiny").glob("seed1-*.json"))) == 1


@pytest.mark.parametrize("data", [None, "made on other images"])
def test_a_record_of_other_data_or_of_unknown_data_is_not_reused(registry, tmp_path, data):
    case = BenchCase("tiny", (BASE,))
    saved(RecordStore(tmp_path), case, registry, seed=0, acc=0.25, data=data)
    seen = []
    records = run_bench(registry, [case], [0], ["dsc-post"], tmp_path,
                        on_record=lambda record, reused: seen.append(reused))
    assert seen == [False] and records[0].scores["dsc-post"]["acc"] != 0.25
    assert records[0].data == prepare(resolve_config(registry, BASE), registry).data_digest
    # The run made now replaced the record it could not trust.
    assert RecordStore(tmp_path).find(case, case.fingerprint(registry), 0, records[0].data) is not None


def test_records_can_live_apart_from_the_weights_and_keep_their_labels_on_one_line(registry, tmp_path):
    import json

    case = BenchCase("tiny", (BASE,))
    record = run_bench(registry, [case], [0], ["dsc-post"], tmp_path / "weights",
                       records_folder=tmp_path / "records")[0]
    written = list((tmp_path / "records").rglob("seed0-*.json"))
    assert len(written) == 1 and not list((tmp_path / "weights").rglob("*.json"))
    assert (tmp_path / "weights" / "stage1").is_dir()  # the Stage I it trained is kept with the weights
    text = written[0].read_text()
    assert json.loads(text)["labels"] == record.labels
    assert sum(line.startswith("  \"labels\": [") and line.endswith("],") for line in text.splitlines()) == 1
    assert len(RecordStore(tmp_path / "records")) == 1 and len(RecordStore(tmp_path / "weights")) == 0


def test_changed_settings_add_a_record_beside_the_old_one(registry, tmp_path):
    store = RecordStore(tmp_path)
    before, after = BenchCase("orl", (BASE,)), BenchCase("orl", ({**BASE, "coef_diagonal": "free"},))
    saved(store, before, registry, acc=0.6)
    saved(store, after, registry, acc=0.7)  # the preset was edited: same name, other settings
    assert len(list((tmp_path / "orl").glob("seed0-*.json"))) == 2
    fresh = RecordStore(tmp_path)
    assert fresh.find(before, before.fingerprint(registry), 0).scores["dsc-post"]["acc"] == 0.6
    assert fresh.find(after, after.fingerprint(registry), 0).scores["dsc-post"]["acc"] == 0.7


def test_unreadable_files_in_the_store_are_skipped(registry, tmp_path):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "seed0.json").write_text("not json")
    (tmp_path / "junk" / "seed1.json").write_bytes(b"\xff\xfe")
    case = BenchCase("a", (BASE,))
    assert RecordStore(tmp_path).find(case, case.fingerprint(registry), 0) is None


TINY = {"dataset": "synthetic", "pretrain_epochs": 1, "epochs": 1, "params": {"subspaces": 3, "per_subspace": 12}}


def test_a_case_clusters_its_coefficients_once_per_clusterer(registry, monkeypatch):
    """The case's own clusterer runs inside execute and is not run again; the extra one runs once."""
    calls = []
    original = Clusterer.fit_predict
    monkeypatch.setattr(Clusterer, "fit_predict",
                        lambda self, *args, **kwargs: calls.append(self.name) or original(self, *args, **kwargs))
    record = run_case(registry, BenchCase("tiny", (TINY,)), 0, ["spectral", "dsc-post"])
    assert sorted(calls) == ["dsc-post", "spectral"]
    assert list(record.scores) == ["spectral", "dsc-post"]
    assert all(score["seconds"] > 0 for score in record.scores.values())


def test_timings_are_typed_and_a_reused_stage_one_counts_at_its_cost(registry, tmp_path):
    config = resolve_config(registry, TINY)
    first = execute(prepare(config, registry), stage1_cache=tmp_path)
    again = execute(prepare(config, registry), stage1_cache=tmp_path)
    assert not first.timings.stage1.reused and again.timings.stage1.reused
    assert again.timings.pretrain_s == 0.0 and again.timings.stage1.stored_seconds == first.timings.pretrain_s
    assert again.timings.train_s == pytest.approx(
        again.timings.load_s + again.timings.finetune_s + first.timings.pretrain_s)
    assert again.summary["timings"] == again.timings.to_dict()  # result.json keeps its layout
    assert again.summary["stage1"] == again.timings.stage1.to_dict()


def test_tune_reads_the_dataset_once_and_returns_typed_settings(registry, monkeypatch):
    loads = []
    original = DatasetSource.load
    monkeypatch.setattr(DatasetSource, "load", lambda self, root=None: loads.append(self.name) or original(self, root))
    ranked = tune(registry, [TINY], {"k": ["1", "2"]}, [0, 1])
    assert loads == ["synthetic"]  # 2 candidates x (a check + 2 seeds), one read
    assert sorted(candidate.settings["k"] for candidate in ranked) == [1, 2]


def test_a_stopped_run_keeps_a_checkpoint_and_the_next_call_finishes_it(registry, tmp_path):
    from dscsc_core.evaluation.repeats import CHECKPOINT_FOLDER
    from dscsc_core.training.checkpoint import TrainingInterrupted

    case = BenchCase("tiny", ({**BASE, "epochs": 4},))
    steps_whole, steps_rest = [], []  # should_stop is asked once per step
    uninterrupted = run_bench(registry, [case], [0], ["dsc-post"], tmp_path / "whole",
                              should_stop=lambda: steps_whole.append(1))[0]
    asked = iter([False] * 5 + [True])  # 3 Stage I steps, then stop during Stage II
    with pytest.raises(TrainingInterrupted):
        run_bench(registry, [case], [0], ["dsc-post"], tmp_path / "parts", should_stop=lambda: next(asked, True))
    kept = list((tmp_path / "parts" / CHECKPOINT_FOLDER).rglob("checkpoint.pt"))
    assert len(kept) == 1 and RecordStore(tmp_path / "parts").find(case, case.fingerprint(registry), 0) is None
    finished = run_bench(registry, [case], [0], ["dsc-post"], tmp_path / "parts",
                         should_stop=lambda: steps_rest.append(1))[0]
    assert 0 < len(steps_rest) < len(steps_whole)  # it went on from the checkpoint, not from the start
    assert finished.labels == uninterrupted.labels
    assert finished.scores["dsc-post"]["acc"] == uninterrupted.scores["dsc-post"]["acc"]
    assert not kept[0].exists()  # the finished run's checkpoint is gone


def test_a_pixel_solver_is_identified_by_the_data_solver_and_clusterer_only(registry):
    solver = {**BASE, "solver": "lsr"}
    plain = BenchCase("LSR", (solver,)).fingerprint(registry)
    # A solver case is built on a recipe; the recipe's training settings are not read by a solver on the pixels.
    for unread in ({"pretrain_epochs": 9}, {"epochs": 9}, {"alpha": 2.0}, {"lr": 0.01}, {"regularizer": "l1"},
                   {"coef_diagonal": "free"}, {"augment": "none"}):
        assert BenchCase("LSR", (solver, unread)).fingerprint(registry) == plain, unread
    for read in ({"input_scale": 2.0}, {"solver": "lrr"}, {"params": {"solver": {"lam": 1.0}}},
                 {"clusterer": "spectral"}, {"params": {"clusterer": {"ratio": 0.5}}},
                 {"params": {"dataset": {"data_seed": 1}}}):
        assert BenchCase("LSR", (solver, read)).fingerprint(registry) != plain, read
    # On the features of Stage I's autoencoder (AE+SSC) the training settings shape the input: they stay in.
    features = {**solver, "solver_input": "features"}
    assert (BenchCase("AE", (features, {"pretrain_epochs": 9})).fingerprint(registry)
            != BenchCase("AE", (features,)).fingerprint(registry))


def test_a_pixel_solver_run_stored_with_its_recipes_training_settings_is_found(registry, tmp_path):
    case = BenchCase("LSR", ({**BASE, "solver": "lsr"},))
    settings = resolve_config(registry, *case.layers).to_dict()
    record = BenchRecord(case.name, "", 0, result_fingerprint({k: v for k, v in settings.items() if k != "seed"}),
                         1.0, {"dsc-post": {"acc": 0.9, "nmi": 0.9, "ari": 0.9, "seconds": 0.1}}, settings)
    assert record.fingerprint != case.fingerprint(registry)  # as such runs were stored before
    RecordStore(tmp_path).save(case, record)
    found = RecordStore(tmp_path).find(case, case.fingerprint(registry), 0)
    assert found is not None and found.scores["dsc-post"]["acc"] == 0.9
