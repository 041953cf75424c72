"""The built-in dataset generators: seeded, in numpy, each a plain function of its settings
returning a dict of arrays (`spiral(n=300, seed=0)["x"]`). A document names one in its
`training.dataset` entry (`{"kind": "spiral", "n": 600}`); core/datasets.py loads it.

Float arrays are float64 and class ids int64. Bad settings raise DataError naming the setting.
An exported training script generates its data with a copy of these functions
(core/export/copying.py), so they use only numpy, math and each other.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import DataError

# -- checking generator parameters -----------------------------------------------------------

def _int(where: str, name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise DataError(f"{where}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _float(where: str, name: str, value, minimum: float = 0.0, maximum: float = math.inf) -> float:
    if (isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating))
            or not minimum <= value <= maximum):
        bound = f"between {minimum:g} and {maximum:g}" if maximum < math.inf else f">= {minimum:g}"
        raise DataError(f"{where}: {name} must be a number {bound}, got {value!r}")
    return float(value)


def _rng(where: str, seed) -> np.random.Generator:
    return np.random.default_rng(_int(where, "seed", seed, 0))


def _lengths(where: str, n: int, min_len, max_len, rng) -> tuple[np.ndarray, int]:
    """Each row's length, uniform in min_len .. max_len, and max_len (the padded length)."""
    min_len = _int(where, "min_len", min_len, 1)
    max_len = _int(where, "max_len", max_len, 1)
    if min_len > max_len:
        raise DataError(f"{where}: min_len {min_len} is more than max_len {max_len}")
    if min_len == max_len:
        return np.full(n, max_len, dtype=np.int64), max_len
    return rng.integers(min_len, max_len + 1, size=n, dtype=np.int64), max_len


def _step_mask(lengths: np.ndarray, steps: int) -> np.ndarray:
    """(n, steps) bool: True where step t < the row's length."""
    return np.arange(steps)[None, :] < lengths[:, None]


# -- built-in generators ----------------------------------------------------------------------

