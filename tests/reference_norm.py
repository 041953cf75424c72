"""What PyTorch computes for normalisation with buffers (BatchNorm): entries of
tests/torch_reference.py's REFERENCE (same signature: fn(p, inputs, weights) -> outputs)."""

from __future__ import annotations

try:
    import torch  # noqa: F401
    import torch.nn.functional as F  # noqa: F401
except ImportError:
    torch = F = None

REFERENCE: dict = {}
