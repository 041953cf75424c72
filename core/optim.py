"""Optimizers and learning-rate schedules with PyTorch's defaults and update rules, in numpy.

An optimizer owns the parameters it trains. It copies them, once, into one flat buffer and hands
back `opt.params`: views into that buffer, one per parameter, in the same container as it was given
(a dict keyed by parameter name, or a list). Beside it lives one flat gradient buffer, seen through
`opt.grads` with the same keys and shapes, so an engine can write each gradient straight into its
place. `step()` then updates the whole model with a few numpy ufuncs over the flat buffers, writing
into preallocated state and scratch buffers with `out=`: a step allocates nothing the size of the
model.

    opt = Adam(params, lr=0.01)          # params: {"fc1.weight": array, ...} or [array, ...]
    params = opt.params                  # use these from now on: the optimizer updates them
    loss, grads = program.value_and_grad(params, feeds)
    opt.step(grads)                      # copies grads into opt.grads, then updates opt.params

The rules are PyTorch's (`torch.optim.SGD`, `Adam`, `AdamW`, `clip_grad_norm_`, `StepLR`,
`CosineAnnealingLR`), parameter for parameter and default for default; `tests/test_optim.py`
compares them with PyTorch step by step. The arithmetic is done in the parameters' dtype, as
PyTorch does; results agree with PyTorch's up to rounding (PyTorch fuses some multiply-adds).

`make_optimizer` builds an optimizer from a document's `training.optimizer` section, and
`make_schedule` a schedule from its optional `schedule` entry; bad settings raise
`core.errors.GraphError` with a message that names the key.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import GraphError

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "SGD",
    "Adam",
    "AdamW",
    "CosineAnnealingLR",
    "Optimizer",
    "Schedule",
    "StepLR",
    "clip_grad_norm",
    "make_optimizer",
    "make_schedule",
]


def _number(owner: str, name: str, value, minimum: float | None = None, below: float | None = None):
    """`value` as a float, checked: a real number (not a bool), finite, >= minimum, < below."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise GraphError(f"{owner}: {name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise GraphError(f"{owner}: {name} must be finite, got {value!r}")
    if minimum is not None and value < minimum:
        raise GraphError(f"{owner}: {name} must be >= {minimum:g}, got {value:g}")
    if below is not None and value >= below:
        raise GraphError(f"{owner}: {name} must be < {below:g}, got {value:g}")
    return value


def _integer(owner: str, name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise GraphError(f"{owner}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class Optimizer:
    """Owns flat parameter and gradient buffers; subclasses say how `step()` updates them.

    `params`/`grads`: views into the flat buffers, in the container given (dict or list).
    `flat_params`/`flat_grads`: the flat buffers themselves. `lr` may be changed between steps
    (a schedule does). `steps` counts the steps taken.
    """

    name = "optimizer"
    schedule: Schedule | None = None   # set by make_optimizer from the spec's "schedule"

    def __init__(self, params, lr: float):
        if isinstance(params, dict):
            self._names: list | None = list(params)
            arrays = [params[k] for k in self._names]
        elif isinstance(params, (list, tuple)):
            self._names = None
            arrays = list(params)
        else:
            raise GraphError(f"{self.name}: params must be a dict or a list of arrays, "
                             f"got {type(params).__name__}")
        arrays = [np.asarray(a) for a in arrays]
        labels = self._names if self._names is not None else [f"#{i}" for i in range(len(arrays))]
        for label, a in zip(labels, arrays):
            if not np.issubdtype(a.dtype, np.floating):
                raise GraphError(f"{self.name}: parameter {label} has dtype {a.dtype}, "
                                 "expected a float type")
        dtype = np.result_type(*arrays) if arrays else np.dtype(np.float64)
        self.lr = _number(self.name, "lr", lr, minimum=0.0)
        self.steps = 0
        self.shapes = [a.shape for a in arrays]
        total = sum(a.size for a in arrays)
        self.flat_params = np.empty(total, dtype=dtype)
        self.flat_grads = np.zeros(total, dtype=dtype)
        param_views, grad_views = [], []
        offset = 0
        for a in arrays:
            end = offset + a.size
            param_views.append(self.flat_params[offset:end].reshape(a.shape))
            grad_views.append(self.flat_grads[offset:end].reshape(a.shape))
            param_views[-1][...] = a
            offset = end
        self._param_list = param_views
        self._grad_list = grad_views
        self.params = self._pack(param_views)
        self.grads = self._pack(grad_views)

    # -- containers -------------------------------------------------------------------------

    def _pack(self, views: list):
        if self._names is None:
            return list(views)
        return dict(zip(self._names, views))

    def _buffer(self) -> np.ndarray:
        """A zeroed flat buffer the size and dtype of the model (state or scratch)."""
        return np.zeros_like(self.flat_params)

    def _load_grads(self, grads) -> None:
        if isinstance(grads, dict):
            if self._names is None:
                raise GraphError(f"{self.name}: got a dict of gradients for a list of parameters")
            missing = [k for k in self._names if k not in grads]
            extra = [k for k in grads if k not in self.grads]
            if missing or extra:
                raise GraphError(f"{self.name}: gradients do not match the parameters "
                                 f"(missing: {', '.join(missing) or '-'}; "
                                 f"unknown: {', '.join(map(str, extra)) or '-'})")
            pairs = [(k, self.grads[k], grads[k]) for k in self._names]
        else:
            grads = list(grads)
            if len(grads) != len(self._grad_list):
                raise GraphError(f"{self.name}: got {len(grads)} gradients for "
                                 f"{len(self._grad_list)} parameters")
            names = self._names or [f"#{i}" for i in range(len(grads))]
            pairs = list(zip(names, self._grad_list, grads))
        for label, view, g in pairs:
            if g is view:
                continue
            if np.shape(g) != view.shape:
                raise GraphError(f"{self.name}: gradient of {label} has shape {np.shape(g)}, "
                                 f"the parameter has {view.shape}")
            np.copyto(view, g, casting="same_kind")

    # -- the public steps -------------------------------------------------------------------

    def zero_grad(self) -> None:
        """Set every gradient to zero."""
        self.flat_grads.fill(0)

    def clip_grad_norm(self, max_norm: float, norm_type: float = 2.0) -> float:
        """Scale the gradients so their global norm is at most `max_norm`, as
        `torch.nn.utils.clip_grad_norm_`; returns the norm before clipping."""
        return _clip_flat(self.flat_grads, max_norm, norm_type)

    def step(self, grads=None) -> None:
        """Update the parameters in place. With `grads` (same container as the parameters),
        copy them into `self.grads` first; without, use what is already there."""
        if grads is not None:
            self._load_grads(grads)
        self.steps += 1
        self._update()

    def _update(self) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self.lr:g}, {self.flat_params.size} values, {self.steps} steps)"


class SGD(Optimizer):
    """`torch.optim.SGD`: optional L2 `weight_decay`, heavy-ball `momentum` with `dampening`,
    or Nesterov momentum (which needs momentum > 0 and dampening 0)."""

    name = "sgd"

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0):
        super().__init__(params, lr)
        self.momentum = _number(self.name, "momentum", momentum, minimum=0.0)
        self.dampening = _number(self.name, "dampening", dampening)
        self.weight_decay = _number(self.name, "weight_decay", weight_decay, minimum=0.0)
        if not isinstance(nesterov, (bool, np.bool_)):
            raise GraphError(f"{self.name}: nesterov must be true or false, got {nesterov!r}")
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise GraphError(f"{self.name}: nesterov needs momentum > 0 and dampening 0")
        self._scratch = self._buffer()
        self._scratch2 = self._buffer() if self.nesterov and self.weight_decay else None
        self.momentum_buffer = self._buffer() if self.momentum else None

    def _update(self) -> None:
        p, g, s = self.flat_params, self.flat_grads, self._scratch
        d = g                                           # the direction; never written through g
        if self.weight_decay:
            np.multiply(p, self.weight_decay, out=s)
            s += g
            d = s
        if self.momentum:
            buf = self.momentum_buffer
            if self.steps == 1:
                np.copyto(buf, d)
            else:
                buf *= self.momentum
                if self.dampening:
                    np.multiply(d, 1 - self.dampening, out=s)   # d is not needed after this
                    buf += s
                else:
                    buf += d
            if self.nesterov:
                if d is s:
                    np.multiply(buf, self.momentum, out=self._scratch2)
                    s += self._scratch2
                else:
                    np.multiply(buf, self.momentum, out=s)
                    s += d
                d = s
            else:
                d = buf
        np.multiply(d, self.lr, out=s)
        p -= s


