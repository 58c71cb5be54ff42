"""Self-expression without an N x N matrix: each sample is expressed by its k nearest neighbours only.

``SupportedSelfExpression`` holds C restricted to a fixed support, as an N x k matrix of values: row i holds
the coefficients that express sample i by the samples ``support[i]`` (in the paper's convention they are
C[support[i, j], i]; diag(C) = 0 because no sample is its own neighbour). Parameters, gradient and Adam's
moments are N x k, the self-expression of a batch sums each row's k neighbours' features in place (B x d out,
never B x k x d), and the learned C leaves as a scipy.sparse matrix. With k = N - 1 the support is every other
sample and this is eq. 1's C.

It also keeps the memory bank of Stage II in mini-batches: every sample's latent as last computed, which a
step reads for the samples outside its batch (their features then carry no gradient).

The values are free parameters (``coef_model = "table"``), or computed on demand by a ``CoefficientNetwork``
from the two samples' features in SENet's manner (``"network"``: parameters independent of N).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import sparse
from torch import nn
from torch.nn import functional as F

from dscsc_core.errors import DeviceError

# Rows of the neighbour search at a time: bounds its working memory to this many rows x N similarities.
_SEARCH_BLOCK = 1024


def stage2_batches(n_samples: int, batch_size: int) -> list[int]:
    """The sizes of an epoch's Stage II mini-batches: as few as hold at most ``batch_size`` each (0: one of all
    samples), as equal as possible, so no batch is a small remainder."""
    count = -(-n_samples // batch_size) if batch_size > 0 else 1
    return [n_samples // count + (1 if i < n_samples % count else 0) for i in range(count)]


@torch.no_grad()
def nearest_support(features: torch.Tensor, k: int) -> torch.Tensor:
    """Each sample's k most cosine-similar other samples (N x k indices), found in blocks of rows."""
    unit = F.normalize(features.float().flatten(1), dim=1)
    n = unit.shape[0]
    support = torch.empty(n, k, dtype=torch.long, device=unit.device)
    # One block buffer and one top-k buffer, reused: a fresh block per step left the allocator holding
    # about one block of memory per step (2.7 GiB at N = 30,000).
    block = torch.empty(min(_SEARCH_BLOCK, n), n, device=unit.device)
    nearest = torch.empty(min(_SEARCH_BLOCK, n), k, device=unit.device)
    for start in range(0, n, _SEARCH_BLOCK):
        size = min(_SEARCH_BLOCK, n - start)
        similarity = torch.mm(unit[start:start + size], unit.T, out=block[:size])
        similarity[torch.arange(size), torch.arange(start, start + size)] = -float("inf")
        torch.topk(similarity, k, dim=1, out=(nearest[:size], support[start:start + size]))
    return support


def _normal_start(support: torch.Tensor, scale: float, generator: torch.Generator) -> torch.Tensor:
    """N(0, scale²) coefficients on the support. With every other sample as support (k = N - 1) they are read
    from the N x N draw of the dense path, so that a full support and a full batch start where eq. 1's C
    starts and end where it ends (the parity check); a smaller support draws N x k only."""
    n, k = support.shape
    if k < n - 1:
        return torch.randn(n, k, generator=generator) * scale
    dense = torch.randn(n, n, generator=generator) * scale  # dense[j, i]: sample j's weight in expressing i
    return dense.T.gather(1, support.cpu())


# Width of the query and key networks of ``CoefficientNetwork``: each step runs the key network on B x k
# neighbours (50,000 rows for MNIST's preset), so it is kept small for CPUs.
COEF_NETWORK_WIDTH = 64
# Rows of C computed at a time when a coefficient network's C is read out whole.
_READ_OUT_BLOCK = 4096


class CoefficientNetwork(nn.Module):
    """c_ij from the features of sample i and of its neighbour j, as SENet (Zhang et al., CVPR 2021) computes
    them: a query network on z_i, a key network on z_j, their scaled inner product soft-thresholded by a learned
    b (small products become exact zeros, the sparsity an l1 penalty asks for), times 1/k so that a start with
    products near 1 expresses a sample by about the mean of its neighbours."""

    def __init__(self, latent_dim: int, neighbours: int, width: int = COEF_NETWORK_WIDTH):
        super().__init__()
        self.query = _two_layers(latent_dim, width)
        self.key = _two_layers(latent_dim, width)
        self.threshold = nn.Parameter(torch.zeros(()))
        self.scale = 1.0 / neighbours

    def forward(self, anchors: torch.Tensor, neighbours: torch.Tensor) -> torch.Tensor:
        """Coefficients (A x k) of the anchors' features (A x d) over their neighbours' (A x k x d)."""
        query, key = self.query(anchors), self.key(neighbours)
        products = torch.einsum("aw,akw->ak", query, key) / query.shape[1] ** 0.5
        threshold = self.threshold.abs()
        return self.scale * (F.relu(products - threshold) - F.relu(-products - threshold))


