"""sem_reduction: the self-expression loss as printed (sum) or per sample (mean), end to end."""

from __future__ import annotations

import pytest
from test_cli import invoke, with_test_plugin  # noqa: F401  (autouse fixture)

from dscsc_core.runner import execute, prepare, resolve_config

SETTINGS = {"dataset": "synthetic", "pretrain_epochs": 3, "epochs": 2, "seed": 1,
            "params": {"subspaces": 3, "per_subspace": 10}}


def first_sem_loss(registry, reduction: str) -> float:
    result = execute(prepare(resolve_config(registry, {**SETTINGS, "sem_reduction": reduction}), registry))
    return next(report.losses["sem"] for report in result.history if report.stage == "finetune")


def test_mean_divides_the_first_stage_two_loss_by_n(registry):
    # Stage I and the initial C do not depend on the reduction, so the first Stage II loss differs
    # by exactly the factor N = 30.
    total, per_sample = first_sem_loss(registry, "sum"), first_sem_loss(registry, "mean")
    assert per_sample == pytest.approx(total / 30, rel=1e-5)


def test_run_flag_and_bad_value():
    ok = invoke("run", "--dataset", "synthetic", "--pretrain-epochs", "1", "--epochs", "1", "--sem-reduction", "mean",
                "--json")
    assert ok.exit_code == 0, ok.output
    assert '"sem_reduction": "mean"' in ok.stdout
    bad = invoke("run", "--dataset", "synthetic", "--sem-reduction", "avg")
    assert bad.exit_code != 0 and "must be one of sum, mean" in bad.output


def test_summary_reports_the_feature_scale_before_and_after_stage_two(registry):
    result = execute(prepare(resolve_config(registry, SETTINGS), registry))
    scale = result.summary["feature_scale"]
    assert set(scale) == {"stage1_end", "final"} and scale["stage1_end"] > 0
    assert scale["final"] == pytest.approx(float((result.embedding ** 2).sum(1).mean()), rel=1e-5)