class Adam(Optimizer):
    """`torch.optim.Adam`: L2 `weight_decay` added to the gradient, optional `amsgrad`."""

    name = "adam"
    decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False):
        super().__init__(params, lr)
        if not isinstance(betas, (list, tuple)) or len(betas) != 2:
            raise GraphError(f"{self.name}: betas must be a pair of numbers, got {betas!r}")
        self.betas = (_number(self.name, "betas[0]", betas[0], minimum=0.0, below=1.0),
                      _number(self.name, "betas[1]", betas[1], minimum=0.0, below=1.0))
        self.eps = _number(self.name, "eps", eps, minimum=0.0)
        self.weight_decay = _number(self.name, "weight_decay", weight_decay, minimum=0.0)
        if not isinstance(amsgrad, (bool, np.bool_)):
            raise GraphError(f"{self.name}: amsgrad must be true or false, got {amsgrad!r}")
        self.amsgrad = bool(amsgrad)
        # The moments are kept scaled: m / (1 - beta1) and v / (1 - beta2). The same update
        # then takes 2 passes over the model for m and 3 for v instead of 3 and 4, and the
        # scales fold into the step's two constants (10 passes in all, PyTorch's 13).
        self.m_scaled = self._buffer()
        self.v_scaled = self._buffer()
        self.v_scaled_max = self._buffer() if self.amsgrad else None
        self._scratch = self._buffer()
        coupled_decay = self.weight_decay and not self.decoupled
        self._grad_scratch = self._buffer() if coupled_decay else None

    @property
    def exp_avg(self) -> np.ndarray:
        """PyTorch's first moment m."""
        return self.m_scaled * (1 - self.betas[0])

    @property
    def exp_avg_sq(self) -> np.ndarray:
        """PyTorch's second moment v."""
        return self.v_scaled * (1 - self.betas[1])

    def _update(self) -> None:
        p, s = self.flat_params, self._scratch
        m, v = self.m_scaled, self.v_scaled
        beta1, beta2 = self.betas
        g = self.flat_grads
        if self.weight_decay:
            if self.decoupled:
                p *= 1 - self.lr * self.weight_decay
            else:
                np.multiply(p, self.weight_decay, out=self._grad_scratch)
                self._grad_scratch += g
                g = self._grad_scratch
        m *= beta1  # m = beta1 m + (1 - beta1) g, scaled by 1 / (1 - beta1)
        m += g
        np.multiply(g, g, out=s)  # v = beta2 v + (1 - beta2) g^2, scaled by 1 / (1 - beta2)
        v *= beta2
        v += s
        if self.amsgrad:
            np.maximum(self.v_scaled_max, v, out=self.v_scaled_max)
            v = self.v_scaled_max
        # p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps), in the scaled
        # moments: p -= c * m_scaled / (sqrt(v_scaled) + eps'), two constants for the step.
        step = float(self.steps)
        bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
        unscale_v = (1 - beta2) ** 0.5
        c = self.lr * (1 - beta1) / (1 - beta1 ** step) * bias_correction2_sqrt / unscale_v
        np.sqrt(v, out=s)
        s += self.eps * bias_correction2_sqrt / unscale_v
        np.divide(m, s, out=s)
        s *= c
        p -= s


