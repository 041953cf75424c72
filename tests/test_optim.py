"""Optimizers, gradient clipping and schedules: PyTorch's rules, checked against PyTorch itself.

Each comparison feeds the same parameters and the same sequence of gradients to our optimizer and
to torch.optim (float64), and asserts that every step leaves the same parameters.
"""

import math

import numpy as np
import pytest
from wiregrad.core import optim
from wiregrad.core.errors import GraphError

torch = pytest.importorskip("torch")

SHAPES = [(3, 4), (4,), (), (2, 1, 3)]
STEPS = 8


def make_params(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return {f"p{i}": rng.standard_normal(shape).astype(dtype) for i, shape in enumerate(SHAPES)}


def gradient_sequence(seed=1, steps=STEPS):
    """Gradients that change sign and scale from step to step, as real ones do."""
    rng = np.random.default_rng(seed)
    return [{f"p{i}": np.asarray(rng.standard_normal(shape) * rng.uniform(0.1, 3.0))
             for i, shape in enumerate(SHAPES)} for _ in range(steps)]


def run_both(ours_cls, torch_cls, options, torch_options=None, steps=STEPS):
    """Step both optimizers on the same gradients; return the parameters after each step."""
    params = make_params()
    opt = ours_cls(params, **options)
    tparams = [torch.tensor(params[k], requires_grad=True) for k in params]
    topt = torch_cls(tparams, **(torch_options or options), foreach=False)
    ours, theirs = [], []
    for grads in gradient_sequence(steps=steps):
        opt.step(grads)
        for t, k in zip(tparams, params):
            t.grad = torch.tensor(grads[k])
        topt.step()
        ours.append({k: v.copy() for k, v in opt.params.items()})
        theirs.append({k: t.detach().numpy().copy() for k, t in zip(params, tparams)})
    return ours, theirs


def assert_same_trajectory(ours, theirs, rtol=1e-12, atol=1e-13):
    for step, (a, b) in enumerate(zip(ours, theirs)):
        for k in a:
            np.testing.assert_allclose(a[k], b[k], rtol=rtol, atol=atol,
                                       err_msg=f"step {step + 1}, parameter {k}")


# -- update rules against PyTorch ----------------------------------------------------------

@pytest.mark.parametrize("options", [
    {"lr": 0.1},
    {"lr": 0.05, "momentum": 0.9},
    {"lr": 0.05, "momentum": 0.9, "dampening": 0.3},
    {"lr": 0.05, "momentum": 0.9, "nesterov": True},
    {"lr": 0.05, "weight_decay": 0.01},
    {"lr": 0.05, "momentum": 0.8, "weight_decay": 0.1},
    {"lr": 0.05, "momentum": 0.8, "dampening": 0.5, "weight_decay": 0.1},
    {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.05},
], ids=str)
def test_sgd_matches_torch(options):
    assert_same_trajectory(*run_both(optim.SGD, torch.optim.SGD, options))


@pytest.mark.parametrize("options", [
    {},
    {"lr": 0.01},
    {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6},
    {"lr": 0.01, "betas": (0.3, 0.9)},          # 1 - beta1 >= 0.5: lerp's other form
    {"lr": 0.01, "weight_decay": 0.1},
    {"lr": 0.01, "amsgrad": True},
    {"lr": 0.01, "amsgrad": True, "weight_decay": 0.05},
], ids=str)
def test_adam_matches_torch(options):
    assert_same_trajectory(*run_both(optim.Adam, torch.optim.Adam, options))


@pytest.mark.parametrize("options", [
    {},
    {"lr": 0.01},
    {"lr": 0.01, "weight_decay": 0.3},
    {"lr": 0.01, "weight_decay": 0.0},
    {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True, "betas": (0.85, 0.95)},
], ids=str)
def test_adamw_matches_torch(options):
    assert_same_trajectory(*run_both(optim.AdamW, torch.optim.AdamW, options))


def test_defaults_are_pytorchs():
    params = make_params()
    sgd, adam, adamw = optim.SGD(params), optim.Adam(params), optim.AdamW(params)
    assert (sgd.lr, sgd.momentum, sgd.dampening, sgd.nesterov, sgd.weight_decay) == \
        (1e-3, 0.0, 0.0, False, 0.0)
    assert (adam.lr, adam.betas, adam.eps, adam.weight_decay, adam.amsgrad) == \
        (1e-3, (0.9, 0.999), 1e-8, 0.0, False)
    assert adamw.weight_decay == 1e-2


def test_float32_parameters_stay_float32_and_track_torch():
    params = make_params(dtype=np.float32)
    opt = optim.Adam(params, lr=0.01)
    tparams = [torch.tensor(v, requires_grad=True) for v in params.values()]
    topt = torch.optim.Adam(tparams, lr=0.01, foreach=False)
    for grads in gradient_sequence():
        grads32 = {k: np.asarray(g, dtype=np.float32) for k, g in grads.items()}
        opt.step(grads32)
        for t, g in zip(tparams, grads32.values()):
            t.grad = torch.tensor(g)
        topt.step()
    assert opt.flat_params.dtype == np.float32
    for v, t in zip(opt.params.values(), tparams):
        assert v.dtype == np.float32
        np.testing.assert_allclose(v, t.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_lr_can_change_between_steps():
    ours, theirs = [], []
    params = make_params()
    opt = optim.SGD(params, lr=0.1, momentum=0.9)
    tparams = [torch.tensor(v, requires_grad=True) for v in params.values()]
    topt = torch.optim.SGD(tparams, lr=0.1, momentum=0.9)
    for i, grads in enumerate(gradient_sequence()):
        opt.lr = topt.param_groups[0]["lr"] = 0.1 / (i + 1)
        opt.step(grads)
        for t, g in zip(tparams, grads.values()):
            t.grad = torch.tensor(g)
        topt.step()
        ours.append(dict(opt.params))
        theirs.append({k: t.detach().numpy() for k, t in zip(params, tparams)})
    assert_same_trajectory(ours, theirs)


# -- the flat-buffer design ----------------------------------------------------------------

def test_params_and_grads_are_views_into_flat_buffers():
    params = make_params()
    opt = optim.Adam(params, lr=0.01)
    assert list(opt.params) == list(params) == list(opt.grads)
    for k, v in params.items():
        assert opt.params[k].shape == opt.grads[k].shape == v.shape
        np.testing.assert_array_equal(opt.params[k], v)
        assert np.shares_memory(opt.params[k], opt.flat_params)
        assert np.shares_memory(opt.grads[k], opt.flat_grads)
        assert opt.params[k] is not v                    # the caller's arrays are copied once
    assert opt.flat_params.size == sum(v.size for v in params.values())


def test_gradients_written_into_grads_are_used_by_step():
    """An engine may write gradients straight into opt.grads, then call step() bare."""
    params = make_params()
    grads = gradient_sequence(steps=1)[0]
    written = optim.SGD(params, lr=0.1, momentum=0.9)
    for k, g in grads.items():
        written.grads[k][...] = g
    written.step()
    passed = optim.SGD(params, lr=0.1, momentum=0.9)
    passed.step(grads)
    np.testing.assert_array_equal(written.flat_params, passed.flat_params)


def test_step_updates_views_in_place_and_leaves_grads_alone():
    params = make_params()
    grads = gradient_sequence(steps=1)[0]
    opt = optim.Adam(params, lr=0.01, weight_decay=0.1)
    views = {k: v for k, v in opt.params.items()}
    opt.step(grads)
    for k in params:
        assert opt.params[k] is views[k]
        assert not np.array_equal(views[k], params[k])
        np.testing.assert_array_equal(opt.grads[k], grads[k])   # weight decay did not leak in


def test_a_step_allocates_nothing_the_size_of_the_model():
    tracemalloc = pytest.importorskip("tracemalloc")
    params = {"w": np.zeros((1000, 1000))}                      # 8 MB
    for opt in [optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
                optim.Adam(params, amsgrad=True, weight_decay=0.1), optim.AdamW(params)]:
        opt.flat_grads[:] = 1.0
        opt.step()
        tracemalloc.start()
        opt.step()
        opt.clip_grad_norm(1.0)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < 100_000, f"{type(opt).__name__} allocated {peak} bytes in a step"


def test_list_params_give_list_views():
    arrays = [np.ones((2, 2)), np.zeros(3)]
    opt = optim.SGD(arrays, lr=0.5)
    assert isinstance(opt.params, list) and len(opt.grads) == 2
    opt.step([np.ones((2, 2)), np.ones(3)])
    np.testing.assert_array_equal(opt.params[0], np.full((2, 2), 0.5))
    np.testing.assert_array_equal(opt.params[1], np.full(3, -0.5))


def test_zero_grad():
    opt = optim.SGD(make_params(), lr=0.1)
    opt.flat_grads[:] = 3.0
    opt.zero_grad()
    assert not opt.flat_grads.any()


def test_mismatched_gradients_are_named():
    opt = optim.SGD(make_params(), lr=0.1)
    with pytest.raises(GraphError, match="p0 has shape"):
        opt.step({**gradient_sequence(steps=1)[0], "p0": np.zeros((4, 3))})
    with pytest.raises(GraphError, match="missing: p1"):
        opt.step({"p0": np.zeros((3, 4)), "p2": np.zeros(()), "p3": np.zeros((2, 1, 3))})


def test_integer_parameters_are_refused():
    with pytest.raises(GraphError, match="dtype int64"):
        optim.SGD({"w": np.arange(3)}, lr=0.1)


# -- gradient clipping ---------------------------------------------------------------------

@pytest.mark.parametrize("max_norm", [0.5, 1e3])
@pytest.mark.parametrize("norm_type", [2.0, math.inf])
def test_clip_grad_norm_matches_torch(max_norm, norm_type):
    grads = gradient_sequence(steps=1)[0]
    tensors = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads.values()]
    for t, g in zip(tensors, grads.values()):
        t.grad = torch.tensor(g)
    expected = torch.nn.utils.clip_grad_norm_(tensors, max_norm, norm_type=norm_type).item()

    opt = optim.SGD(make_params(), lr=0.1)                         # the optimizer's method
    for k, g in grads.items():
        opt.grads[k][...] = g
    assert opt.clip_grad_norm(max_norm, norm_type) == pytest.approx(expected, rel=1e-12)
    for k, t in zip(grads, tensors):
        np.testing.assert_allclose(opt.grads[k], t.grad.numpy(), rtol=1e-12, atol=1e-15)

    arrays = {k: g.copy() for k, g in grads.items()}                # the free function
    assert optim.clip_grad_norm(arrays, max_norm, norm_type) == pytest.approx(expected, rel=1e-12)
    for k, t in zip(grads, tensors):
        np.testing.assert_allclose(arrays[k], t.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_clipping_below_the_limit_changes_nothing_noticeable():
    opt = optim.SGD({"w": np.array([3.0, 4.0])}, lr=0.1)
    opt.grads["w"][...] = [0.3, 0.4]
    assert opt.clip_grad_norm(1.0) == pytest.approx(0.5)
    np.testing.assert_allclose(opt.grads["w"], [0.3, 0.4], rtol=1e-5)


# -- schedules -----------------------------------------------------------------------------

def torch_lrs(make_scheduler, epochs):
    topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    scheduler = make_scheduler(topt)
    lrs = []
    for _ in range(epochs):
        topt.step()
        scheduler.step()
        lrs.append(scheduler.get_last_lr()[0])
    return lrs


def our_lrs(make_schedule, epochs):
    opt = optim.SGD({"w": np.zeros(1)}, lr=0.1)
    schedule = make_schedule(opt)
    return [schedule.step() for _ in range(epochs)]


@pytest.mark.parametrize("step_size, gamma", [(3, 0.5), (1, 0.9), (10, 0.1)])
def test_step_lr_matches_torch(step_size, gamma):
    ours = our_lrs(lambda o: optim.StepLR(o, step_size, gamma), 25)
    theirs = torch_lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size, gamma), 25)
    np.testing.assert_allclose(ours, theirs, rtol=1e-13, atol=0)


