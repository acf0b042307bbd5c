"""`protoseg draw -o net.html`: the viewer page (protoseg.viewer), checked as text where that is
enough (self-contained, names escaped) and in a real headless Chromium (tests/cdp.py) for what a
user does with it: the page loads without console errors and asks for nothing beyond its own
file, clicking a node shows its layers, the search finds layers, pan and zoom move the view.

Expected values, derived by hand from the prototxts and Caffe's rules:

- FCN-8s: 33 nodes and DeepLab v2 MSc 437 (tests/test_draw.py's docstring). FCN-8s's `score`
  Crop takes upscore8 1x21x568x568 to data's 1x21x500x500 (caffe-semantics.md §8).
- conv1_1: 64 * 3 * 3 * 3 weights + 64 biases = 1,792 parameters; conv1_1 is 698 wide (500 + 2 *
  100 - 3 + 1); its folded ReLU relu1_1.
- FCN-8s's largest MACs: fc6, 4096 * 512 * 7 * 7 * 16 * 16 = 26,306,674,688 (pool5 is 22 wide,
  22 - 7 + 1 = 16); the conv4 layers have 18.27 G, conv3 18.06 G, conv1_2 and conv2_2 17.96 G.
- layer names holding "pool4": pool4, score_pool4, score_pool4c, fuse_pool4, upscore_pool4 (5).
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from protoseg import infer_shapes, load_net
from protoseg.cli import main
from protoseg.viewer import page, page_data

import cdp

ROOT = Path(__file__).resolve().parents[1]
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")

try:
    import websocket  # noqa: F401
    NO_BROWSER = None if cdp.CHROMIUM else "chromium is not installed"
except ImportError:
    NO_BROWSER = "websocket-client is not installed"
needs_browser = pytest.mark.skipif(NO_BROWSER is not None, reason=NO_BROWSER or "")

HOSTILE = ["</script><script>window.pwned = 1</script>", "<!--", 'a&amp;b "c" \'d\'', "x\u2028y"]
HOSTILE_NET = "\n".join(
    ['layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 2 dim: 8 dim: 8 } } }']
    + [f'layer {{ name: {json.dumps(n)} type: "Convolution" bottom: "x" top: "c{i}" '
       f'convolution_param {{ num_output: 2 kernel_size: 3 }} }}' for i, n in enumerate(HOSTILE)])


def prototxt(name: str) -> str:
    return str(ROOT / "prototxts" / f"{name}.prototxt")


def shapes_of(name: str):
    return infer_shapes(load_net(prototxt(name)))


def data_block(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="ps-data">(.*?)</script>', html, re.S)
    return json.loads(m.group(1))


def node_of(data: dict, layer: str) -> dict:
    (node,) = [n for n in data["nodes"].values() if any(l["name"] == layer for l in n.get("layers", ()))]
    return node


# ---------------------------------------------------------------------------------------------
# the page as text

def test_page_data_folds_in_place_layers_and_carries_cost_and_shapes():
    data = page_data(shapes_of("fcn8s"))
    conv = node_of(data, "conv1_1")
    assert [l["name"] for l in conv["layers"]] == ["conv1_1", "relu1_1"]
    assert conv["layers"][0]["cost"]["params"] == 1792
    assert conv["layers"][0]["tops"][0][:2] == ["conv1_1", [1, 64, 698, 698]]
    (score,) = node_of(data, "score")["layers"]
    assert score["bottoms"] == [["upscore8", [1, 21, 568, 568]], ["data", [1, 3, 500, 500]]]
    assert score["tops"][0][:2] == ["score", [1, 21, 500, 500]]


def test_page_data_receptive_field_of_pool5():
    (pool5,) = node_of(page_data(shapes_of("fcn8s")), "pool5")["layers"]
    # VGG-16 up to pool5: stride 2^5; rf 212; offset -83.5 (README, tests/test_coords.py)
    assert pool5["tops"][0][2]["data"]["H"] == ["32", "-83.5", "212"]


@needs_dot
def test_page_is_self_contained():
    html = page(shapes_of("fcn8s"))
    assert not re.search(r"<link|<img|<iframe|\ssrc=|\shref=|@import|url\(", html)
    assert len(re.findall(r"<script", html)) == 2 and len(re.findall(r"</script", html)) == 2


@needs_dot
def test_hostile_names_stay_inside_the_data():
    html = page(infer_shapes(load_net(text=HOSTILE_NET)))
    assert len(re.findall(r"</script", html, re.I)) == 2        # the data's and the script's own
    assert "<!--" not in html.split("<body>")[1].split("<svg")[0] + html.split("</svg>")[1]
    names = [l["name"] for n in data_block(html)["nodes"].values() for l in n.get("layers", ())]
    assert names == ["in", *HOSTILE]


def test_page_checks_its_argument():
    with pytest.raises(TypeError, match="Shapes"):
        page("fcn8s.prototxt")
    with pytest.raises(TypeError, match="Shapes"):
        page_data(None)


@needs_dot
def test_cli_writes_the_page(tmp_path, capsys):
    out = tmp_path / "fcn8s.html"
    assert main(["draw", prototxt("fcn8s"), "-o", str(out)]) == 0
    assert capsys.readouterr().out == (f"wrote {out}: 47 layers in 32 nodes (15 in-place layers "
                                       f"folded), 1 output, 37 edges\n")
    assert data_block(out.read_text(encoding="utf-8"))["layers"] == 47


@needs_dot
def test_html_does_not_import_torch_or_numpy(tmp_path):
    code = ("import sys, protoseg.cli as c; c.main(['draw', %r, '-o', %r]); "
            "sys.exit(3 if {'torch', 'numpy'} & set(sys.modules) else 0)"
            % (prototxt("fcn8s"), str(tmp_path / "f.html")))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "f.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


# ---------------------------------------------------------------------------------------------
# in a headless Chromium

@pytest.fixture(scope="module")
def browser():
    b = cdp.Browser()
    yield b
    b.close()


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """name -> the path of its page, written once per module."""
    folder = tmp_path_factory.mktemp("viewer")
    made = {}

    def get(name: str) -> Path:
        if name not in made:
            shapes = infer_shapes(load_net(text=HOSTILE_NET)) if name == "hostile" else shapes_of(name)
            made[name] = folder / f"{name}.html"
            made[name].write_text(page(shapes), encoding="utf-8")
        return made[name]
    return get


def centre(browser, selector_js: str):
    return browser.js(f"(() => {{ const r = {selector_js}.getBoundingClientRect(); "
                      f"return [r.left + r.width / 2, r.top + r.height / 2]; }})()")


def click_layer(browser, name: str) -> None:
    """A real mouse click on the node of layer `name` (found by its first label line)."""
    browser.js(f"""(() => {{ const g = [...document.querySelectorAll('g.node')].find(
        g => g.querySelector('text').textContent === {json.dumps(name)});
        g.scrollIntoView(); window.__target = g; }})()""")
    browser.js("document.getElementById('ps-fit').click()")
    x, y = centre(browser, "window.__target")
    browser.click(x, y)


def panel(browser) -> str:
    return browser.js("document.getElementById('ps-panel').innerText")


def view_box(browser) -> list:
    return [float(v) for v in browser.js("document.getElementById('ps-svg').getAttribute('viewBox')").split()]


@needs_dot
@needs_browser
@pytest.mark.parametrize("name, nodes", [("fcn8s", 33), ("deeplab_v2_resnet101_msc", 437)],
                         ids=["fcn8s", "deeplab_v2_resnet101_msc"])
def test_page_loads_without_errors_or_requests(browser, pages, name, nodes):
    path = pages(name)
    browser.open(path)
    assert browser.errors == []
    assert browser.requests == [path.resolve().as_uri()]
    assert browser.js("document.querySelectorAll('#ps-svg g.node').length") == nodes


@needs_dot
@needs_browser
def test_clicking_score_shows_its_shapes(browser, pages):
    browser.open(pages("fcn8s"))
    click_layer(browser, "score")
    text = panel(browser)
    assert text.startswith("score\nCrop, line ")
    assert "top\tscore\t1×21×500×500" in text
    assert "bottom\tupscore8\t1×21×568×568" in text
    assert browser.errors == []


@needs_dot
@needs_browser
def test_clicking_a_node_shows_each_folded_layer(browser, pages):
    browser.open(pages("fcn8s"))
    click_layer(browser, "conv1_1")
    assert browser.js("[...document.querySelectorAll('#ps-panel h2')].map(h => h.textContent)") == \
        ["conv1_1", "+ relu1_1"]
    text = panel(browser)
    assert "num_output: 64" in text and "params\t1,792" in text


@needs_dot
@needs_browser
def test_search_finds_layers_and_enter_selects_the_first(browser, pages):
    browser.open(pages("fcn8s"))
    browser.js("document.getElementById('ps-search').focus()")
    browser.type("pool4")
    assert browser.js("document.getElementById('ps-count').textContent") == "5 layers"
    assert browser.js("document.querySelectorAll('#ps-svg g.node.ps-match').length") == 5
    before = view_box(browser)
    browser.key("Enter", "Enter", "\r")
    assert browser.js("document.querySelector('#ps-panel h2').textContent") == "pool4"
    assert view_box(browser) != before          # centred on it


@needs_dot
@needs_browser
def test_search_finds_a_folded_layer_in_its_node(browser, pages):
    browser.open(pages("fcn8s"))
    browser.js("document.getElementById('ps-search').focus()")
    browser.type("relu5_3")
    assert browser.js("[...document.querySelectorAll('#ps-svg g.node.ps-match')]"
                      ".map(g => g.querySelector('text').textContent)") == ["conv5_3"]


@needs_dot
@needs_browser
def test_wheel_zooms_about_the_cursor_and_drag_pans(browser, pages):
    browser.open(pages("fcn8s"))
    x, y = centre(browser, "document.getElementById('ps-graph')")
    x0, y0, w0, h0 = view_box(browser)
    browser.mouse("mouseWheel", x, y, deltaX=0, deltaY=-400)
    x1, y1, w1, h1 = view_box(browser)
    assert w1 < w0 and h1 < h0 and (x1, y1) != (x0, y0)
    browser.mouse("mousePressed", x, y, button="left", clickCount=1)
    browser.mouse("mouseMoved", x + 100, y + 60, button="left", buttons=1)
    browser.mouse("mouseReleased", x + 100, y + 60, button="left", clickCount=1)
    x2, y2, w2, h2 = view_box(browser)
    assert (w2, h2) == (w1, h1) and x2 < x1 and y2 < y1       # dragged right and down: the view moves left and up
    assert browser.js("document.querySelector('#ps-panel h2')") is None     # a drag is not a click


@needs_dot
@needs_browser
def test_table_lists_every_layer_and_sorts_by_macs(browser, pages):
    browser.open(pages("fcn8s"))
    browser.js("document.getElementById('ps-table-toggle').click()")
    assert browser.js("document.querySelectorAll('#ps-table tbody tr').length") == 47
    browser.js("[...document.querySelectorAll('#ps-table th')].find(th => th.textContent === 'MACs').click()")
    first = browser.js("[...document.querySelector('#ps-table tbody tr').cells].map(c => c.textContent)")
    assert first[:2] == ["fc6", "Convolution"] and first[4] == "26.31 G"


@needs_dot
@needs_browser
def test_hostile_names_are_shown_as_text(browser, pages):
    browser.open(pages("hostile"))
    assert browser.errors == []
    assert browser.js("window.pwned === undefined")
    click_layer(browser, HOSTILE[0])
    assert browser.js("document.querySelector('#ps-panel h2').textContent") == HOSTILE[0]
