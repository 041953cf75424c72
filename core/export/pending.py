"""Export rules of node types whose modules are being changed by someone else right now
(activations, layers, conv, losses). They move into their classes once those modules are
free; until then `rules.rule()` finds them here. Methods take (node_type, p, e).
"""

from __future__ import annotations

import math

import numpy as np

# ---------------------------------------------------------------------------------------------
# Helpers copied into exported modules (numpy)


def sigmoid(x):
    """1 / (1 + e^-x) without overflow: exp is only ever taken of -|x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def log_softmax(x, axis):
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def conv_windows(x, k, stride):
    """The k x k windows of NCHW x, a view shaped (N, C, Ho, Wo, k, k)."""
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))
    return windows[:, :, ::stride, ::stride]


def scatter_windows(g_win, shape, k, stride):
    """Sum per-window gradients (N, C, Ho, Wo, k, k) back onto an NCHW input of `shape`."""
    gx = np.zeros(shape, dtype=g_win.dtype)
    ho, wo = g_win.shape[2:4]
    for i in range(k):
        rows = slice(i, i + stride * (ho - 1) + 1, stride)
        for j in range(k):
            cols = slice(j, j + stride * (wo - 1) + 1, stride)
            gx[:, :, rows, cols] += g_win[:, :, :, :, i, j]
    return gx


def conv2d(x, weight, bias, stride, padding):
    """PyTorch's conv2d (cross-correlation) on NCHW x; returns (y, the padded x)."""
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    win = conv_windows(x, weight.shape[2], stride)
    y = np.tensordot(win, weight, axes=([1, 4, 5], [1, 2, 3]))  # (N, Ho, Wo, O)
    if bias is not None:
        y += bias
    return y.transpose(0, 3, 1, 2), x


def conv2d_backward(xp, weight, gy, stride, padding):
    """Gradients of conv2d to x, weight and bias, from the padded x it kept."""
    k = weight.shape[2]
    g_win = np.tensordot(gy, weight, axes=([1], [0]))  # (N, Ho, Wo, C, k, k)
    gx = scatter_windows(g_win.transpose(0, 3, 1, 2, 4, 5), xp.shape, k, stride)
    if padding:
        gx = gx[:, :, padding:-padding, padding:-padding]
    gw = np.tensordot(gy, conv_windows(xp, k, stride), axes=([0, 2, 3], [0, 2, 3]))
    return gx, gw, gy.sum(axis=(0, 2, 3))


def max_pool2d(x, k, stride):
    """Max over k x k windows; returns (y, the index of each window's first maximum)."""
    win = conv_windows(x, k, stride)
    flat = win.reshape(win.shape[:4] + (k * k,))
    idx = flat.argmax(axis=-1)
    return np.take_along_axis(flat, idx[..., None], axis=-1)[..., 0], idx


def max_pool2d_backward(shape, idx, gy, k, stride):
    g_win = np.zeros(idx.shape + (k * k,), dtype=gy.dtype)
    np.put_along_axis(g_win, idx[..., None], gy[..., None], axis=-1)
    return scatter_windows(g_win.reshape(idx.shape + (k, k)), shape, k, stride)


def avg_pool2d_backward(shape, gy, k, stride):
    share = gy / (k * k)
    g_win = np.broadcast_to(share[..., None, None], share.shape + (k, k))
    return scatter_windows(g_win, shape, k, stride)


def cross_entropy(logits, target):
    """Mean softmax cross-entropy, classes on the last axis; target ids or probabilities.
    Returns (loss, log-probabilities)."""
    logp = log_softmax(logits, -1)
    positions = math.prod(logits.shape[:-1])
    if target.dtype.kind in "iu":
        picked = np.take_along_axis(logp, target[..., None], axis=-1)
        loss = -picked.sum() / positions
    else:
        loss = -(target * logp).sum() / positions
    return np.asarray(loss, dtype=logits.dtype), logp


