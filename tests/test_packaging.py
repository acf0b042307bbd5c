"""The wheel carries grammars/ and runs `protoseg shapes` from a clean install, away from the
source tree."""
from __future__ import annotations

import json
import site
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_and_runs(tmp_path):
    dist = tmp_path / "dist"
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(dist), str(ROOT)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    (wheel,) = dist.glob("protoseg-*.whl")
    import zipfile
    names = zipfile.ZipFile(wheel).namelist()
    assert "protoseg/grammars/prototxt.lark" in names and "protoseg/grammars/caffe.proto" in names
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    # The dependencies (lark, numpy, torch...) come from the environment running the tests, without
    # a download: its site-packages folders are added to the new venv's path by a .pth file. (A venv
    # made with system_site_packages=True would see the *base* interpreter's packages, not those of
    # the venv the tests run in.) Their own .pth files, such as the editable install of this source
    # tree, are not processed, so `import protoseg` finds the wheel installed below.
    ours = {sysconfig.get_paths()[k] for k in ("purelib", "platlib")} | {site.getusersitepackages()}
    target = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                            capture_output=True, text=True, check=True).stdout.strip()
    Path(target, "test-dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    clean = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}       # no PYTHONPATH to the source tree
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q",
                        str(wheel)], capture_output=True, text=True, env=clean)
    assert r.returncode == 0, r.stderr
    fcn = tmp_path / "fcn8s.prototxt"
    fcn.write_text((ROOT / "prototxts" / "fcn8s.prototxt").read_text())
    r = subprocess.run([str(env_dir / "bin" / "protoseg"), "shapes", str(fcn), "--format", "json"],
                       capture_output=True, text=True, cwd=tmp_path, env=clean)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["blobs"]["score"] == [1, 21, 500, 500]
    r = subprocess.run([str(py), "-c", "import protoseg, os; print(protoseg.__file__)"],
                       capture_output=True, text=True, cwd=tmp_path, env=clean)
    assert str(env_dir) in r.stdout
