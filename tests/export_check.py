"""Helpers for the export tests: write a module, import it, compare it with the engine.

The documents for every node type in every setting come from tests/sample_graphs.py.
"""

from __future__ import annotations

import itertools

import numpy as np
from wiregrad.core.export import export_source
from wiregrad.core.export.loading import import_text, torch_grads

from wiregrad import core

_counter = itertools.count()


def load_module(text: str, directory, name: str | None = None):
    """Write `text` as a .py file in `directory` and import it under a fresh name."""
    return import_text(text, directory, name)


def rel_diff(a, b) -> float:
    """max |a - b| / max(|a|, tiny): the figure the tests bound."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(a))), 1e-30))


def losses(program) -> list:
    return [k for k, s in program.output_shapes.items()
            if all(d is not None for d in s) and int(np.prod(s)) == 1]


def compare_numpy(doc, params, feeds, tmp_path, train=False, seed=0, rtol=1e-6) -> float:
    """Export `doc` (float64), check outputs and gradients against the engine; returns the
    largest relative difference seen."""
    program = core.compile(doc, "float64")
    module = load_module(export_source(doc, "numpy", dtype="float64"), tmp_path)
    worst = 0.0
    expected = program.run(params, feeds, train=train, seed=seed)
    got = module.forward(params, feeds, train=train, seed=seed)
    assert set(got) == set(expected)
    for name, value in expected.items():
        d = rel_diff(value, got[name])
        assert d <= rtol, f"output {name}: relative difference {d:.3g}"
        worst = max(worst, d)
    for loss in losses(program):
        value, grads = program.value_and_grad(params, feeds, loss=loss, train=train, seed=seed)
        value2, grads2 = module.value_and_grad(params, feeds, loss=loss, train=train, seed=seed)
        d = rel_diff(value, value2)
        assert d <= rtol, f"loss {loss}: {value} vs {value2}"
        worst = max(worst, d)
        assert set(grads2) == set(grads)
        for name, g in grads.items():
            d = rel_diff(g, grads2[name])
            assert d <= rtol, f"d{loss}/d{name}: relative difference {d:.3g}"
            worst = max(worst, d)
    return worst


def compare_torch(doc, params, feeds, tmp_path, rtol=1e-5, module=None,
                  dtype="float32") -> float:
    """Export `doc` to torch, load the engine's params, check outputs and, through autograd,
    every gradient of every loss against the engine in `dtype`; returns the worst relative
    difference."""
    import torch

    program = core.compile(doc, dtype)
    if module is None:
        module = load_module(export_source(doc, "torch"), tmp_path)
    params32 = {k: np.asarray(v, dtype=dtype) for k, v in params.items()}
    model = module.Model().to(getattr(torch, dtype))
    module.load_params(model, params32)
    model.eval()
    tensors = {k: torch.as_tensor(np.asarray(v, dtype=np.int64 if program.input_dtypes[k] == "int64"
                                             else dtype)) for k, v in feeds.items()}
    worst = 0.0
    expected = program.run(params32, feeds)
    got = model(**tensors)
    for name, value in expected.items():
        d = rel_diff(value, got[name].detach().numpy())
        assert d <= rtol, f"output {name}: relative difference {d:.3g}"
        worst = max(worst, d)
    for loss in losses(program):
        _, grads = program.value_and_grad(params32, feeds, loss=loss, train=False)
        model.zero_grad()
        out = model(**tensors)[loss]
        if out.requires_grad:
            out.sum().backward()
        theirs = torch_grads(module, model, grads)
        for name, g in grads.items():
            d = rel_diff(g, theirs[name])
            assert d <= rtol, f"d{loss}/d{name}: relative difference {d:.3g}"
            worst = max(worst, d)
    return worst
