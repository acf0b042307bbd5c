"""protoseg segment on small generated images with random weights: the files (size, palette,
label range, overlay, probabilities), the preprocessing computed independently here (PIL, numpy,
the compiled module) against the label maps, bad images, the many-image path (folders, lists,
batches, DataLoader workers) and torchrun with 2 CPU processes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from protoseg import compile_net, load_net
from protoseg.caffemodel import write_caffemodel
from protoseg.cli import main
from protoseg.images import voc_palette
from protoseg.segmentation import BUNDLED, _batches, layout, recipe_for

ROOT = Path(__file__).resolve().parents[1]

# A TEST data layer with a transform_param (mean, scale, crop_size 40: DeepLab's padding), then a
# 3x3 convolution, ReLU and a 1x1 classifier to 21 classes: scores at the input's size.
NET = """name: "tiny"
layer { name: "data" type: "ImageData" top: "data" top: "label" include { phase: TEST }
        transform_param { mean_value: 104 mean_value: 117 mean_value: 123 scale: 0.02 crop_size: 40 }
        image_data_param { source: "list.txt" batch_size: 1 } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 8 kernel_size: 3 pad: 1 } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "score" type: "Convolution" bottom: "conv" top: "score" convolution_param { num_output: 21 kernel_size: 1 } }
"""
MEAN, SCALE, CROP = np.array([104, 117, 123], np.float32), np.float32(0.02), 40
# The same layers behind an Input layer: no transform_param (the options give the recipe), run at
# the image's own size.
INPUT_NET = NET.replace(NET[NET.index('layer { name: "data"'):NET.index('layer { name: "conv"')],
                        'layer { name: "input" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 40 dim: 40 } } }\n')


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(prototxt, input-layer prototxt, caffemodel) with random weights (fixed seed)."""
    d = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(7)
    write_caffemodel(d / "tiny.caffemodel", [
        ("conv", "Convolution", [rng.standard_normal((8, 3, 3, 3)).astype(np.float32),
                                 rng.standard_normal(8).astype(np.float32)]),
        ("score", "Convolution", [rng.standard_normal((21, 8, 1, 1)).astype(np.float32),
                                  rng.standard_normal(21).astype(np.float32)])])
    (d / "tiny.prototxt").write_text(NET)
    (d / "tiny_input.prototxt").write_text(INPUT_NET)
    return d / "tiny.prototxt", d / "tiny_input.prototxt", d / "tiny.caffemodel"


def image(path, size, mode="RGB", seed=0):
    """A random image (width, height) = size, saved in `mode`."""
    rng = np.random.default_rng(seed)
    w, h = size
    if mode in ("L",):
        arr = rng.integers(0, 256, (h, w), dtype=np.uint8)
    elif mode == "RGBA":
        arr = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    else:
        arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return path


def segment(*argv):
    return main(["segment", *map(str, argv), "-q", "--workers", "0"])


def expected_labels(prototxt, caffemodel, path, mean, scale, padded, rgb=False):
    """The label map computed here: PIL RGB -> BGR -> (x - mean) * scale -> CHW, zeros below and
    right up to `padded` (or the image's size), the compiled module, the image's window, argmax."""
    import torch
    x = np.asarray(Image.open(path).convert("RGB"), np.float32)
    h, w = x.shape[:2]
    x = (x if rgb else x[:, :, ::-1]) - mean
    x = (x * scale).transpose(2, 0, 1)
    ph, pw = padded or (h, w)
    data = np.zeros((1, 3, ph, pw), np.float32)
    data[0, :, :h, :w] = x
    model = compile_net(prototxt, weights=str(caffemodel), inputs={"data": data.shape})
    with torch.no_grad():
        scores = model(torch.from_numpy(data))
    return scores[0, :, :h, :w].numpy().argmax(0)


def labels_of(path):
    return np.asarray(Image.open(path))


# ---------------------------------------------------------------------------------------------
# the files


@pytest.mark.parametrize("size", [(30, 20), (40, 40), (17, 33)], ids=["30x20", "40x40", "17x33"])
def test_label_map_is_the_argmax_of_the_net_on_the_padded_image(tiny, tmp_path, size):
    net, _, weights = tiny
    img = image(tmp_path / "a.jpg", size, seed=size[0])
    assert segment(net, "--weights", weights, img, "-o", tmp_path / "out") == 0
    png = Image.open(tmp_path / "out" / "a.png")
    assert png.mode == "P" and png.size == size
    np.testing.assert_array_equal(np.asarray(png), expected_labels(net, weights, img, MEAN, SCALE, (CROP, CROP)))


