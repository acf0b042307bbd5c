"""Read Caffe ``.caffemodel`` weight files at the protobuf wire level.

A caffemodel is one serialized ``NetParameter`` (caffe.proto; see docs caffe-semantics §1.1-1.5, §4,
§5). Only a handful of its fields matter for weights: the net name, the layer list (``layer`` = 100 in
current "V2" files, ``layers`` = 2 in legacy V1 files, with a nested V0 ``layer`` = 1 in the oldest
ones), each layer's name, type and blobs, and each blob's shape and data. Everything else -- layer
parameters, fork-only fields (DeepLab's ``interp_param``, SSD's ``norm_param``, ...), gradients -- is
skipped by its wire type without being decoded.

Why not python protobuf: it needs the whole file as one ``bytes`` object and then builds a second
copy of every float inside the message objects (at least twice the file size in memory, plus a
third copy to get numpy arrays out), it cannot skip ``diff`` blobs, and a schema is needed for
every fork. Here the file is walked with
small reads of tags and lengths, and each float array is allocated once at its final size and filled
with ``readinto`` straight from the file: loading costs about what ``open(path, 'rb').read()`` costs,
and peak memory is the weights themselves. Offsets are Python ints and no single read exceeds
``_CHUNK`` bytes, so files over 2 GiB (and the Linux per-``read`` cap) are no problem.
"""
from __future__ import annotations

import io
import math
import mmap
import os
import stat
import sys
from dataclasses import dataclass

import numpy as np

from .errors import WeightsError
from .text import fmt_shape
from .legacy import v0_types, v1_types, v1_types_by_number

__all__ = ["Blob", "LayerBlobs", "CaffeModel", "read_caffemodel", "load_caffemodel", "write_caffemodel",
           "read_blobproto"]

# Protobuf wire types.
_VARINT, _I64, _LEN, _SGROUP, _EGROUP, _I32 = 0, 1, 2, 3, 4, 5

# Tuning knobs (module level so tests can shrink them to exercise every boundary).
_BUF = 1 << 16          # bytes fetched at once for tags, lengths, strings and small arrays
_CHUNK = 1 << 26        # bytes per readinto call for large arrays (progress updates in between)
_RUN_CHUNK = 1 << 22    # bytes examined at once when decoding unpacked repeated floats/doubles
_MMAP_MIN = 1 << 20     # arrays from this many bytes up live in private anonymous memory maps

_PROGRESS_MIN_SIZE = 100 * 1000 * 1000   # show a bar by default only for files over 100 MB

_CORRUPT_HINT = "the file is damaged, or it is not a binary Caffe .caffemodel"
_TRUNCATED_HINT = "the file is shorter than its own contents say: was a download or copy interrupted?"

# Signatures of files people mistake for caffemodels: (prefix, what it is, hint).
_SIGNATURES: list[tuple[bytes, str, str | None]] = [
    (b"\x89PNG\r\n\x1a\n", "a PNG image", None),
    (b"\xff\xd8\xff", "a JPEG image", None),
    (b"GIF8", "a GIF image", None),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (a .caffemodel.h5?)",
     "protoseg reads binary protobuf .caffemodel files; save the weights from Caffe with "
     "snapshot_format: BINARYPROTO"),
    (b"PK\x03\x04", "a zip archive (a PyTorch .pt/.pth checkpoint or a NumPy .npz?)", None),
    (b"PK\x05\x06", "a zip archive", None),
    (b"\x1f\x8b", "a gzip-compressed file", "decompress it first (gunzip)"),
    (b"BZh", "a bzip2-compressed file", "decompress it first (bunzip2)"),
    (b"\xfd7zXZ\x00", "an xz-compressed file", "decompress it first (unxz)"),
    (b"\x93NUMPY", "a NumPy .npy file", None),
]


@dataclass
class Blob:
    """One parameter blob: ``data`` is already reshaped to ``shape``.

    ``data`` is float32, or float64 when the file stored it in ``double_data``. ``legacy`` is True
    when the shape came from the old num/channels/height/width fields (always 4 axes); Caffe then
    accepts it for any target blob whose right-aligned, 1-padded shape matches (§1.5).
    """

    data: np.ndarray
    shape: tuple[int, ...]
    legacy: bool