@pytest.mark.parametrize("T_max, eta_min", [(10, 0.0), (7, 0.001), (1, 0.01)])
def test_cosine_lr_matches_torch_including_past_t_max(T_max, eta_min):
    epochs = 3 * T_max + 2
    ours = our_lrs(lambda o: optim.CosineAnnealingLR(o, T_max, eta_min), epochs)
    theirs = torch_lrs(
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max, eta_min), epochs)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)
    assert ours[T_max - 1] == pytest.approx(eta_min, abs=1e-15)


# -- building from a document's "optimizer" entry ------------------------------------------

def test_make_optimizer_from_spec():
    params = make_params()
    opt = optim.make_optimizer({"type": "adam", "lr": 0.01}, params)
    assert isinstance(opt, optim.Adam) and opt.lr == 0.01 and opt.schedule is None
    opt = optim.make_optimizer({"type": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True},
                               params)
    assert isinstance(opt, optim.SGD) and opt.nesterov and opt.momentum == 0.9
    opt = optim.make_optimizer({"type": "AdamW", "betas": [0.8, 0.9]}, params)  # JSON list
    assert isinstance(opt, optim.AdamW) and opt.betas == (0.8, 0.9) and opt.weight_decay == 1e-2


def test_make_optimizer_with_schedule():
    opt = optim.make_optimizer(
        {"type": "sgd", "lr": 0.1, "schedule": {"type": "step", "step_size": 2, "gamma": 0.5}},
        make_params())
    assert isinstance(opt.schedule, optim.StepLR)
    assert [opt.schedule.step() for _ in range(4)] == [0.1, 0.05, 0.05, 0.025]
    assert opt.lr == 0.025


