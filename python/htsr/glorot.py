"""glorot_fix: the scale weightwatcher 0.7.7 means to apply (its glorot_norm_fix), in place of conv2d_norm."""
from __future__ import annotations

import dataclasses
import math

from .layers import CONV2D, LayerPlan


def glorot_scaled(plan: LayerPlan) -> LayerPlan:
    """The plan with its matrices scaled by 1/kappa = sqrt((N + M) * c / 2), c = rf for an unpooled Conv2D slice
    (the reference's conv2d_count), else 1; N, M are the layer's, as the reference takes them."""
    count = plan.rf if plan.slice_id is not None and plan.entry.layer_type == CONV2D else 1
    return dataclasses.replace(plan, scale=math.sqrt((plan.N + plan.M) * count / 2.0))
