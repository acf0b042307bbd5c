"""The plan as a standalone Python file (`protoseg compile NET -o DIR`, `--print-code`). No torch.

The file needs only torch. It holds the source of the module classes the net uses, with every
top-level helper they need, read from their files with `ast` (nothing is imported, so this
backend runs where torch is not installed); then one `nn.Module` class named after the net:
`__init__` builds the submodules with the constructor calls the plan holds, and `forward` has
one line per Caffe layer, variables named as in the fx module, shapes in comments. Attribute
names, and so the state_dict keys, are those of `protoseg.compile_net` for the same net.
"""
from __future__ import annotations

import ast
import importlib.util
import os
import sys
import textwrap

from .. import __version__
from ..plan import Plan
from ..text import dims


class _SourceFile:
    """A module's top-level definitions and imports, read with ast."""

    def __init__(self, module: str):
        self.module = module
        self.path = _module_file(module)
        with open(self.path, encoding="utf-8") as f:
            text = f.read()
        tree = ast.parse(text, self.path)
        self.is_package = os.path.basename(self.path) == "__init__.py"
        self.future = False
        self.defs: dict = {}            # name -> ast node
        self.source: dict = {}          # name -> source text
        self.imports: dict = {}         # name -> ("line", import line) | ("from", module, name)
        lines = text.splitlines()
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign,
                                 ast.AnnAssign)):
                first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
                src = "\n".join(lines[first - 1:node.end_lineno])
                targets = ([node.name] if hasattr(node, "name") else
                           [t.id for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
                            if isinstance(t, ast.Name)])
                for name in targets:
                    self.defs[name], self.source[name] = node, src
            elif isinstance(node, ast.ImportFrom):
                if node.module == "__future__":
                    self.future = True
                    continue
                base = self._absolute(node.module, node.level)
                for a in node.names:
                    if self._follows(base):
                        if a.asname and a.asname != a.name:
                            raise ValueError(f"{self.path}: `from {base} import {a.name} as "
                                             f"{a.asname}`: a module class's own imports keep "
                                             f"their names (they are copied into one file)")
                        self.imports[a.name] = ("from", base, a.name)
                    else:
                        self.imports[a.asname or a.name] = (
                            "line", f"from {base} import {a.name}" + (f" as {a.asname}" if a.asname else ""))
            elif isinstance(node, ast.Import):
                for a in node.names:
                    name = a.asname or a.name.split(".")[0]
                    self.imports[name] = ("line", f"import {a.name}" + (f" as {a.asname}" if a.asname else ""))

    def _absolute(self, module: str | None, level: int) -> str:
        if not level:
            return module
        parts = self.module.split(".")
        keep = len(parts) - level + (1 if self.is_package else 0)
        return ".".join(parts[:keep] + ([module] if module else []))

    def _follows(self, module: str) -> bool:
        """Imports of protoseg's own code and of the same top-level package are copied in; the
        rest (torch, math, ...) stay imports."""
        top = module.split(".")[0]
        return top in ("protoseg", self.module.split(".")[0])


def _module_file(module: str) -> str:
    loaded = sys.modules.get(module)
    path = getattr(loaded, "__file__", None)
    if path is None:
        spec = importlib.util.find_spec(module)
        path = spec.origin if spec is not None else None
    if path is None or not path.endswith(".py") or not os.path.exists(path):
        raise ValueError(f"cannot write a standalone file: the source of module {module!r} is not "
                         f"in a .py file (define custom module classes in a module of their own)")
    return path


def _names_used(node) -> set:
    """The names a definition reads, annotations left out (they are never evaluated: the
    generated file has `from __future__ import annotations` when its sources had it)."""
    found = set()

    def visit(n):
        if isinstance(n, ast.Name):
            found.add(n.id)
        for field, value in ast.iter_fields(n):
            if field in ("annotation", "returns"):
                continue
            for child in value if isinstance(value, list) else [value]:
                if isinstance(child, ast.AST):
                    visit(child)
    visit(node)
    return found


