"""Shallow self-expression solvers: C straight from the data matrix (the baselines of Tables 2-3).

Every solver works on all N columns of C at once: one factorisation of the N x N Gram (or kernel)
matrix, then matrix products per iteration (ADMM, ALM) or a closed form, never a Python loop over
samples. Data come one sample per row (N x D); C follows the trainer's convention, column i
expressing sample i (x_i ≈ Σ_j C[j, i] x_j), with a zero diagonal where the method asks for one.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics.pairwise import polynomial_kernel, rbf_kernel

from dscsc_core import ConfigError, Param, SelfExpressionSolver

NORMALIZE = Param("normalize", bool, True, "scale every sample to unit length first (the methods' reference codes do)")
ITERATIONS = Param("iterations", int, 200, "most ADMM / ALM iterations", min=1, max=100_000)
TOLERANCE = Param("tol", float, 1e-4, "stop when the constraint violation falls below this (max entry)", min=0)


def _unit_rows(data: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(data, axis=1, keepdims=True)
    return data / np.where(norms > 0, norms, 1.0)


def _prepared(solver: SelfExpressionSolver, data: np.ndarray) -> np.ndarray:
    return _unit_rows(data) if solver.normalize else data


def _linear_gram(solver: SelfExpressionSolver, data: np.ndarray) -> np.ndarray:
    x = _prepared(solver, data)
    return x @ x.T


def _soft_threshold(values: np.ndarray, threshold: float) -> np.ndarray:
    return np.sign(values) * np.maximum(np.abs(values) - threshold, 0.0)


def _coherence_scale(gram: np.ndarray) -> float:
    """min_i max_{j≠i} |<x_i, x_j>|: SSC's λ = alpha / this makes alpha free of the data's scale
    (below 1/this every coefficient of the Lasso is zero; Elhamifar & Vidal 2013, §5)."""
    off = np.abs(gram - np.diag(np.diag(gram)))
    peaks = off.max(axis=0)
    peaks = peaks[peaks > 0]  # an all-zero sample (a corrupted image) bounds nothing
    return float(peaks.min()) if peaks.size else 1.0


def sparse_admm(gram: np.ndarray, fit_scale: float, l1: float, l2: float, iterations: int, tol: float) -> np.ndarray:
    """min_C l1·|C|_1 + l2/2·‖C‖²_F + fit/2·‖X − XC‖²_F with diag(C) = 0, by ADMM on all columns at
    once (the data enter only through ``gram`` = X Xᵀ, or a kernel matrix); fit = ``fit_scale`` over
    the coherence bound of ``gram``, as SSC's code sets it.

    Split C = J: the J-step is one product with (fit·G + ρI)⁻¹ (factored once), the C-step the
    elastic-net shrinkage of J + Λ/ρ, the diagonal zeroed.
    """
    n = gram.shape[0]
    fit_weight = fit_scale / _coherence_scale(gram)
    # ρ on the scale of fit·G (fit·mean‖x_i‖²), so the splitting converges alike for any data scale.
    rho = fit_weight * max(float(np.mean(np.diag(gram))), np.finfo(float).tiny)
    inverse = np.linalg.inv(fit_weight * gram + rho * np.eye(n))
    data_part = inverse @ (fit_weight * gram)
    coef = np.zeros((n, n))
    multiplier = np.zeros((n, n))
    for _ in range(iterations):
        aux = data_part + inverse @ (rho * coef - multiplier)
        coef = _soft_threshold(aux + multiplier / rho, l1 / rho) / (1.0 + l2 / rho)
        np.fill_diagonal(coef, 0.0)
        gap = aux - coef
        multiplier += rho * gap
        if np.abs(gap).max() <= tol:
            break
    return coef


class SparseSubspaceClustering(SelfExpressionSolver):
    name = "ssc"
    summary = ("SSC (Elhamifar & Vidal 2013): l1 self-expression with a noise term, by ADMM on all columns; "
               "AE+SSC with --solver-input features")
    params = (
        Param("fit_alpha", float, 20.0,
              "SSC's alpha: fit weight lambda = alpha / mu, mu the coherence bound (SSC's code: 20)",
              min=1e-6),
        NORMALIZE, ITERATIONS, TOLERANCE,
    )

    def coefficients(self, data: np.ndarray) -> np.ndarray:
        return sparse_admm(_linear_gram(self, data), self.fit_alpha, 1.0, 0.0, self.iterations, self.tol)


class ElasticNetSubspaceClustering(SelfExpressionSolver):
    name = "ensc"
    summary = "EnSC (You et al. 2016): elastic-net self-expression, by ADMM on all columns"
    params = (
        Param("tradeoff", float, 0.9, "lambda: l1 share of the penalty lambda|c|_1 + (1-lambda)/2 |c|^2", min=0, max=1),
        Param("fit_gamma", float, 50.0, "EnSC's gamma: fit weight over the coherence bound (EnSC's code: 50)",
              min=1e-6),
        NORMALIZE, ITERATIONS, TOLERANCE,
    )

    def coefficients(self, data: np.ndarray) -> np.ndarray:
        return sparse_admm(_linear_gram(self, data), self.fit_gamma, self.tradeoff, 1.0 - self.tradeoff,
                           self.iterations, self.tol)


class KernelSparseSubspaceClustering(SelfExpressionSolver):
    name = "kssc"
    summary = "KSSC (Patel & Vidal 2014): SSC in a kernel's feature space (RBF or polynomial), by ADMM"
    params = (
        Param("kernel", str, "rbf", "rbf or polynomial", choices=("rbf", "polynomial")),
        Param("kernel_gamma", float, None,
              "RBF / polynomial gamma; default 1 / (D · variance), as scikit-learn's 'scale'",
              min=1e-12),
        Param("degree", int, 2, "polynomial degree", min=1, max=10),
        Param("fit_alpha", float, 20.0, "fit weight over the coherence bound, as ssc's fit_alpha", min=1e-6),
        NORMALIZE, ITERATIONS, TOLERANCE,
    )

    def coefficients(self, data: np.ndarray) -> np.ndarray:
        x = _prepared(self, data)
        gamma = self.kernel_gamma or 1.0 / (x.shape[1] * max(float(x.var()), np.finfo(float).tiny))
        if self.kernel == "rbf":
            gram = rbf_kernel(x, gamma=gamma)
        else:
            gram = polynomial_kernel(x, degree=self.degree, gamma=gamma, coef0=1.0)
        return sparse_admm(gram, self.fit_alpha, 1.0, 0.0, self.iterations, self.tol)


class OrthogonalMatchingPursuit(SelfExpressionSolver):
    name = "ssc-omp"
    summary = "SSC-OMP (You, Robinson & Vidal 2016): k greedy neighbours per sample, batched over all samples"
    params = (
        Param("sparsity", int, 10, "most non-zeros per column, k of SSC-OMP (its code: 10)", min=1, max=1000),
        Param("residual_tol", float, 1e-6, "stop a sample once its residual norm falls below this", min=0),
        NORMALIZE,
    )

    def check_context(self, context) -> None:
        if self.sparsity >= context.n_samples:
            raise ConfigError(f"ssc-omp sparsity must be below the number of samples ({context.n_samples}); "
                              f"got {self.sparsity}")

    def coefficients(self, data: np.ndarray) -> np.ndarray:
        x = _prepared(self, data)
        n = x.shape[0]
        rows = np.arange(n)
        chosen = np.zeros((n, 0), dtype=np.int64)
        blocked = np.eye(n, dtype=bool)  # no sample expresses itself or is chosen twice
        residual, weights = x.copy(), np.zeros((n, 0))
        for _ in range(min(self.sparsity, n - 1)):
            active = np.linalg.norm(residual, axis=1) > self.residual_tol
            if not active.any():
                break
            score = np.abs(residual @ x.T)
            score[blocked] = -1.0
            pick = score.argmax(axis=1)
            blocked[rows[active], pick[active]] = True
            # A finished sample repeats its own index with weight 0 (its support does not grow).
            pick = np.where(active, pick, chosen[:, -1] if chosen.shape[1] else pick)
            chosen = np.concatenate([chosen, pick[:, None]], axis=1)
            weights = self._least_squares(x, chosen, active, weights)
            residual = x - np.einsum("nk,nkd->nd", weights, x[chosen])
        coef = np.zeros((n, n))
        np.add.at(coef, (chosen, rows[:, None].repeat(chosen.shape[1], 1)), weights)
        return coef

    @staticmethod
    def _least_squares(x: np.ndarray, chosen: np.ndarray, active: np.ndarray, previous: np.ndarray) -> np.ndarray:
        """Per sample, the least-squares weights of its chosen neighbours (batched normal equations)."""
        basis = x[chosen]  # n x t x d
        gram = basis @ basis.transpose(0, 2, 1) + 1e-10 * np.eye(chosen.shape[1])
        weights = np.linalg.solve(gram, (basis @ x[:, :, None]))[:, :, 0]
        kept = np.concatenate([previous, np.zeros((len(x), 1))], axis=1)
        return np.where(active[:, None], weights, kept)


class LeastSquaresRegression(SelfExpressionSolver):
    name = "lsr"
    summary = "LSR / EDSC (Lu et al. 2012; Ji et al. 2014): closed-form least-squares self-expression"
    params = (
        Param("lam", float, 0.1, "weight lambda of ||C||_F^2 against ||X - XC||_F^2", min=1e-12),
        Param("diagonal", str, "zero", "zero (LSR1, diag(C) = 0) or free (LSR2 / EDSC)", choices=("zero", "free")),
        NORMALIZE,
    )

    def coefficients(self, data: np.ndarray) -> np.ndarray:
        x = _prepared(self, data)
        n = x.shape[0]
        inverse = np.linalg.inv(x @ x.T + self.lam * np.eye(n))
        if self.diagonal == "free":
            return np.eye(n) - self.lam * inverse  # (G + λI)⁻¹G
        # With diag(C) = 0 the minimiser is −Z·diag(Z)⁻¹ off the diagonal (Lu et al. 2012, LSR1).
        coef = -inverse / np.diag(inverse)[None, :]
        np.fill_diagonal(coef, 0.0)
        return coef


def _principal(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Singular values and right singular vectors (samples side) of the D x N matrix xᵀ."""
    _, values, right = np.linalg.svd(x.T, full_matrices=False)
    return values, right.T


