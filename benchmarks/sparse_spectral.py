"""Spectral clustering on a sparse affinity at scale: which eigensolver, how long, how much memory.

Usage:
    python benchmarks/sparse_spectral.py [--sizes 10000,30000,100000] [--subspaces 10] [--k 10]
                                         [--solvers arpack,lobpcg] [--threads 2]

For each N: N points on a union of ``--subspaces`` random 5-dimensional subspaces of R^64 (unit norm, seeded),
each point's k nearest neighbours by |cosine| as its row of a sparse C (what the scalable path keeps of C),
then the ``sparse-spectral`` clusterer with each eigensolver through its public ``fit_predict``. Prints seconds
(neighbour graph, then clustering), ACC against the subspace labels, and the process's peak resident memory so
far. Nothing here holds an N x N matrix.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import resource
import time

import numpy as np
from scipy import sparse
from sklearn.neighbors import NearestNeighbors

from dscsc_core.metrics import clustering_accuracy
from dscsc_core.plugin_api.registry import load_registry
from dscsc_core.run.threads import use_cpu_threads


def union_of_subspaces(n: int, subspaces: int, dim: int = 5, ambient: int = 64, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % subspaces
    bases = np.stack([np.linalg.qr(rng.normal(size=(ambient, dim)))[0] for _ in range(subspaces)])
    points = np.einsum("nad,nd->na", bases[labels], rng.normal(size=(n, dim))).astype(np.float32)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    return points, labels


def knn_coefficients(points: np.ndarray, k: int) -> sparse.csr_matrix:
    """Row i: |cosine| to its k nearest neighbours (itself excluded), as a CSR matrix."""
    signed = np.concatenate([points, -points])  # |cosine| neighbours: a point and its mirror are one direction
    finder = NearestNeighbors(n_neighbors=k + 1, metric="euclidean").fit(signed)
    distances, index = finder.kneighbors(points)
    n = len(points)
    index, cosine = index % n, 1.0 - distances ** 2 / 2.0
    rows = np.repeat(np.arange(n), k + 1)
    coef = sparse.csr_matrix((np.abs(cosine).ravel(), (rows, index.ravel())), shape=(n, n))
    coef.setdiag(0.0)
    coef.eliminate_zeros()
    return coef


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,30000,100000")
    parser.add_argument("--subspaces", type=int, default=10)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--solvers", default="arpack,lobpcg")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    use_cpu_threads(args.threads)
    registry = load_registry()
    print(f"{datetime.date.today()}, {platform.machine()}, {args.threads} threads; "
          f"command: python benchmarks/sparse_spectral.py --sizes {args.sizes} --subspaces {args.subspaces} "
          f"--k {args.k} --solvers {args.solvers} --threads {args.threads}\n")
    print("| N | eigensolver | kNN graph s | clustering s | ACC % | peak RSS GiB |")
    print("|---|---|---|---|---|---|")
    for n in (int(size) for size in args.sizes.split(",")):
        points, labels = union_of_subspaces(n, args.subspaces)
        start = time.perf_counter()
        coef = knn_coefficients(points, args.k)
        graph_s = time.perf_counter() - start
        for solver in args.solvers.split(","):
            clusterer = registry.create("clusterer", "sparse-spectral", k=args.k, eigen_solver=solver,
                                        assign_labels="kmeans")
            start = time.perf_counter()
            predicted = clusterer.fit_predict(coef, args.subspaces, seed=0).labels
            seconds = time.perf_counter() - start
            acc = 100 * clustering_accuracy(labels, predicted)
            print(f"| {n} | {solver} | {graph_s:.1f} | {seconds:.1f} | {acc:.2f} | {peak_rss_gib():.2f} |", flush=True)


if __name__ == "__main__":
    main()