def _annotated(node) -> bool:
    return any(getattr(n, "annotation", None) is not None or getattr(n, "returns", None) is not None
               for n in ast.walk(node))


class _Bundle:
    """The definitions that module classes need, transitively, in dependency order."""

    def __init__(self):
        self.files: dict = {}
        self.order: list = []           # (module, name), dependencies first
        self.lines: set = set()         # import lines
        self.future = False
        self._owner: dict = {}          # emitted name -> module

    def file(self, module: str) -> _SourceFile:
        if module not in self.files:
            self.files[module] = _SourceFile(module)
        return self.files[module]

    def add(self, module: str, name: str) -> None:
        f = self.file(module)
        if name in f.imports and name not in f.defs:
            kind, *rest = f.imports[name]
            if kind == "line":
                self.lines.add(rest[0])
            else:
                self.add(*rest)
            return
        if name not in f.defs:
            raise ValueError(f"cannot write a standalone file: {module}.{name} is not defined at "
                             f"the top level of {f.path}")
        if (module, name) in self.order:
            return
        if self._owner.get(name, module) != module:
            raise ValueError(f"cannot write a standalone file: two definitions named {name!r} "
                             f"({self._owner[name]} and {module})")
        self._owner[name] = module
        self.future |= f.future and _annotated(f.defs[name])
        self.order.append((module, name))      # placed now, so a cycle ends here
        for used in sorted(_names_used(f.defs[name]) - {name}):
            if used in f.defs or used in f.imports:
                self.add(module, used)
        self.order.remove((module, name))
        self.order.append((module, name))

    def sources(self) -> list:
        return [self.files[m].source[n] for m, n in self.order]


def _safe(text) -> str:
    """Text for the module docstring: no backslashes, triple quotes or line breaks."""
    return " ".join(str(text).replace("\\", "/").replace('"' * 3, "'" * 3).split())


def _docstring(plan: Plan) -> list:
    net = plan.net
    lines = [f'"""{plan.class_name}: the Caffe net {_safe(net.name or "(unnamed)")} '
             f"({_safe(os.path.basename(net.file or '<string>'))}), compiled to PyTorch by "
             f"protoseg {__version__}.", ""]
    lines.append("Needs only torch. Inputs (shapes the comments below assume): " + ", ".join(
        f"{i.var} {dims(i.shape)}" for i in plan.inputs) + ".")
    lines.append("Outputs: " + ", ".join(f"{_safe(b)} {dims(plan.var_shapes[v])}" for b, v in plan.outputs)
                 + (" (a dict by blob name)." if len(plan.outputs) > 1 else "."))
    if plan.dropped:
        lines.append("Left out: " + "; ".join(f"{_safe(n)} ({_safe(t)}): {_safe(r)}"
                                              for n, t, r in plan.dropped) + ".")
    if plan.runtime:
        lines.append("The shapes of the values computed from detections or proposals are Caffe's set-up "
                     "shapes; their sizes depend on the data.")
    lines.append("Phase " + net.phase + ". Parameter names match protoseg.compile_net(...).state_dict().")
    lines.append('"""')
    wrapped = []
    for line in lines:
        wrapped += textwrap.wrap(line, 100, break_long_words=False, break_on_hyphens=False) or [""]
    return wrapped


