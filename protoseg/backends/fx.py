"""The plan as a torch.fx.GraphModule: one call_module node per layer, named like the plan's
variables, with the inferred shapes in node.meta["tensor_meta"] (so `print_readable()` shows
them without running anything) and the Caffe layer in node.meta["caffe_layer"]."""
from __future__ import annotations

import operator

import torch
import torch.fx as fx
from torch.fx.passes.shape_prop import TensorMetadata

from ..plan import Plan
from .tie import tie_parameters


def _tensor_meta(shape):
    size = torch.Size(shape)
    stride, acc = [], 1
    for d in reversed(size):
        stride.append(acc)
        acc *= max(d, 1)
    return TensorMetadata(size, torch.float32, False, tuple(reversed(stride)),
                          torch.contiguous_format, False, {})


def build_module(plan: Plan) -> fx.GraphModule:
    """The fx.GraphModule of a plan, in eval mode, parameters not loaded yet. A module with a
    `prepare(*input_shapes)` method is called with its inferred input shapes once, here (size-
    dependent tables are made now, not during the first forward). A step tied to another
    (Caffe `param { name }`) holds that step's parameter tensors."""
    graph = fx.Graph()
    env: dict = {}              # variable -> node
    for inp in plan.inputs:
        node = graph.placeholder(inp.var)
        node.meta["tensor_meta"] = _tensor_meta(inp.shape)
        node.meta["caffe_blob"] = inp.blob
        node.meta["caffe_layer"] = f"{inp.layer.name} ({inp.layer.type})"
        env[inp.var] = node
        if plan.channels_last and len(inp.shape) == 4:      # protoseg.optimize
            env[inp.var] = graph.call_method("contiguous", (node,),
                                             {"memory_format": torch.channels_last})
    modules: dict = {}
    read = plan.read
    for step in plan.steps:
        layer = step.layer
        module = step.call.build()
        if hasattr(module, "prepare"):
            module.prepare(*step.ctx.bottoms)
        modules[step.attr] = module
        label = f"{layer.name} ({layer.type})"
        # print_readable() shows this above the node: "# File: net.prototxt:12 in conv1_1, code:
        # Convolution" (the Caffe layer behind each line).
        where = (f'File "{layer.span.file if layer.span else plan.net.file}", line '
                 f'{layer.span.line if layer.span else 0}, in {layer.name}\n    {layer.type}\n')

        def make(op, target, args, name, shape):
            node = graph.create_node(op, target, tuple(args), name=name)
            node.meta["caffe_layer"] = label
            node.meta["protoseg_runtime"] = step.outputs[0] in plan.runtime
            node.stack_trace = where
            if isinstance(shape, list):
                node.meta["protoseg_shapes"] = shape
            else:
                node.meta["tensor_meta"] = _tensor_meta(shape)
            return node

        args = [env[v] for v in step.inputs]
        if step.call.call == "each":
            for a, blob, var, shape in zip(args, layer.tops, step.outputs, step.shapes):
                env[var] = make("call_module", step.attr, [a], var, shape)
                env[var].meta["caffe_blob"] = blob
        elif step.call.call == "alias" or len(step.outputs) == 1:
            node = make("call_module", step.attr, args, step.outputs[0], step.shapes[0])
            node.meta["caffe_blob"] = ", ".join(layer.tops)
            env[step.outputs[0]] = node
        else:
            node = make("call_module", step.attr, args, step.packed, list(step.shapes))
            for i, (blob, var, shape) in enumerate(zip(layer.tops, step.outputs, step.shapes)):
                if var in read:
                    env[var] = make("call_function", operator.getitem, (node, i), var, shape)
                    env[var].meta["caffe_blob"] = blob
    for step in plan.steps:
        if step.tied:
            tie_parameters(modules[step.attr], modules[step.tied])

    def result(var):            # a channels_last module still returns contiguous tensors
        if plan.channels_last and len(plan.var_shapes[var]) == 4:
            return graph.call_method("contiguous", (env[var],))
        return env[var]
    if len(plan.outputs) == 1:
        graph.output(result(plan.outputs[0][1]))
    else:
        graph.output({blob: result(var) for blob, var in plan.outputs})
    gm = fx.GraphModule(modules, graph, class_name=plan.class_name)
    gm.eval()
    if plan.channels_last:
        gm.to(memory_format=torch.channels_last)
    gm.protoseg_layers = {s.attr: (s.layer.name, s.layer.type) for s in plan.steps}
    gm.protoseg_inputs = {i.blob: i.var for i in plan.inputs}
    gm.protoseg_input_shapes = {i.blob: tuple(i.shape) for i in plan.inputs}
    gm.protoseg_outputs = [b for b, _ in plan.outputs]
    gm.protoseg_dropped = list(plan.dropped)
    gm.protoseg_net = plan.net.name or plan.class_name
    return gm
