"""Contract checks for plugin authors, in the spirit of scikit-learn's ``check_estimator``.

Call them from your own tests with your component class (or an instance)::

    from dscsc_core.testing import check_miner

    def test_my_miner():
        check_miner(MyMiner)            # defaults
        check_miner(MyMiner(q=0.3))     # or a configured instance

Each check exercises the public contract the trainer relies on, with small random inputs, and
raises ``AssertionError`` naming the broken rule. The built-ins pass every check. The tensor checks
run on the CPU unless given ``device`` (``check_miner(MyMiner, device="cuda")``): a run trains on
its device, so a component must keep its outputs there.
"""

from __future__ import annotations

import numpy as np
import torch

from dscsc_core.plugin_api.interfaces import (
    AugmentationPolicy,
    Clusterer,
    DatasetSource,
    Encoder,
    NegativeMiner,
    SelfExpressionRegularizer,
    StageTwoStep,
    TrainingObjective,
)
from dscsc_core.plugin_api.params import Component, RunContext

__all__ = ["check_augmentation", "check_clusterer", "check_component", "check_dataset", "check_encoder",
           "check_miner", "check_objective", "check_regularizer"]


def _instance(component: Component | type[Component], base: type[Component]) -> Component:
    instance = component() if isinstance(component, type) else component
    assert isinstance(instance, base), f"{type(instance).__name__} is not a {base.__name__}"
    return instance


def check_component(component: Component | type[Component]) -> None:
    """Name, summary and parameters are declared so the registry, CLI and docs can show them."""
    cls = component if isinstance(component, type) else type(component)
    assert cls.name and cls.name == cls.name.strip() and " " not in cls.name, f"{cls.__name__} needs a one-word name"
    assert cls.summary, f"{cls.__name__} ({cls.name}) needs a one-line summary"
    names = [p.name for p in cls.params]
    assert len(names) == len(set(names)), f"{cls.name} declares a parameter twice: {names}"
    for param in cls.params:
        assert param.help, f"{cls.name}: parameter '{param.name}' needs help text"
        if param.default is not None:
            assert param.parse(param.default) == param.default, f"{cls.name}: default of '{param.name}' is invalid"
    instance = cls() if isinstance(component, type) else component
    assert set(instance.config) == set(names), f"{cls.name}: config must hold every declared parameter"


def _random(*shape: int, seed: int, device: str | torch.device) -> torch.Tensor:
    """Seeded on the CPU, then moved: the same numbers on every device."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(device)


def check_miner(miner: NegativeMiner | type[NegativeMiner], device: str | torch.device = "cpu") -> None:
    """A boolean N x N mask on the features' device, never an anchor as its own negative, no gradient,
    deterministic, z-only or z+C."""
    miner = _instance(miner, NegativeMiner)
    check_component(miner)
    z = _random(24, 6, seed=0, device=device).requires_grad_()
    # What a run tells a component before training (a miner may size its neighbourhoods by the classes).
    miner.check_context(RunContext(n_samples=z.shape[0], n_clusters=4, input_shape=(1, 1, 6)))
    coef = _random(z.shape[0], z.shape[0], seed=1, device=device) * 0.01
    for args in ((z,), (z, coef)):
        mask = miner(*args)
        assert mask.dtype == torch.bool and tuple(mask.shape) == (z.shape[0],) * 2, f"{miner.name}: bad mask"
        assert not mask.diagonal().any(), f"{miner.name}: an anchor is its own negative"
        assert not mask.requires_grad, f"{miner.name}: the mask must not carry gradients"
        assert torch.equal(mask, miner(*args)), f"{miner.name}: same input, different negatives"
    assert z.grad is None, f"{miner.name}: mining must not backpropagate into the features"


def check_encoder(encoder: Encoder | type[Encoder], input_shape: tuple[int, int, int] = (1, 28, 28),
                  device: str | torch.device = "cpu") -> None:
    """Encoder -> N x latent_dim, decoder -> exactly the input shape, gradients reach every weight."""
    encoder = _instance(encoder, Encoder)
    check_component(encoder)
    parts = encoder.build(input_shape)
    parts.encoder.to(device)
    parts.decoder.to(device)
    images = torch.rand(4, *input_shape, generator=torch.Generator().manual_seed(0)).to(device)
    z = parts.encoder(images)
    assert tuple(z.shape) == (4, parts.latent_dim), f"{encoder.name}: features {tuple(z.shape)}, expected (4, latent)"
    decoded = parts.decoder(z)
    assert decoded.shape == images.shape, f"{encoder.name}: decoder gives {tuple(decoded.shape)} for {input_shape}"
    (decoded - images).pow(2).sum().backward()
    params = [*parts.encoder.parameters(), *parts.decoder.parameters()]
    assert params, f"{encoder.name}: nothing to train"
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in params), f"{encoder.name}: no gradient flows"


def check_augmentation(policy: AugmentationPolicy | type[AugmentationPolicy],
                       device: str | torch.device = "cpu") -> None:
    """Same shape, dtype and device; fresh per-sample randomness; finite values."""
    policy = _instance(policy, AugmentationPolicy)
    check_component(policy)
    images = torch.rand(8, 1, 16, 16, generator=torch.Generator().manual_seed(0)).to(device)
    torch.manual_seed(0)
    view = policy(images)
    assert view.shape == images.shape and view.dtype == images.dtype, f"{policy.name}: shape or dtype changed"
    assert torch.isfinite(view).all(), f"{policy.name}: produced NaN or Inf"
    if not torch.equal(view, images):  # a random policy: every call must draw fresh parameters
        assert not torch.equal(view, policy(images)), f"{policy.name}: two calls gave the same view"


def check_regularizer(regularizer: SelfExpressionRegularizer | type[SelfExpressionRegularizer],
                      device: str | torch.device = "cpu") -> None:
    """A finite, non-negative scalar on C's device, zero at C = 0, differentiable in C."""
    regularizer = _instance(regularizer, SelfExpressionRegularizer)
    check_component(regularizer)
    coef = (_random(10, 10, seed=0, device=device) * 0.1).requires_grad_()
    value = regularizer(coef)
    assert value.ndim == 0 and torch.isfinite(value), f"{regularizer.name}: not a finite scalar"
    assert value.item() >= 0, f"{regularizer.name}: a penalty must not be negative"
    value.backward()
    assert coef.grad is not None and torch.isfinite(coef.grad).all(), f"{regularizer.name}: no usable gradient"
    assert abs(regularizer(torch.zeros(10, 10, device=device)).item()) < 1e-12, f"{regularizer.name}: R(0) must be 0"