def cross_entropy_backward(logp, target, gy):
    """Gradients of cross_entropy to the logits and (probabilities only) the target."""
    scale = gy / math.prod(logp.shape[:-1])
    g_logits = np.exp(logp)
    if target.dtype.kind in "iu":
        picked = np.take_along_axis(g_logits, target[..., None], -1)
        np.put_along_axis(g_logits, target[..., None], picked - 1, -1)
        g_target = None
    else:
        g_logits *= target.sum(axis=-1, keepdims=True)
        g_logits -= target
        g_target = -logp * scale
    g_logits *= scale
    return g_logits, g_target


# ---------------------------------------------------------------------------------------------
# Helpers copied into exported modules (torch)

F = None  # torch.nn.functional, in the exported module


def torch_cross_entropy(logits, target):
    """Cross-entropy with classes on the last axis (PyTorch wants them on axis 1)."""
    if logits.ndim > 2:
        logits = logits.movedim(-1, 1)
        if target.is_floating_point():
            target = target.movedim(-1, 1)
    return F.cross_entropy(logits, target)


# ---------------------------------------------------------------------------------------------
# Rules


def _np_batch_rows(e, name: str) -> str:
    return f"{name}.reshape(-1, {name}.shape[-1])"


def _linear_forward(t, p, e):
    return e.fmt("{x} @ {weight} + {bias}" if p["bias"] else "{x} @ {weight}")


def _linear_backward(t, p, e):
    out = {}
    if e.need("x"):
        out["x"] = e.fmt("{gy} @ {weight}.T")
    if e.ndim("x") == 2:
        out["weight"] = e.fmt("{x}.T @ {gy}")
        if p["bias"]:
            out["bias"] = e.fmt("{gy}.sum(axis=0)")
    else:
        out["weight"] = e.fmt(f"{_np_batch_rows(e, '{x}')}.T @ {_np_batch_rows(e, '{gy}')}")
        if p["bias"]:
            out["bias"] = e.fmt(f"{_np_batch_rows(e, '{gy}')}.sum(axis=0)")
    return out


def _linear_module(t, p, e):
    n_in = e.t("x").shape[-1]
    return f"nn.Linear({n_in}, {p['out_features']}, bias={p['bias']})"


def _embedding_backward(t, p, e):
    gw = e.tmp("gw")
    e.emit(e.fmt(f"{gw} = np.zeros({{weight}}.shape, dtype={{gy}}.dtype)"))
    e.emit(e.fmt(f"np.add.at({gw}, {{x}}.ravel(), {{gy}}.reshape(-1, {{weight}}.shape[1]))"))
    return {"weight": gw}


def _layernorm_forward(t, p, e):
    xhat, rstd = e.local("xhat"), e.local("rstd")
    xc = e.tmp("xc")
    e.emit(e.fmt(f"{xc} = {{x}} - {{x}}.mean(axis=-1, keepdims=True)"))
    e.emit(e.fmt(f"{rstd} = 1 / np.sqrt(({xc} * {xc}).mean(axis=-1, keepdims=True) + {{eps}})"))
    e.emit(f"{xhat} = {xc} * {rstd}")
    return e.fmt(f"{xhat} * {{weight}} + {{bias}}")


def _layernorm_backward(t, p, e):
    xhat, rstd = e.local("xhat"), e.local("rstd")
    out = {}
    if e.need("x"):
        gxhat = e.tmp("gxhat")
        e.emit(e.fmt(f"{gxhat} = {{gy}} * {{weight}}"))
        out["x"] = (f"{rstd} * ({gxhat} - {gxhat}.mean(axis=-1, keepdims=True) - {xhat} * "
                    f"({gxhat} * {xhat}).mean(axis=-1, keepdims=True))")
    rows = e.tmp("rows")
    e.emit(e.fmt(f"{rows} = {{gy}}.reshape(-1, {{gy}}.shape[-1])"))
    out["weight"] = f"({rows} * {xhat}.reshape({rows}.shape)).sum(axis=0)"
    out["bias"] = f"{rows}.sum(axis=0)"
    return out


def _dropout_forward(t, p, e):
    if p["p"] == 0.0:
        e.emit(f"{e.local('scale')} = 1.0")
        return e.fmt("{x}")
    scale = e.local("scale")
    if p["p"] == 1.0:
        e.emit(e.fmt(f"{scale} = np.zeros({{x}}.shape, dtype={{x}}.dtype) if train else 1.0"))
    else:
        keep = f"1.0 / (1.0 - {e.lit(p['p'])})"
        e.emit(e.fmt(f"{scale} = (rng.random({{x}}.shape) >= {{p}}).astype({{x}}.dtype) * "
                     f"({keep}) if train else 1.0"))
    return e.fmt(f"{{x}} * {scale}")


