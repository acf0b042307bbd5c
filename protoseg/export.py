"""Write a compiled net as a standalone Python file: `protoseg compile NET -o DIR`.

The file needs only torch. It holds the source of the protoseg.modules classes the net uses
(copied with inspect.getsource, which is why each of them is self-contained), then one
`nn.Module` class named after the net: `__init__` builds the submodules with the same
constructor calls the in-memory module was built from, and `forward` has one line per Caffe
layer, variables named after the blobs (an in-place layer rebinds its blob's variable, as
Caffe rewrites the blob), the inferred shapes in comments. Attribute names, and so the
state_dict keys, are those of `protoseg.compile_net` for the same net.
"""
from __future__ import annotations

import inspect
import os
import tempfile
import textwrap

from . import __version__
from .compile import Program, compile_program, file_stem_for
from .errors import ProtosegError

__all__ = ["generate_code", "write_module", "export_net"]


def _shape(shape) -> str:
    return "x".join(str(d) for d in shape) if len(shape) else "scalar"


def _safe(text) -> str:
    """Text for the module docstring: no backslashes, triple quotes or line breaks."""
    return " ".join(str(text).replace("\\", "/").replace('"' * 3, "'" * 3).split())


def _used_classes(program: Program) -> list:
    out = []
    for step in program.steps:
        if not step.lowered.cls.startswith("nn.") and step.lowered.cls not in out:
            out.append(step.lowered.cls)
    return out


def _docstring(program: Program) -> list:
    net = program.net
    values = program.shapes.values
    lines = [f'"""{program.class_name}: the Caffe net {_safe(net.name or "(unnamed)")} '
             f"({_safe(os.path.basename(net.file or '<string>'))}), compiled to PyTorch by "
             f"protoseg {__version__}.", ""]
    lines.append("Needs only torch. Inputs (shapes the comments below assume): " + ", ".join(
        f"{i.arg} {_shape(i.shape)}" for i in program.inputs) + ".")
    lines.append("Outputs: " + ", ".join(f"{_safe(b)} {_shape(values[v])}" for b, v in program.outputs)
                 + (" (a dict by blob name)." if len(program.outputs) > 1 else "."))
    if program.dropped:
        lines.append("Left out: " + "; ".join(f"{_safe(n)} ({_safe(t)}): {_safe(r)}"
                                              for n, t, r in program.dropped) + ".")
    lines.append("Phase " + net.phase + ". Parameter names match protoseg.compile_net(...).state_dict().")
    lines.append('"""')
    wrapped = []
    for line in lines:
        wrapped += textwrap.wrap(line, 100, break_long_words=False, break_on_hyphens=False) or [""]
    return wrapped


def generate_code(program: Program) -> str:
    """The standalone module file for a plan, as text."""
    classes = _used_classes(program)
    from . import modules
    sources = [inspect.getsource(getattr(modules, c)).rstrip() for c in classes]
    body = "\n".join(sources)
    out = _docstring(program)
    if "math." in body:
        out.append("import math")
        out.append("")
    out.append("import torch")
    if "F." in body:
        out.append("import torch.nn.functional as F")
    out.append("from torch import nn")
    for src in sources:
        out += ["", "", src]
    out += ["", "", f"class {program.class_name}(nn.Module):"]
    out.append(f'    """Caffe net {_safe(program.net.name or "(unnamed)")}: one submodule per layer, '
               f'named after it."""')
    out += ["", "    def __init__(self):", "        super().__init__()"]
    for step in program.steps:
        line = f"        self.{step.attr} = {step.lowered.code()}"
        if step.attr != step.layer.name:
            line += f"  # {step.layer.name!r} ({step.layer.type})"
        out.append(line)
    args = ", ".join(["self"] + [i.arg for i in program.inputs])
    out += ["", f"    def forward({args}):"]
    values = program.shapes.values
    var = program.var
    for step in program.steps:
        layer = step.layer
        ins = ", ".join(var[v] for v in layer.bottom_values)
        call = step.lowered.call
        if call == "each":
            lines = [(f"{var[t]} = self.{step.attr}({var[b]})", [values[t]])
                     for b, t in zip(layer.bottom_values, layer.top_values)]
        elif call == "alias":
            targets = []
            for t in layer.top_values:
                if var[t] not in targets:
                    targets.append(var[t])
            lines = [(" = ".join(targets) + f" = self.{step.attr}({ins})", [values[layer.top_values[0]]])]
        else:
            targets = ", ".join(var[t] for t in layer.top_values)
            lines = [(f"{targets} = self.{step.attr}({ins})", [values[t] for t in layer.top_values])]
        for code, shapes in lines:
            comment = ", ".join(_shape(s) for s in shapes)
            if step.attr != layer.name:
                comment = f"{layer.name!r} ({layer.type}): {comment}"
            out.append(f"        {code}  # {comment}")
    if len(program.outputs) == 1:
        out.append(f"        return {var[program.outputs[0][1]]}")
    else:
        items = ", ".join(f"{b!r}: {var[v]}" for b, v in program.outputs)
        out.append(f"        return {{{items}}}")
    return "\n".join(out) + "\n"


def write_module(program: Program, out_dir) -> str:
    """Write DIR/<net>.py atomically (a temporary file, then a rename); returns its path."""
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ProtosegError(f"{out_dir}: -o names an output folder, but this is a file")
    code = generate_code(program)
    path = os.path.join(out_dir, file_stem_for(program.net) + ".py")
    tmp = None
    try:
        os.makedirs(out_dir, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".protoseg-", suffix=".py.tmp", dir=out_dir)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(code)
        os.replace(tmp, path)
    except OSError as e:
        raise ProtosegError(f"{e.filename or out_dir}: cannot write the module: {e.strerror or e}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    return path


def export_net(prototxt, out_dir=None, inputs: dict | None = None, outputs=None, *,
               phase: str = "TEST", level: int = 0, stages=()) -> str:
    """Compile a net and return its standalone module code; with out_dir, also write it there
    (and return the path instead)."""
    program = compile_program(prototxt, inputs, outputs, phase=phase, level=level, stages=stages)
    if out_dir is None:
        return generate_code(program)
    return write_module(program, out_dir)