def spiral(n: int, classes: int = 3, noise: float = 0.2, seed: int = 0) -> dict:
    """Karpathy's spiral arms (CS231n): `classes` interleaved arms around the origin.

    Arm j holds n // classes points (the first n % classes arms one more), at radius r from 0 to
    1 and angle 4 j + 4 r plus Gaussian noise of std `noise` (radians); rows are grouped by arm.
    Returns x float64 (n, 2) = (r sin t, r cos t), y int64 (n,) the arm, 0 .. classes-1.
    """
    where = "dataset 'spiral'"
    n, classes = _int(where, "n", n, 1), _int(where, "classes", classes, 2)
    noise, rng = _float(where, "noise", noise), _rng(where, seed)
    counts = np.full(classes, n // classes) + (np.arange(classes) < n % classes)
    y = np.repeat(np.arange(classes, dtype=np.int64), counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    r = (np.arange(n) - starts) / np.maximum(counts[y] - 1, 1)
    t = 4.0 * y + 4.0 * r + rng.standard_normal(n) * noise
    return {"x": np.stack([r * np.sin(t), r * np.cos(t)], axis=1), "y": y}


def moons(n: int, noise: float = 0.1, seed: int = 0) -> dict:
    """Two interleaving half circles, as scikit-learn's make_moons (rows grouped by moon).

    Moon 0 (n - n // 2 points) is the upper half of the unit circle; moon 1 (n // 2) is the
    lower half shifted to (1, 0.5). Gaussian noise of std `noise` is added to both coordinates.
    Returns x float64 (n, 2), y int64 (n,) in {0, 1}.
    """
    where = "dataset 'moons'"
    n, noise = _int(where, "n", n, 2), _float(where, "noise", noise)
    rng = _rng(where, seed)
    n_in = n // 2
    n_out = n - n_in
    a_out, a_in = np.linspace(0, np.pi, n_out), np.linspace(0, np.pi, n_in)
    x = np.concatenate([np.stack([np.cos(a_out), np.sin(a_out)], axis=1),
                        np.stack([1 - np.cos(a_in), 0.5 - np.sin(a_in)], axis=1)])
    x += rng.standard_normal(x.shape) * noise
    return {"x": x, "y": np.repeat(np.array([0, 1], dtype=np.int64), [n_out, n_in])}


def circles(n: int, noise: float = 0.05, factor: float = 0.5, seed: int = 0) -> dict:
    """A circle inside another, as scikit-learn's make_circles (rows grouped by circle).

    Class 0 (n - n // 2 points) lies on the unit circle, class 1 (n // 2) on a circle of radius
    `factor` (0 < factor < 1), evenly spaced; Gaussian noise of std `noise` is added.
    Returns x float64 (n, 2), y int64 (n,) in {0, 1}.
    """
    where = "dataset 'circles'"
    n, noise = _int(where, "n", n, 2), _float(where, "noise", noise)
    factor = _float(where, "factor", factor, 0.0, 1.0)
    rng = _rng(where, seed)
    n_in = n // 2
    n_out = n - n_in
    a_out = np.linspace(0, 2 * np.pi, n_out, endpoint=False)
    a_in = np.linspace(0, 2 * np.pi, n_in, endpoint=False)
    x = np.concatenate([np.stack([np.cos(a_out), np.sin(a_out)], axis=1),
                        factor * np.stack([np.cos(a_in), np.sin(a_in)], axis=1)])
    x += rng.standard_normal(x.shape) * noise
    return {"x": x, "y": np.repeat(np.array([0, 1], dtype=np.int64), [n_out, n_in])}


def xor(n: int, noise: float = 0.1, seed: int = 0) -> dict:
    """The XOR problem: points uniform in the square [-1, 1]^2, class 1 where the two
    coordinates have different signs (quadrants II and IV), class 0 elsewhere. The label is
    taken before Gaussian noise of std `noise` moves the points.
    Returns x float64 (n, 2), y int64 (n,) in {0, 1}.
    """
    where = "dataset 'xor'"
    n, noise = _int(where, "n", n, 1), _float(where, "noise", noise)
    rng = _rng(where, seed)
    x = rng.uniform(-1.0, 1.0, size=(n, 2))
    y = ((x[:, 0] > 0) != (x[:, 1] > 0)).astype(np.int64)
    x += rng.standard_normal(x.shape) * noise
    return {"x": x, "y": y}


def sine(n: int, noise: float = 0.1, seed: int = 0) -> dict:
    """Regression of a sine wave: x uniform in [-pi, pi], y = sin(x) plus Gaussian noise of std
    `noise`. Returns x float64 (n, 1), y float64 (n, 1)."""
    where = "dataset 'sine'"
    n, noise = _int(where, "n", n, 1), _float(where, "noise", noise)
    rng = _rng(where, seed)
    x = rng.uniform(-np.pi, np.pi, size=(n, 1))
    return {"x": x, "y": np.sin(x) + rng.standard_normal((n, 1)) * noise}


def _sequences(seq: np.ndarray, target: np.ndarray, lengths: np.ndarray) -> dict:
    """The arrays of a sequence task: `seq`/`target`, with `x`/`y` naming the same arrays."""
    return {"seq": seq, "target": target, "length": lengths, "x": seq, "y": target}


def seq_sum(n: int, min_len: int = 10, max_len: int = 10, seed: int = 0) -> dict:
    """Sum a sequence of numbers (a task for a `scan` Loop).

    Each row is a sequence of max_len steps of one value, uniform in [-1, 1]. Its length is
    drawn uniformly from min_len .. max_len (by default all are max_len = 10); the steps past it
    are zeros, which leave the sum unchanged.
    Returns seq float64 (n, max_len, 1), target float64 (n, 1) the sum, length int64 (n,);
    x and y are the same arrays as seq and target.
    """
    where = "dataset 'seq_sum'"
    n, rng = _int(where, "n", n, 1), _rng(where, seed)
    lengths, steps = _lengths(where, n, min_len, max_len, rng)
    seq = rng.uniform(-1.0, 1.0, size=(n, steps, 1)) * _step_mask(lengths, steps)[:, :, None]
    return _sequences(seq, seq.sum(axis=1), lengths)


def seq_parity(n: int, min_len: int = 16, max_len: int = 16, seed: int = 0) -> dict:
    """The parity of a sequence of bits: is the number of ones odd? (a task for a `scan` Loop).

    Each step is a bit, 0.0 or 1.0, with probability 1/2. Lengths as in `seq_sum` (default all
    16); padding is zeros, which leave the parity unchanged. A loop needs to carry one bit of
    state from step to step; a loop-free MLP of the same size, fed the whole sequence, has to
    learn a function that flips with every bit, and for long sequences does no better than
    chance on patterns it has not seen.
    Returns seq float64 (n, max_len, 1), target int64 (n,) the class id (1: odd), length int64
    (n,); x and y are the same arrays as seq and target.
    """
    where = "dataset 'seq_parity'"
    n, rng = _int(where, "n", n, 1), _rng(where, seed)
    lengths, steps = _lengths(where, n, min_len, max_len, rng)
    bits = rng.integers(0, 2, size=(n, steps, 1)) * _step_mask(lengths, steps)[:, :, None]
    target = (bits.sum(axis=(1, 2)) % 2).astype(np.int64)
    return _sequences(bits.astype(np.float64), target, lengths)


def copy_first(n: int, symbols: int = 4, min_len: int = 10, max_len: int = 10,
               seed: int = 0) -> dict:
    """Recall the first symbol of a sequence after reading all of it (a memory task).

    Each step is one of `symbols` symbols, uniform, one-hot encoded; padding steps are all
    zeros. Lengths as in `seq_sum` (default all 10).
    Returns seq float64 (n, max_len, symbols), target int64 (n,) the id of the first symbol,
    length int64 (n,); x and y are the same arrays as seq and target.
    """
    where = "dataset 'copy_first'"
    n, rng = _int(where, "n", n, 1), _rng(where, seed)
    symbols = _int(where, "symbols", symbols, 2)
    lengths, steps = _lengths(where, n, min_len, max_len, rng)
    ids = rng.integers(0, symbols, size=(n, steps))
    seq = np.eye(symbols)[ids] * _step_mask(lengths, steps)[:, :, None]
    return _sequences(seq, ids[:, 0].astype(np.int64), lengths)


def _expression(rng, inner: int, modulus: int) -> tuple:
    """A random expression tree of `inner` operators: (its nodes in post order as (token,
    left, right), its value mod `modulus`, its tokens in prefix order)."""
    nodes, prefix = [], []
    stack = [("visit", inner)]
    results = []  # (index, value) of finished subtrees, in order
    while stack:
        kind, arg = stack.pop()
        if kind == "visit":
            if arg == 0:
                digit = int(rng.integers(0, 10))
                prefix.append(digit + 1)
                nodes.append((digit + 1, -1, -1))
                results.append((len(nodes) - 1, digit % modulus))
                continue
            op = int(rng.integers(0, 3))
            prefix.append(11 + op)
            left = int(rng.integers(0, arg))
            stack += [("join", op), ("visit", arg - 1 - left), ("visit", left)]
        else:
            (li, lv), (ri, rv) = results[-2], results[-1]
            del results[-2:]
            value = (lv + rv, lv - rv, lv * rv)[arg] % modulus
            nodes.append((11 + arg, li, ri))
            results.append((len(nodes) - 1, value))
    return nodes, results[0][1], prefix


def expr_trees(n: int, min_nodes: int = 7, max_nodes: int = 31, modulus: int = 10,
               seed: int = 0) -> dict:
    """Random arithmetic expression trees to evaluate (a task for a `tree` Loop).

    Leaves are digits 0-9, inner nodes + - x, each row a tree of min_nodes .. max_nodes nodes
    (odd counts: every operator has two operands); the target is the value mod `modulus`.
    Nodes are numbered in post order, children before parents, the root last; rows are padded
    to max_nodes with nodes of token 0 and no children.
    Returns tokens int64 (n, max_nodes) (0: padding, 1-10: the digits 0-9, 11-13: + - x),
    children int64 (n, max_nodes, 2) (-1: none), root int64 (n,) the root's index, target int64
    (n,), and the same tree read in prefix order for a sequence model: prefix int64
    (n, max_nodes) (zero-padded), last int64 (n,) the index of its last token, length int64.
    """
    where = "dataset 'expr_trees'"
    n, rng = _int(where, "n", n, 1), _rng(where, seed)
    low = _int(where, "min_nodes", min_nodes, 1)
    high = _int(where, "max_nodes", max_nodes, low)
    modulus = _int(where, "modulus", modulus, 2)
    fewest, most = low // 2, (high - 1) // 2  # operators: a tree of k has 2 k + 1 nodes
    if fewest > most:
        raise DataError(f"{where}: no tree has {low} to {high} nodes (the counts are odd)")
    tokens = np.zeros((n, high), dtype=np.int64)
    children = np.full((n, high, 2), -1, dtype=np.int64)
    prefix = np.zeros((n, high), dtype=np.int64)
    root, target, length = (np.zeros(n, dtype=np.int64) for _ in range(3))
    for row in range(n):
        inner = int(rng.integers(fewest, most + 1))
        nodes, value, order = _expression(rng, inner, modulus)
        for i, (token, left, right) in enumerate(nodes):
            tokens[row, i] = token
            children[row, i] = (left, right)
        prefix[row, :len(order)] = order
        root[row], target[row], length[row] = len(nodes) - 1, value, len(nodes)
    return {"tokens": tokens, "children": children, "root": root, "target": target,
            "prefix": prefix, "last": length - 1, "length": length}


def rotations(n: int, max_steps: int = 12, angle: float = 30.0, seed: int = 0) -> dict:
    """Apply one fixed step a different number of times per sample (a task for a per-sample
    `while` Loop): a point on the unit circle and a count k uniform in 1 .. max_steps; the
    target is the point turned k times by `angle` degrees. A sample's difficulty is its k.
    Returns x float64 (n, 2), steps float64 (n,) the count k, target float64 (n, 2).
    """
    where = "dataset 'rotations'"
    n, rng = _int(where, "n", n, 1), _rng(where, seed)
    max_steps = _int(where, "max_steps", max_steps, 1)
    angle = _float(where, "angle", angle, -360.0, 360.0)
    start = rng.uniform(-np.pi, np.pi, size=n)
    steps = rng.integers(1, max_steps + 1, size=n)
    end = start + np.radians(angle) * steps
    return {"x": np.stack([np.cos(start), np.sin(start)], axis=1),
            "steps": steps.astype(np.float64),
            "target": np.stack([np.cos(end), np.sin(end)], axis=1)}


def pairs(n: int, of: str = "spiral", classes: int = 3, noise: float = 0.2,
          seed: int = 0) -> dict:
    """Pairs of points from another 2-D classification set, half of the same class and half of
    different classes (a task for two inputs through one network with shared weights).

    The points come from `of` (spiral, moons, circles or xor, with `classes` for the spiral and
    `noise`), drawn with the same seed; each pair is two different points.
    Returns a, b float64 (n, 2), same int64 (n,) 1 where they share a class, and their classes
    class_a, class_b int64 (n,).
    """
    where = "dataset 'pairs'"
    n, rng = _int(where, "n", n, 2), _rng(where, seed)
    sources = {"spiral": spiral, "moons": moons, "circles": circles, "xor": xor}
    if of not in sources:
        raise DataError(f"{where}: of must be one of {', '.join(sources)}, got {of!r}")
    settings = {"classes": classes} if of == "spiral" else {}
    points = sources[of](max(2 * n, 50), noise=noise, seed=seed, **settings)
    x, y = points["x"], points["y"]
    # Points sorted by class: class c holds positions start[c] .. start[c] + count[c] - 1.
    order = np.argsort(y, kind="stable")
    count = np.bincount(y)
    start = np.cumsum(count) - count
    first = rng.integers(0, len(x), size=n)
    c = y[first]
    same = rng.permutation(np.arange(n) < n - n // 2).astype(np.int64)
    # same class: one of the class's other points (skip the first point's own position)
    own = np.argsort(order)[first]
    r = start[c] + (rng.random(n) * (count[c] - 1)).astype(np.int64)
    r_same = r + (r >= own)
    # another class: one of the points outside the class (skip the class's block)
    r = (rng.random(n) * (len(x) - count[c])).astype(np.int64)
    r_other = r + count[c] * (r >= start[c])
    second = order[np.where(same == 1, r_same, r_other)]
    return {"a": x[first], "b": x[second], "same": same,
            "class_a": y[first], "class_b": y[second]}


def adding(n: int, length: int = 50, seed: int = 0) -> dict:
    """The adding problem (Hochreiter & Schmidhuber, 1997), a test of long memory: each step
    holds a value uniform in [0, 1] and a marker; exactly two steps are marked, one in each half
    of the sequence, and the target is the sum of their two values.
    Returns seq float64 (n, length, 2) (value, marker), target float64 (n, 1).
    """
    where = "dataset 'adding'"
    n, rng = _int(where, "n", n, 1), _rng(where, seed)
    length = _int(where, "length", length, 2)
    values = rng.uniform(0.0, 1.0, size=(n, length))
    half = length // 2
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, length, size=n)
    markers = np.zeros((n, length))
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    target = values[rows, first] + values[rows, second]
    return {"seq": np.stack([values, markers], axis=2), "target": target[:, None]}


def running_max(n: int, length: int = 10, vocab: int = 10, seed: int = 0) -> dict:
    """Sequences of digits 0 .. vocab-1; the target at each step is the largest digit so far
    (a task for attention that may only look back: a causal mask).
    Returns tokens int64 (n, length), target int64 (n, length).
    """
    where = "dataset 'running_max'"
    n, rng = _int(where, "n", n, 1), _rng(where, seed)
    length, vocab = _int(where, "length", length, 1), _int(where, "vocab", vocab, 2)
    tokens = rng.integers(0, vocab, size=(n, length))
    return {"tokens": tokens, "target": np.maximum.accumulate(tokens, axis=1)}


GENERATORS = {f.__name__: f for f in
              (spiral, moons, circles, xor, sine, seq_sum, seq_parity, copy_first, expr_trees,
               rotations, pairs, adding, running_max)}
