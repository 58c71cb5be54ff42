"""C on a support of k neighbours per sample, and Stage II in mini-batches over a memory bank: no N x N matrix,
the same self-expression as eq. 1 on that support, a sparse C out, and one-line errors for what cannot work."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import sparse

from dscsc_core.errors import ConfigError
from dscsc_core.run.pipeline import execute, prepare, resolve_config
from dscsc_core.training.checkpoint import TrainingInterrupted
from dscsc_core.training.supported_coef import SupportedSelfExpression, nearest_support, stage2_batches

TINY = {"dataset": "synthetic", "pretrain_epochs": 2, "epochs": 4, "device": "cpu", "threads": 1,
        "pretrain_batch_size": 10, "clusterer": "sparse-spectral", "coef_support": 6,
        "params": {"subspaces": 3, "per_subspace": 10, "miner.k": 2, "clusterer.k": 5}}


def test_the_support_is_each_samples_k_most_similar_others(monkeypatch):
    import dscsc_core.training.supported_coef as module

    monkeypatch.setattr(module, "_SEARCH_BLOCK", 7)
    features = torch.randn(30, 5, generator=torch.Generator().manual_seed(0))
    support = nearest_support(features, 4)
    unit = torch.nn.functional.normalize(features, dim=1)
    similarity = (unit @ unit.T).fill_diagonal_(-float("inf"))
    assert torch.equal(support.sort(dim=1).values, similarity.topk(4, dim=1).indices.sort(dim=1).values)


def test_a_batch_is_expressed_as_eq_1_expresses_it_with_c_on_the_support():
    generator = torch.Generator().manual_seed(1)
    z = torch.randn(12, 3, generator=generator)
    sem = SupportedSelfExpression(nearest_support(z, 4), 0.3, generator, bank=z.clone())
    rows = torch.tensor([1, 5, 7])
    expressed = sem.express(rows, z[rows])
    coef = sem.coefficients()  # the paper's convention: column i expresses sample i
    assert sparse.isspmatrix_csr(coef) and coef.nnz == 12 * 4 and not coef.diagonal().any()
    dense = torch.as_tensor(coef.toarray(), dtype=torch.float32)
    assert torch.allclose(expressed, (dense.T @ z)[rows], atol=1e-6)


def test_only_the_batch_carries_gradient_and_the_bank_serves_the_rest():
    generator = torch.Generator().manual_seed(2)
    bank = torch.randn(8, 2, generator=generator)
    sem = SupportedSelfExpression(torch.tensor([[j for j in range(8) if j != i][:3] for i in range(8)]), 0.5,
                                  generator, bank=bank.clone())
    live = torch.randn(2, 2, generator=generator, requires_grad=True)
    sem.express(torch.tensor([0, 1]), live).sum().backward()
    assert live.grad is not None and live.grad.abs().sum() > 0  # sample 1 is among sample 0's neighbours
    sem.remember(torch.tensor([0, 1]), live)
    assert torch.equal(sem.bank[:2], live.detach()) and torch.equal(sem.bank[2:], bank[2:])


def test_a_batchs_block_of_c_is_c_among_its_samples():
    generator = torch.Generator().manual_seed(3)
    z = torch.randn(10, 3, generator=generator)
    sem = SupportedSelfExpression(nearest_support(z, 4), 0.5, generator, bank=z.clone())
    rows = torch.tensor([7, 2, 9, 4])
    dense = torch.as_tensor(sem.coefficients().toarray(), dtype=torch.float32)
    assert torch.equal(sem.batch_block(rows), dense[rows][:, rows])


def test_features_on_another_device_than_the_bank_are_refused_in_one_line():
    from dscsc_core.errors import DeviceError

    generator = torch.Generator().manual_seed(4)
    z = torch.randn(6, 2, generator=generator)
    sem = SupportedSelfExpression(nearest_support(z, 2), 0.5, generator, bank=torch.empty(6, 2, device="meta"))
    with pytest.raises(DeviceError, match="memory bank of Stage II is on meta, but the batch's features are on cpu"):
        sem.express(torch.tensor([0, 1]), z[:2])


def test_mini_batches_are_as_equal_as_can_be():
    assert stage2_batches(200, 64) == [50, 50, 50, 50] and stage2_batches(10, 3) == [3, 3, 2, 2]
    assert stage2_batches(7, 0) == [7] and sum(stage2_batches(10_001, 1000)) == 10_001


@pytest.mark.parametrize("batch", [0, 10])
def test_a_run_on_the_support_trains_and_returns_a_sparse_c_of_n_k_entries(registry, batch):
    run = prepare(resolve_config(registry, TINY, {"stage2_batch_size": batch}), registry)
    result = execute(run)
    assert sparse.issparse(result.coef) and result.coef.shape == (30, 30) and result.coef.nnz == 30 * 6
    assert sparse.issparse(result.affinity) and len(set(result.labels.tolist())) > 1
    finetune = [r for r in result.history if r.stage == "finetune"]
    assert len(finetune) == 4 and all(np.isfinite(list(r.losses.values())).all() for r in finetune)


def test_a_batched_run_resumes_to_the_uninterrupted_result(registry, tmp_path):
    layer = {"stage2_batch_size": 10}
    whole = execute(prepare(resolve_config(registry, TINY, layer), registry))
    calls = []
    with pytest.raises(TrainingInterrupted):
        execute(prepare(resolve_config(registry, TINY, layer), registry), checkpoint_dir=tmp_path,
                should_stop=lambda: calls.append(1) or len(calls) == TINY["pretrain_epochs"] + 2)
    from dscsc_core.training.checkpoint import Checkpoint

    resumed = execute(prepare(resolve_config(registry, TINY, layer), registry),
                      resume=Checkpoint.load(tmp_path / "checkpoint.pt"))
    assert [r.losses for r in resumed.history] == [r.losses for r in whole.history]
    assert (resumed.coef != whole.coef).nnz == 0


@pytest.mark.parametrize("layer, message", [
    ({"coef_support": 0, "stage2_batch_size": 10}, "needs C on a support of neighbours"),
    ({"coef_support": 30}, "must be smaller than the 30 samples"),
    ({"stage2_batch_size": 31}, "must be at most the 30 samples"),
    ({"clusterer": "dsc-post"}, "clusterer 'dsc-post' needs a dense C"),
    ({"objective": "dasc"}, "a training objective reads the dense C"),
    ({"pretrain_batch_size": 0}, "Stage I trains SCH over all samples at once"),
])
def test_what_the_scalable_path_cannot_do_is_refused_before_training(registry, layer, message):
    config = resolve_config(registry, TINY, layer)
    if layer.get("clusterer") == "dsc-post":
        config.params = {k: v for k, v in config.params.items() if not k.startswith("clusterer.")}
    with pytest.raises(ConfigError, match=message):
        prepare(config, registry)


# Where a full support and a full batch are eq. 1 exactly: no augmentation and no SCH draw anything per step.
PARITY = {**TINY, "augment": "none", "miner": "none", "beta": 0.0, "coef_init": "normal", "coef_diagonal": "zero",
          "pretrain_objective": "drh", "pretrain_batch_size": 0, "epochs": 6, "clusterer": "spectral",
          "params": {"subspaces": 3, "per_subspace": 10}}


def test_a_full_support_and_a_full_batch_learn_the_dense_paths_c():
    """k = N - 1 and B = N: the same start (the dense draw), the same loss, the same C after Stage II; only the
    order in which the batch's samples are summed differs (a shuffle), so the match is to float rounding."""
    from dscsc_core.plugin_api.registry import load_registry

    registry = load_registry()
    dense = execute(prepare(resolve_config(registry, PARITY, {"coef_support": 0}), registry))
    supported = execute(prepare(resolve_config(registry, PARITY, {"coef_support": 29, "stage2_batch_size": 30,
                                                                  "clusterer": "sparse-spectral",
                                                                  "params": {**PARITY["params"], "clusterer.k": 5}}),
                                      registry))
    assert sparse.issparse(supported.coef) and supported.coef.nnz == 30 * 29
    # Measured: at most 1.4e-9 apart, for entries up to 6.3e-3.
    np.testing.assert_allclose(supported.coef.toarray(), dense.coef, rtol=0, atol=1e-8)
    dense_sem = [r.losses["sem"] for r in dense.history if r.stage == "finetune"]
    supported_sem = [r.losses["sem"] for r in supported.history if r.stage == "finetune"]
    np.testing.assert_allclose(supported_sem, dense_sem, rtol=1e-6)