def _conv_forward(t, p, e):
    name = e.helper(conv2d)
    bias = "{bias}" if p["bias"] else "None"
    xp = e.local("xpad")
    e.emit(e.fmt(f"{{y}}, {xp} = {name}({{x}}, {{weight}}, {bias}, {{stride}}, {{padding}})"))


def _conv_backward(t, p, e):
    name = e.helper(conv2d_backward)
    gx, gw, gb = e.tmp("gx"), e.tmp("gw"), e.tmp("gb")
    e.emit(e.fmt(f"{gx}, {gw}, {gb} = {name}({e.local('xpad')}, {{weight}}, {{gy}}, {{stride}}, "
                 f"{{padding}})"))
    return {"x": gx, "weight": gw, "bias": gb}


def _stride(p) -> int:
    return p["stride"] or p["kernel_size"]


def _maxpool_forward(t, p, e):
    name = e.helper(max_pool2d)
    idx = e.local("argmax")
    e.emit(e.fmt(f"{{y}}, {idx} = {name}({{x}}, {{kernel_size}}, {_stride(p)})"))


def _maxpool_backward(t, p, e):
    name = e.helper(max_pool2d_backward)
    return {"x": e.fmt(f"{name}({{x}}.shape, {e.local('argmax')}, {{gy}}, {{kernel_size}}, {_stride(p)})")}


def _avgpool_forward(t, p, e):
    name = e.helper(conv_windows)
    return e.fmt(f"{name}({{x}}, {{kernel_size}}, {_stride(p)}).mean(axis=(4, 5))")


def _avgpool_backward(t, p, e):
    name = e.helper(avg_pool2d_backward)
    return {"x": e.fmt(f"{name}({{x}}.shape, {{gy}}, {{kernel_size}}, {_stride(p)})")}


def _difference_forward(fn: str):
    def forward(t, p, e):
        d = e.local("diff")
        e.emit(e.fmt(f"{d} = {{pred}} - {{target}}"))
        return f"np.asarray(({fn.format(d=d)}).mean(), dtype={d}.dtype)"
    return forward


def _difference_backward(grad: str):
    def backward(t, p, e):
        d = e.local("diff")
        g = e.tmp("g")
        e.emit(e.fmt(f"{g} = {grad.format(d=d)} * ({{gy}} / {d}.size)"))
        out = {}
        if e.need("pred"):
            out["pred"] = e.ub(g, "pred", _broadcast_shape(e, "pred"))
        if e.need("target"):
            out["target"] = e.ub(f"-{g}", "target", _broadcast_shape(e, "pred"))
        return out
    return backward


def _ce_forward(t, p, e):
    name = e.helper(cross_entropy)
    logp = e.local("logp")
    e.emit(e.fmt(f"{{y}}, {logp} = {name}({{logits}}, {{target}})"))


def _ce_backward(t, p, e):
    name = e.helper(cross_entropy_backward)
    gl, gt = e.tmp("glogits"), e.tmp("gtarget")
    e.emit(e.fmt(f"{gl}, {gt} = {name}({e.local('logp')}, {{target}}, {{gy}})"))
    return {"logits": gl, "target": gt}


def _bce_forward(t, p, e):
    return e.fmt("np.asarray((np.maximum({logits}, 0) - {logits} * {target} "
                 "+ np.log1p(np.exp(-np.abs({logits})))).mean(), dtype={logits}.dtype)")


def _bce_backward(t, p, e):
    name = e.helper(sigmoid)
    n = e.tmp("scale")
    e.emit(e.fmt(f"{n} = {{gy}} / np.broadcast({{logits}}, {{target}}).size"))
    out = {}
    if e.need("logits"):
        out["logits"] = e.ub(e.fmt(f"({name}({{logits}}) - {{target}}) * {n}"), "logits",
                             _broadcast_shape(e))
    if e.need("target"):
        out["target"] = e.ub(e.fmt(f"-{{logits}} * {n}"), "target", _broadcast_shape(e))
    return out