class AdamW(Adam):
    """`torch.optim.AdamW`: Adam with decoupled weight decay (default 1e-2), which shrinks the
    parameters by `lr * weight_decay` before each update instead of adding to the gradient."""

    name = "adamw"
    decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)


def _clip_flat(flat: np.ndarray, max_norm: float, norm_type: float) -> float:
    max_norm = _number("clip_grad_norm", "max_norm", max_norm, minimum=0.0)
    if norm_type == math.inf:
        total = float(max(flat.max(initial=0.0), -flat.min(initial=0.0)))
    elif norm_type == 2:
        total = math.sqrt(float(np.dot(flat, flat)))
    else:
        raise GraphError(f"clip_grad_norm: norm_type must be 2 or inf, got {norm_type!r}")
    coef = min(max_norm / (total + 1e-6), 1.0)
    flat *= coef
    return total


def clip_grad_norm(grads, max_norm: float, norm_type: float = 2.0) -> float:
    """Scale arrays (a list or dict of gradients) in place so their global norm is at most
    `max_norm`, as `torch.nn.utils.clip_grad_norm_`; returns the total norm before clipping.
    An optimizer's own `clip_grad_norm` does the same over its flat buffer, faster."""
    arrays = list(grads.values()) if isinstance(grads, dict) else list(grads)
    if not all(isinstance(g, np.ndarray) for g in arrays):
        raise GraphError("clip_grad_norm: gradients must be numpy arrays (it scales them in place)")
    max_norm = _number("clip_grad_norm", "max_norm", max_norm, minimum=0.0)
    if norm_type == math.inf:
        total = max((float(np.max(np.abs(g), initial=0.0)) for g in arrays), default=0.0)
    elif norm_type == 2:
        total = math.sqrt(sum(float(np.vdot(g, g)) for g in arrays))
    else:
        raise GraphError(f"clip_grad_norm: norm_type must be 2 or inf, got {norm_type!r}")
    coef = min(max_norm / (total + 1e-6), 1.0)
    for g in arrays:
        g *= coef
    return total