def generate_code(plan: Plan) -> str:
    """The standalone module file of a plan, as text."""
    bundle = _Bundle()
    for ref in plan.refs():
        if ref.module != "torch.nn":
            bundle.add(ref.module, ref.name.split(".")[0])
    ties = [s for s in plan.steps if s.tied]
    if ties:
        bundle.add("protoseg.backends.tie", "tie_parameters")
    clash = {n for _, n in bundle.order} & {plan.class_name}
    if clash:
        raise ValueError(f"cannot write a standalone file: the net class {plan.class_name!r} has "
                         f"the name of a module class it uses")
    out = _docstring(plan)
    if bundle.future:
        out.append("from __future__ import annotations")
        out.append("")
    imports = bundle.lines | {"import torch", "from torch import nn"}
    out += sorted(i for i in imports if i.startswith("import "))
    out += sorted(i for i in imports if i.startswith("from "))
    for src in bundle.sources():
        out += ["", "", src]
    out += ["", "", f"class {plan.class_name}(nn.Module):"]
    out.append(f'    """Caffe net {_safe(plan.net.name or "(unnamed)")}: one submodule per layer, '
               f'named after it."""')
    out += ["", "    def __init__(self):", "        super().__init__()"]
    for step in plan.steps:
        line = f"        self.{step.attr} = {step.call.code()}"
        if step.attr != step.layer.name:
            line += f"  # {step.layer.name!r} ({step.layer.type})"
        out.append(line + _folded_comment(step, "  #" not in line))
    if ties:
        out.append("        # Caffe `param { name }`: these layers use the parameters of an earlier one")
    for step in ties:
        out.append(f"        tie_parameters(self.{step.attr}, self.{step.tied})")
    if plan.channels_last:
        out.append("        self.to(memory_format=torch.channels_last)")
    args = ", ".join(["self"] + [i.var for i in plan.inputs])
    out += ["", f"    def forward({args}):"]
    out += [f"        {i.var} = {i.var}.contiguous(memory_format=torch.channels_last)"
            for i in plan.inputs if _nhwc(plan, i.shape)]
    # a value is deleted after its last reader, as torch.fx's own code does: without it every
    # intermediate would live until forward returns
    last_reader = {}
    for i, step in enumerate(plan.steps):
        for v in step.inputs:
            last_reader[v] = i
    kept = {v for _, v in plan.outputs} | {i.var for i in plan.inputs}   # the caller holds these
    for i, step in enumerate(plan.steps):
        layer = step.layer
        ins = ", ".join(step.inputs)
        if step.call.call == "each":
            lines = [(f"{t} = self.{step.attr}({b})", [s])
                     for b, t, s in zip(step.inputs, step.outputs, step.shapes)]
        elif step.call.call == "alias":
            lines = [(f"{step.outputs[0]} = self.{step.attr}({ins})", [step.shapes[0]])]
        else:
            lines = [(f"{', '.join(step.outputs)} = self.{step.attr}({ins})", list(step.shapes))]
        for code, shapes in lines:
            comment = ", ".join(dims(s) for s in shapes)
            if step.outputs[0] in plan.runtime:
                comment += " at set-up; the sizes depend on the data"
            if step.attr != layer.name:
                comment = f"{layer.name!r} ({layer.type}): {comment}"
            out.append(f"        {code}  # {comment}")
        done = [v for v in dict.fromkeys(step.inputs) if last_reader[v] == i and v not in kept]
        if done:
            out.append(f"        del {', '.join(done)}")
    def result(var):
        return f"{var}.contiguous()" if _nhwc(plan, plan.var_shapes[var]) else var
    if len(plan.outputs) == 1:
        out.append(f"        return {result(plan.outputs[0][1])}")
    else:
        items = ", ".join(f"{b!r}: {result(v)}" for b, v in plan.outputs)
        out.append(f"        return {{{items}}}")
    return "\n".join(out) + "\n"


def _nhwc(plan: Plan, shape) -> bool:
    """Does a value of this shape change memory format in the module (channels_last plans)?"""
    return plan.channels_last and len(shape) == 4


def _folded_comment(step, first: bool) -> str:
    """`# + bn_conv1 (BatchNorm), scale_conv1 (Scale) folded in` for an optimized step."""
    if not step.folded:
        return ""
    folded = ", ".join(f"{s.layer.name} ({s.layer.type})" for s in step.folded)
    return f"{'  # ' if first else '; '}{folded} folded in"

