"""Where the shipped grammar files are: inside the installed package, else the source tree."""
from __future__ import annotations

import os

_HERE = os.path.dirname(os.path.abspath(__file__))


def grammar_path(name: str) -> str:
    """Path of a file of `grammars/`: the wheel installs it as `protoseg/grammars/`; a source
    checkout has it at the top level beside `protoseg/`."""
    for d in (os.path.join(_HERE, "grammars"), os.path.join(os.path.dirname(_HERE), "grammars")):
        p = os.path.join(d, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"protoseg is installed without its grammar file {name!r}")
