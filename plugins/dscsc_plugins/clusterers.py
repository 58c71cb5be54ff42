"""Clusterers: from the coefficient matrix C to labels."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import laplacian
from scipy.sparse.linalg import ArpackError, svds
from sklearn.cluster import KMeans, SpectralClustering
from sklearn.cluster._spectral import cluster_qr, discretize
from sklearn.manifold import spectral_embedding
from sklearn.preprocessing import normalize

from dscsc_core import Clusterer, Clustering, DataError, Param, symmetric_affinity

_ASSIGN = Param("assign_labels", str, "discretize", "how spectral embedding becomes labels",
                choices=("kmeans", "discretize", "cluster_qr"))


# A graph whose weakest node is this much lighter than its typical node sends ARPACK's shift-invert
# iterations (scikit-learn's spectral embedding) into hours: such graphs get a dense decomposition.
_ILL_CONDITIONED = 1e-10


def spectral_labels(affinity: np.ndarray, n_clusters: int, seed: int, assign_labels: str,
                    normalize_rows: bool = False) -> np.ndarray:
    """scikit-learn's spectral clustering of ``affinity``; with ``normalize_rows``, each sample's
    embedding is scaled to unit length first (Ng, Jordan & Weiss), as SSC's reference code does."""
    degrees = affinity.sum(axis=1)
    floor = _ILL_CONDITIONED * np.median(degrees)
    if degrees.min() < floor:
        # A uniform link of that weight between all samples ties (nearly) isolated samples to the rest.
        embedding = _dense_spectral_embedding(affinity + floor / len(affinity), n_clusters)
    elif normalize_rows:
        embedding = spectral_embedding(affinity, n_components=n_clusters, random_state=seed, drop_first=False)
    else:
        model = SpectralClustering(
            n_clusters=n_clusters, affinity="precomputed", assign_labels=assign_labels, random_state=seed
        )
        with warnings.catch_warnings():
            # A graph that is not fully connected is a property of the data, reported by the metrics.
            warnings.filterwarnings("ignore", message="Graph is not fully connected")
            return model.fit_predict(affinity)
    return _assigned(normalize(embedding) if normalize_rows else embedding, n_clusters, seed, assign_labels)


def _dense_spectral_embedding(affinity: np.ndarray, n_clusters: int) -> np.ndarray:
    """scikit-learn's normalised spectral embedding, computed by a dense eigendecomposition."""
    lap, degree_roots = laplacian(affinity, normed=True, return_diag=True)
    np.fill_diagonal(lap, 1.0)
    _, vectors = np.linalg.eigh(lap)
    embedding = vectors[:, :n_clusters] / np.where(degree_roots > 0, degree_roots, 1.0)[:, None]
    # The sign of each eigenvector is arbitrary: make its largest entry positive, as scikit-learn does.
    peaks = embedding[np.abs(embedding).argmax(axis=0), np.arange(n_clusters)]
    return embedding * np.where(peaks < 0, -1.0, 1.0)


def _assigned(embedding: np.ndarray, n_clusters: int, seed: int, assign_labels: str) -> np.ndarray:
    """Labels from a spectral embedding, as scikit-learn's SpectralClustering assigns them."""
    if assign_labels == "kmeans":
        return KMeans(n_clusters, random_state=seed, n_init=10).fit_predict(embedding)
    if assign_labels == "cluster_qr":
        return cluster_qr(embedding)
    return discretize(embedding, random_state=seed)


_NORMALIZE_ROWS = Param("normalize_rows", bool, False,
                        "scale each sample's spectral embedding to unit length before assigning labels "
                        "(Ng-Jordan-Weiss, as SSC's and SSC-OMP's reference code); off: scikit-learn's "
                        "SpectralClustering, as DSC-Net")


class SpectralClusterer(Clusterer):
    name = "spectral"
    summary = "spectral clustering on A = (|C| + |C|^T)/2, as the paper describes (seeded)"
    params = (_ASSIGN, _NORMALIZE_ROWS)

    def cluster(self, coef, n_clusters, seed):
        affinity = symmetric_affinity(coef)
        return Clustering(spectral_labels(affinity, n_clusters, seed, self.assign_labels, self.normalize_rows),
                          affinity)


