"""Penalties R(C) on the self-expression coefficients."""

from __future__ import annotations

from dscsc_core import Param, SelfExpressionRegularizer

_WEIGHT = Param("weight", float, 1.0, "multiplier of the penalty", min=0)


class FrobeniusRegularizer(SelfExpressionRegularizer):
    name = "l2"
    summary = "weight * ||C||_F^2, the paper's eq. 3 (DSC-Net-L2)"
    params = (_WEIGHT,)

    def penalty(self, coef):
        return self.weight * coef.pow(2).sum()


class L1Regularizer(SelfExpressionRegularizer):
    name = "l1"
    summary = "weight * ||C||_1, sparse coefficients (DSC-Net-L1)"
    params = (_WEIGHT,)

    def penalty(self, coef):
        return self.weight * coef.abs().sum()
