"""segment: run a segmentation net on images the way the original Caffe demos did, and write a
label map per image (`protoseg segment`, `protoseg.segment_images`).

Preprocessing (a `Recipe`): Caffe's DataTransformer on 8-bit colour (protoseg.images): channels
in BGR order (`rgb` for nets trained on RGB), (pixel - mean) * scale, channels first. It comes
from the net's TEST-phase data layer `transform_param` (mean_value, or mean_file reduced to its
per-channel mean as Caffe's cpp_classification example does, scale, crop_size) when the net has
one; else from protoseg's recipe for a bundled net (docs/nets.md, `BUNDLED`); options given
explicitly override either.

Sizing: a net with a fixed size (crop_size: DeepLab's 513) gets the image padded at the bottom
and right with the mean (zeros after the subtraction) to that size, as DeepLab's ImageSegData
does, and its scores cropped back; other nets run at the image's own size (FCN's infer.py
reshapes the net per image), padded to a multiple where the recipe says so (FPN: 32). An image
larger than the fixed size, or with a side over `max_side` for the other nets, is resized down
(bilinear) to fit, and its scores are resized back to the image (bilinear) before the argmax;
a message says so. The label is the first class of highest score (numpy's argmax, as infer.py).

Streaming: a torch DataLoader decodes and preprocesses in worker processes and stacks batches of
images of one padded size; memory is pinned when the device is CUDA. Under torchrun (WORLD_SIZE
> 1) the list is split across the ranks (image i goes to rank i mod WORLD_SIZE) with
torch.distributed, so every image is written once, by one process. Each image's files are
written together (protoseg.files.Outputs): all of them, or none.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace

import numpy as np

from .errors import InputError
from .files import Outputs, make_folder
from .images import ImageError, image_size, read_image, write_label_png, write_overlay

__all__ = ["Recipe", "BUNDLED", "recipe_for", "segment_images", "list_images"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".pnm", ".tif", ".tiff",
                    ".webp", ".gif")


@dataclass(frozen=True)
class Recipe:
    """How an image becomes the net's input: (pixel - mean) * scale per channel, channels in BGR
    order unless `rgb`; `crop`: the fixed (height, width) the image is padded to, or None for
    the image's own size, padded up to a multiple of `multiple` when set."""

    mean: tuple
    scale: float = 1.0
    rgb: bool = False
    crop: tuple | None = None
    multiple: int | None = None
    source: str = ""

    def describe(self) -> str:
        size = (f"padded to {self.crop[0]}x{self.crop[1]}" if self.crop else "own size" +
                (f", padded to a multiple of {self.multiple}" if self.multiple else ""))
        mean = ", ".join(f"{m:.10g}" for m in self.mean)
        return (f"{'RGB' if self.rgb else 'BGR'}, mean ({mean}), scale {self.scale:g}, {size} "
                f"({self.source})")


_FCN = Recipe((104.00698793, 116.66876762, 122.67891434), source="FCN's infer.py")
_DEEPLAB = Recipe((104.008, 116.669, 122.675), crop=(513, 513), source="DeepLab's test net")
# The recipes of the nets in prototxts/, by net name (docs/nets.md, "Preprocessing").
BUNDLED = {
    "fcn32s": _FCN, "fcn16s": _FCN, "fcn8s": _FCN,
    "deeplab_v1_largefov": _DEEPLAB, "deeplab_v2_aspp_vgg16": _DEEPLAB,
    "deeplab_v2_resnet101_msc": _DEEPLAB,
    "fpn_resnet50": Recipe((102.9801, 115.9465, 122.7717), multiple=32, source="Detectron's PIXEL_MEANS"),
}


def _mean_of_file(path) -> tuple:
    from .caffemodel import read_blobproto
    blob = read_blobproto(path)
    if blob.ndim < 3:
        raise InputError(f"{path}: a mean file holds a (1, C, H, W) or (C, H, W) image; this one "
                         f"is {tuple(blob.shape)}")
    return tuple(float(m) for m in blob.reshape(blob.shape[-3], -1).astype(np.float64).mean(1))


