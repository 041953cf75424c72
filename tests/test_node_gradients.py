"""One gradient check over the whole node registry: every sample of every type.

A new node type is tested by being registered with samples; a type without samples fails
`test_every_type_has_samples`.
"""

from __future__ import annotations

import pytest

from tests.gradcheck import check_float32, check_gradients
from wiregrad import nodes

# Wired or evaluated by the compiler, not differentiated as nodes.
NO_SAMPLES_NEEDED = {"Input", "Output", "LoopIndex", "Constant"}


def _cases():
    for name, node in sorted(nodes.all_types().items()):
        if node.control or name in ("Input", "Output"):
            continue
        for i, sample in enumerate(node.samples):
            yield pytest.param(name, sample, id=f"{name}-{i}")


CASES = list(_cases())


@pytest.mark.parametrize("type_name, sample", CASES)
def test_gradient(type_name, sample):
    check_gradients(type_name, sample)


@pytest.mark.parametrize("type_name, sample", CASES)
def test_float32_stays_float32(type_name, sample):
    check_float32(type_name, sample)


def test_every_type_has_samples():
    missing = [
        name for name, node in nodes.all_types().items()
        if not node.control and name not in NO_SAMPLES_NEEDED and not node.samples
    ]
    assert not missing, f"node types without samples: {missing}"


# ---------------------------------------------------------------------------------------------
# The same samples against PyTorch (float64): forward values and every gradient.


def test_every_type_has_a_torch_reference():
    from tests.torch_reference import REFERENCE

    missing = [
        name for name, node in nodes.all_types().items()
        if not node.control and name not in NO_SAMPLES_NEEDED and name not in REFERENCE
    ]
    assert not missing, f"node types without a PyTorch reference: {missing}"


@pytest.mark.parametrize("type_name, sample", CASES)
def test_matches_torch(type_name, sample):
    torch = pytest.importorskip("torch")
    import numpy as np

    from tests.gradcheck import (
        compiled,
        differentiable,
        draw_inputs,
        draw_weights,
        input_types,
    )
    from tests.torch_reference import REFERENCE

    node = nodes.get(type_name)
    p = node.resolve_params(sample.params)
    rng = np.random.default_rng(1)
    inputs = draw_inputs(node, p, sample, rng)
    types = input_types(inputs)
    xs = list(inputs.values())  # the ports the sample connects
    ws = draw_weights(node, p, types, rng)
    names = list(inputs) + list(node.weights(p, types))

    run = compiled(node, p, xs, ports=list(inputs))
    ys = run.forward(xs, ws)
    rs = [rng.standard_normal(y.shape) for y in ys]
    _, grads = run.grads(xs, ws, rs, [True] * len(names))

    tensors = {}
    for i, (name, v) in enumerate(zip(names, xs + ws)):
        flows = differentiable(node, name, v) if i < len(xs) else True
        tensors[name] = torch.tensor(v, requires_grad=flows)
    t_in = {name: tensors[name] for name in names[: len(xs)]}
    t_w = {name: tensors[name] for name in names[len(xs):]}
    t_ys = REFERENCE[type_name](p, t_in, t_w)
    for y, t_y in zip(ys, t_ys):
        np.testing.assert_allclose(y, t_y.detach().numpy(), rtol=1e-6, atol=1e-9)

    loss = sum((t_y * torch.tensor(r)).sum() for t_y, r in zip(t_ys, rs))
    flowing = [t for t in tensors.values() if t.requires_grad]
    if flowing and loss.requires_grad:
        t_grads = torch.autograd.grad(loss, flowing, allow_unused=True)
        by_tensor = dict(zip(map(id, flowing), t_grads))
    else:
        by_tensor = {}
    for name, g in zip(names, grads):
        t = tensors[name]
        if not t.requires_grad:
            assert g is None, f"{name}: no gradient should flow"
            continue
        expected = by_tensor.get(id(t))
        expected = np.zeros(t.shape) if expected is None else expected.numpy()
        np.testing.assert_allclose(g, expected, rtol=1e-6, atol=1e-9, err_msg=name)