@pytest.mark.parametrize("miner", ["knn", "affinity"])
def test_one_batch_of_all_samples_trains_as_the_dense_path_with_augmentation_and_sch(miner):
    """One batch keeps the samples' order and draws nothing, so the augmentation draws, SCH's negatives (the
    affinity miner reads the batch's block of C, here all of C) and every step are the dense path's."""
    from dscsc_core.plugin_api.registry import load_registry

    registry = load_registry()
    full = {**PARITY, "augment": "geometric", "miner": miner, "beta": 1.0, "pretrain_objective": "drh+sch",
            "params": {**PARITY["params"], "miner.k": 3}}
    dense = execute(prepare(resolve_config(registry, full, {"coef_support": 0}), registry))
    supported = execute(prepare(resolve_config(registry, full, {
        "coef_support": 29, "stage2_batch_size": 30, "pretrain_batch_size": 30, "clusterer": "sparse-spectral",
        "params": {**full["params"], "clusterer.k": 5}}), registry))
    # Measured: 1.4e-9 apart with either miner, for entries up to 6.3e-3.
    np.testing.assert_allclose(supported.coef.toarray(), dense.coef, rtol=0, atol=1e-8)
    np.testing.assert_allclose([r.losses["sch"] for r in supported.history if r.stage == "finetune"],
                               [r.losses["sch"] for r in dense.history if r.stage == "finetune"], rtol=1e-5)


