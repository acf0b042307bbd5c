"""A hand-written PyTorch FCN-8s: the baseline that `bench/bench_compile.py` times the compiled
`prototxts/fcn8s.prototxt` against.

Written the way one writes FCN-8s by hand (as in the FCN paper's reference net and the usual
PyTorch ports), independently of protoseg's lowering: VGG-16 stages as `nn.Sequential` blocks,
conv1_1 padded by 100, `nn.ReLU(inplace=True)`, `nn.MaxPool2d(2, 2, ceil_mode=True)` (Caffe's
pooling rounds up), fc6 a 7x7 convolution, fc7 and the score layers 1x1 convolutions, the
upsampling `nn.ConvTranspose2d(..., bias=False)`, the three Caffe Crop layers as slices at offsets
5, 9 and 31, the two Eltwise SUMs as `+`. The layers run in the prototxt's order (score_pool4 after
fc7, ...), so the same tensors are alive at the same time.

The parameter names differ from the compiled module's (which are the Caffe layer names):
`stage1.0.weight` is `conv1_1.weight` and so on; `KEY_MAP` / `from_compiled_state_dict` translate.

    model = FCN8s()
    model.load_state_dict(from_compiled_state_dict(compiled.state_dict()))

Needs only torch.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["FCN8s", "KEY_MAP", "from_compiled_state_dict", "to_compiled_state_dict"]

# VGG-16: (out channels, convolutions) per stage
STAGES = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]


def _stage(c_in: int, c_out: int, n: int, first_pad: int = 1) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(n):
        layers.append(nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=first_pad if i == 0 else 1))
        layers.append(nn.ReLU(inplace=True))
    layers.append(nn.MaxPool2d(2, stride=2, ceil_mode=True))
    return nn.Sequential(*layers)


class FCN8s(nn.Module):
    def __init__(self, num_classes: int = 21):
        super().__init__()
        c_in = 3
        for s, (c_out, n) in enumerate(STAGES, 1):
            setattr(self, f"stage{s}", _stage(c_in, c_out, n, first_pad=100 if s == 1 else 1))
            c_in = c_out
        self.fc6 = nn.Conv2d(512, 4096, 7)
        self.relu6 = nn.ReLU(inplace=True)
        self.fc7 = nn.Conv2d(4096, 4096, 1)
        self.relu7 = nn.ReLU(inplace=True)
        self.score_fr = nn.Conv2d(4096, num_classes, 1)
        self.upscore2 = nn.ConvTranspose2d(num_classes, num_classes, 4, stride=2, bias=False)
        self.score_pool4 = nn.Conv2d(512, num_classes, 1)
        self.upscore_pool4 = nn.ConvTranspose2d(num_classes, num_classes, 4, stride=2, bias=False)
        self.score_pool3 = nn.Conv2d(256, num_classes, 1)
        self.upscore8 = nn.ConvTranspose2d(num_classes, num_classes, 16, stride=8, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool3 = self.stage3(self.stage2(self.stage1(x)))
        pool4 = self.stage4(pool3)
        h = self.relu7(self.fc7(self.relu6(self.fc6(self.stage5(pool4)))))
        upscore2 = self.upscore2(self.score_fr(h))
        h, w = upscore2.shape[2:]
        fuse_pool4 = upscore2 + self.score_pool4(pool4)[:, :, 5:5 + h, 5:5 + w]
        upscore_pool4 = self.upscore_pool4(fuse_pool4)
        h, w = upscore_pool4.shape[2:]
        fuse_pool3 = upscore_pool4 + self.score_pool3(pool3)[:, :, 9:9 + h, 9:9 + w]
        upscore8 = self.upscore8(fuse_pool3)
        return upscore8[:, :, 31:31 + x.shape[2], 31:31 + x.shape[3]]


def _key_map() -> dict:
    """hand-written state_dict key -> compiled (Caffe layer name) key."""
    out = {}
    for s, (_, n) in enumerate(STAGES, 1):
        for i in range(n):
            for p in ("weight", "bias"):
                out[f"stage{s}.{2 * i}.{p}"] = f"conv{s}_{i + 1}.{p}"
    for name in ("fc6", "fc7", "score_fr", "score_pool4", "score_pool3"):
        for p in ("weight", "bias"):
            out[f"{name}.{p}"] = f"{name}.{p}"
    for name in ("upscore2", "upscore_pool4", "upscore8"):
        out[f"{name}.weight"] = f"{name}.weight"
    return out


KEY_MAP = _key_map()


def from_compiled_state_dict(compiled: dict) -> dict:
    """The hand-written model's state_dict from `protoseg.compile_net(fcn8s.prototxt).state_dict()`
    (or the safetensors file `protoseg compile --weights` writes). Every key must be there."""
    missing = sorted(set(KEY_MAP.values()) - set(compiled))
    extra = sorted(set(compiled) - set(KEY_MAP.values()))
    if missing or extra:
        raise KeyError(f"compiled FCN-8s state_dict: missing {missing}, unexpected {extra}")
    return {ours: compiled[theirs] for ours, theirs in KEY_MAP.items()}


def to_compiled_state_dict(ours: dict) -> dict:
    """The other way round: compiled keys from the hand-written model's state_dict."""
    return {theirs: ours[k] for k, theirs in KEY_MAP.items()}