def _broadcast_shape(e, first: str = "logits") -> tuple:
    a, b = e.t(first).shape, e.t("target").shape
    n = max(len(a), len(b))
    a = (1,) * (n - len(a)) + tuple(a)
    b = (1,) * (n - len(b)) + tuple(b)
    return tuple(y if x == 1 else x for x, y in zip(a, b))


def _gelu_forward(t, p, e):
    th = e.local("tanh")
    c = math.sqrt(2.0 / math.pi)
    e.emit(e.fmt(f"{th} = np.tanh({c!r} * ({{x}} + 0.044715 * {{x}} * {{x}} * {{x}}))"))
    return e.fmt(f"0.5 * {{x}} * (1 + {th})")


def _gelu_backward(t, p, e):
    th = e.local("tanh")
    c = math.sqrt(2.0 / math.pi)
    inner = e.fmt(f"{c!r} * (1 + 3 * 0.044715 * {{x}} * {{x}})")
    return {"x": e.fmt(f"{{gy}} * (0.5 * (1 + {th}) + 0.5 * {{x}} * (1 - {th} * {th}) * ({inner}))")}


def _sigmoid_forward(t, p, e):
    return e.fmt(f"{e.helper(sigmoid)}({{x}})")


def _softplus_forward(t, p, e):
    return e.fmt("np.where({x} > 20.0, {x}, np.log1p(np.exp(np.minimum({x}, 20.0))))")


def _softplus_backward(t, p, e):
    return {"x": e.fmt(f"np.where({{x}} > 20.0, {{gy}}, {{gy}} * {e.helper(sigmoid)}({{x}}))")}


def _softmax_forward(t, p, e):
    ex = e.tmp("exp")
    e.emit(e.fmt(f"{ex} = np.exp({{x}} - {{x}}.max(axis={{axis}}, keepdims=True))"))
    return e.fmt(f"{ex} / {ex}.sum(axis={{axis}}, keepdims=True)")


def _log_softmax_forward(t, p, e):
    return e.fmt(f"{e.helper(log_softmax)}({{x}}, {{axis}})")