class LowRankSubspaceClustering(SelfExpressionSolver):
    name = "lrsc"
    summary = "LRSC (Vidal & Favaro 2014): nuclear-norm self-expression of a clean dictionary, closed form"
    params = (
        Param("tau", float, 100.0, "fit weight tau of min ||C||_* + tau/2 ||X - XC||_F^2", min=1e-12),
        NORMALIZE,
    )

    def coefficients(self, data: np.ndarray) -> np.ndarray:
        values, vectors = _principal(_prepared(self, data))
        kept = values > 1.0 / np.sqrt(self.tau)
        shrink = 1.0 - 1.0 / (self.tau * values[kept] ** 2)
        return (vectors[:, kept] * shrink) @ vectors[:, kept].T


def _singular_value_threshold(matrix: np.ndarray, threshold: float) -> np.ndarray:
    left, values, right = np.linalg.svd(matrix, full_matrices=False)
    kept = values > threshold
    return (left[:, kept] * (values[kept] - threshold)) @ right[kept]


def _column_shrink(matrix: np.ndarray, threshold: float) -> np.ndarray:
    """Prox of threshold·‖·‖_{2,1}: each column shrunk towards 0 by ``threshold`` in length."""
    norms = np.linalg.norm(matrix, axis=0, keepdims=True)
    return matrix * np.maximum(1.0 - threshold / np.where(norms > 0, norms, 1.0), 0.0)


