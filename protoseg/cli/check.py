"""`protoseg check`: the silent traps of a net, found statically (protoseg.analysis.check): each
Crop's declared offset beside the one its bottoms' coordinate maps call for, misaligned bottoms,
pooling whose clip rule fires, and whether the net takes the input size it declares.

Exit 0 when there are no errors (warnings do not change it), 2 when the net cannot run as
declared (as for any other bad input)."""
from __future__ import annotations

from ..analysis import check_net
from ..text import fmt_number, plural
from .options import add_net_options, input_shapes, net_state
from .output import json_number, table, to_json


def register(sub):
    p = sub.add_parser("check", help="find misaligned crops and other silent traps",
                       description="Check a net statically: each Crop's offset against the one "
                                   "the coordinate maps call for, bottoms that do not line up, "
                                   "pooling whose clip rule fires, and the declared input size. "
                                   "Exits 0 when there are no errors (warnings included), 2 "
                                   "when the net cannot run as declared.")
    add_net_options(p)
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("--pretty", action="store_true", help="indent JSON output")
    return p


def run(args) -> int:
    from ..net import load_net
    net = load_net(args.prototxt, **net_state(args))
    report = check_net(net, input_shapes(args))
    if args.format == "json":
        print(to_json(report_json(net, report), args.pretty))
    else:
        print(report_text(net, report))
    return 2 if report.errors else 0


def _offsets(values) -> str:
    return ", ".join("-" if v is None else fmt_number(v) for v in values)


def report_text(net, report) -> str:
    out = []
    if report.crops:
        rows = [(a.layer.name, ", ".join(a.layer.bottoms), a.axis,
                 _offsets(a.declared), _offsets(a.derived), a.input or "-")
                for a in report.crops]
        out += [table(("crop", "bottoms", "axis", "declared", "derived", "relative to"), rows), ""]
    for f in report.findings:
        where = f"{f.layer.span}: " if f.layer is not None and f.layer.span else f"{net.file}: "
        layer = f"layer '{f.layer.name}' ({f.layer.type}): " if f.layer is not None else ""
        out.append(f"{where}{f.severity}: {layer}{f.message}")
        if f.hint:
            out.append(f"  hint: {f.hint}")
    out.append(("\n" if report.findings else "")
               + f"{plural(len(report.crops), 'crop')} checked; "
               f"{plural(len(report.warnings), 'warning')}, {plural(len(report.errors), 'error')}")
    return "\n".join(out)


def report_json(net, report) -> dict:
    def where(layer):
        return layer.span.line if layer is not None and layer.span else None
    return {
        "name": net.name,
        "crops": [{"layer": a.layer.name, "line": where(a.layer), "axis": a.axis,
                   "declared": list(a.declared),
                   "derived": [None if d is None else json_number(d) for d in a.derived],
                   "input": a.input,
                   "crop_param": a.has_param} for a in report.crops],
        "findings": [{"severity": f.severity, "kind": f.kind,
                      "layer": f.layer.name if f.layer is not None else None,
                      "type": f.layer.type if f.layer is not None else None,
                      "line": where(f.layer), "message": f.message, "hint": f.hint}
                     for f in report.findings],
        "warnings": len(report.warnings),
        "errors": len(report.errors),
    }
