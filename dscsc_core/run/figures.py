"""Pictures of a run: the block-diagonal affinity, loss curves, clusters as image galleries, the
confusion matrix and a t-SNE map of the features. PNG files through matplotlib's Agg backend, so
they render on headless machines.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy import sparse

from dscsc_core.files import atomic_write
from dscsc_core.metrics import SCORES, clustering_accuracy

FIGURES = ("affinity.png", "losses.png", "gallery.png", "confusion.png", "tsne.png")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # headless: no display needed
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: Path) -> Path:
    atomic_write(path, lambda out: figure.savefig(out, format="png", dpi=110, bbox_inches="tight"))
    _pyplot().close(figure)
    return path


# An affinity picture has one pixel per pair: beyond this many samples it shows a seeded sample of them.
MAX_PICTURED = 2000


def affinity_figure(affinity, predicted: np.ndarray, truth: np.ndarray | None, path: Path) -> Path:
    """The affinity (dense, or scipy.sparse) with samples ordered by predicted cluster (and by true class when
    known); of a large one, a seeded sample of ``MAX_PICTURED`` samples, as the title says."""
    plt = _pyplot()
    n = affinity.shape[0]
    kept = np.sort(np.random.default_rng(0).choice(n, MAX_PICTURED, replace=False)) if n > MAX_PICTURED else None
    sampled = "" if kept is None else f", {MAX_PICTURED} of {n} samples"
    if kept is not None:
        affinity, predicted = affinity[kept][:, kept], predicted[kept]
        truth = truth[kept] if truth is not None else None
    affinity = affinity.toarray() if sparse.issparse(affinity) else affinity
    orders = [(f"ordered by predicted cluster{sampled}", np.argsort(predicted, kind="stable"))]
    if truth is not None:
        orders.append((f"ordered by true class{sampled}", np.argsort(truth, kind="stable")))
    figure, axes = plt.subplots(1, len(orders), figsize=(4.2 * len(orders), 4), squeeze=False)
    shown = np.abs(affinity)
    np.fill_diagonal(shown, 0.0)  # self-affinity carries no information and would dominate the colour scale
    ceiling = np.quantile(shown, 0.995) or shown.max() or 1.0  # a few huge entries would hide the blocks
    for axis, (title, order) in zip(axes[0], orders, strict=True):
        axis.imshow(shown[np.ix_(order, order)], cmap="viridis", vmin=0, vmax=ceiling, interpolation="nearest")
        axis.set_title(f"affinity, {title}", fontsize=9)
        axis.set_xticks([])
        axis.set_yticks([])
    return _save(figure, path)


def loss_figure(rows: list[dict[str, str]], path: Path) -> Path:
    """Each loss term over the epochs of both stages, plus ACC/NMI where they were evaluated."""
    plt = _pyplot()
    # metrics.csv's columns in its order (Algorithm 1's terms, an objective's, the total; sch_share where measured).
    columns = [name for name in rows[0] if name not in ("stage", "epoch", *SCORES)] if rows else []
    terms = [name for name in columns if any(r.get(name) for r in rows)]
    scored = any(r.get("acc") for r in rows)
    figure, axes = plt.subplots(1, len(terms) + scored, figsize=(3.2 * (len(terms) + scored), 2.8), squeeze=False)
    step = np.arange(1, len(rows) + 1)
    stage_two = next((i for i, r in enumerate(rows) if r["stage"] == "finetune"), None)
    for axis, term in zip(axes[0], terms, strict=False):
        values = np.array([float(r[term]) if r.get(term) else np.nan for r in rows])
        axis.plot(step, values, linewidth=1)
        axis.set_title(term, fontsize=9)
        if np.nanmin(values) > 0:
            axis.set_yscale("log")
        if stage_two is not None:
            axis.axvline(stage_two + 1, color="grey", linestyle=":", linewidth=1)
        axis.set_xlabel("step (Stage I, then II)", fontsize=8)
    if scored:
        axis = axes[0][-1]
        points = [(i + 1, float(r["acc"]), float(r["nmi"])) for i, r in enumerate(rows) if r.get("acc")]
        axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", label="ACC")
        axis.plot([p[0] for p in points], [p[2] for p in points], marker="s", label="NMI")
        axis.set_ylim(0, 1)
        axis.set_title("scores of the current C", fontsize=9)
        axis.legend(fontsize=7)
    figure.tight_layout()
    return _save(figure, path)


def gallery_figure(images: torch.Tensor, predicted: np.ndarray, path: Path, per_cluster: int = 10,
                   max_clusters: int = 40) -> Path:
    """One row of sample images per predicted cluster (torchvision's make_grid)."""
    from torchvision.utils import make_grid

    plt = _pyplot()
    clusters = np.unique(predicted)[:max_clusters]
    rows = []
    for cluster in clusters:
        members = np.flatnonzero(predicted == cluster)[:per_cluster]
        row = images[members].float()
        if len(members) < per_cluster:  # pad short clusters so every row has the same width
            row = torch.cat([row, torch.zeros(per_cluster - len(members), *images.shape[1:])])
        rows.append(row)
    batch = torch.cat(rows)
    low, high = batch.min(), batch.max()
    grid = make_grid((batch - low) / (high - low + 1e-12), nrow=per_cluster, padding=1, pad_value=1.0)
    figure = plt.figure(figsize=(per_cluster * 0.6, len(clusters) * 0.6 + 0.4))
    plt.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
    plt.axis("off")
    plt.title(f"{per_cluster} samples of each predicted cluster (one row per cluster)", fontsize=8)
    return _save(figure, path)


def matched_confusion(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Confusion matrix (true class x predicted cluster) with clusters reordered by the best matching."""
    from scipy.optimize import linear_sum_assignment

    classes, truth_index = np.unique(truth, return_inverse=True)
    clusters, predicted_index = np.unique(predicted, return_inverse=True)
    counts = np.zeros((len(classes), len(clusters)), dtype=np.int64)
    np.add.at(counts, (truth_index, predicted_index), 1)
    _, columns = linear_sum_assignment(counts, maximize=True)
    rest = [c for c in range(len(clusters)) if c not in set(columns)]
    return counts[:, [*columns, *rest]]


def confusion_figure(truth: np.ndarray, predicted: np.ndarray, path: Path) -> Path:
    plt = _pyplot()
    counts = matched_confusion(truth, predicted)
    size = min(2 + 0.18 * counts.shape[0], 9)
    figure, axis = plt.subplots(figsize=(size, size))
    axis.imshow(counts, cmap="Blues", interpolation="nearest")
    if counts.shape[0] <= 20:
        for (i, j), value in np.ndenumerate(counts):
            if value:
                axis.text(j, i, str(value), ha="center", va="center", fontsize=6)
    axis.set_xlabel("predicted cluster (matched order)")
    axis.set_ylabel("true class")
    axis.set_title(f"confusion, ACC {clustering_accuracy(truth, predicted):.3f}", fontsize=9)
    return _save(figure, path)


def tsne_figure(embedding: np.ndarray, predicted: np.ndarray, path: Path, seed: int = 0) -> Path:
    """A 2-D t-SNE map of the encoder features, coloured by predicted cluster."""
    from sklearn.manifold import TSNE

    plt = _pyplot()
    n = embedding.shape[0]
    points = TSNE(2, perplexity=float(min(30, max(2, (n - 1) // 3))), random_state=seed, init="pca").fit_transform(
        embedding.astype(np.float32))
    figure, axis = plt.subplots(figsize=(4.5, 4.5))
    axis.scatter(points[:, 0], points[:, 1], c=predicted, cmap="tab20", s=6)
    axis.set_xticks([])
    axis.set_yticks([])
    axis.set_title("t-SNE of the encoder features, by predicted cluster", fontsize=9)
    return _save(figure, path)