RULES = {
    "ReLU": {"np_forward": "np.maximum({x}, 0)", "np_backward": {"x": "np.where({x} > 0, {gy}, 0)"},
             "torch_forward": "torch.relu({x})"},
    "LeakyReLU": {"np_forward": "np.where({x} > 0, {x}, {x} * {negative_slope})",
                  "np_backward": {"x": "np.where({x} > 0, {gy}, {gy} * {negative_slope})"},
                  "torch_forward": "F.leaky_relu({x}, {negative_slope})"},
    "Sigmoid": {"np_forward": _sigmoid_forward, "np_backward": {"x": "{gy} * {y} * (1 - {y})"},
                "np_helpers": (sigmoid,), "torch_forward": "torch.sigmoid({x})"},
    "Tanh": {"np_forward": "np.tanh({x})", "np_backward": {"x": "{gy} * (1 - {y} * {y})"},
             "torch_forward": "torch.tanh({x})"},
    "ELU": {"np_forward": "np.where({x} > 0, {x}, {alpha} * np.expm1(np.minimum({x}, 0)))",
            "np_backward": {"x": "np.where({x} > 0, {gy}, {gy} * ({y} + {alpha}))"},
            "torch_forward": "F.elu({x}, {alpha})"},
    "Softplus": {"np_forward": _softplus_forward, "np_backward": _softplus_backward,
                 "np_helpers": (sigmoid,), "torch_forward": "F.softplus({x})"},
    "GELU": {"np_forward": _gelu_forward, "np_backward": _gelu_backward,
             "torch_forward": "F.gelu({x}, approximate=\"tanh\")"},
    "Identity": {"np_forward": "{x}", "np_backward": {"x": "{gy}"}, "torch_forward": "{x}"},
    "Softmax": {"np_forward": _softmax_forward,
                "np_backward": {"x": "{y} * ({gy} - ({gy} * {y}).sum(axis={axis}, keepdims=True))"},
                "torch_forward": "torch.softmax({x}, dim={axis})"},
    "LogSoftmax": {"np_forward": _log_softmax_forward, "np_helpers": (log_softmax,),
                   "np_backward": {"x": "{gy} - np.exp({y}) * {gy}.sum(axis={axis}, keepdims=True)"},
                   "torch_forward": "torch.log_softmax({x}, dim={axis})"},
    "Linear": {"np_forward": _linear_forward, "np_backward": _linear_backward,
               "torch_module": _linear_module, "torch_forward": "{self}({x})",
               "torch_weights": {"weight": ("weight", True), "bias": ("bias", False)}},
    "Embedding": {"np_forward": "{weight}[{x}]", "np_backward": _embedding_backward,
                  "torch_module": lambda t, p, e: (f"nn.Embedding({p['num_embeddings']}, "
                                                   f"{p['embedding_dim']})"),
                  "torch_forward": "{self}({x})", "torch_weights": {"weight": ("weight", False)}},
    "LayerNorm": {"np_forward": _layernorm_forward, "np_backward": _layernorm_backward,
                  "torch_module": lambda t, p, e: (f"nn.LayerNorm({e.t('x').shape[-1]}, "
                                                   f"eps={e.lit(p['eps'])})"),
                  "torch_forward": "{self}({x})",
                  "torch_weights": {"weight": ("weight", False), "bias": ("bias", False)}},
    "Dropout": {"np_forward": _dropout_forward, "np_backward": lambda t, p, e: {"x": e.fmt(f"{{gy}} * {e.local('scale')}")},
                "torch_module": lambda t, p, e: f"nn.Dropout({e.lit(p['p'])})",
                "torch_forward": "{self}({x})", "torch_weights": {}},
    "Conv2D": {"np_forward": _conv_forward, "np_backward": _conv_backward,
               "np_helpers": (conv_windows, scatter_windows, conv2d, conv2d_backward),
               "torch_module": lambda t, p, e: (
                   f"nn.Conv2d({e.t('x').shape[1]}, {p['out_channels']}, {p['kernel_size']}, "
                   f"stride={p['stride']}, padding={p['padding']}, bias={p['bias']})"),
               "torch_forward": "{self}({x})",
               "torch_weights": {"weight": ("weight", False), "bias": ("bias", False)}},
    "MaxPool2D": {"np_forward": _maxpool_forward, "np_backward": _maxpool_backward,
                  "np_helpers": (conv_windows, scatter_windows, max_pool2d, max_pool2d_backward),
                  "torch_forward": lambda t, p, e: e.fmt(
                      f"F.max_pool2d({{x}}, {{kernel_size}}, {_stride(p)})")},
    "AvgPool2D": {"np_forward": _avgpool_forward, "np_backward": _avgpool_backward,
                  "np_helpers": (conv_windows, scatter_windows, avg_pool2d_backward),
                  "torch_forward": lambda t, p, e: e.fmt(
                      f"F.avg_pool2d({{x}}, {{kernel_size}}, {_stride(p)})")},
    "MSELoss": {"np_forward": _difference_forward("{d} * {d}"),
                "np_backward": _difference_backward("2 * {d}"),
                "torch_forward": "torch.mean(({pred} - {target}) ** 2)"},
    "L1Loss": {"np_forward": _difference_forward("np.abs({d})"),
               "np_backward": _difference_backward("np.sign({d})"),
               "torch_forward": "torch.mean(torch.abs({pred} - {target}))"},
    "CrossEntropyLoss": {"np_forward": _ce_forward, "np_backward": _ce_backward,
                         "np_helpers": (log_softmax, cross_entropy, cross_entropy_backward),
                         "torch_helpers": (torch_cross_entropy,),
                         "torch_forward": lambda t, p, e: e.fmt(
                             f"{e.helper(torch_cross_entropy)}({{logits}}, {{target}})")},
    "BCEWithLogitsLoss": {"np_forward": _bce_forward, "np_backward": _bce_backward,
                          "np_helpers": (sigmoid,),
                          "torch_forward": "F.binary_cross_entropy_with_logits("
                                           "{logits}, {target}.expand_as({logits}))"},
}