@dataclass
class LayerBlobs:
    """A layer of the file: its name, V2 type string, blobs, and the byte offset of its field tag."""

    name: str
    type: str
    blobs: list[Blob]
    offset: int


@dataclass
class CaffeModel:
    """The weights part of a caffemodel. ``format`` is "V2" (``layer``), "V1" (``layers``) or "V0"
    (``layers { layer { ... } }``); ``size`` is the file size in bytes."""

    path: str
    name: str
    format: str
    layers: list[LayerBlobs]
    size: int


def _alloc(count: int, dtype: str, *, populate: bool = True) -> np.ndarray:
    """An uninitialised 1-D array for ``count`` values, to be filled by ``readinto``.

    Large arrays are not taken from numpy's allocator: numpy marks every array of 4 MiB and more
    MADV_HUGEPAGE, and with the common THP setting ``defrag=madvise`` the first touch of each 2 MiB
    page may stall in memory compaction -- measured about 3x slower than ``read()``, and erratic.
    A private anonymous map with MAP_POPULATE (Linux) has all its pages faulted in by one system
    call instead of one trap per 4 KiB page, which measured slightly faster than ``read()``'s own
    buffer and steady. The array is an ordinary writable ndarray whose ``base`` is the map; the
    memory is returned when the array is freed. Elsewhere (no MAP_PRIVATE) numpy's allocator is used.
    """
    itemsize = np.dtype(dtype).itemsize
    nbytes = count * itemsize
    if nbytes >= _MMAP_MIN and hasattr(mmap, "MAP_PRIVATE") and hasattr(mmap, "MAP_ANONYMOUS"):
        flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
        if populate:
            flags |= getattr(mmap, "MAP_POPULATE", 0)
        try:
            return np.frombuffer(mmap.mmap(-1, nbytes, flags=flags), dtype, count)
        except (OSError, ValueError):
            pass
    return np.empty(count, dtype)


class _Where:
    """Where the reader is, for error messages: layer index/name, blob index."""

    __slots__ = ("index", "name", "blob")

    def __init__(self, index: int | None = None):
        self.index = index
        self.name: str | None = None
        self.blob: int | None = None

    def __str__(self) -> str:
        if self.index is None:
            return ""
        out = f"layer '{self.name}'" if self.name is not None else f"layer #{self.index}"
        if self.blob is not None:
            out += f" blob {self.blob}"
        return out + ": "


_NET = _Where()


