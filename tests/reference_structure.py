"""What PyTorch computes for indexing, structure and reduction types (OneHot, ArgMax, Stack, Split, Pad, Min, Var, LogSumExp) and the version-2 activations: entries of
tests/torch_reference.py's REFERENCE (same signature: fn(p, inputs, weights) -> outputs)."""

from __future__ import annotations

try:
    import torch  # noqa: F401
    import torch.nn.functional as F  # noqa: F401
except ImportError:
    torch = F = None

REFERENCE: dict = {}