def keep_dominant_coefficients(coef: np.ndarray, ratio: float) -> np.ndarray:
    """Per column, keep the largest-|C| entries until their |C| sum exceeds ``ratio`` of the column's L1 norm."""
    if ratio >= 1:
        return coef.copy()
    magnitude = np.abs(coef)
    order = np.argsort(-magnitude, axis=0, kind="stable")
    ranked = np.take_along_axis(magnitude, order, axis=0)
    mass_before = np.cumsum(ranked, axis=0) - ranked
    keep_ranked = mass_before <= ratio * ranked.sum(axis=0, keepdims=True)
    keep = np.zeros_like(keep_ranked)
    np.put_along_axis(keep, order, keep_ranked, axis=0)
    return np.where(keep, coef, 0.0)


def _leading_singular_pairs(symmetric: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``rank`` leading singular vectors and values, by ARPACK from DSC-Net's all-ones start;
    when that start lies in the null space (ARPACK refuses it), by a dense decomposition."""
    try:
        u, s, _ = svds(symmetric, k=rank, v0=np.ones(symmetric.shape[0]))
        return u, s
    except ArpackError:
        u, s, _ = np.linalg.svd(symmetric)
        return u[:, :rank], s[:rank]


def dsc_post_affinity(coef: np.ndarray, n_clusters: int, ratio: float, dim: int, power: float,
                      threshold_along: str = "rows") -> np.ndarray:
    """DSC-Net's post-processing of C into an affinity (method-facts §2, steps 1-4).

    ``threshold_along`` "rows" keeps the dominant entries of each row of C (in the paper's
    convention, where column i expresses sample i). That is what DSC-Net's code does: it stores C
    transposed (row i expresses sample i) and thresholds its columns. "columns" thresholds the
    coefficients that express each sample, as SSC's original post-processing does.
    """
    if threshold_along == "rows":
        kept = keep_dominant_coefficients(coef.T, ratio).T
    else:
        kept = keep_dominant_coefficients(coef, ratio)
    symmetric = 0.5 * (kept + kept.T)
    rank = int(min(dim * n_clusters + 1, symmetric.shape[0] - 1))
    if not symmetric.any():
        raise DataError("dsc-post got a coefficient matrix with no non-zero entry: nothing ties any two samples")
    u, s = _leading_singular_pairs(symmetric, rank)
    order = np.argsort(-s)
    embedding = normalize(u[:, order] * np.sqrt(s[order]), norm="l2", axis=1)
    affinity = np.clip(embedding @ embedding.T, 0.0, None) ** power
    peak = affinity.max()
    affinity = affinity / peak if peak > 0 else affinity
    return 0.5 * (affinity + affinity.T)


class DscPostClusterer(Clusterer):
    name = "dsc-post"
    summary = "DSC-Net post-processing: per-column thresholding, rank-(dK+1) SVD, powered affinity, spectral"
    params = (
        Param("ratio", float, 0.2, "share of each column's L1 mass kept (thr ratio)", min=0, max=1),
        Param("dim", int, 4, "subspace dimension d; the SVD keeps d*K+1 components", min=1),
        Param("power", float, 3.5, "exponent applied to the affinity", min=0),
        Param("threshold_along", str, "rows",
              "keep each row's (DSC-Net's code) or each column's (SSC's) dominant coefficients of C",
              choices=("rows", "columns")),
        _ASSIGN,
    )

    @property
    def subspace_dim(self) -> int:
        return self.dim

    def cluster(self, coef, n_clusters, seed):
        affinity = dsc_post_affinity(coef, n_clusters, self.ratio, self.dim, self.power, self.threshold_along)
        return Clustering(spectral_labels(affinity, n_clusters, seed, self.assign_labels), affinity)


# Rows of a dense C turned into top-k links at a time: bounds the working memory to this many rows x N.
_ROW_BLOCK = 2048


def strongest_links(coef: np.ndarray | sparse.spmatrix, k: int) -> sparse.csr_matrix:
    """The ``k`` largest |C_ij| of each row i (ties: the lower j), as a CSR matrix; never an N x N dense array
    beyond a block of rows. A sparse C with fewer than ``k`` entries in a row keeps them all."""
    n = coef.shape[0]
    k = min(k, n - 1)
    if sparse.issparse(coef):
        return _strongest_sparse(abs(sparse.csr_matrix(coef)), k)
    rows, cols, values = [], [], []
    for start in range(0, n, _ROW_BLOCK):
        block = np.abs(coef[start:start + _ROW_BLOCK])
        block[np.arange(block.shape[0]), np.arange(start, start + block.shape[0])] = 0.0  # no self-links
        top = np.argpartition(-block, k - 1, axis=1)[:, :k]
        rows.append(np.repeat(np.arange(start, start + block.shape[0]), k))
        cols.append(top.ravel())
        values.append(np.take_along_axis(block, top, axis=1).ravel())
    links = sparse.csr_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    links.eliminate_zeros()
    return links


def _strongest_sparse(magnitude: sparse.csr_matrix, k: int) -> sparse.csr_matrix:
    magnitude.setdiag(0.0)
    magnitude.eliminate_zeros()
    counts = np.diff(magnitude.indptr)
    if counts.max(initial=0) <= k:
        return magnitude
    # Rank each row's entries by value in one sort over all rows: row, then -value.
    row_of = np.repeat(np.arange(magnitude.shape[0]), counts)
    order = np.lexsort((-magnitude.data, row_of))
    rank = np.arange(len(order)) - np.repeat(magnitude.indptr[:-1], counts)
    keep = order[rank < k]
    return sparse.csr_matrix((magnitude.data[keep], (row_of[keep], magnitude.indices[keep])), shape=magnitude.shape)


def sparse_symmetric_affinity(coef: np.ndarray | sparse.spmatrix, k: int) -> sparse.csr_matrix:
    """A = (L + Lᵀ) / 2 over L, the k strongest links of each sample: the paper's (|C| + |C|ᵀ)/2, sparse."""
    links = strongest_links(coef, k)
    return ((links + links.T) * 0.5).tocsr()


class SparseSpectralClusterer(Clusterer):
    name = "sparse-spectral"
    summary = ("spectral clustering on each sample's k strongest links of (|C| + |C|^T)/2, kept sparse (CSR), "
               "with a sparse eigensolver: for C too large to hold dense")
    params = (
        Param("k", int, 30, "links kept per sample (the largest |C_ij| of each row)", min=1),
        # lobpcg by measurement (docs/benchmarks.md, "Sparse spectral clustering"): equal ACC, and at N = 100,000
        # 4.6 s against arpack's 155 s (scikit-learn's arpack path factorises the Laplacian for shift-invert).
        Param("eigen_solver", str, "lobpcg",
              "eigensolver of the normalised Laplacian: lobpcg, or arpack (scipy's eigsh, shift-invert)",
              choices=("lobpcg", "arpack")),
        _ASSIGN,
        _NORMALIZE_ROWS,
        Param("n_components", int, 0,
              "eigenvectors in the spectral embedding (0: one per cluster, K); more than K keep sub-structure "
              "that K of them mix, as scikit-learn's SpectralClustering n_components", min=0),
    )
    accepts_sparse = True

    def check_context(self, context):
        if self.k >= context.n_samples:
            raise DataError(f"clusterer '{self.name}' parameter 'k' must be smaller than N = {context.n_samples} "
                            f"(each sample links to at most N-1 others); got {self.k}")
        if self.n_components >= context.n_samples:
            raise DataError(f"clusterer '{self.name}' parameter 'n_components' must be smaller than N = "
                            f"{context.n_samples}; got {self.n_components}")
        if self.n_components not in (0, context.n_clusters) and self.assign_labels != "kmeans":
            raise DataError(f"clusterer '{self.name}': n_components {self.n_components} differs from the "
                            f"{context.n_clusters} clusters, which only assign_labels 'kmeans' can label; "
                            f"got '{self.assign_labels}'")

    def cluster(self, coef, n_clusters, seed):
        affinity = sparse_symmetric_affinity(coef, self.k)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Graph is not fully connected")
            embedding = spectral_embedding(affinity, n_components=self.n_components or n_clusters,
                                           eigen_solver=self.eigen_solver,
                                           random_state=seed, drop_first=False)
        if self.normalize_rows:
            embedding = normalize(embedding)
        return Clustering(_assigned(embedding, n_clusters, seed, self.assign_labels), affinity)
