"""Images in and out of `protoseg segment`, through Pillow.

Reading gives 8-bit RGB, as Caffe's data layers (cv::imread with IMREAD_COLOR) give 8-bit colour:
- grayscale (L, 1-bit) and palette images are converted to RGB (the gray value in every channel,
  the palette's colours); CMYK and YCbCr through Pillow's conversion;
- an alpha channel (RGBA, LA, PA) is dropped, as IMREAD_COLOR drops it;
- 16-bit and 32-bit images (I;16, I, F) are refused: the nets take 0..255 values and how to
  bring other ranges there is the user's choice;
- the EXIF orientation is not applied (FCN's infer.py reads with PIL, which does not);
- an image over Pillow's decompression-bomb limit (MAX_IMAGE_PIXELS, 89 M pixels by default) is
  refused.
Every problem is an ImageError naming the file. Label maps are written as indexed PNGs with the
PASCAL VOC palette (index 255, VOC's "void", is the palette's last colour).
"""
from __future__ import annotations

import os
import warnings

import numpy as np

from .errors import ProtosegError

__all__ = ["ImageError", "voc_palette", "image_size", "read_image", "write_label_png",
           "write_overlay"]

_CONVERTIBLE = {"RGB", "L", "1", "P", "RGBA", "LA", "PA", "CMYK", "YCbCr", "RGBX", "La", "RGBa"}


class ImageError(ProtosegError):
    """An image that cannot be read (the message names the file)."""


def voc_palette() -> list:
    """The PASCAL VOC colour map, 256 RGB triples flattened: the bits of the class index spread
    over the high bits of R, G and B (VOCdevkit's labelcolormap): 1 (128, 0, 0), 2 (0, 128, 0),
    15 (192, 128, 128), 255 (224, 224, 192)."""
    out = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= (c & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out += [r, g, b]
    return out


def _open(path):
    from PIL import Image, UnidentifiedImageError
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"{path}: refusing a huge image ({e})") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image Pillow can read") from None
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a folder, not an image") from None
    except OSError as e:
        raise ImageError(f"{path}: cannot read: {e.strerror or e}") from None


def _check_mode(path, im) -> None:
    if im.mode.startswith("I") or im.mode == "F":
        raise ImageError(f"{path}: {im.mode} image ({'16' if '16' in im.mode else '32'}-bit): the "
                         f"nets take 8-bit images; convert it to 8 bits per channel first")
    if im.mode not in _CONVERTIBLE:
        raise ImageError(f"{path}: unsupported image mode {im.mode}")


def image_size(path) -> tuple:
    """(height, width) from the image's header, checked as read_image checks it."""
    path = os.fspath(path)
    with _open(path) as im:
        _check_mode(path, im)
        return im.height, im.width


def read_image(path) -> np.ndarray:
    """The image as an (H, W, 3) uint8 RGB array (see the module's conversion rules)."""
    path = os.fspath(path)
    with _open(path) as im:
        _check_mode(path, im)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")      # e.g. a palette with transparency
                rgb = im.convert("RGB")
            return np.asarray(rgb, dtype=np.uint8)
        except OSError as e:                         # truncated or corrupt data
            raise ImageError(f"{path}: cannot decode: {e}") from None


def write_label_png(path, labels: np.ndarray) -> None:
    """Write an (H, W) uint8 label map as an indexed PNG with the VOC palette."""
    from PIL import Image
    im = Image.fromarray(np.ascontiguousarray(labels, np.uint8))     # mode L; a palette makes it P
    im.putpalette(voc_palette())
    im.save(path, format="PNG")


def write_overlay(path, image: np.ndarray, labels: np.ndarray, alpha: float = 0.5) -> None:
    """Write the RGB image blended with the labels' VOC colours: (1 - alpha) image + alpha
    colour, rounded; pixels of class 0 (background) keep the image."""
    from PIL import Image
    colours = np.asarray(voc_palette(), np.float32).reshape(256, 3)[labels]
    blend = (1 - alpha) * image.astype(np.float32) + alpha * colours
    out = np.where((labels == 0)[..., None], image, np.rint(blend).astype(np.uint8))
    Image.fromarray(out).save(path, format="PNG")