def test_a_coefficient_network_computes_c_on_the_support(registry):
    """SENet's way: C's values computed from the features by a query and a key network, not stored per sample."""
    layer = {"dataset": "synthetic", "device": "cpu", "pretrain_epochs": 2, "epochs": 3, "pretrain_objective": "drh",
             "coef_support": 6, "stage2_batch_size": 15, "clusterer": "sparse-spectral", "coef_model": "network",
             "params": {"dataset": {"subspaces": 3, "per_subspace": 10, "size": 8}, "clusterer": {"k": 5},
                        "miner": {"k": 3}}}
    result = execute(prepare(resolve_config(registry, layer), registry))
    assert sparse.issparse(result.coef) and result.coef.shape == (30, 30) and result.coef.diagonal().max() == 0
    assert result.coef.getnnz(axis=0).max() <= 6  # each sample expressed by its 6 neighbours at most
    sem = [r.losses["sem"] for r in result.history if r.stage == "finetune"]
    assert sem[-1] < sem[0]
    table = execute(prepare(resolve_config(registry, layer, {"coef_model": "table"}), registry))
    assert not np.allclose(table.coef.toarray(), result.coef.toarray())


def test_a_coefficient_network_needs_the_scalable_path(registry):
    layer = {"dataset": "synthetic", "device": "cpu", "pretrain_epochs": 1, "epochs": 1, "coef_model": "network",
             "params": {"dataset": {"subspaces": 3, "per_subspace": 10, "size": 8}}}
    with pytest.raises(ConfigError, match="coef_model' network computes C on a support.*coef_support"):
        execute(prepare(resolve_config(registry, layer), registry))
