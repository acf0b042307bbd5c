"""The torch module of this layer type (see the package docstring)."""

import torch
from torch import nn

from ..geometry import f32


def greedy_nms(boxes, overlap, threshold, eta=1.0, limit=-1, block=1024):
    """The boxes (rows of `boxes`, highest priority first) a greedy non-maximum suppression keeps,
    as a list of row indices: a box is kept when its overlap with every box kept before it is <=
    the threshold (a NaN overlap: not kept). `overlap(candidates, kept)` gives the (kept,
    candidates) matrix of overlaps. After each kept box, when eta < 1 and the threshold is above
    0.5, the threshold becomes threshold * eta in float32 (SSD's adaptive NMS). At most `limit`
    boxes are kept (-1: no limit). The overlaps are computed `block` candidates at a time."""
    kept = []
    for start in range(0, boxes.shape[0], block):
        chunk = boxes[start:start + block]
        if kept:
            worst = overlap(chunk, boxes[torch.tensor(kept, device=boxes.device)]).amax(0)
        else:
            worst = torch.full((chunk.shape[0],), -float("inf"), device=boxes.device)
        inner = overlap(chunk, chunk)
        for j in range(chunk.shape[0]):
            if not float(worst[j]) <= threshold:
                continue
            kept.append(start + j)
            if len(kept) == limit:
                return kept
            if eta < 1 and threshold > 0.5:
                threshold = f32(threshold * eta)
            worst = torch.maximum(worst, inner[j])
    return kept


def jaccard_overlap(candidates, kept):
    """SSD's JaccardOverlap(candidate, kept) of normalized boxes (bbox_util.cpp), in float32, as
    a (kept, candidates) matrix: 0 when the boxes are apart or only touch, else intersection /
    (size1 + size2 - intersection), the sizes BBoxSize's (0 for an inverted box). Rows are
    (xmin, ymin, xmax, ymax, size); std::max / std::min as C++ defines them (a < b ? b : a)."""
    ax0, ay0, ax1, ay1, asize = candidates.t().contiguous()[:, None, :]
    bx0, by0, bx1, by1, bsize = kept.t().contiguous()[:, :, None]
    apart = (bx0 > ax1) | (bx1 < ax0) | (by0 > ay1) | (by1 < ay0)
    width = torch.where(bx1 < ax1, bx1, ax1) - torch.where(ax0 < bx0, bx0, ax0)
    height = torch.where(by1 < ay1, by1, ay1) - torch.where(ay0 < by0, by0, ay0)
    inter = width * height
    iou = inter / (asize + bsize - inter)
    return torch.where(apart | ~((width > 0) & (height > 0)), torch.zeros_like(iou), iou)