def test_png_has_the_voc_palette(tiny, tmp_path):
    net, _, weights = tiny
    segment(net, "--weights", weights, image(tmp_path / "a.png", (20, 20)), "-o", tmp_path / "out")
    pal = np.asarray(Image.open(tmp_path / "out" / "a.png").getpalette(), np.uint8).reshape(-1, 3)
    # VOC's colour map (VOCdevkit labelcolormap): background, aeroplane, bicycle, person, void
    assert [tuple(pal[i]) for i in (0, 1, 2, 15, 255)] == [(0, 0, 0), (128, 0, 0), (0, 128, 0),
                                                           (192, 128, 128), (224, 224, 192)]
    assert pal.tolist() == np.asarray(voc_palette()).reshape(-1, 3).tolist()


def test_labels_are_classes_of_the_net(tiny, tmp_path):
    net, _, weights = tiny
    segment(net, "--weights", weights, image(tmp_path / "a.png", (40, 40), seed=3), "-o", tmp_path / "out")
    labels = labels_of(tmp_path / "out" / "a.png")
    assert labels.dtype == np.uint8 and labels.max() <= 20 and len(np.unique(labels)) > 3


def test_overlay_blends_the_class_colours_over_the_image(tiny, tmp_path):
    net, _, weights = tiny
    img = image(tmp_path / "a.png", (24, 16), seed=4)
    assert segment(net, "--weights", weights, img, "-o", tmp_path / "out", "--overlay") == 0
    overlay = np.asarray(Image.open(tmp_path / "out" / "a_overlay.png"))
    labels = labels_of(tmp_path / "out" / "a.png")
    rgb = np.asarray(Image.open(img)).astype(np.float64)
    colours = np.asarray(voc_palette(), np.float64).reshape(256, 3)[labels]
    want = np.where((labels == 0)[..., None], rgb, np.rint(0.5 * rgb + 0.5 * colours))
    assert overlay.shape == (16, 24, 3) and (labels > 0).any()
    np.testing.assert_array_equal(overlay, want.astype(np.uint8))


def test_probs_are_the_softmax_of_the_scores(tiny, tmp_path):
    net, _, weights = tiny
    img = image(tmp_path / "a.png", (12, 10), seed=5)
    assert segment(net, "--weights", weights, img, "-o", tmp_path / "out", "--probs") == 0
    p = np.load(tmp_path / "out" / "a.npy")
    assert p.shape == (21, 10, 12) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(0), 1, rtol=1e-5)
    np.testing.assert_array_equal(p.argmax(0), labels_of(tmp_path / "out" / "a.png"))


# ---------------------------------------------------------------------------------------------
# the recipe


def test_options_give_the_recipe_of_a_net_without_one(tiny, tmp_path):
    """Input layer, no transform_param: --mean/--scale/--rgb, at the image's own size."""
    _, net, weights = tiny
    img = image(tmp_path / "a.png", (23, 19), seed=6)
    assert segment(net, "--weights", weights, img, "-o", tmp_path / "out",
                   "--mean", "1,2,3", "--scale", "0.5", "--rgb") == 0
    want = expected_labels(net, weights, img, np.array([1, 2, 3], np.float32), np.float32(0.5), None, rgb=True)
    np.testing.assert_array_equal(labels_of(tmp_path / "out" / "a.png"), want)


