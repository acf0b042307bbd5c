"""`protoseg segment`: run a segmentation net on images and write label maps (protoseg.segmentation)."""
from __future__ import annotations

import argparse
import functools
import sys
import time


def _floats(text: str) -> list:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None


def _at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return value
    return parse


def register(sub):
    p = sub.add_parser("segment", help="segment images with a net and its caffemodel: label maps as "
                                       "indexed PNGs (PASCAL VOC palette)")
    p.add_argument("prototxt", help="the net definition (.prototxt)")
    p.add_argument("images", nargs="*", metavar="IMAGE",
                   help="image files, or folders of images (their image files, not recursive)")
    p.add_argument("--weights", required=True, help="the trained weights (.caffemodel)")
    p.add_argument("-o", "--output-dir", required=True, help="the folder for the outputs (made if missing)")
    p.add_argument("--list", metavar="FILE", help="a file listing images, one path per line "
                                                  "(relative to the list's folder)")
    p.add_argument("--overlay", action="store_true", help="also write NAME_overlay.png: the labels' "
                                                          "colours blended over the image")
    p.add_argument("--probs", action="store_true", help="also write NAME.npy: the class "
                                                        "probabilities (softmax of the scores), classes x H x W")
    p.add_argument("--output", metavar="BLOB", help="the score blob (default: the net's output)")
    p.add_argument("--no-strict", action="store_true",
                   help="ignore caffemodel layers the prototxt lacks and learnable layers the "
                        "caffemodel lacks (Caffe's own behaviour), as `port --no-strict`")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    p.add_argument("--batch-size", type=_at_least(1), default=4, help="images per batch, among images of "
                                                             "one size (default 4)")
    p.add_argument("--workers", type=_at_least(0), default=2, help="processes decoding images (default 2; 0: "
                                                          "in this process)")
    pre = p.add_argument_group("preprocessing (default: the net's TEST data layer transform_param, "
                               "else protoseg's recipe for its own nets, docs/nets.md)")
    pre.add_argument("--mean", type=_floats, metavar="B,G,R",
                     help="per-channel mean, in the order the net takes the channels")
    pre.add_argument("--mean-file", metavar="FILE", help="a mean.binaryproto (its per-channel mean)")
    pre.add_argument("--scale", type=float, help="multiply by this after the mean subtraction")
    pre.add_argument("--rgb", action="store_true", default=None,
                     help="feed RGB instead of Caffe's BGR")
    pre.add_argument("--crop-size", type=_at_least(0), metavar="N",
                     help="pad every image to NxN (0: run at the image's own size)")
    pre.add_argument("--max-side", type=_at_least(0), default=1024, metavar="N",
                     help="for nets run at the image's size, resize images with a longer side to N "
                          "(default 1024; 0: never)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or notes")
    # IMAGE... may also follow options (`segment NET --weights W a.jpg b.jpg -o out`): argparse
    # fills `images` at its first chance and leaves later positionals over; they are images too
    p.parse_known_args = functools.partial(_parse_known_args, p)
    return p


def _parse_known_args(parser, args=None, namespace=None):
    namespace, rest = argparse.ArgumentParser.parse_known_args(parser, args, namespace)
    namespace.images = namespace.images + [a for a in rest if not a.startswith("-")]
    return namespace, [a for a in rest if a.startswith("-")]


def run(args) -> int:
    from ..segmentation import list_images, segment_images
    from ..text import plural
    images = list_images(args.images, args.list)
    start = time.perf_counter()
    written = segment_images(
        args.prototxt, args.weights, images, args.output_dir, overlay=args.overlay, probs=args.probs,
        output=args.output, strict=not args.no_strict, device=args.device, batch_size=args.batch_size, workers=args.workers,
        mean=args.mean, mean_file=args.mean_file, scale=args.scale, rgb=args.rgb,
        crop_size=args.crop_size, max_side=args.max_side, progress=False if args.quiet else None,
        log=(lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr)))
    counts = _gather(len(written))
    if counts is not None:
        took = time.perf_counter() - start
        total = sum(counts)
        per = f" ({' + '.join(map(str, counts))} by {len(counts)} processes)" if len(counts) > 1 else ""
        print(f"wrote {plural(total, 'file')} for {plural(len(images), 'image')} to "
              f"{args.output_dir}{per} in {took:.1f} s (loading the net included)")
    return 0


def _gather(n: int):
    """Every process's count on rank 0 (None on the other ranks); [n] without torch.distributed."""
    import torch.distributed as dist
    if not dist.is_available() or not dist.is_initialized():
        return [n]
    counts = [None] * dist.get_world_size()
    dist.all_gather_object(counts, n)
    rank = dist.get_rank()
    dist.destroy_process_group()
    return counts if rank == 0 else None