def check_objective(objective: TrainingObjective | type[TrainingObjective], device: str | torch.device = "cpu") -> None:
    """Declared terms only, finite scalars on the features' device, a gradient into the features or C from
    every weighted term it returns, the same terms from the same state, and a state that a checkpoint can
    carry back (``state_dict`` / ``load_state_dict``)."""
    objective = _instance(objective, TrainingObjective)
    check_component(objective)
    names = [term.name for term in objective.terms]
    assert names and len(names) == len(set(names)), f"{objective.name}: declare each term once"
    for term in objective.terms:
        assert term.meaning and term.fed_by, f"{objective.name}: term '{term.name}' needs its meaning and settings"
        if term.weight is not None:
            assert term.weight in objective.config, f"{objective.name}: '{term.name}' is weighed by an undeclared " \
                                                    f"parameter '{term.weight}'"
    n, k, dim = 24, 3, 6
    torch.manual_seed(0)
    modules = objective.setup(dim, n, k, torch.device(device), 1e-3)
    assert all(isinstance(module, torch.nn.Module) for module in modules), f"{objective.name}: setup returns modules"
    saved = objective.state_dict()
    labels = torch.arange(n, device=device) % k

    def step() -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        features = _random(n, dim, seed=0, device=device).abs().requires_grad_()
        coef = (_random(n, n, seed=1, device=device) * 0.01).requires_grad_()
        every = objective.relabel_every
        terms = objective(StageTwoStep(1, features, coef, labels if every > 0 else None, every > 0))
        return terms, features, coef

    torch.manual_seed(1)
    terms, features, coef = step()
    assert set(terms) <= set(names), f"{objective.name}: undeclared terms {sorted(set(terms) - set(names))}"
    weighted = [term.name for term in objective.terms if term.weight is not None and term.name in terms]
    for name in weighted:
        value = terms[name]
        assert torch.isfinite(value), f"{objective.name}: term '{name}' is not finite"
        reaches = value.requires_grad and any(g is not None for g in torch.autograd.grad(
            value, [features, coef], allow_unused=True, retain_graph=True))
        assert reaches, f"{objective.name}: term '{name}' reaches neither z nor C"
    objective.load_state_dict(saved)
    for module, state in zip(modules, [m.state_dict() for m in modules], strict=True):
        module.load_state_dict(state)
    torch.manual_seed(1)
    again, _, _ = step()
    assert set(again) == set(terms), f"{objective.name}: the same state gave other terms"
    assert all(torch.allclose(again[name], terms[name]) for name in terms), \
        f"{objective.name}: restoring its state_dict did not restore what it computes"


def _block_coefficients(sizes=(20, 20, 20), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(sizes)), sizes)
    same = labels[:, None] == labels[None, :]
    coef = np.where(same, rng.uniform(0.5, 1.0, same.shape), rng.uniform(0.0, 0.01, same.shape))
    np.fill_diagonal(coef, 0.0)
    return coef, labels


def check_clusterer(clusterer: Clusterer | type[Clusterer]) -> None:
    """N labels in 0..K-1, an N x N affinity, seeded determinism, and clean blocks recovered."""
    from dscsc_core.metrics import clustering_accuracy

    clusterer = _instance(clusterer, Clusterer)
    check_component(clusterer)
    coef, truth = _block_coefficients()
    result = clusterer.fit_predict(coef, 3, seed=0)
    assert result.labels.shape == truth.shape, f"{clusterer.name}: one label per sample"
    assert set(np.unique(result.labels)) <= {0, 1, 2}, f"{clusterer.name}: labels outside 0..K-1"
    assert result.affinity.shape == coef.shape, f"{clusterer.name}: the affinity must be N x N"
    again = clusterer.fit_predict(coef, 3, seed=0)
    assert np.array_equal(result.labels, again.labels), f"{clusterer.name}: same seed, different labels"
    assert clustering_accuracy(truth, result.labels) == 1.0, f"{clusterer.name}: missed three clean blocks"


def check_dataset(source: DatasetSource | type[DatasetSource], data_root=None) -> None:
    """N x C x H x W finite float images, labels 0..K-1 of the right length when present."""
    source = _instance(source, DatasetSource)
    check_component(source)
    data = source.load(data_root)
    assert data.images.ndim == 4 and data.images.dtype == torch.float32, f"{source.name}: images must be N x C x H x W"
    if data.labels is not None:
        assert len(data.labels) == data.images.shape[0], f"{source.name}: one label per image"
        assert set(np.unique(data.labels)) == set(range(data.n_clusters)), f"{source.name}: labels must be 0..K-1"