class LowRankRepresentation(SelfExpressionSolver):
    name = "lrr"
    summary = "LRR (Liu et al. 2013): nuclear norm plus column-sparse errors, inexact ALM on the row space"
    params = (
        Param("lam", float, 1.0,
              "weight lambda of the l2,1 error term (below about 0.5 the errors absorb unit-length samples)",
              min=1e-12),
        Param("energy", float, 0.999, "share of the data's energy the row-space basis keeps (1: all of it)",
              min=1e-6, max=1),
        NORMALIZE, ITERATIONS, Param("tol", float, 1e-6, "stop when the constraint violation falls below this", min=0),
    )

    def coefficients(self, data: np.ndarray) -> np.ndarray:
        x = _prepared(self, data)
        values, basis = _principal(x)
        # The solution lies in the data's row space (Liu et al. 2013, Thm. 4.3), so ALM runs on its
        # r-dimensional basis; dropping the weakest directions (``energy``) keeps each iteration's
        # SVD small (Yale B: r x N instead of D x N).
        share = np.cumsum(values ** 2) / np.sum(values ** 2)
        rank = int(np.searchsorted(share, self.energy * (1 - 1e-12)) + 1)
        basis = basis[:, :rank][:, values[:rank] > values[0] * 1e-10]  # N x r
        samples = x.T  # D x N, one sample per column as in the paper
        dictionary = samples @ basis  # D x r
        reduced = self._alm(samples, dictionary)  # r x N
        return basis @ reduced

    def _alm(self, samples: np.ndarray, dictionary: np.ndarray) -> np.ndarray:
        """min ‖Z‖_* + λ‖E‖_{2,1} s.t. X = AZ + E (Liu et al.'s inexact ALM, its step constants)."""
        rank, n = dictionary.shape[1], samples.shape[1]
        mu, mu_max, growth = 1e-6, 1e10, 1.1
        z, errors = np.zeros((rank, n)), np.zeros_like(samples)
        y_fit, y_split = np.zeros_like(samples), np.zeros((rank, n))
        normal = np.linalg.inv(dictionary.T @ dictionary + np.eye(rank))
        for _ in range(self.iterations):
            low_rank = _singular_value_threshold(z + y_split / mu, 1.0 / mu)
            z = normal @ (dictionary.T @ (samples - errors) + low_rank + (dictionary.T @ y_fit - y_split) / mu)
            errors = _column_shrink(samples - dictionary @ z + y_fit / mu, self.lam / mu)
            fit_gap = samples - dictionary @ z - errors
            split_gap = z - low_rank
            y_fit += mu * fit_gap
            y_split += mu * split_gap
            mu = min(growth * mu, mu_max)
            if max(np.abs(fit_gap).max(), np.abs(split_gap).max()) < self.tol:
                break
        return low_rank
