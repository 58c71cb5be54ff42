"""Clustering metrics: accuracy under the best label matching, NMI and ARI."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

# The scores of a clustering against the truth, in the order every table and file shows them.
SCORES = ("acc", "nmi", "ari")


def clustering_accuracy(truth: np.ndarray, predicted: np.ndarray) -> float:
    """ACC: the fraction of samples correct after the best one-to-one matching of labels (Hungarian)."""
    truth = np.asarray(truth).ravel()
    predicted = np.asarray(predicted).ravel()
    _, truth_idx = np.unique(truth, return_inverse=True)
    _, pred_idx = np.unique(predicted, return_inverse=True)
    counts = np.zeros((pred_idx.max() + 1, truth_idx.max() + 1), dtype=np.int64)
    np.add.at(counts, (pred_idx, truth_idx), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / truth.size)


def clustering_scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    return {
        "acc": clustering_accuracy(truth, predicted),
        "nmi": float(normalized_mutual_info_score(truth, predicted)),
        "ari": float(adjusted_rand_score(truth, predicted)),
    }