def _image_layer(net):
    """The data layer whose first top is the image input (the first layer without bottoms)."""
    from .layers import spec_of
    for layer in net.layers:
        if not layer.bottoms and spec_of(layer).source and layer.tops:
            return layer
    raise InputError(f"{net.file}: the net has no input or data layer to feed the image to")


def _from_transform_param(layer) -> Recipe | None:
    if not layer.params.has("transform_param"):
        return None
    t = layer.params.get("transform_param")
    where = f"transform_param of data layer '{layer.name}'" + (f", {layer.span}" if layer.span else "")
    if t.has("mean_file"):
        mean = _mean_of_file(t.get("mean_file"))
    else:
        mean = tuple(float(v) for v in t.get("mean_value")) or (0.0,)
    crop = None
    for h, w in (("crop_h", "crop_w"), ("crop_height", "crop_width")):   # the SSD, DeepLab forks
        if t.get(h) and t.get(w):
            crop = (t.get(h), t.get(w))
    if t.get("crop_size"):                                               # wins, as in both forks
        crop = (t.get("crop_size"),) * 2
    return Recipe(mean, float(t.get("scale")), False, crop, None, where)


def recipe_for(net, *, mean=None, mean_file=None, scale=None, rgb=None, crop_size=None) -> Recipe:
    """The preprocessing of a loaded net (see the module docstring): its TEST data layer's
    transform_param, else the bundled recipe of its name, with the given options overriding."""
    from .net import Net
    if not isinstance(net, Net):
        raise TypeError(f"net must be a loaded Net (protoseg.load_net), not {type(net).__name__}")
    if mean is not None and mean_file is not None:
        raise InputError("give a mean or a mean file, not both (as Caffe's transform_param)")
    base = _from_transform_param(_image_layer(net)) or BUNDLED.get(net.name)
    given = {k: v for k, v in (("mean", mean), ("mean_file", mean_file), ("scale", scale),
                               ("rgb", rgb), ("crop_size", crop_size)) if v is not None}
    if base is None:
        if mean is None and mean_file is None:
            raise InputError(f"{net.file}: no preprocessing known for net '{net.name}': it has no "
                             f"TEST data layer with a transform_param and is not one of protoseg's "
                             f"nets; give --mean B,G,R (--mean 0 for none), and --scale, --rgb, "
                             f"--crop-size as the net was trained")
        base = Recipe((0.0,), source="")
    changes = {}
    if mean is not None:
        changes["mean"] = tuple(float(m) for m in mean)
    if mean_file is not None:
        changes["mean"] = _mean_of_file(mean_file)
    if scale is not None:
        changes["scale"] = float(scale)
    if rgb is not None:
        changes["rgb"] = bool(rgb)
    if crop_size is not None:
        changes["crop"] = (int(crop_size),) * 2 if crop_size else None
        changes["multiple"] = None
    if given:
        options = ", ".join(f"--{k.replace('_', '-')}" for k in given)
        changes["source"] = f"{base.source}, with {options}" if base.source else options
    recipe = replace(base, **changes)
    if len(recipe.mean) == 1:
        recipe = replace(recipe, mean=recipe.mean * 3)
    if len(recipe.mean) != 3:
        raise InputError(f"the mean has {len(recipe.mean)} values; colour images need 1 or 3")
    return recipe


# ---------------------------------------------------------------------------------------------
# sizes