@pytest.mark.parametrize("spec, message", [
    ({"type": "rmsprop"}, r"unknown type 'rmsprop' \(known: adam, adamw, sgd\)"),
    ({"lr": 0.1}, r'missing "type"'),
    ("adam", "must be an object"),
    ({"type": "adam", "momentum": 0.9}, r"unknown key 'momentum' for adam \(known: lr, betas"),
    ({"type": "sgd", "betas": [0.9, 0.9]}, "unknown key 'betas' for sgd"),
    ({"type": "adam", "lr": -1}, "lr must be >= 0"),
    ({"type": "adam", "lr": "fast"}, "lr must be a number"),
    ({"type": "adam", "betas": [0.9, 1.0]}, r"betas\[1\] must be < 1"),
    ({"type": "adam", "betas": 0.9}, "betas must be a pair"),
    ({"type": "sgd", "nesterov": True}, "nesterov needs momentum > 0"),
    ({"type": "sgd", "momentum": 0.9, "nesterov": "yes"}, "nesterov must be true or false"),
    ({"type": "sgd", "schedule": {"type": "linear"}}, r"schedule: unknown type 'linear'"),
    ({"type": "sgd", "schedule": {"type": "cosine"}}, "cosine needs T_max"),
    ({"type": "sgd", "schedule": {"type": "step", "step_size": 0}}, "step_size must be an integer >= 1"),
    ({"type": "sgd", "schedule": {"type": "step", "step_size": 2, "gama": 0.5}}, "unknown key 'gama'"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_bad_optimizer_specs_are_named(spec, message):
    with pytest.raises(GraphError, match=message) as info:
        optim.make_optimizer(spec, make_params())
    assert info.value.message.startswith("training.optimizer")