# -- learning-rate schedules, stepped once per epoch ----------------------------------------

class Schedule:
    """Sets `optimizer.lr` once per epoch: call `step()` after each epoch, as with PyTorch's
    schedulers. `epoch` counts the calls; `base_lr` is the optimizer's lr when it was made."""

    name = "schedule"

    def __init__(self, optimizer: Optimizer):
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.epoch = 0

    @property
    def lr(self) -> float:
        return self.optimizer.lr

    def step(self) -> float:
        """Advance one epoch; returns the new learning rate."""
        self.epoch += 1
        self.optimizer.lr = self._next_lr(self.optimizer.lr)
        return self.optimizer.lr

    def _next_lr(self, lr: float) -> float:
        raise NotImplementedError


class StepLR(Schedule):
    """`torch.optim.lr_scheduler.StepLR`: multiply the lr by `gamma` every `step_size` epochs."""

    name = "step"

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        super().__init__(optimizer)
        self.step_size = _integer(self.name, "step_size", step_size, minimum=1)
        self.gamma = _number(self.name, "gamma", gamma, minimum=0.0)

    def _next_lr(self, lr: float) -> float:
        return lr * self.gamma if self.epoch % self.step_size == 0 else lr


class CosineAnnealingLR(Schedule):
    """`torch.optim.lr_scheduler.CosineAnnealingLR`: the lr follows half a cosine from its base
    value down to `eta_min` over `T_max` epochs (and, as in PyTorch, back up after that). Uses
    PyTorch's recursive form, so the numbers are PyTorch's."""

    name = "cosine"

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0):
        super().__init__(optimizer)
        self.T_max = _integer(self.name, "T_max", T_max, minimum=1)
        self.eta_min = _number(self.name, "eta_min", eta_min, minimum=0.0)

    def _next_lr(self, lr: float) -> float:
        t, T, lo = self.epoch, self.T_max, self.eta_min
        if (t - 1 - T) % (2 * T) == 0:
            return lr + (self.base_lr - lo) * (1 - math.cos(math.pi / T)) / 2
        return ((1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
                * (lr - lo) + lo)


# -- building from a document's training section --------------------------------------------

OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW}
SCHEDULES = {"step": StepLR, "cosine": CosineAnnealingLR}

