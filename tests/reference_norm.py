"""What PyTorch computes for normalisation with buffers (BatchNorm): entries of
tests/torch_reference.py's REFERENCE (same signature: fn(p, inputs, weights) -> outputs)."""

from __future__ import annotations

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = F = None



def _batch_norm(p, i, w):
    """Evaluation mode, the running statistics at their initial values (the node's own, as a
    fresh module's: zeros and ones); training mode is compared in tests/test_buffers.py."""
    c = i["x"].shape[1]
    zeros, ones = torch.zeros(c, dtype=i["x"].dtype), torch.ones(c, dtype=i["x"].dtype)
    return [F.batch_norm(i["x"], zeros, ones, w["weight"], w["bias"], training=False,
                         momentum=p["momentum"], eps=p["eps"])]


REFERENCE: dict = {"BatchNorm": _batch_norm}
