"""Kernels of indexing, structure, reductions and activations of the version-2 library.

The error function is W. J. Cody's (netlib specfun CALERF): numpy has none, and GELU's exact
form, x * Phi(x), must agree with PyTorch's to 1e-6 and be smooth enough for a finite-difference
check of its derivative. Measured against math.erf on 2e5 points in [-30, 30] its largest relative
error is 4.4e-16 for erf and 8.9e-16 for erfc (tests/test_nodes_structure.py checks 1e-15 and
2e-15). On 1e6 float64 values it takes about 40 ms on this project's shared 2-core machine
(boolean-mask subsets of each range took 70 to 100 ms, a math.erf loop 50 ms; torch 10 ms).
"""

from __future__ import annotations

import math

import numpy as np

from .basic import check_ids

# -- the error function ------------------------------------------------------------------------


def rational_fit(z, top, bottom):
    """A ratio of polynomials in z by Horner's rule, in Cody's layout: the numerator's
    coefficients are top[n] (highest power), top[0], ..., top[n - 1] (constant), the
    denominator's 1 (highest), bottom[0], ..., bottom[n - 1], for n = len(bottom)."""
    n = len(bottom)
    num = z * top[n]
    den = z.copy()
    for i in range(n - 1):
        num += top[i]
        num *= z
        den += bottom[i]
        den *= z
    num += top[n - 1]
    den += bottom[n - 1]
    num /= den
    return num


def cody_erf(x, complement):
    """erf(x), or erfc(x) where `complement`, elementwise, by Cody's rational approximations:
    erf directly for |x| <= 0.46875, erfc(|x|) beyond (one fit up to 4, one in 1/x^2 above),
    each good to about 1e-16 relative in float64. NaN stays NaN."""
    a = (3.16112374387056560, 113.864154151050156, 377.485237685302021,
         3209.37758913846947, 0.185777706184603153)
    b = (23.6012909523441209, 244.024637934444173, 1282.61652607737228, 2844.23683343917062)
    c = (0.564188496988670089, 8.88314979438837594, 66.1191906371416295,
         298.635138197400131, 881.952221241769090, 1712.04761263407058,
         2051.07837782607147, 1230.33935479799725, 2.15311535474403846e-8)
    d = (15.7449261107098347, 117.693950891312499, 537.181101862009858,
         1621.38957456669019, 3290.79923573345963, 4362.61909014324716,
         3439.36767414372164, 1230.33935480374942)
    p = (0.305326634961232344, 0.360344899949804439, 0.125781726111229246,
         0.0160837851487422766, 6.58749161529837803e-4, 0.0163153871373020978)
    q = (2.56852019228982242, 1.87295284992346047, 0.527905102951428412,
         0.0605183413124413191, 0.00233520497626869185)
    x = np.asarray(x)
    y = np.abs(x)
    small = y <= 0.46875
    # Each fit is evaluated everywhere on its own range (clipped), and the right one is
    # picked by multiplying with 0/1 masks: np.where and boolean indexing cost ten times
    # an arithmetic pass. Exact, since the clipped fits are finite (NaN stays NaN).
    xs = np.clip(x, -0.46875, 0.46875)
    near = rational_fit(xs * xs, a, b)
    near *= xs  # erf(x) for |x| <= 0.46875
    t = np.clip(y, 0.46875, 26.6)  # erfc underflows to 0 from 26.543
    u = np.minimum(t, 4.0)
    v = np.maximum(t, 4.0)
    w = 1 / (v * v)
    far = rational_fit(w, p, q)
    far *= w
    np.subtract(0.56418958354775628695, far, out=far)
    far /= v
    mid = t <= 4.0
    tail = rational_fit(u, c, d)
    tail *= mid
    far *= ~mid
    tail += far  # erfc(|x|) e^(|x|^2) beyond 0.46875
    # e^(-t^2) as e^(-s^2) e^(-(t - s)(t + s)), with s = t to the nearest 1/16 (adding and
    # taking away 1.5 * 2^mantissa rounds; np.rint is as slow as np.exp): t * t rounded would
    # cost the result up to 2 t^2 ulps.
    magic = 1.5 * 2.0 ** np.finfo(t.dtype).nmant
    s = t * 16
    s += magic
    s -= magic
    s *= 0.0625
    tail *= np.exp(-(s * s))
    d = s - t  # exact: s and t are within a factor of 2
    d *= s + t
    tail *= np.exp(d)
    tail *= t < 26.543
    if complement:
        near = 1 - near
        np.copysign(tail, x, out=tail)
        tail += 2.0 * (x < 0)  # 2 - erfc(|x|) for x < 0
    else:
        np.subtract(1, tail, out=tail)
        np.copysign(tail, x, out=tail)
    near *= small
    tail *= ~small
    near += tail
    return near


