"""MVN (mvn_layer.cpp): subtract the mean (and divide by the standard deviation when
normalize_variance) over each channel's spatial positions, or across channels too."""
from __future__ import annotations

from . import LayerSpec, same_shape

SPECS = [LayerSpec("MVN", same_shape, param="mvn_param")]