def _two_layers(in_dim: int, width: int) -> nn.Module:
    return nn.Sequential(nn.Linear(in_dim, width), nn.ReLU(), nn.Linear(width, width))


class SupportedSelfExpression(nn.Module):
    def __init__(self, support: torch.Tensor, scale: float, generator: torch.Generator, init: str = "normal",
                 bank: torch.Tensor | None = None, network: CoefficientNetwork | None = None):
        super().__init__()
        n, k = support.shape
        self.network = network
        if network is None:
            values = (torch.full((n, k), float(scale)) if init == "constant"
                      else _normal_start(support, scale, generator))
            self.values = nn.Parameter(values.to(support.device))
        self.register_buffer("support", support)
        # The memory bank (N x d): saved with the network, so a resumed run reads the bank it left.
        self.register_buffer("bank", bank if bank is not None else torch.zeros(n, 0, device=support.device))

    def weights_of(self, anchors: torch.Tensor) -> torch.Tensor:
        """The coefficients (A x k) that express the samples ``anchors`` by their neighbours: stored, or computed
        by the coefficient network from the bank's features (no gradient reaches the encoder through them)."""
        if self.network is None:
            return self.values[anchors]
        return self.network(self.bank[anchors], self.bank[self.support[anchors]])

    def express(self, rows: torch.Tensor, batch_features: torch.Tensor, anchors: torch.Tensor | None = None,
                weights: torch.Tensor | None = None) -> torch.Tensor:
        """ẑ of the samples ``rows`` (whose features, with their gradient, are ``batch_features``): each row's
        coefficients times its neighbours' features, live for neighbours in the batch, from the bank else.
        With ``anchors`` (some of ``rows``: a process's share of the batch), ẑ of those samples only; ``weights``:
        their coefficients when the caller has them already (``weights_of(anchors)``)."""
        anchors = rows if anchors is None else anchors
        if batch_features.device != self.bank.device:
            raise DeviceError(f"the memory bank of Stage II is on {self.bank.device}, but the batch's features are "
                              f"on {batch_features.device}; an encoder must return its features on the device of "
                              "its input")
        places = self._places_in_batch(rows, anchors)  # A x k: each neighbour's place in the batch, -1 if outside
        inside = places >= 0
        weights = self.weights_of(anchors) if weights is None else weights
        # Two weighted sums over each row's neighbours, without gathering them (A x k x d) and without an N x d
        # copy or gradient of the bank a step (that was O(N) work per step, O(N^2 / B) per epoch): the bank's
        # neighbours (no gradient), and the batch's own, whose features are live.
        from_bank = F.embedding_bag(self.support[anchors], self.bank, per_sample_weights=weights.masked_fill(inside, 0),
                                    mode="sum")
        live = F.embedding_bag(places.clamp(min=0), batch_features, per_sample_weights=weights.masked_fill(~inside, 0),
                               mode="sum")
        return from_bank + live

    def _places_in_batch(self, rows: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        """Where each neighbour of the samples ``anchors`` sits in the batch ``rows`` (-1: not in it)."""
        position = torch.full((self.support.shape[0],), -1, dtype=torch.long, device=rows.device)
        position[rows] = torch.arange(rows.shape[0], device=rows.device)
        return position[self.support[anchors]]

    @torch.no_grad()
    def batch_block(self, rows: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """C among the samples ``rows`` only (B x B, the paper's convention, in the batch's order): what a miner
        that reads C sees of it in a mini-batch; with one batch of all samples it is C itself. ``weights``: the
        rows' coefficients when the caller has them already (``weights_of(rows)``)."""
        expressing = self._places_in_batch(rows, rows)
        inside = expressing >= 0
        expressed = torch.arange(rows.shape[0], device=rows.device).unsqueeze(1).expand_as(expressing)
        block = torch.zeros(rows.shape[0], rows.shape[0], device=self.support.device)
        weights = self.weights_of(rows) if weights is None else weights.detach()
        return block.index_put_((expressing[inside], expressed[inside]), weights[inside])

    @torch.no_grad()
    def remember(self, rows: torch.Tensor, batch_features: torch.Tensor) -> None:
        self.bank[rows] = batch_features.detach()

    @torch.no_grad()
    def coefficients(self) -> sparse.csr_matrix:
        """C in the paper's convention (column i expresses sample i), as an N x N CSR matrix of N·k entries."""
        n, k = self.support.shape
        if self.network is None:
            values = self.values
        else:  # computed in blocks of rows, so the read-out holds one block's key features at a time
            rows = torch.arange(n, device=self.support.device)
            values = torch.cat([self.weights_of(block) for block in rows.split(_READ_OUT_BLOCK)])
        values = values.detach().cpu().double().numpy().ravel()
        expressed = np.repeat(np.arange(n), k)
        return sparse.csr_matrix((values, (self.support.cpu().numpy().ravel(), expressed)), shape=(n, n))