def cxx_sort(items, less):
    """`items` sorted in place exactly as libstdc++'s std::sort (GCC) orders them with the
    comparator `less`: introsort (median-of-three quicksort, heapsort past 2 * log2(n) levels)
    finished by insertion sort over runs of 16. Its order of equal elements is what Caffe's
    keep_top_k step gives; a stable sort gives another."""
    def move_median_to_first(result, a, b, c):
        if less(items[a], items[b]):
            if less(items[b], items[c]):
                pick = b
            elif less(items[a], items[c]):
                pick = c
            else:
                pick = a
        elif less(items[a], items[c]):
            pick = a
        elif less(items[b], items[c]):
            pick = c
        else:
            pick = b
        items[result], items[pick] = items[pick], items[result]

    def partition(first, last, pivot):
        while True:
            while less(items[first], items[pivot]):
                first += 1
            last -= 1
            while less(items[pivot], items[last]):
                last -= 1
            if not first < last:
                return first
            items[first], items[last] = items[last], items[first]
            first += 1

    def adjust_heap(first, hole, length, value):
        top, child = hole, hole
        while child < (length - 1) // 2:
            child = 2 * (child + 1)
            if less(items[first + child], items[first + child - 1]):
                child -= 1
            items[first + hole] = items[first + child]
            hole = child
        if length & 1 == 0 and child == (length - 2) // 2:
            child = 2 * (child + 1)
            items[first + hole] = items[first + child - 1]
            hole = child - 1
        parent = (hole - 1) // 2
        while hole > top and less(items[first + parent], value):
            items[first + hole] = items[first + parent]
            hole = parent
            parent = (hole - 1) // 2
        items[first + hole] = value

    def heap_sort(first, last):
        length = last - first
        for parent in range((length - 2) // 2, -1, -1):
            adjust_heap(first, parent, length, items[first + parent])
        while last - first > 1:
            last -= 1
            value, items[last] = items[last], items[first]
            adjust_heap(first, 0, last - first, value)

    def introsort(first, last, depth):
        while last - first > 16:
            if depth == 0:
                heap_sort(first, last)
                return
            depth -= 1
            move_median_to_first(first, first + 1, first + (last - first) // 2, last - 1)
            cut = partition(first + 1, last, first)
            introsort(cut, last, depth)
            last = cut

    def linear_insert(i):
        value = items[i]
        while less(value, items[i - 1]):
            items[i] = items[i - 1]
            i -= 1
        items[i] = value

    n = len(items)
    if n < 2:
        return items
    introsort(0, n, 2 * (n.bit_length() - 1))
    for i in range(1, n):
        if i < 16 and less(items[i], items[0]):
            items[1:i + 1], items[0] = items[:i], items[i]
        else:
            linear_insert(i)
    return items


class CaffeDetectionOutput(nn.Module):
    """DetectionOutput (SSD fork, detection_output_layer.cpp and bbox_util.cpp, CPU forward):
    decode the box predictions against the priors, then per image and class (background left
    out) keep the boxes whose score is > confidence_threshold, best first (std::stable_sort:
    equal scores by prior index), the first top_k of them, and among those a greedy NMS keeps a
    box whose Jaccard overlap with every box kept before is <= nms_threshold (adaptive with eta
    < 1). When an image has more than keep_top_k detections, the best keep_top_k over all
    classes stay (Caffe's std::sort: libstdc++'s order for equal scores, `cxx_sort`).

    Output (1, 1, N, 7): rows [image, label, score, xmin, ymin, xmax, ymax], by image, then by
    label, then in NMS order (after keep_top_k, in that sort's order). N = the detections kept;
    with none at all (1, 1, num images, 7) of -1 with the image index in column 0.

    Decoding is DecodeBBox's float32 arithmetic in its order, the final +/- half size in double
    (as the C++ writes it); exp is computed in double and rounded, which equals glibc's expf but
    where expf (within 0.502 ulp) rounds the other way.
    """

    def __init__(self, num_classes, share_location=True, background_label_id=0,
                 nms_threshold=0.3, top_k=-1, eta=1.0, keep_top_k=-1,
                 confidence_threshold=-3.4028234663852886e38, code_type="CORNER",
                 variance_encoded_in_target=False):
        super().__init__()
        self.num_classes, self.share_location = num_classes, share_location
        self.background_label_id = background_label_id
        self.nms_threshold, self.top_k, self.eta = nms_threshold, top_k, eta
        self.keep_top_k, self.confidence_threshold = keep_top_k, confidence_threshold
        self.code_type, self.variance_encoded_in_target = code_type, variance_encoded_in_target

    def extra_repr(self):
        return (f"num_classes={self.num_classes}, share_location={self.share_location}, "
                f"background_label_id={self.background_label_id}, nms_threshold={self.nms_threshold}, "
                f"top_k={self.top_k}, eta={self.eta}, keep_top_k={self.keep_top_k}, "
                f"confidence_threshold={self.confidence_threshold}, code_type={self.code_type!r}, "
                f"variance_encoded_in_target={self.variance_encoded_in_target}")

    def decode(self, loc, prior):
        """(..., P, L, 4) box predictions and the (1, 2, P * 4) priors -> (..., P, L, 5): the
        boxes (xmin, ymin, xmax, ymax) and their BBoxSize."""
        box = prior[0, 0].reshape(-1, 1, 4)
        var = prior[0, 1].reshape(-1, 1, 4)
        if self.variance_encoded_in_target:
            var = None
        code = (lambda i: loc[..., i]) if var is None else (lambda i: var[..., i] * loc[..., i])
        if self.code_type == "CORNER":
            corners = [box[..., i] + code(i) for i in range(4)]
        else:
            width, height = box[..., 2] - box[..., 0], box[..., 3] - box[..., 1]
            if not bool(((width > 0) & (height > 0)).all()):
                raise ValueError("DetectionOutput: a prior box has a width or height <= 0 "
                                 "(Caffe's DecodeBBox stops: CHECK_GT(prior_width, 0))")
            if self.code_type == "CORNER_SIZE":
                sides = (width, height, width, height)
                corners = [box[..., i] + code(i) * sides[i] for i in range(4)]
            else:                           # CENTER_SIZE
                cx = code(0) * width + (box[..., 0] + box[..., 2]) / 2
                cy = code(1) * height + (box[..., 1] + box[..., 3]) / 2
                w = torch.exp(code(2).double()).float() * width
                h = torch.exp(code(3).double()).float() * height
                cx, cy, w, h = cx.double(), cy.double(), w.double(), h.double()
                corners = [(cx - w / 2).float(), (cy - h / 2).float(),
                           (cx + w / 2).float(), (cy + h / 2).float()]
        xmin, ymin, xmax, ymax = (c.expand(loc.shape[:-1]) for c in corners)
        inverted = (xmax < xmin) | (ymax < ymin)
        size = torch.where(inverted, torch.zeros_like(xmin), (xmax - xmin) * (ymax - ymin))
        return torch.stack((xmin, ymin, xmax, ymax, size), -1)

    def detections(self, scores, boxes):
        """One image: {label: [prior index, ...]} in NMS order, every class but the background."""
        out = {}
        for c in range(self.num_classes):
            if c == self.background_label_id:
                continue
            s = scores[:, c]
            candidates = torch.nonzero(s > self.confidence_threshold).flatten()
            order = torch.sort(s[candidates], descending=True, stable=True).indices
            if -1 < self.top_k < order.numel():
                order = order[:self.top_k]
            candidates = candidates[order]
            b = boxes[candidates, 0 if self.share_location else c]
            kept = greedy_nms(b, jaccard_overlap, self.nms_threshold, self.eta)
            candidates = candidates.tolist()
            out[c] = [candidates[k] for k in kept]
        return out

    def forward(self, loc, conf, prior, *unused):
        num = loc.shape[0]
        num_loc = 1 if self.share_location else self.num_classes
        boxes = self.decode(loc.reshape(num, -1, num_loc, 4), prior)
        scores = conf.reshape(num, -1, self.num_classes)
        rows, kept = [], 0
        for i in range(num):
            found = self.detections(scores[i], boxes[i])
            count = sum(len(v) for v in found.values())
            if -1 < self.keep_top_k < count:
                score = scores[i].tolist()
                pairs = [(score[p][c], c, p) for c in sorted(found) for p in found[c]]
                if len({s for s, _, _ in pairs}) == len(pairs):
                    pairs.sort(key=lambda t: -t[0])
                else:
                    cxx_sort(pairs, lambda a, b: a[0] > b[0])
                found = {}
                for _, c, p in pairs[:self.keep_top_k]:
                    found.setdefault(c, []).append(p)
                count = self.keep_top_k
            kept += count
            for c in sorted(found):
                if found[c]:
                    p = torch.tensor(found[c], device=loc.device)
                    box = boxes[i, p, 0 if self.share_location else c, :4]
                    head = torch.tensor([float(i), float(c)], device=loc.device).expand(len(p), 2)
                    rows.append(torch.cat((head, scores[i, p, c, None], box), 1))
        if kept == 0:
            none = torch.full((num, 7), -1.0, device=loc.device)
            none[:, 0] = torch.arange(num, dtype=none.dtype, device=loc.device)
            return none.reshape(1, 1, num, 7)
        return torch.cat(rows).reshape(1, 1, -1, 7)
