"""What PyTorch computes for convolution and pooling (Conv1D, Conv2D, ConvTranspose2D, the pools,
AdaptiveAvgPool2D): entries of tests/torch_reference.py's REFERENCE (same signature:
fn(p, inputs, weights) -> outputs). They replace the version-1 entries of Conv2D, MaxPool2D
and AvgPool2D, which knew no dilation, groups, padding or pairs."""

from __future__ import annotations

try:
    import torch.nn.functional as F
except ImportError:  # the table is still read; it runs with torch
    F = None


def _size(v):
    """A size param as PyTorch takes it: an int or an (h, w) tuple."""
    return tuple(v) if isinstance(v, list) else v


def _conv(fn):
    def reference(p, i, w):
        return [fn(i["x"], w["weight"], w.get("bias"), stride=_size(p["stride"]),
                   padding=_size(p["padding"]), dilation=_size(p["dilation"]),
                   groups=p["groups"])]
    return reference


def _conv_transpose2d(p, i, w):
    return [F.conv_transpose2d(i["x"], w["weight"], w.get("bias"), stride=_size(p["stride"]),
                               padding=_size(p["padding"]),
                               output_padding=_size(p["output_padding"]))]


def _pool(fn):
    def reference(p, i, w):
        stride = p["kernel_size"] if p["stride"] is None else p["stride"]
        return [fn(i["x"], _size(p["kernel_size"]), _size(stride), _size(p["padding"]))]
    return reference


REFERENCE: dict = {
    "Conv1D": _conv(lambda *a, **k: F.conv1d(*a, **k)),
    "Conv2D": _conv(lambda *a, **k: F.conv2d(*a, **k)),
    "ConvTranspose2D": _conv_transpose2d,
    "MaxPool2D": _pool(lambda *a: F.max_pool2d(*a)),
    "AvgPool2D": _pool(lambda *a: F.avg_pool2d(*a)),
    "AdaptiveAvgPool2D": lambda p, i, w: [F.adaptive_avg_pool2d(i["x"],
                                                                 _size(p["output_size"]))],
}
