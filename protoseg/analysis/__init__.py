"""Analysis of a net without running it (no torch, no numpy): what each layer costs, where every
blob sits in each input and what it sees, the traps a net's text hides, and which input sizes it
takes. The layer types give their own part (their spec's `cost` and `axes`); the modules here
compose them over a net.

    costs(shapes)               parameters, multiply-accumulates, activation memory (cost.py)
    coord_maps(shapes)          stride, offset, receptive field per blob and input (coords.py)
    check_net(net, inputs)      crop alignment, misaligned bottoms, clip rule, input size (check.py)
    input_sizes(net, inputs)    the sizes each spatial axis takes, and the outputs (sizes.py)

`shapes` is what `protoseg.infer_shapes` returns, `net` what `protoseg.load_net` returns.
"""
from .check import CheckReport, CropAudit, Finding, check_net
from .coords import CoordMaps, Map, Misalignment, axis_name, coord_maps
from .cost import Costs, LayerCost, costs
from .sizes import AxisSizes, Rejection, Row, SizeReport, input_sizes

__all__ = ["AxisSizes", "CheckReport", "CoordMaps", "Costs", "CropAudit", "Finding", "LayerCost",
           "Map", "Misalignment", "Rejection", "Row", "SizeReport", "axis_name", "check_net",
           "coord_maps", "costs", "input_sizes"]