_OPTIMIZER_KEYS = {
    "sgd": ("lr", "momentum", "dampening", "nesterov", "weight_decay"),
    "adam": ("lr", "betas", "eps", "weight_decay", "amsgrad"),
    "adamw": ("lr", "betas", "eps", "weight_decay", "amsgrad"),
}
_SCHEDULE_KEYS = {"step": ("step_size", "gamma"), "cosine": ("T_max", "eta_min")}
_SCHEDULE_REQUIRED = {"step": ("step_size",), "cosine": ("T_max",)}


def _kind(where: str, spec, known: dict) -> str:
    if not isinstance(spec, dict):
        raise GraphError(f"{where} must be an object like {{\"type\": ...}}, got {spec!r}")
    if "type" not in spec:
        raise GraphError(f"{where}: missing \"type\" (one of {', '.join(sorted(known))})")
    kind = spec["type"]
    if not isinstance(kind, str) or kind.lower() not in known:
        raise GraphError(f"{where}: unknown type {kind!r} (known: {', '.join(sorted(known))})")
    return kind.lower()


def _check_keys(where: str, kind: str, spec: dict, allowed, extra=()) -> None:
    for key in spec:
        if key != "type" and key not in allowed and key not in extra:
            raise GraphError(f"{where}: unknown key {key!r} for {kind} "
                             f"(known: {', '.join(allowed + tuple(extra))})")


def make_optimizer(spec: dict, params, where: str = "training.optimizer") -> Optimizer:
    """Build an optimizer from a training section's optimizer entry, e.g.
    `{"type": "adam", "lr": 0.01}` or `{"type": "sgd", "lr": 0.1, "momentum": 0.9,
    "schedule": {"type": "cosine", "T_max": 100}}`, over `params` (a dict or list of arrays).

    Missing keys take PyTorch's defaults (`lr` too: 1e-3). The optional `schedule` entry becomes
    `optimizer.schedule` (a `Schedule`, else None). Errors name the key and list the known ones.
    """
    kind = _kind(where, spec, OPTIMIZERS)
    allowed = _OPTIMIZER_KEYS[kind]
    _check_keys(where, kind, spec, allowed, extra=("schedule",))
    options = {k: spec[k] for k in allowed if k in spec}
    try:
        optimizer = OPTIMIZERS[kind](params, **options)
    except GraphError as error:
        raise GraphError(f"{where}: {error.message}") from None
    schedule_spec = spec.get("schedule")
    optimizer.schedule = (make_schedule(schedule_spec, optimizer, where + ".schedule")
                          if schedule_spec is not None else None)
    return optimizer


def make_schedule(spec: dict, optimizer: Optimizer,
                  where: str = "training.optimizer.schedule") -> Schedule:
    """Build a per-epoch schedule: `{"type": "step", "step_size": 30, "gamma": 0.1}` or
    `{"type": "cosine", "T_max": 100, "eta_min": 0.0}`."""
    kind = _kind(where, spec, SCHEDULES)
    allowed = _SCHEDULE_KEYS[kind]
    _check_keys(where, kind, spec, allowed)
    missing = [k for k in _SCHEDULE_REQUIRED[kind] if k not in spec]
    if missing:
        raise GraphError(f"{where}: {kind} needs {', '.join(missing)}")
    options = {k: spec[k] for k in allowed if k in spec}
    try:
        return SCHEDULES[kind](optimizer, **options)
    except GraphError as error:
        raise GraphError(f"{where}: {error.message}") from None