def erf(x):
    """The error function, elementwise."""
    return cody_erf(x, False)


def erfc(x):
    """1 - erf(x), elementwise, accurate where erf(x) is close to 1."""
    return cody_erf(x, True)


def normal_cdf(x):
    """Phi(x), the standard normal distribution function, accurate in both tails (through erfc
    of -x / sqrt(2), not 1 + erf)."""
    return 0.5 * cody_erf(-x * 0.7071067811865476, True)


# -- indexing and structure ----------------------------------------------------------------------


def one_hot(ids, n, dtype):
    """1.0 at each id's position along a new last axis of n, 0.0 elsewhere."""
    check_ids(ids, n, "OneHot ids")
    y = np.zeros(ids.shape + (n,), dtype=dtype)
    np.put_along_axis(y, ids[..., None], 1, axis=-1)
    return y


def split_parts(x, n, axis):
    """x cut into n equal parts along axis: views, no copies."""
    if x.shape[axis] % n:
        raise ValueError(f"Split cannot cut an axis of length {x.shape[axis]} into {n} "
                         f"equal parts")
    return np.split(x, n, axis=axis)


def split_backward(gys, shape, axis, dtype):
    """The gradients of Split's parts joined back along axis; a part that got none (None)
    counts as zeros."""
    n = len(gys)
    part = list(shape)
    part[axis] = shape[axis] // n
    zeros = None
    filled = []
    for g in gys:
        if g is None:
            if zeros is None:
                zeros = np.zeros(part, dtype=dtype)
            g = zeros
        filled.append(g)
    return np.concatenate(filled, axis=axis)


def pad_window(widths, inside):
    """Where a constant padding keeps the input's values: slices of the input (`inside`) or
    of the padded result. widths[i] = (before, after) for axis i; a negative width crops."""
    out = []
    for before, after in widths:
        if inside:
            before, after = -before, -after
        out.append(slice(max(before, 0), -after if after > 0 else None))
    return tuple(out)


def pad_constant(x, widths, value):
    """x with widths[i] = (before, after) entries of `value` added on axis i, as
    torch.nn.functional.pad's constant mode: a negative width removes entries instead."""
    shape = []
    for axis, (n, (before, after)) in enumerate(zip(x.shape, widths)):
        if n + min(before, 0) + min(after, 0) < 0:
            raise ValueError(f"Pad cannot crop {-min(before, 0) - min(after, 0)} entries "
                             f"from axis {axis} of length {n}")
        shape.append(n + before + after)
    y = np.full(shape, value, dtype=x.dtype)
    y[pad_window(widths, False)] = x[pad_window(widths, True)]
    return y


def pad_backward(gy, shape, widths):
    """Pad's gradient: gy where x's values went; a view of gy where nothing was cropped."""
    window = gy[pad_window(widths, False)]
    if all(before >= 0 and after >= 0 for before, after in widths):
        return window
    gx = np.zeros(shape, dtype=gy.dtype)
    gx[pad_window(widths, True)] = window
    return gx


# -- reductions ----------------------------------------------------------------------------------


def logsumexp(x, axes, keepdims):
    """log(sum(exp(x))) over axes, without overflow: exp is taken of x minus its maximum,
    (where that maximum is infinite, of x itself, so -inf rows give -inf as in PyTorch)."""
    top = np.max(x, axis=axes, keepdims=True, initial=-np.inf)
    top = np.where(np.isfinite(top), top, 0)
    total = np.exp(x - top).sum(axis=axes, keepdims=True)
    y = np.log(total, out=total)
    y += top
    return y if keepdims else np.squeeze(y, axis=axes)


def logsumexp_backward(x, y, gy, axes, keepdims):
    """LogSumExp's gradient: gy times softmax(x) over the axes, exp(x - y)."""
    if not keepdims:
        y = np.expand_dims(y, axes)
        gy = np.expand_dims(gy, axes)
    g = np.exp(x - y)
    g *= gy
    return g


def var_backward(x, gy, axes, keepdims, ddof):
    """Var's gradient: 2 (x - mean) / (count - ddof) times gy; NaN where count <= ddof, as
    the variance itself."""
    if not keepdims:
        gy = np.expand_dims(gy, axes)
    count = math.prod(x.shape[a] for a in axes)
    scale = 2.0 / (count - ddof) if count > ddof else math.nan
    g = x - x.mean(axis=axes, keepdims=True)
    g *= gy * scale
    return g