def layout(height: int, width: int, recipe: Recipe, max_side: int) -> tuple:
    """((resized height, width), (padded height, width)) of an image."""
    if recipe.crop:
        limit_h, limit_w = recipe.crop
    else:
        limit_h = limit_w = max_side or max(height, width)
    f = min(1.0, limit_h / height, limit_w / width)
    rh, rw = (height, width) if f == 1.0 else (max(1, round(height * f)), max(1, round(width * f)))
    if recipe.crop:
        return (rh, rw), recipe.crop
    m = recipe.multiple or 1
    return (rh, rw), (-(-rh // m) * m, -(-rw // m) * m)


def preprocess(rgb: np.ndarray, resized: tuple, padded: tuple, recipe: Recipe) -> np.ndarray:
    """(3, padded H, padded W) float32: resized (bilinear), channel order, (x - mean) * scale,
    zero (the mean) below and right of the image."""
    if rgb.shape[:2] != tuple(resized):
        from PIL import Image
        rgb = np.asarray(Image.fromarray(rgb).resize((resized[1], resized[0]), Image.Resampling.BILINEAR))
    x = rgb.astype(np.float32)
    if not recipe.rgb:
        x = x[:, :, ::-1]
    x = (x - np.asarray(recipe.mean, np.float32)) * np.float32(recipe.scale)
    out = np.zeros((3,) + tuple(padded), np.float32)
    out[:, :resized[0], :resized[1]] = x.transpose(2, 0, 1)
    return out


# ---------------------------------------------------------------------------------------------
# images

def list_images(paths=(), list_file=None) -> list:
    """The images to segment: files as given, the image files of folders (sorted, not
    recursive), and the lines of `list_file` (one path per line, relative to its folder; blank
    lines and lines starting with # skipped)."""
    out = []
    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            out += sorted(os.path.join(p, f) for f in os.listdir(p)
                          if f.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(p, f)))
        else:
            out.append(p)
    if list_file is not None:
        list_file = os.fspath(list_file)
        try:
            with open(list_file, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except OSError as e:
            raise InputError(f"{list_file}: cannot read the image list: {e.strerror or e}") from None
        folder = os.path.dirname(list_file)
        out += [os.path.join(folder, line.strip()) for line in lines
                if line.strip() and not line.lstrip().startswith("#")]
    if not out:
        raise InputError("no images to segment (give image files, folders of images or --list)")
    return out


def _output_names(images, out_dir, overlay, probs) -> list:
    """[(label png, overlay png or None, npy or None)] per image, named after the image's stem;
    two images with one stem, or an output that is an input, are refused before anything runs."""
    by_stem: dict = {}
    for path in images:
        by_stem.setdefault(os.path.splitext(os.path.basename(path))[0], []).append(path)
    clash = {s: ps for s, ps in by_stem.items() if len(ps) > 1}
    if clash:
        lines = [f"  {s}: " + ", ".join(ps) for s, ps in sorted(clash.items())[:10]]
        raise InputError(f"{len(clash)} output name{'s' if len(clash) > 1 else ''} would be written "
                         f"by more than one image (outputs are named after the image's name):\n"
                         + "\n".join(lines))
    names = []
    for path in images:
        stem = os.path.join(out_dir, os.path.splitext(os.path.basename(path))[0])
        names.append((stem + ".png", stem + "_overlay.png" if overlay else None,
                      stem + ".npy" if probs else None))
    inputs = [os.path.abspath(p) for p in images]
    for outs in names:
        for o in outs:
            if o is not None and os.path.abspath(o) in inputs:
                raise InputError(f"{o}: an output would overwrite an input image; write to another "
                                 f"folder")
    return names


def _check_images(images) -> list:
    """Every image's (height, width), read from its header; all unreadable ones at once."""
    sizes, bad = [], []
    for path in images:
        try:
            sizes.append(image_size(path))
        except ImageError as e:
            bad.append(e)
    if bad:
        raise ImageError.group(bad, f"{len(bad)} of {len(images)} images cannot be read:\n" +
                               "\n".join(f"  {e}" for e in bad[:20]) +
                               (f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""))
    return sizes


class _Images:
    """A torch Dataset: item i is (i, preprocessed array or None, RGB array or None, error)."""

    def __init__(self, images, layouts, recipe, keep_rgb):
        self.images, self.layouts, self.recipe, self.keep_rgb = images, layouts, recipe, keep_rgb

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        try:
            rgb = read_image(self.images[i])
        except ImageError as e:
            return i, None, None, str(e)
        resized, padded = self.layouts[i]
        return i, preprocess(rgb, resized, padded, self.recipe), rgb if self.keep_rgb else None, None


def _collate(items):
    """A batch: (indices, stacked tensor or None, RGB arrays, errors)."""
    import torch
    errors = [e for _, _, _, e in items if e]
    x = None if errors else torch.from_numpy(np.stack([a for _, a, _, _ in items]))
    return [i for i, _, _, _ in items], x, [r for _, _, r, _ in items], errors


def _batches(indices, layouts, batch_size) -> list:
    """Lists of at most batch_size indices of one padded size, in first-seen order."""
    groups: dict = {}
    for i in indices:
        groups.setdefault(layouts[i][1], []).append(i)
    return [g[k:k + batch_size] for g in groups.values() for k in range(0, len(g), batch_size)]


# ---------------------------------------------------------------------------------------------
# the net

class _Net:
    """The compiled net for each input shape. A new shape is planned again (its shapes checked,
    as Caffe's Reshape); the module is built once and reused for every shape whose plan makes
    the same modules, and a new one gets the first one's weights."""

    def __init__(self, net, weights, strict, output, blob, device):
        self.net, self.weights, self.strict = net, weights, strict
        self.output, self.blob, self.device = output, blob, device
        self.modules: dict = {}          # the plan's module calls -> module
        self.shapes: dict = {}           # input shape -> (module, output blob)

    def get(self, shape):
        if shape in self.shapes:
            return self.shapes[shape]
        from .compile import build_module, load_weights
        from .plan import plan_net
        plan = plan_net(self.net, {self.blob: shape}, self.output)
        if len(plan.outputs) > 1:
            raise InputError(f"the net has {len(plan.outputs)} outputs ("
                             + ", ".join(b for b, _ in plan.outputs) + "): choose the score with --output")
        (blob, var), = plan.outputs
        out = plan.var_shapes[var]
        if len(out) != 4 or tuple(out[2:]) != tuple(shape[2:]) or out[0] != shape[0]:
            raise InputError(f"the net's output '{blob}' is {out} for a {shape} input: segment needs "
                             f"the scores (N, classes, H, W) at the input's size"
                             + ("" if self.output else "; choose another output with --output"))
        if out[1] > 256:
            raise InputError(f"'{blob}' has {out[1]} classes: an indexed PNG holds 256")
        extra = [i.blob for i in plan.inputs if i.blob != self.blob]
        if extra:
            raise InputError(f"segment feeds one image input ('{self.blob}'); the net also needs "
                             + ", ".join(extra))
        key = tuple(s.call.code() for s in plan.steps)
        module = self.modules.get(key)
        if module is None:
            module = build_module(plan)
            if self.modules:
                module.load_state_dict(next(iter(self.modules.values())).state_dict())
            else:
                load_weights(module, plan, self.weights, strict=self.strict)
            module = module.to(self.device)
            self.modules[key] = module
        self.shapes[shape] = (module, blob)
        return self.shapes[shape]


def _distributed(device):
    """(rank, world size, device) under torchrun (WORLD_SIZE > 1: the process group is started,
    gloo on CPU, nccl on CUDA, one GPU per local rank), else (0, 1, device)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, device
    import torch
    import torch.distributed as dist
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size(), device


def _device(name):
    import torch
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise InputError(f"unknown device {name!r}: use cpu or cuda (cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {name}: no CUDA device is available to torch here")
    return device


def _write(names, scores, rgb, size, probs) -> list:
    """One image's files from its (C, h, w) scores: resized to the image's `size` if needed,
    labels = argmax, probabilities = softmax. Written together."""
    import torch
    import torch.nn.functional as F
    if tuple(scores.shape[1:]) != tuple(size):
        scores = F.interpolate(scores[None], size=size, mode="bilinear", align_corners=False)[0]
    labels = scores.argmax(0).to(torch.uint8).cpu().numpy()
    png, overlay, npy = names
    written = []
    with Outputs() as out:
        written.append(out.add(png, lambda tmp: write_label_png(tmp, labels)))
        if overlay:
            written.append(out.add(overlay, lambda tmp: write_overlay(tmp, rgb, labels)))
        if npy:
            p = torch.softmax(scores.float(), 0).cpu().numpy()

            def save(tmp):
                with open(tmp, "wb") as f:
                    np.save(f, p)
            written.append(out.add(npy, save))
    return written


def _count(name: str, value, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, not {value!r}")


def _resize_note(path, size, resized, recipe, max_side) -> str:
    limit = f"{recipe.crop[1]}x{recipe.crop[0]}" if recipe.crop else f"--max-side {max_side}"
    return (f"{path}: {size[1]}x{size[0]} is larger than the net takes ({limit}): run at "
            f"{resized[1]}x{resized[0]}, the scores resized back")


def segment_images(prototxt, weights, images, out_dir, *, overlay: bool = False, probs: bool = False,
                   output: str | None = None, strict: bool = True, device=None, batch_size: int = 4,
                   workers: int = 2, mean=None, mean_file=None, scale=None, rgb=None, crop_size=None,
                   max_side: int = 1024, progress: bool | None = None, log=None) -> list:
    """Segment `images` (paths) with the net `prototxt` and its `weights` (a .caffemodel), writing
    into `out_dir` per image <name>.png (the label map, an indexed PNG with the VOC palette),
    with `overlay` <name>_overlay.png (the labels blended over the image) and with `probs`
    <name>.npy (the softmax of the scores, float32, classes x H x W). `strict` as in
    compile_net. Returns the paths this process wrote (under torchrun: its share). `log(message)`
    gets the notes (the recipe, resized images; default: stderr). See the module docstring."""
    _count("batch_size", batch_size, 1)
    _count("workers", workers, 0)
    _count("max_side", max_side, 0)
    if isinstance(images, (str, os.PathLike)):
        raise TypeError("images must be a list of paths, not one path")
    images = list(images)
    if not all(isinstance(p, (str, os.PathLike)) for p in images):
        raise TypeError("images must be a list of paths (str or os.PathLike)")
    if not images:
        raise InputError("no images to segment")
    import torch
    from tqdm import tqdm

    from .net import Net, load_net
    log = log or (lambda message: print(message, file=sys.stderr))
    net = prototxt if isinstance(prototxt, Net) else load_net(prototxt)
    recipe = recipe_for(net, mean=mean, mean_file=mean_file, scale=scale, rgb=rgb, crop_size=crop_size)
    images = [os.fspath(p) for p in images]
    out_dir = make_folder(out_dir)
    names = _output_names(images, out_dir, overlay, probs)
    sizes = _check_images(images)
    layouts = [layout(h, w, recipe, max_side) for h, w in sizes]
    rank, world, dev = _distributed(_device(device))
    mine = list(range(rank, len(images), world))
    if rank == 0:
        log(f"preprocessing: {recipe.describe()}")
    for i in mine:
        if layouts[i][0] != sizes[i]:
            log(_resize_note(images[i], sizes[i], layouts[i][0], recipe, max_side))
    model = _Net(net, weights, strict, output, _image_layer(net).tops[0], dev)
    loader = torch.utils.data.DataLoader(
        _Images(images, layouts, recipe, overlay), batch_sampler=_batches(mine, layouts, batch_size),
        num_workers=workers, collate_fn=_collate, pin_memory=dev.type == "cuda")
    written = []
    with tqdm(total=len(mine), unit="image", disable=None if progress is None else not progress,
              file=sys.stderr, leave=False) as bar, torch.no_grad():
        for indices, x, rgbs, errors in loader:
            if errors:
                raise ImageError(errors[0])
            module, blob = model.get(tuple(x.shape))
            y = module(x.to(dev, non_blocking=True))
            y = y[blob] if isinstance(y, dict) else y
            for k, i in enumerate(indices):
                (rh, rw), _ = layouts[i]
                written += _write(names[i], y[k, :, :rh, :rw], rgbs[k], sizes[i], probs)
                bar.update(1)
    return written
