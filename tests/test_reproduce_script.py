"""benchmarks/reproduce.py renders docs/results.md from stored run records (no training here)."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

from conftest import benchmark_script

ROOT = Path(__file__).resolve().parent.parent


def fake_record(folder: Path, case, seed: int, acc: float, step_seconds: dict | None = None,
                nmi: float | None = None) -> None:
    from dscsc_core.plugin_api.registry import load_registry

    scores = {name: {"acc": acc, "nmi": acc if nmi is None else nmi, "ari": acc, "seconds": 1.0}
              for name in ("spectral", "dsc-post")}
    fingerprint = case.fingerprint(load_registry(strict=True))
    record = {"case": case.name, "group": "", "seed": seed, "fingerprint": fingerprint, "train_s": 60.0,
              "scores": scores, "config": {}, "step_seconds": step_seconds or {}}
    path = folder / case.name / f"seed{seed}-{fingerprint[:12]}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))


def by_name(cases, name):
    return next(case for case in cases if case.name == name)


def test_suites_build_the_dscnet_base_and_the_ablations_from_presets():
    from dscsc_core.plugin_api.registry import load_registry
    from dscsc_core.run.pipeline import resolve_config

    registry = load_registry(strict=True)
    reproduce = benchmark_script("reproduce")
    suites = reproduce.suites(registry, ["orl", "coil20"], None)
    assert [case.name for case in suites["dscnet"]] == ["dscnet-orl", "dscnet-coil20"]
    assert [case.name for case in suites["table4"]] == ["DRH", "DRH+SCH", "Augmentation+DRH+SCH"]
    # Every shallow method on every dataset, a solver on the dataset's DSC-Net recipe.
    shallow = suites["shallow"]
    assert len(shallow) == 2 * len(reproduce.SHALLOW_METHODS)
    assert {layer.get("solver") for case in shallow for layer in case.layers} >= {"ssc", "lrr", "kssc"}
    assert by_name(suites["dscnet-l1"], "DSCNet-L1 orl").fingerprint(registry) != \
        by_name(suites["dscnet"], "dscnet-orl").fingerprint(registry)
    # UMIST's ablation shares its end rows with UMIST's recipe and main row; its middle rows each drop one module.
    umist = reproduce.suites(registry, ["umist"], None)
    ablation = {case.name: case for case in umist["table4-umist"]}
    assert ablation["umist DRH"].fingerprint(registry) == by_name(umist["dscnet"], "dscnet-umist").fingerprint(registry)
    assert ablation["umist Augmentation+DRH+SCH"].fingerprint(registry) == \
        by_name(umist["main"], "umist").fingerprint(registry)
    assert resolve_config(registry, *ablation["umist DRH+SCH"].layers).augment == "none"
    assert resolve_config(registry, *ablation["umist Augmentation+DRH"].layers).beta == 0.0
    assert len({case.fingerprint(registry) for case in ablation.values()}) == 4
    # Table 4's full row is the ORL preset itself, so its runs are shared with the main table.
    assert by_name(suites["table4"], "Augmentation+DRH+SCH").fingerprint(registry) == \
        by_name(suites["main"], "orl").fingerprint(registry)
    assert by_name(suites["table4"], "DRH").fingerprint(registry) == \
        by_name(suites["dscnet"], "dscnet-orl").fingerprint(registry)
    assert len({case.fingerprint(registry) for case in suites["fig3"]}) == len(suites["fig3"])
    # The recipe on DSC-Net's own reading of the files: the generic mat source, rows reshaped row-major.
    as_read = by_name(suites["dscnet-as-reference"], "dscnet-coil20, images as DSC-Net reads them")
    assert as_read.layers[-1]["dataset"] == "mat"
    assert as_read.layers[-1]["params"]["dataset"] == {"path": "coil20/COIL20.mat", "order": "row"}
    assert as_read.fingerprint(registry) != by_name(suites["dscnet"], "dscnet-coil20").fingerprint(registry)
    # Parity rows train Stage I as long as the reference's side-by-side runs did, whatever the preset's own length.
    budget = tomllib.loads((ROOT / "benchmarks" / "reference-dscnet.toml").read_text())["from_scratch"]
    for dataset in ("orl", "coil20"):
        parity = by_name(suites["parity"], f"dscnet-{dataset}, Stage I as long as the reference's")
        reading = by_name(suites["dscnet-as-reference"], f"dscnet-{dataset}, images as DSC-Net reads them")
        for case in (parity, reading):
            assert resolve_config(registry, *case.layers).pretrain_epochs == budget[dataset]["stage1_steps"]
    # The presets train Stage I in mini-batches; the parity rows keep the reference's full batch.
    for dataset in ("orl", "coil20"):
        parity = by_name(suites["parity"], f"dscnet-{dataset}, Stage I as long as the reference's")
        assert resolve_config(registry, *parity.layers).pretrain_batch_size == 0
        assert resolve_config(registry, *by_name(suites["dscnet"], f"dscnet-{dataset}").layers).pretrain_batch_size > 0
        assert parity.fingerprint(registry) != by_name(suites["dscnet"], f"dscnet-{dataset}").fingerprint(registry)


def test_report_from_stored_runs(tmp_path):
    from dscsc_core.plugin_api.registry import load_registry

    suites = benchmark_script("reproduce").suites(load_registry(strict=True), ["orl"], None)
    for seed, acc in enumerate((0.8, 0.9)):
        fake_record(tmp_path, by_name(suites["main"], "orl"), seed, acc, {"stage1": 0.05, "stage2": 0.2})
        fake_record(tmp_path, by_name(suites["dscnet"], "dscnet-orl"), seed, 0.75, {"stage1": 0.04, "stage2": 0.03})
        fake_record(tmp_path, by_name(suites["fig3"], "orl k=0"), seed, 0.6)
        fake_record(tmp_path, by_name(suites["dscnet-l1"], "DSCNet-L1 orl"), seed, 0.7)
    fake_record(tmp_path, by_name(suites["shallow"], "SSC orl"), 0, 0.65)
    fake_record(tmp_path, by_name(suites["table4-umist"], "umist Augmentation+DRH"), 0, 0.7)
    # Seed 0 equals the reference's seed-0 figures of the reference file, seed 1 does not.
    reference = tomllib.loads((ROOT / "benchmarks" / "reference-dscnet.toml").read_text())["from_scratch"]["orl"]
    as_read = by_name(suites["dscnet-as-reference"], "dscnet-orl, images as DSC-Net reads them")
    for seed in (0, 1):
        fake_record(tmp_path, by_name(suites["parity"], "dscnet-orl, Stage I as long as the reference's"), seed, 0.78)
    fake_record(tmp_path, as_read, 0, reference["acc"][0] / 100, nmi=reference["nmi"][0] / 100)
    fake_record(tmp_path, as_read, 1, reference["acc"][1] / 100, nmi=0.5)
    output = tmp_path / "results.md"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "reproduce.py"), "--report-only", "--datasets", "orl",
                    "--seeds", "2", "--records", str(tmp_path), "--output", str(output)], check=True, cwd=tmp_path)
    text = output.read_text()
    assert "| orl | dsc-post | 2 | 85.00 ± 7.07 |" in text  # mean ± sample std over the two seeds
    assert "90.75 / 94.44" in text and "-5.75" in text  # the paper's numbers and the gap in ACC points
    assert "| 75.00 ± 0.00 |" in text  # the dscnet base beside DSCSC, same clusterer
    assert "| 75.00 ± 0.00 | +10.00 ± 7.07 (≥ on 2 of 2) |" in text  # and seed by seed: +5 and +15 points
    # Seconds per step: the quiet-machine timing of the reference file where it has some, else the records'.
    quiet = tomllib.loads((ROOT / "benchmarks" / "reference-dscnet.toml").read_text()).get("dscsc_step_s", {})
    steps = (f"{quiet['orl']['stage1']:.3f} | {quiet['orl']['stage2']:.3f}" if "orl" in quiet else "0.040 | 0.030")
    # The parity row at the reference's Stage I length, then the preset at its own (longer) one.
    parity_row = (f"| orl | dscsc `--preset dscnet-orl --pretrain-epochs {reference['stage1_steps']} "
                  "--pretrain-batch-size 0` | 2 | "
                  "78.00 ± 0.00 |")
    # The preset's own row trains Stage I in mini-batches: an epoch's time, beside a full-batch step on that machine.
    epoch = tomllib.loads((ROOT / "benchmarks" / "reference-dscnet.toml").read_text())["minibatch_epoch_s"]["orl"]
    own_row = (f"| orl | dscsc `--preset dscnet-orl` (Stage I 1500 epochs in batches of 100) | 2 | 75.00 ± 0.00 | "
               f"75.00 ± 0.00 | {epoch['epoch']:.3f} an epoch ({epoch['full_batch_step']:.3f} a full-batch step there) "
               f"| {steps.split(' | ')[1]} |")
    assert parity_row in text and own_row in text and text.index(parity_row) < text.index(own_row)
    # Time per seed: the stored runs' mean (1 s train + clustering here) beside the quiet-machine whole-seed
    # timing of the reference file, which decides whether the target is met.
    whole = tomllib.loads((ROOT / "benchmarks" / "reference-dscnet.toml").read_text())["quiet_whole_seed"]["orl"]
    if (whole["pretrain_epochs"], whole.get("pretrain_batch_size", 0)) == (1500, 100):  # the preset's present Stage I
        met = "yes" if whole["seconds"] <= 120 else "no"
        assert f"| orl | 2 min | 1.0 min | {whole['seconds'] / 60:.1f} min | {met} |" in text
    else:
        assert "| orl | 2 min | 1.0 min | - | yes |" in text
    # Table 4 reuses the main ORL runs (its full row) and the dscnet-orl runs (its DRH row).
    assert "| DRH | `dscnet-orl` | 2 | 75.00 ± 0.00 |" in text
    assert "| Augmentation+DRH+SCH | `orl` | 2 | 85.00 ± 7.07 |" in text
    assert "| 0 | 2 | 60.00 ± 0.00 |" in text and "| 10 | 2 | 85.00 ± 7.07 |" in text  # k = 10 is the preset
    # UMIST's ablation appears once it has a record; its rows have no published number.
    assert "## Table 4 on UMIST (not in the paper)" in text
    assert "| umist Augmentation+DRH | `umist` `--beta 0.0` | 1 | 70.00 |" in text and "| — |" in text
    # Tables 2 and 3 in the paper's layout: every method's row, ours beside the paper's number.
    assert "### Table 2, clusterer `dsc-post`" in text and "### Table 3, clusterer `spectral`" in text
    # A single run shows no spread; two equal seeds do show their measured ± 0.00.
    assert "| SSC | 65.00 (67.00) | 65.00 (82.06) | 1, 61 |" in text
    # A sparse-C method is not scored by DSC-Net's post-processing: "n/a" there, its number under spectral.
    post = text[text.index("### Table 2, clusterer `dsc-post`"):]
    spectral = text[text.index("### Table 2, clusterer `spectral`"):text.index("### Table 2, clusterer `dsc-post`")]
    assert "| SSC | n/a (67.00) | n/a (82.06) | 1, 61 |" in post and "| SSC | 65.00 (67.00) |" in spectral
    assert "| KSSC | n/a (71.43) | n/a (80.70) | - |" in post and "| DSCSC | 85.00 ± 7.07 (90.75) |" in post
    assert "n/a: `dsc-post` is built for the dense C" in post
    assert "| DSCNet-L1 | 70.00 ± 0.00 (85.50) |" in text
    assert "| DSCNet-L2 | 75.00 ± 0.00 (86.00) |" in text and "| DSCSC | 85.00 ± 7.07 (90.75) |" in text
    assert "| KSSC | not run (71.43) | not run (80.70) | - |" in text
    assert "not run (—)" in text  # S2ConvSCN has no NMI in the paper
    assert "| orl | the same, images as DSC-Net reads them | 2 |" in text
    assert "- orl: the same ACC and NMI (to the reported 0.01 %) as the reference on 1 of 2 seeds" in text
    assert "Machine:" in text and "Command:" in text
    # A page a user reads: why the numbers differ, how to regenerate them, and a link to the dated notebook
    # (never the notebook itself).
    assert "## Where we differ from the paper, and why" in text
    assert "## How to regenerate these tables" in text and "python benchmarks/reproduce.py --check --seeds 2" in text
    assert "[benchmarks/notebook.md](../benchmarks/notebook.md)" in text
    assert "## Parity from scratch" not in text
    assert (tmp_path / "figures" / "orl-k-sweep.png").is_file()
    assert "![ACC versus k on ORL](figures/orl-k-sweep.png)" in text


def test_report_only_without_records_leaves_the_report_as_it_is(tmp_path):
    output = tmp_path / "results.md"
    output.write_text("measured earlier\n")
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "reproduce.py"), "--report-only",
                           "--datasets", "orl", "--records", str(tmp_path / "none"), "--output", str(output)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode != 0 and "no run records under" in done.stderr and "Traceback" not in done.stderr
    assert output.read_text() == "measured earlier\n"


def test_time_table_holds_a_preset_to_its_quiet_timing_only_for_the_stage_one_it_was_timed_with():
    from dscsc_core.evaluation.repeats import BenchRecord

    reproduce = benchmark_script("reproduce")
    scores = {"dsc-post": {"acc": 0.8, "nmi": 0.8, "ari": 0.8, "seconds": 0.0}}
    records = [BenchRecord("orl", "", seed, "f", 100.0, scores) for seed in (0, 1)]
    reference = {"quiet_whole_seed": {"orl": {"pretrain_epochs": 2000, "seconds": 150.0}}}
    # Timed with the present length: the quiet figure decides (150 s > 2 min).
    assert "| orl | 2 min | 1.7 min | 2.5 min | no |" in reproduce.time_table(records, reference, {"orl": (2000, 0)})
    # The preset has since changed its Stage I: the stale figure is not shown; the stored runs' mean decides.
    assert "| orl | 2 min | 1.7 min | - | yes |" in reproduce.time_table(records, reference, {"orl": (4000, 0)})
    # The same length in mini-batches is another Stage I, and so is a figure timed with one.
    assert "| orl | 2 min | 1.7 min | - | yes |" in reproduce.time_table(records, reference, {"orl": (2000, 100)})
    batched = {"quiet_whole_seed": {"orl": {"pretrain_epochs": 2000, "pretrain_batch_size": 100, "seconds": 90.0}}}
    assert "| orl | 2 min | 1.7 min | 1.5 min | yes |" in reproduce.time_table(records, batched, {"orl": (2000, 100)})
    # A figure timed in another precision than the preset's is another preset's too (fp32 when unsaid).
    assert "| orl | 2 min | 1.7 min | - | yes |" in reproduce.time_table(records, batched, {"orl": (2000, 100)},
                                                                          {"orl": "bf16"})
    in_bf16 = {"quiet_whole_seed": {"orl": {**batched["quiet_whole_seed"]["orl"], "precision": "bf16"}}}
    assert "| orl | 2 min | 1.7 min | 1.5 min | yes |" in reproduce.time_table(records, in_bf16, {"orl": (2000, 100)},
                                                                                {"orl": "bf16"})
    assert "| orl | 2 min | 1.7 min | - | yes |" in reproduce.time_table(records, in_bf16, {"orl": (2000, 100)})


def run_check(records: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "reproduce.py"), "--check",
                           "--records", str(records), *options], capture_output=True, text=True, cwd=records)


def test_check_names_every_table_row_without_a_stored_record(tmp_path):
    """`--check` answers from the records alone whether every row of the tables has its runs for the presets
    as they stand: a setting change that moves a fingerprint leaves its rows without records, named one a line."""
    from dscsc_core.plugin_api.registry import load_registry

    suites = benchmark_script("reproduce").suites(load_registry(strict=True), ["orl"], None)
    for seed in (0, 1):
        fake_record(tmp_path, by_name(suites["main"], "orl"), seed, 0.8)
        fake_record(tmp_path, by_name(suites["dscnet"], "dscnet-orl"), seed, 0.75)
    for case in suites["shallow"]:
        if case.name != "KSSC orl":
            fake_record(tmp_path, case, 0, 0.6)
    options = ("--suite", "main,dscnet,shallow", "--datasets", "orl", "--seeds", "2")
    done = run_check(tmp_path, *options)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stdout.splitlines() == [line for line in done.stdout.splitlines() if "KSSC" in line]  # only that row
    assert "Table 2, orl: KSSC: no stored record for seed 0 (suite shallow, case 'KSSC orl'" in done.stdout
    assert "1 of 10 table rows have no stored record" in done.stderr
    # A seed short: the row is named with the seeds it lacks.
    short = run_check(tmp_path, "--suite", "main", "--datasets", "orl", "--seeds", "3")
    assert short.returncode != 0 and "Table 2, orl: DSCSC: no stored record for seed 2 (suite main" in short.stdout
    # Every row the selection needs is there: exit 0 and one line.
    fake_record(tmp_path, by_name(suites["shallow"], "KSSC orl"), 0, 0.6)
    done = run_check(tmp_path, *options)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 1
    assert done.stdout.startswith("all 10 table rows of suites main,dscnet,shallow")
    # Nothing renders or trains under --check: the folder holds the records and nothing else.
    assert not (tmp_path / "results.md").exists() and not (tmp_path / "bench-runs").exists()


def test_check_refuses_an_unknown_suite(tmp_path):
    done = run_check(tmp_path, "--suite", "mian")
    assert done.returncode == 2 and "unknown suite mian" in done.stderr and "Traceback" not in done.stderr


def test_precision_suite_runs_the_yale_b_preset_in_its_other_precision_and_pairs_it_seed_by_seed(tmp_path):
    from dscsc_core.plugin_api.registry import load_registry
    from dscsc_core.run.pipeline import resolve_config

    registry = load_registry(strict=True)
    reproduce = benchmark_script("reproduce")
    suites = reproduce.suites(registry, ["yaleb-2432", "orl"], None)
    own = reproduce.own_precision(registry, "yaleb-2432")
    other = reproduce.other_precision(own)
    assert {own, other} == {"fp32", "bf16"}
    assert [case.name for case in suites["precision"]] == [f"yaleb-2432 {other}"]  # not on ORL
    compared = suites["precision"][0]
    assert resolve_config(registry, *compared.layers).precision == other
    main = by_name(suites["main"], "yaleb-2432")
    assert compared.fingerprint(registry) != main.fingerprint(registry)
    for seed, (acc, acc_other) in enumerate(((0.94, 0.93), (0.96, 0.95))):
        fake_record(tmp_path, main, seed, acc, {"stage1": 0.4, "stage2": 1.4})
        fake_record(tmp_path, compared, seed, acc_other, {"stage1": 0.3, "stage2": 0.9})
    output = tmp_path / "results.md"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "reproduce.py"), "--report-only", "--datasets",
                    "yaleb-2432", "--seeds", "2", "--records", str(tmp_path), "--output", str(output)],
                   check=True, cwd=tmp_path)
    text = output.read_text()
    assert "## Precision: the Yale B preset in bf16 and in fp32" in text
    assert f"| yaleb-2432 | {own} | 2 | 95.00 ± 1.41 | 95.00 ± 1.41 | 0.400 | 1.400 | - |" in text
    assert (f"| yaleb-2432 {other} | {other} | 2 | 94.00 ± 1.41 | 94.00 ± 1.41 | 0.300 | 0.900 | "
            "-1.00 ± 0.00 (≥ on 0 of 2) |") in text
