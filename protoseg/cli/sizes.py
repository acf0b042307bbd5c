"""`protoseg sizes`: which input sizes a net takes along each spatial axis, and its output sizes
for each (protoseg.analysis.sizes), compactly: ranges and periods with the outputs as formulas in
the size n."""
from __future__ import annotations

from ..analysis import input_sizes
from ..analysis.sizes import affine_text, runs_text, sizes_text
from ..errors import InputError
from ..text import dims
from .options import add_net_options, input_shapes, net_state
from .output import table, to_json


def register(sub):
    p = sub.add_parser("sizes", help="list the input sizes a net takes",
                       description="List the input heights and widths a net takes (one axis at "
                                   "a time, the others as declared) and its output sizes for "
                                   "each: every layer valid, crops in bounds, eltwise and concat "
                                   "shapes equal, weights' shapes kept.")
    add_net_options(p)
    p.add_argument("--range", default="1:1024", metavar="LO:HI",
                   help="the sizes to try (default 1:1024)")
    p.add_argument("--square", action="store_true",
                   help="move every spatial axis at once (n x n inputs) instead of one at a time")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("--pretty", action="store_true", help="indent JSON output")
    return p


def parse_range(text: str) -> tuple[int, int]:
    """'1:1024' -> (1, 1024)."""
    lo, sep, hi = text.partition(":")
    try:
        lo, hi = int(lo), int(hi)
    except ValueError:
        lo = hi = 0
    if not sep or not 1 <= lo <= hi or hi > 100000:
        raise InputError(f"--range {text!r}: expected LO:HI with 1 <= LO <= HI <= 100000, e.g. 1:1024")
    return lo, hi


def run(args) -> int:
    from ..net import load_net
    lo, hi = parse_range(args.range)
    net = load_net(args.prototxt, **net_state(args))
    report = input_sizes(net, input_shapes(args), lo, hi, square=args.square)
    if args.format == "json":
        print(to_json(report_json(report), args.pretty))
    else:
        print(report_text(report))
    return 0


def _groups(report) -> list:
    """(label, AxisSizes) with the axes that take the same sizes, give the same outputs and are
    refused by the same layers merged: 'H, W'."""
    out = []
    for ax in report.axes:
        name = ax.label(len(report.shape))
        same = next((g for g in out if (g[1].rows, g[1].rejected()) == (ax.rows, ax.rejected())),
                    None)
        if same:
            same[0].append(name)
        else:
            out.append(([name], ax))
    return [(", ".join(names), ax) for names, ax in out]


def report_text(report) -> str:
    varied = ", ".join(f"'{b}'" for b in report.varied)
    lo, hi = report.axes[0].lo, report.axes[0].hi
    how = ("along every spatial axis at once" if len(report.axes[0].axes) > 1 else
           "along one axis, the others as declared")
    out = [f"{varied} {dims(report.shape)}: each of sizes {lo}..{hi} {how}", ""]
    rows = []
    for label, ax in _groups(report):
        for row in ax.rows:
            rows.append([label, sizes_text(row, hi)] + [affine_text(o) for o in row.outputs])
        if not ax.rows:
            rows.append([label, "none"] + ["-"] * len(report.outputs))
    out.append(table(["axis", "size n"] + report.outputs, rows))
    for label, ax in _groups(report):
        for index, ns in ax.rejected().items():
            layer = report.net.layers[index]
            reason = report.reason(ax.outcomes[ns[0]])
            out.append(f"{label}: {len(ns)} refused ({runs_text(ns)}) by layer '{layer.name}' "
                       f"({layer.type}, line {layer.span.line}); at {ns[0]}: {reason}")
    if report.unchecked:
        out.append(f"not held to their weights' shapes (the declared size does not reach them): "
                   f"{', '.join(report.unchecked)}")
    return "\n".join(out)


def report_json(report) -> dict:
    def line(row):
        return {"sizes": sizes_text(row, hi), "start": row.start, "stop": row.stop,
                "step": row.step, "residues": list(row.residues),
                "outputs": {o: affine_text(f) for o, f in zip(report.outputs, row.outputs)}}
    hi = report.axes[0].hi
    return {
        "name": report.net.name,
        "input": report.input,
        "shape": list(report.shape),
        "varied": report.varied,
        "outputs": report.outputs,
        "range": [report.axes[0].lo, hi],
        "axes": [{"axes": list(ax.axes), "name": ax.label(len(report.shape)),
                  "declared": list(ax.declared), "rows": [line(r) for r in ax.rows],
                  "accepted": {str(n): dict(zip(report.outputs, ax.outcomes[n]))
                               for n in ax.accepted},
                  "rejected": [{"layer": report.net.layers[i].name,
                                "type": report.net.layers[i].type,
                                "line": report.net.layers[i].span.line, "sizes": ns,
                                "message": report.reason(ax.outcomes[ns[0]])}
                               for i, ns in ax.rejected().items()]}
                 for ax in report.axes],
        "unchecked": report.unchecked,
    }