def test_a_net_without_recipe_needs_a_mean(tiny, tmp_path, capsys):
    _, net, weights = tiny
    assert segment(net, "--weights", weights, image(tmp_path / "a.png", (8, 8)), "-o", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "no preprocessing known for net 'tiny'" in err and "--mean" in err
    assert not (tmp_path / "out" / "a.png").exists()


def test_mean_file_gives_its_per_channel_mean(tiny, tmp_path):
    """A mean.binaryproto (1, 3, 4, 5) whose channels average 10, 20, 30 (Caffe's cpp_classification
    subtracts the mean file's per-channel mean)."""
    import caffe_pb
    _, net, weights = tiny
    rng = np.random.default_rng(0)
    mean_img = np.stack([c + rng.uniform(-5, 5, (4, 5)) for c in (10, 20, 30)])
    mean_img -= mean_img.mean(axis=(1, 2), keepdims=True) - np.array([10, 20, 30])[:, None, None]
    blob = caffe_pb.blob(caffe_pb.PACKED, mean_img[None].astype(np.float32), legacy=True)
    (tmp_path / "mean.binaryproto").write_bytes(blob.SerializeToString())
    img = image(tmp_path / "a.png", (16, 12), seed=8)
    assert segment(net, "--weights", weights, img, "-o", tmp_path / "out",
                   "--mean-file", tmp_path / "mean.binaryproto") == 0
    want = expected_labels(net, weights, img, np.array([10, 20, 30], np.float32), np.float32(1), None)
    np.testing.assert_array_equal(labels_of(tmp_path / "out" / "a.png"), want)


def test_a_file_that_is_not_a_mean_file(tiny, tmp_path, capsys):
    _, net, weights = tiny
    assert segment(net, "--weights", weights, image(tmp_path / "a.png", (8, 8)), "-o", tmp_path / "out",
                   "--mean-file", net) == 2
    err = capsys.readouterr().err
    assert f"{net}: byte 0: corrupt data" in err and "not a binary BlobProto (mean.binaryproto)" in err


def test_extra_caffemodel_layers_need_no_strict(tiny, tmp_path, capsys):
    net, _, weights = tiny
    write_caffemodel(tmp_path / "more.caffemodel", [("fc9", "InnerProduct", [np.ones((2, 2), np.float32)])])
    extra = tmp_path / "extra.caffemodel"     # two NetParameters concatenated: one with both layer lists
    extra.write_bytes(weights.read_bytes() + (tmp_path / "more.caffemodel").read_bytes())
    img = image(tmp_path / "a.png", (8, 8))
    assert segment(net, "--weights", extra, img, "-o", tmp_path / "out") == 2
    assert "layer 'fc9' (InnerProduct)" in capsys.readouterr().err
    assert segment(net, "--weights", extra, img, "-o", tmp_path / "out", "--no-strict") == 0


# The bundled nets' recipes, as docs/nets.md ("Preprocessing") gives them.
@pytest.mark.parametrize("net,mean,crop,multiple", [
    ("fcn8s", (104.00698793, 116.66876762, 122.67891434), None, None),
    ("deeplab_v1_largefov", (104.008, 116.669, 122.675), (513, 513), None),
    ("deeplab_v2_resnet101_msc", (104.008, 116.669, 122.675), (513, 513), None),
    ("fpn_resnet50", (102.9801, 115.9465, 122.7717), None, 32)])
def test_bundled_recipes(net, mean, crop, multiple):
    r = recipe_for(load_net(ROOT / "prototxts" / f"{net}.prototxt"))
    assert (r.mean, r.scale, r.rgb, r.crop, r.multiple) == (mean, 1.0, False, crop, multiple)
    doc = (ROOT / "docs" / "nets.md").read_text()
    assert ", ".join(map(str, mean)) in doc
    assert set(BUNDLED) == {p.stem for p in (ROOT / "prototxts").glob("*.prototxt")}


def test_bundled_deeplab_end_to_end(tmp_path):
    """DeepLab v1 with random weights, its bundled mean, padded to --crop-size 65 (an 8k+1 size
    small enough for CI; 513 is its default), against the module computed here."""
    from seed_weights import write_seed_caffemodel
    net = ROOT / "prototxts" / "deeplab_v1_largefov.prototxt"
    weights = tmp_path / "w.caffemodel"
    write_seed_caffemodel(weights, net, 65, seed=1)
    img = image(tmp_path / "a.jpg", (50, 37), seed=9)
    assert segment(net, "--weights", weights, img, "-o", tmp_path / "out", "--crop-size", "65") == 0
    want = expected_labels(net, weights, img, np.array([104.008, 116.669, 122.675], np.float32),
                           np.float32(1), (65, 65))
    np.testing.assert_array_equal(labels_of(tmp_path / "out" / "a.png"), want)


@pytest.mark.parametrize("size,crop,max_side,want", [
    ((375, 500), (513, 513), 0, ((375, 500), (513, 513))),    # a VOC image fits: padded
    ((600, 400), (513, 513), 0, ((513, 342), (513, 513))),    # 400 * 513/600 = 342
    ((300, 2000), None, 1024, ((154, 1024), (154, 1024))),    # 300 * 1024/2000 = 153.6
    ((99, 70), None, 1024, ((99, 70), (99, 70))),
])
def test_layout(size, crop, max_side, want):
    from protoseg.segmentation import Recipe
    assert layout(*size, Recipe((0, 0, 0), crop=crop), max_side) == want


def test_layout_pads_to_a_multiple():
    from protoseg.segmentation import Recipe
    assert layout(375, 500, Recipe((0, 0, 0), multiple=32), 1024) == ((375, 500), (384, 512))


def test_a_larger_image_is_resized_and_its_labels_resized_back(tiny, tmp_path, capsys):
    net, _, weights = tiny
    img = image(tmp_path / "big.png", (80, 60), seed=10)
    assert main(["segment", str(net), "--weights", str(weights), str(img), "-o", str(tmp_path / "out"),
                 "--workers", "0"]) == 0
    assert "big.png: 80x60 is larger than the net takes (40x40): run at 40x30" in capsys.readouterr().err
    assert Image.open(tmp_path / "out" / "big.png").size == (80, 60)


# ---------------------------------------------------------------------------------------------
# bad images


def test_unreadable_images_are_all_named_and_nothing_is_written(tiny, tmp_path, capsys):
    net, _, weights = tiny
    good = image(tmp_path / "good.png", (8, 8))
    (tmp_path / "text.jpg").write_text("not an image")
    assert segment(net, "--weights", weights, good, tmp_path / "text.jpg", tmp_path / "missing.png",
                   "-o", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "2 of 3 images cannot be read" in err
    assert f"{tmp_path / 'text.jpg'}: not an image Pillow can read" in err
    assert f"{tmp_path / 'missing.png'}: no such file" in err
    assert not (tmp_path / "out" / "good.png").exists()


def test_16_bit_images_are_refused(tiny, tmp_path, capsys):
    net, _, weights = tiny
    Image.fromarray(np.full((8, 8), 40000, np.uint16)).save(tmp_path / "deep.png")
    assert segment(net, "--weights", weights, tmp_path / "deep.png", "-o", tmp_path / "out") == 2
    assert "deep.png: I;16 image (16-bit): the nets take 8-bit images" in capsys.readouterr().err


@pytest.mark.parametrize("mode", ["L", "RGBA"])
def test_grayscale_and_alpha_become_rgb(tiny, tmp_path, mode):
    """Grayscale: the gray value in each channel; RGBA: the alpha dropped (cv::imread IMREAD_COLOR)."""
    net, _, weights = tiny
    img = image(tmp_path / "a.png", (20, 14), mode=mode, seed=11)
    rgb = Image.open(img).convert("RGB")
    rgb.save(tmp_path / "rgb.png")
    assert segment(net, "--weights", weights, img, tmp_path / "rgb.png", "-o", tmp_path / "out") == 0
    np.testing.assert_array_equal(labels_of(tmp_path / "out" / "a.png"), labels_of(tmp_path / "out" / "rgb.png"))
    if mode == "RGBA":
        np.testing.assert_array_equal(np.asarray(rgb), np.asarray(Image.open(img))[:, :, :3])
    else:
        assert (np.asarray(rgb) == np.asarray(Image.open(img))[:, :, None]).all()


def test_huge_images_are_refused(tiny, tmp_path, capsys, monkeypatch):
    from PIL import Image as PILImage
    net, _, weights = tiny
    img = image(tmp_path / "huge.png", (64, 64))
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 1000)      # 4096 pixels: over the limit
    assert segment(net, "--weights", weights, img, "-o", tmp_path / "out") == 2
    assert "huge.png: refusing a huge image" in capsys.readouterr().err


def test_a_truncated_image_stops_the_run_with_its_name(tiny, tmp_path, capsys):
    net, _, weights = tiny
    good = image(tmp_path / "a.jpg", (40, 40), seed=12)
    data = Path(image(tmp_path / "b.jpg", (40, 40), seed=13)).read_bytes()
    (tmp_path / "b.jpg").write_bytes(data[:len(data) // 2])       # the header reads, the data does not
    assert segment(net, "--weights", weights, good, tmp_path / "b.jpg", "--batch-size", "1",
                   "-o", tmp_path / "out") == 2
    assert f"{tmp_path / 'b.jpg'}: cannot decode" in capsys.readouterr().err
    assert (tmp_path / "out" / "a.png").exists() and not (tmp_path / "out" / "b.png").exists()
    assert not [f for f in os.listdir(tmp_path / "out") if f.endswith(".tmp")]


def test_two_images_with_one_output_name_are_refused(tiny, tmp_path, capsys):
    net, _, weights = tiny
    (tmp_path / "x").mkdir()
    a = image(tmp_path / "a.png", (8, 8))
    b = image(tmp_path / "x" / "a.jpg", (8, 8))
    assert segment(net, "--weights", weights, a, b, "-o", tmp_path / "out") == 2
    assert "1 output name would be written by more than one image" in capsys.readouterr().err


def test_an_output_may_not_overwrite_an_input(tiny, tmp_path, capsys):
    net, _, weights = tiny
    img = image(tmp_path / "a.png", (8, 8))
    assert segment(net, "--weights", weights, img, "-o", tmp_path) == 2
    assert "an output would overwrite an input image" in capsys.readouterr().err


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a CUDA device is present")
def test_cuda_without_a_gpu_is_a_clear_error(tiny, tmp_path, capsys):
    net, _, weights = tiny
    assert segment(net, "--weights", weights, image(tmp_path / "a.png", (8, 8)), "-o", tmp_path / "o",
                   "--device", "cuda") == 2
    assert "no CUDA device is available" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# many images


def test_batches_hold_images_of_one_size():
    layouts = {0: ((5, 5), (8, 8)), 1: ((9, 9), (9, 9)), 2: ((8, 8), (8, 8)), 3: ((9, 9), (9, 9)),
               4: ((3, 3), (8, 8))}
    assert _batches([0, 1, 2, 3, 4], layouts, 2) == [[0, 2], [4], [1, 3]]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Seven images of three sizes, and a list naming four of them."""
    d = tmp_path_factory.mktemp("images")
    for i, size in enumerate([(30, 20), (17, 33), (30, 20), (40, 40), (30, 20), (17, 33), (9, 7)]):
        image(d / f"im{i}.png", size, seed=20 + i)
    (d / "notes.txt").write_text("not an image, skipped in a folder")
    (d / "list.txt").write_text("# four of them\nim1.png\n\nim3.png\nim4.png\nim6.png\n")
    return d


def outputs(d):
    return {f: labels_of(d / f) for f in sorted(os.listdir(d))}


def test_folder_batches_and_workers_do_not_change_the_labels(tiny, folder, tmp_path):
    net, _, weights = tiny
    assert main(["segment", str(net), "--weights", str(weights), str(folder), "-o", str(tmp_path / "one"),
                 "-q", "--workers", "0", "--batch-size", "1"]) == 0
    assert main(["segment", str(net), "--weights", str(weights), str(folder), "-o", str(tmp_path / "many"),
                 "-q", "--workers", "2", "--batch-size", "3"]) == 0
    one, many = outputs(tmp_path / "one"), outputs(tmp_path / "many")
    assert sorted(one) == [f"im{i}.png" for i in range(7)]
    assert one.keys() == many.keys() and all(np.array_equal(one[k], many[k]) for k in one)


def test_list_file(tiny, folder, tmp_path):
    net, _, weights = tiny
    assert segment(net, "--weights", weights, "--list", folder / "list.txt", "-o", tmp_path / "out") == 0
    assert sorted(os.listdir(tmp_path / "out")) == ["im1.png", "im3.png", "im4.png", "im6.png"]


def test_torchrun_two_processes_write_every_image_once(tiny, folder, tmp_path):
    """torchrun --nproc-per-node 2 (CPU, gloo): rank r takes images r, r + 2, ...; the summary
    counts each process's files, which add up to one per image."""
    net, _, weights = tiny
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                        "--nproc-per-node", "2", "-m", "protoseg", "segment", str(net), "--weights",
                        str(weights), str(folder), "-o", str(tmp_path / "out"), "-q", "--workers", "1"],
                       capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "wrote 7 files for 7 images" in r.stdout and "(4 + 3 by 2 processes)" in r.stdout
    assert r.stdout.count("wrote") == 1
    single = tmp_path / "single"
    assert segment(net, "--weights", weights, folder, "-o", single) == 0
    assert outputs(tmp_path / "out").keys() == outputs(single).keys()
    assert all(np.array_equal(a, b) for a, b in zip(outputs(tmp_path / "out").values(), outputs(single).values()))


@pytest.mark.cuda
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="no CUDA device")
def test_cuda_gives_the_cpu_labels(tiny, folder, tmp_path):
    net, _, weights = tiny
    assert segment(net, "--weights", weights, folder, "-o", tmp_path / "cpu", "--device", "cpu") == 0
    assert segment(net, "--weights", weights, folder, "-o", tmp_path / "gpu", "--device", "cuda") == 0
    cpu, gpu = outputs(tmp_path / "cpu"), outputs(tmp_path / "gpu")
    assert cpu.keys() == gpu.keys()
    same = np.mean([np.mean(cpu[k] == gpu[k]) for k in cpu])
    assert same > 0.999                  # ties within float rounding may flip a pixel