class _Reader:
    """Random access to the file by absolute offset, with a small read-ahead window.

    Every position is an absolute file offset; message ends are absolute offsets too, so nothing is
    limited to 32 bits. Header bytes come from ``self.buf`` (file bytes starting at ``self.buf_pos``);
    large arrays are read straight into their numpy storage.
    """

    def __init__(self, raw: io.FileIO, path: str, size: int, bar):
        self.raw = raw
        self.path = path
        self.size = size
        self.buf = b""
        self.buf_pos = 0
        self.bar = bar
        self.reported = 0

    # -- errors ---------------------------------------------------------------------------------
    def error(self, offset: int, where: _Where, message: str, hint: str | None = None) -> WeightsError:
        return WeightsError(f"{self.path}: byte {offset}: {where}{message}", hint=hint)

    def corrupt(self, offset: int, where: _Where, message: str) -> WeightsError:
        return self.error(offset, where, f"corrupt data: {message}", _CORRUPT_HINT)

    def truncated(self, offset: int, where: _Where, message: str) -> WeightsError:
        return self.error(offset, where, f"truncated file: {message}", _TRUNCATED_HINT)

    # -- raw access -----------------------------------------------------------------------------
    def progress(self, pos: int) -> None:
        if self.bar is not None and pos > self.reported:
            self.bar.update(pos - self.reported)
            self.reported = pos

    def window(self, pos: int, need: int) -> tuple[bytes, int]:
        """(buf, i) such that buf[i:i+need] holds the file bytes at pos (fewer only at EOF)."""
        i = pos - self.buf_pos
        if i >= 0 and i + need <= len(self.buf):
            return self.buf, i
        self.raw.seek(pos)
        self.buf = self.raw.read(max(_BUF, need))
        self.buf_pos = pos
        return self.buf, 0

    def read_array(self, pos: int, nbytes: int, dtype: str, where: _Where) -> np.ndarray:
        """A new array of dtype holding the nbytes file bytes at pos (the caller checked the range)."""
        itemsize = np.dtype(dtype).itemsize
        if nbytes <= _BUF:
            buf, i = self.window(pos, nbytes)
            if len(buf) - i < nbytes:
                raise self.truncated(pos, where, "the file ended while reading (did it change?)")
            return np.frombuffer(buf, dtype, nbytes // itemsize, i).copy()
        out = _alloc(nbytes // itemsize, dtype)
        view = memoryview(out.view(np.uint8))
        self.raw.seek(pos)
        done = 0
        while done < nbytes:
            got = self.raw.readinto(view[done:done + min(_CHUNK, nbytes - done)])
            if not got:
                raise self.truncated(pos + done, where, "the file ended while reading (did it change?)")
            done += got
            self.progress(pos + done)
        return out

    # -- wire primitives ------------------------------------------------------------------------
    def varint(self, pos: int, end: int, where: _Where) -> tuple[int, int]:
        """Decode a varint at pos that must end before ``end``; returns (value, next position)."""
        buf = self.buf
        i = pos - self.buf_pos
        if 0 <= i < len(buf) and pos < end and buf[i] < 0x80:      # fast path: one byte, buffered
            return buf[i], pos + 1
        buf, i = self.window(pos, 10)
        limit = min(len(buf), i + 10, i + (end - pos))
        value = 0
        shift = 0
        j = i
        while j < limit:
            b = buf[j]
            value |= (b & 0x7F) << shift
            j += 1
            if b < 0x80:
                return value & 0xFFFFFFFFFFFFFFFF, pos + (j - i)
            shift += 7
        if j - i >= 10:
            raise self.corrupt(pos, where, "a varint longer than 10 bytes")
        if pos + (j - i) >= self.size:
            raise self.truncated(pos, where, "the file ends inside a varint")
        raise self.corrupt(pos, where, f"a varint runs past the end of its message at byte {end}")

    def tag(self, pos: int, end: int, where: _Where) -> tuple[int, int, int]:
        """Decode a field tag; returns (field number, wire type, next position)."""
        key, nxt = self.varint(pos, end, where)
        field, wire = key >> 3, key & 7
        if wire in (_SGROUP, _EGROUP):
            raise self.corrupt(pos, where, f"field {field} uses a group (wire type {wire}), which "
                                           "caffe.proto never does")
        if wire > _I32:
            raise self.corrupt(pos, where, f"invalid wire type {wire} (field {field}); "
                                           "expected a protobuf field tag")
        if field == 0 or field >= 1 << 29:
            raise self.corrupt(pos, where, f"invalid field number {field}; expected a protobuf field tag")
        return field, wire, nxt

    def length(self, pos: int, end: int, tag_pos: int, field: int, where: _Where) -> tuple[int, int]:
        """Decode the length of a length-delimited field; returns (payload start, payload end)."""
        n, start = self.varint(pos, end, where)
        stop = start + n
        if stop > self.size:
            raise self.truncated(tag_pos, where, f"field {field} declares {n} bytes but the file has "
                                                 f"only {self.size - start} left (file size {self.size})")
        if stop > end:
            raise self.corrupt(tag_pos, where, f"field {field} declares {n} bytes, running past the end "
                                               f"of its enclosing message at byte {end}")
        return start, stop

    def fixed(self, pos: int, width: int, end: int, tag_pos: int, field: int, where: _Where) -> int:
        stop = pos + width
        if stop > self.size:
            raise self.truncated(tag_pos, where, f"field {field} needs {width} bytes, the file ends first")
        if stop > end:
            raise self.corrupt(tag_pos, where,
                               f"field {field} runs past the end of its message at byte {end}")
        return stop

    def skip(self, field: int, wire: int, pos: int, end: int, tag_pos: int, where: _Where) -> int:
        """Skip the value of an uninteresting field; returns the position after it."""
        if wire == _VARINT:
            return self.varint(pos, end, where)[1]
        if wire == _I64:
            return self.fixed(pos, 8, end, tag_pos, field, where)
        if wire == _I32:
            return self.fixed(pos, 4, end, tag_pos, field, where)
        return self.length(pos, end, tag_pos, field, where)[1]

    def string(self, start: int, stop: int, where: _Where) -> str:
        buf, i = self.window(start, stop - start)
        raw = buf[i:i + stop - start]
        if len(raw) < stop - start:
            raise self.truncated(start, where, "the file ended while reading (did it change?)")
        return raw.decode("utf-8", errors="replace")

    def unpacked_run(self, pos: int, end: int, tag_byte: int, dtype: str, where: _Where
                     ) -> tuple[np.ndarray, int]:
        """Decode consecutive unpacked fixed-width records ``tag_byte value`` starting at pos.

        Old files store each float as its own field (1 tag byte + 4 bytes). Records are viewed through
        a structured dtype a chunk at a time; the run stops at the first record with another tag
        (which the normal loop then handles). Storage for the largest possible run is reserved up
        front, not populated: it is about the run's size in normal files (a blob's other fields are
        tiny) and larger only when the blob also stores gradients, whose share of the reserve is
        never touched and so costs no memory. A view of the filled part is returned.
        """
        width = np.dtype(dtype).itemsize
        rec_size = 1 + width
        record = np.dtype([("tag", "u1"), ("value", dtype)])
        capacity = (end - pos) // rec_size
        if capacity == 0:       # not even the first record fits: an error, not an empty run
            self.fixed(pos + 1, width, end, pos, tag_byte >> 3, where)
        out = _alloc(capacity, dtype, populate=False)
        n = 0
        while n < capacity:
            k = min(capacity - n, max(1, _RUN_CHUNK // rec_size))
            buf, i = self.window(pos, k * rec_size)
            if len(buf) - i < k * rec_size:
                raise self.truncated(pos, where, "the file ended while reading (did it change?)")
            recs = np.frombuffer(buf, record, k, i)
            tags = recs["tag"]
            if tags.min() == tag_byte == tags.max():      # two reductions, no temporary: the usual case
                j = k
            else:
                j = int((tags != tag_byte).argmax())
            out[n:n + j] = recs["value"][:j]
            n += j
            pos += j * rec_size
            self.progress(pos)
            if j < k:
                break
        return (out if n == capacity else out[:n]), pos


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _v0_type(name: str) -> str:
    """A V0 type string as its V2 type string; strings the upgrader does not know (e.g.
    "padding", which it folds away) are kept as they are."""
    v1 = v0_types().get(name)
    return v1_types()[v1] if v1 else name


def _parse_dims(r: _Reader, start: int, stop: int, where: _Where, dims: list[int]) -> None:
    """BlobShape: field 1 ``dim``, repeated int64, packed or not."""
    pos = start
    while pos < stop:
        tag_pos = pos
        field, wire, pos = r.tag(pos, stop, where)
        if field == 1 and wire == _VARINT:
            value, pos = r.varint(pos, stop, where)
            dims.append(_signed(value, 64))
        elif field == 1 and wire == _LEN:
            s, e = r.length(pos, stop, tag_pos, field, where)
            while s < e:
                value, s = r.varint(s, e, where)
                dims.append(_signed(value, 64))
            pos = e
        else:
            pos = r.skip(field, wire, pos, stop, tag_pos, where)


def _parse_blob(r: _Reader, blob_pos: int, start: int, stop: int, where: _Where) -> Blob:
    legacy: list[int | None] = [None, None, None, None]
    dims: list[int] | None = None
    floats: list[np.ndarray] = []
    doubles: list[np.ndarray] = []
    pos = start
    while pos < stop:
        tag_pos = pos
        field, wire, pos = r.tag(pos, stop, where)
        if field in (5, 8):                                       # data / double_data
            dtype, pieces = ("<f4", floats) if field == 5 else ("<f8", doubles)
            width = 4 if field == 5 else 8
            if wire == _LEN:                                      # packed
                s, e = r.length(pos, stop, tag_pos, field, where)
                if (e - s) % width:
                    raise r.corrupt(tag_pos, where, f"packed field {field} holds {e - s} bytes, not a "
                                                    f"multiple of {width}")
                pieces.append(r.read_array(s, e - s, dtype, where))
                pos = e
            elif wire == (_I32 if field == 5 else _I64):          # unpacked
                if pos - tag_pos == 1:                            # the usual one-byte tag: bulk path
                    arr, pos = r.unpacked_run(tag_pos, stop, (field << 3) | wire, dtype, where)
                else:                                             # an over-long tag: one value
                    e = r.fixed(pos, width, stop, tag_pos, field, where)
                    arr = r.read_array(pos, width, dtype, where)
                    pos = e
                pieces.append(arr)
            else:
                pos = r.skip(field, wire, pos, stop, tag_pos, where)
        elif field in (1, 2, 3, 4) and wire == _VARINT:           # num / channels / height / width
            value, pos = r.varint(pos, stop, where)
            legacy[field - 1] = _signed(value, 32)
        elif field == 7 and wire == _LEN:                         # shape (repeated sightings merge)
            s, e = r.length(pos, stop, tag_pos, field, where)
            dims = [] if dims is None else dims
            _parse_dims(r, s, e, where, dims)
            pos = e
        else:                                                     # diff, double_diff, unknown
            pos = r.skip(field, wire, pos, stop, tag_pos, where)

    is_legacy = any(v is not None for v in legacy)
    if is_legacy:
        shape = tuple(v or 0 for v in legacy)
    else:
        shape = tuple(dims) if dims is not None else ()
    if any(d < 0 for d in shape):
        raise r.error(blob_pos, where, f"shape {fmt_shape(shape)} has a negative dimension",
                      _CORRUPT_HINT)
    pieces = doubles if any(p.size for p in doubles) else floats
    if not pieces:
        data = np.empty(0, np.float32)
    elif len(pieces) == 1:
        data = pieces[0]
    else:
        data = np.concatenate(pieces)
    count = math.prod(shape)
    if data.size != count:
        raise r.error(blob_pos, where, f"shape {fmt_shape(shape)} needs {count} values, the file has "
                                       f"{data.size}")
    if not data.dtype.isnative:
        data = data.astype(data.dtype.newbyteorder("="))
    return Blob(data=data.reshape(shape), shape=shape, legacy=is_legacy)


def _parse_layer(r: _Reader, start: int, stop: int, where: _Where, fields: tuple[int, int, int]
                 ) -> tuple[str, list[Blob]]:
    """A layer message with string name/type and BlobProto blobs at the given field numbers
    (LayerParameter: 1, 2, 7; V0LayerParameter: 1, 2, 50). Returns (type, blobs); sets where.name."""
    name_f, type_f, blobs_f = fields
    type_ = ""
    blobs: list[Blob] = []
    pos = start
    while pos < stop:
        tag_pos = pos
        field, wire, pos = r.tag(pos, stop, where)
        if wire == _LEN and field in fields:
            s, e = r.length(pos, stop, tag_pos, field, where)
            if field == name_f:
                where.name = r.string(s, e, where)
            elif field == type_f:
                type_ = r.string(s, e, where)
            else:
                where.blob = len(blobs)
                blobs.append(_parse_blob(r, tag_pos, s, e, where))
                where.blob = None
            pos = e
        else:
            pos = r.skip(field, wire, pos, stop, tag_pos, where)
        r.progress(pos)
    return type_, blobs


def _parse_v1_layer(r: _Reader, start: int, stop: int, where: _Where) -> tuple[str, list[Blob], bool]:
    """V1LayerParameter: 4 name, 5 type enum, 6 blobs, 1 nested V0 layer (which wins when present).
    Returns (type, blobs, is_v0)."""
    v1_name: str | None = None
    v1_type = ""
    v1_blobs: list[Blob] = []
    v0: tuple[str | None, str, list[Blob]] | None = None
    pos = start
    while pos < stop:
        tag_pos = pos
        field, wire, pos = r.tag(pos, stop, where)
        if field == 1 and wire == _LEN:
            s, e = r.length(pos, stop, tag_pos, field, where)
            saved, where.name = where.name, None
            v0_type, v0_blobs = _parse_layer(r, s, e, where, (1, 2, 50))
            v0 = (where.name, _v0_type(v0_type), v0_blobs)
            where.name = saved if where.name is None else where.name
            pos = e
        elif field == 4 and wire == _LEN:
            s, e = r.length(pos, stop, tag_pos, field, where)
            v1_name = r.string(s, e, where)
            if v0 is None or v0[0] is None:
                where.name = v1_name
            pos = e
        elif field == 5 and wire == _VARINT:
            value, pos = r.varint(pos, stop, where)
            value = _signed(value, 32)
            v1_type = v1_types_by_number().get(value, f"V1_TYPE_{value}")
        elif field == 6 and wire == _LEN:
            s, e = r.length(pos, stop, tag_pos, field, where)
            where.blob = len(v1_blobs)
            v1_blobs.append(_parse_blob(r, tag_pos, s, e, where))
            where.blob = None
            pos = e
        else:
            pos = r.skip(field, wire, pos, stop, tag_pos, where)
        r.progress(pos)
    if v0 is not None:
        where.name = v0[0] if v0[0] is not None else ""
        return v0[1], v0[2], True
    where.name = v1_name if v1_name is not None else ""
    return v1_type, v1_blobs, False


def _peek_layer_name(r: _Reader, start: int, field: int) -> str | None:
    """Best effort: the name of a layer whose message runs past EOF (for the error message)."""
    try:
        where = _Where(0)
        pos = start
        for _ in range(16):                     # V1 puts bottoms and tops before the name
            tag_pos = pos
            f, wire, pos = r.tag(pos, r.size, where)
            if wire != _LEN:
                pos = r.skip(f, wire, pos, r.size, tag_pos, where)
                continue
            if field == 2 and f == 1:           # V0: the name is in the nested layer (also cut short)
                pos = r.varint(pos, r.size, where)[1]
                field = 100
                continue
            s, e = r.length(pos, r.size, tag_pos, f, where)
            if (field == 100 and f == 1) or (field == 2 and f == 4):
                return r.string(s, e, where)
            pos = e
    except WeightsError:
        pass
    return None


def _parse_net(r: _Reader) -> tuple[str, str, list[LayerBlobs]]:
    name = ""
    v2: list[LayerBlobs] = []
    v1: list[LayerBlobs] = []
    any_v0 = False
    pos = 0
    end = r.size
    while pos < end:
        tag_pos = pos
        field, wire, pos = r.tag(pos, end, _NET)
        if wire == _LEN and field in (1, 2, 100):
            if field == 1:
                s, e = r.length(pos, end, tag_pos, field, _NET)
                name = r.string(s, e, _NET)
                pos = e
                continue
            where = _Where(len(v1) + len(v2))
            n, s = r.varint(pos, end, where)
            if s + n > r.size:
                where.name = _peek_layer_name(r, s, field)
                raise r.truncated(tag_pos, where, f"the layer declares {n} bytes but the file has only "
                                                  f"{r.size - s} left (file size {r.size})")
            e = s + n
            if field == 100:
                type_, blobs = _parse_layer(r, s, e, where, (1, 2, 7))
                v2.append(LayerBlobs(where.name or "", type_, blobs, tag_pos))
            else:
                type_, blobs, is_v0 = _parse_v1_layer(r, s, e, where)
                any_v0 = any_v0 or is_v0
                v1.append(LayerBlobs(where.name or "", type_, blobs, tag_pos))
            pos = e
        else:
            pos = r.skip(field, wire, pos, end, tag_pos, _NET)
        r.progress(pos)
    if v1 and v2:
        raise r.error(0, _NET, f"the file has both 'layer' ({len(v2)}) and legacy 'layers' ({len(v1)}) "
                               "lists; Caffe refuses such a net", _CORRUPT_HINT)
    if not v1 and not v2:
        raise r.error(0, _NET, "no layers: the file holds no 'layer' or 'layers' entries, so it is not "
                               "a Caffe .caffemodel (or it is an empty net)")
    fmt = "V2" if v2 else ("V0" if any_v0 else "V1")
    return name, fmt, v2 or v1


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\0" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 3:        # only a multi-byte character cut by the sample is allowed
            return False
        text = head[:e.start].decode("utf-8")
    return all(c.isprintable() or c in "\t\n\r" for c in text)


def _check_kind(r: _Reader) -> None:
    """Recognise common non-caffemodel files before parsing, for a clear message."""
    head, i = r.window(0, 4096)
    head = head[i:i + 4096]
    for prefix, what, hint in _SIGNATURES:
        if head.startswith(prefix):
            raise r.error(0, _NET, f"not a caffemodel: this is {what}", hint)
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        raise r.error(0, _NET, "not a caffemodel: this looks like a Python pickle "
                               "(a PyTorch or NumPy checkpoint?)")
    if _looks_like_text(head):
        raise r.error(0, _NET, "this looks like a text file (a .prototxt?), not a binary .caffemodel",
                      "pass the network definition as the prototxt and the trained weights as the "
                      "caffemodel")
    if head[0] == 0x08:
        # NetParameter field 1 is a string; a leading varint field 1 is typical of other protobufs.
        raise r.error(0, _NET, "not a caffemodel: a binary protobuf that is not a Caffe NetParameter "
                               "(an ONNX model or a .solverstate?)")


def _want_progress(progress: bool | None, size: int) -> bool:
    if progress is not None:
        return progress
    stderr = sys.stderr
    try:
        return size > _PROGRESS_MIN_SIZE and stderr is not None and stderr.isatty()
    except (AttributeError, ValueError):
        return False


def read_caffemodel(path: str | os.PathLike, *, progress: bool | None = None) -> CaffeModel:
    """Read every layer's blobs from a binary .caffemodel (V2, V1 or V0 layout).

    ``progress``: show a tqdm bar on stderr (None = only for files over 100 MB on a terminal).
    Raises ``WeightsError`` for anything that is not a readable caffemodel.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"a caffemodel path must be a str or os.PathLike, not {type(path).__name__}")
    path_s = os.fspath(path)
    try:
        if not stat.S_ISREG(os.stat(path_s).st_mode) and not os.path.isdir(path_s):
            raise WeightsError(f"{path_s}: not a regular file (a device, pipe or socket), "
                               f"not a .caffemodel")
        raw = open(path_s, "rb", buffering=0)
    except FileNotFoundError:
        raise WeightsError(f"{path_s}: no such file") from None
    except IsADirectoryError:
        raise WeightsError(f"{path_s}: is a directory, not a .caffemodel file") from None
    except (OSError, ValueError) as e:          # ValueError: a NUL byte in the path
        raise WeightsError(f"{path_s!r}: cannot open: {getattr(e, 'strerror', None) or e}") from None
    bar = None
    try:
        size = os.fstat(raw.fileno()).st_size
        if size == 0:
            raise WeightsError(f"{path_s}: empty file (0 bytes), not a caffemodel")
        if _want_progress(progress, size):
            from tqdm import tqdm

            bar = tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
                       desc=os.path.basename(path_s), leave=False)
        r = _Reader(raw, path_s, size, bar)
        _check_kind(r)
        name, fmt, layers = _parse_net(r)
        r.progress(size)
        return CaffeModel(path=path_s, name=name, format=fmt, layers=layers, size=size)
    except OSError as e:
        raise WeightsError(f"{path_s}: cannot read: {e.strerror or e}") from None
    except MemoryError:
        raise WeightsError(f"{path_s}: not enough memory to load the weights") from None
    finally:
        if bar is not None:
            bar.close()
        raw.close()


def load_caffemodel(path: str | os.PathLike) -> dict[str, list[np.ndarray]]:
    """{layer name: [blob arrays in order]} for the layers that have blobs.

    As in Caffe's Net::CopyTrainedLayersFrom, a layer name listed twice ends up with the later copy.
    """
    model = read_caffemodel(path)
    return {layer.name: [b.data for b in layer.blobs] for layer in model.layers if layer.blobs}


def read_blobproto(path: str | os.PathLike) -> np.ndarray:
    """The array of a file holding one serialized BlobProto (a `mean.binaryproto`, as Caffe's
    compute_image_mean writes it), in its shape (legacy num/channels/height/width or `shape`).
    Raises ``WeightsError`` for a file that is not one."""
    path_s = os.fspath(path)
    try:
        with open(path_s, "rb", buffering=0) as raw:
            size = os.fstat(raw.fileno()).st_size
            r = _Reader(raw, path_s, size, None)
            blob = _parse_blob(r, 0, 0, size, _NET)
    except WeightsError as e:
        e.hint = "the file is damaged, or it is not a binary BlobProto (mean.binaryproto) file"
        raise
    except FileNotFoundError:
        raise WeightsError(f"{path_s}: no such file") from None
    except OSError as e:
        raise WeightsError(f"{path_s}: cannot read: {e.strerror or e}") from None
    if blob.data.size == 0:
        raise WeightsError(f"{path_s}: holds no values: not a BlobProto (mean.binaryproto) file")
    return blob.data


# ---------------------------------------------------------------------------------------------
# writing

def _varint(n: int) -> bytes:
    """Base-128 varint (negative numbers as 64-bit two's complement, as protobuf does)."""
    n &= (1 << 64) - 1
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _len_header(field: int, length: int) -> bytes:
    return _varint((field << 3) | 2) + _varint(length)


def _len_field(field: int, payload: bytes) -> bytes:
    return _len_header(field, len(payload)) + payload


_UNPACKED_FLOAT = np.dtype([("tag", "u1"), ("value", "<f4")])


def _blob_parts(array, packed: bool) -> tuple[bytes, memoryview]:
    """(BlobProto bytes before the data, the data bytes): shape (field 7) then data (field 5),
    packed (one length-delimited field) or unpacked (a tag before every float, as old files)."""
    a = np.asarray(array, dtype="<f4")      # (not ascontiguousarray: it makes 0-axis arrays 1-axis)
    if not a.flags.c_contiguous:
        a = a.copy(order="C")
    dims = b"".join(_varint(int(d)) for d in a.shape)
    shape = _len_field(7, _len_field(1, dims) if a.ndim else b"")
    if packed:
        data = memoryview(a.reshape(-1)).cast("B")
        return shape + _len_header(5, data.nbytes), data
    records = np.empty(a.size, _UNPACKED_FLOAT)
    records["tag"] = (5 << 3) | 5           # field 5, wire type 5 (32-bit)
    records["value"] = a.reshape(-1)
    return shape, memoryview(records).cast("B")


def write_caffemodel(path, layers, *, name: str = "", packed: bool = True) -> int:
    """Write a current-format (V2) caffemodel: `layers` yields (layer name, layer type,
    [blob arrays]); every array becomes a float32 BlobProto with `shape.dim` (a 0-axis array an
    empty shape). `layers` may be a generator, so a caller can free each layer's arrays once
    written. `packed=False` writes every value as its own field, as very old Caffe did. The file
    is written through protoseg.files.Outputs (a temporary, then a rename). Returns its size in
    bytes."""
    from .files import Outputs
    size = 0

    def write(tmp):
        nonlocal size
        with open(tmp, "wb") as f:
            if name:
                f.write(_len_field(1, name.encode()))
            for layer_name, layer_type, blobs in layers:
                parts = [_blob_parts(a, packed) for a in blobs]
                fixed = _len_field(1, layer_name.encode()) + _len_field(2, layer_type.encode())
                body = len(fixed) + sum(len(_len_header(7, len(h) + d.nbytes)) + len(h) + d.nbytes
                                        for h, d in parts)
                f.write(_len_header(100, body) + fixed)
                for head, data in parts:
                    f.write(_len_header(7, len(head) + data.nbytes) + head)
                    f.write(data)
            size = f.tell()

    with Outputs() as out:
        out.add(path, write)
    return size
