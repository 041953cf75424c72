"""What PyTorch computes for recurrent cells and attention (GRUCell, LSTMCell, MultiheadAttention): entries of
tests/torch_reference.py's REFERENCE (same signature: fn(p, inputs, weights) -> outputs).

Each runs PyTorch's own module (nn.GRUCell, nn.LSTMCell, nn.MultiheadAttention) with our tensors
put in by name (torch.func.functional_call), so the names and layouts are checked too.
"""

from __future__ import annotations

try:
    import torch
    from torch import nn
except ImportError:
    torch = nn = None


def _call(module, weights, *args, **kwargs):
    return torch.func.functional_call(module.double(), weights, args, kwargs)


def _gru_cell(p, i, w):
    cell = nn.GRUCell(i["x"].shape[1], p["hidden_size"], bias=p["bias"])
    return [_call(cell, w, i["x"], i["h"])]


def _lstm_cell(p, i, w):
    cell = nn.LSTMCell(i["x"].shape[1], p["hidden_size"], bias=p["bias"])
    return list(_call(cell, w, i["x"], (i["h"], i["c"])))


def blocked(mask, num_heads):
    """Our float mask (> 0: may attend) as PyTorch's boolean attn_mask (True: may not), one
    (L, S) or, for a mask per sample, one per sample and head (B * heads, L, S)."""
    out = ~(mask > 0)
    return out.repeat_interleave(num_heads, dim=0) if out.ndim == 3 else out


def _attention(p, i, w):
    attn = nn.MultiheadAttention(p["embed_dim"], p["num_heads"], bias=p["bias"],
                                 batch_first=True)
    mask = blocked(i["mask"], p["num_heads"]) if "mask" in i else None
    # need_weights=False: the scaled-dot-product path, whose rows with no allowed key give
    # zeros rather than NaN (as ours do).
    y, _ = _call(attn, w, i["query"], i["key"], i["value"], attn_mask=mask, need_weights=False)
    return [y]


REFERENCE: dict = {
    "GRUCell": _gru_cell,
    "LSTMCell": _lstm_cell,
    "MultiheadAttention": _attention,
}
