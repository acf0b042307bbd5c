"""The README's examples are run: every `$ protoseg ...` line of its console blocks and every
python block, in a scratch folder holding our prototxts and `fcn8s-heavy-pascal.caffemodel`, an
FCN-8s caffemodel with random weights (the published one is not downloadable here), and
`images/0001.jpg`, `0002.jpg`: random 160x120 images for the `segment` examples. A python
block whose first line is `# file: NAME.py` is written there as that file (the blocks after it
import it); every other python block runs as a script of its own, as a user would run it."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import opencv_helpers

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```(console|python)\n(.*?)```", README, re.S)
COMMANDS = [line[2:] for kind, body in BLOCKS if kind == "console" for line in body.splitlines()
            if line.startswith("$ protoseg ")]
PYTHON = [body for kind, body in BLOCKS if kind == "python" and not body.startswith("# file: ")]
FILES = {body.split("\n", 1)[0][len("# file: "):].strip(): body for kind, body in BLOCKS
         if kind == "python" and body.startswith("# file: ")}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "prototxts", d / "prototxts")
    if any("fcn8s-heavy-pascal.caffemodel" in c for c in COMMANDS + PYTHON):
        opencv_helpers.write_fcn_caffemodel(d / "fcn8s-heavy-pascal.caffemodel", "fcn8s", seed=0)
    if any("images/" in c for c in COMMANDS + PYTHON):
        from PIL import Image
        (d / "images").mkdir()
        for i in (1, 2):
            pixels = np.random.default_rng(i).integers(0, 256, (120, 160, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(d / "images" / f"{i:04d}.jpg")
    for name, body in FILES.items():
        (d / name).write_text(body)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command(command, workdir):
    argv = shlex.split(command)
    if any(a.endswith((".svg", ".png", ".pdf", ".html")) for a in argv) and shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-m", "protoseg", *argv[1:]], cwd=workdir, capture_output=True,
                       text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip()


@pytest.mark.parametrize("code", PYTHON, ids=[f"python-{i}" for i in range(len(PYTHON))])
def test_readme_python(code, workdir, tmp_path):
    script = tmp_path / "example.py"
    script.write_text(code)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(workdir)]))
    r = subprocess.run([sys.executable, str(script)], cwd=workdir, capture_output=True, text=True,
                       env=env)
    assert r.returncode == 0, r.stderr


def test_readme_has_the_two_setup_commands():
    setup = README.split("## Set up", 1)[1].split("```console\n", 1)[1].split("```", 1)[0]
    lines = [l for l in setup.splitlines() if l.startswith("$ ")]
    assert len(lines) == 2
    assert "protoseg shapes prototxts/fcn8s.prototxt" in lines[0]
    assert lines[1] == "$ python -m pytest -q"
    assert "python -m pytest -q" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("image", re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README))
def test_readme_image_exists(image):
    assert (ROOT / image).is_file()
