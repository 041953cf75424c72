"""Normalisation with buffers: BatchNorm (format version 2)."""

from __future__ import annotations

from .base import NodeType, Param, Sample, ShapeError, Weight, constant, float_input
from .kernels import batch_norm, batch_norm_backward
from .registry import register


@register
class BatchNorm(NodeType):
    category = "Layers"
    help = ("Normalises each channel (axis 1) by the batch's statistics while training and by "
            "running ones otherwise, as PyTorch's BatchNorm1d/2d.")
    torch_forward = "{self}({x})"
    torch_weights = {"weight": ("weight", False), "bias": ("bias", False),
                     "running_mean": ("running_mean", False),
                     "running_var": ("running_var", False)}
    params = (
        Param("momentum", "float", 0.1, "How far each training batch moves the running "
              "statistics.", minimum=0.0, maximum=1.0),
        Param("eps", "float", 1e-5, "Added to the variance.", minimum=0.0),
    )
    samples = (
        Sample({}, {"x": (5, 3)}),
        Sample({"momentum": 0.3}, {"x": (4, 2, 3)}, note="(B, C, L)"),
        Sample({"eps": 1e-3}, {"x": (3, 2, 2, 3)}, note="(B, C, H, W)"),
    )

    def np_forward(self, p, e):
        xhat, rstd = e.local("xhat"), e.local("rstd")
        e.emit(e.fmt(f"{{y}}, {xhat}, {rstd} = {e.helper(batch_norm)}({{x}}, {{weight}}, "
                     "{bias}, {running_mean}, {running_var}, {momentum}, {eps}, train)"))

    def np_backward(self, p, e):
        gx, gw, gb = e.tmp("gx"), e.tmp("gw"), e.tmp("gb")
        e.emit(e.fmt(f"{gx}, {gw}, {gb} = {e.helper(batch_norm_backward)}({{gy}}, "
                     f"{e.local('xhat')}, {e.local('rstd')}, {{weight}}, train, "
                     f"{e.lit(e.need('x'))})"))
        return {"x": gx, "weight": gw, "bias": gb}

    def torch_module(self, p, e):
        kind = "BatchNorm2d" if e.ndim("x") == 4 else "BatchNorm1d"
        return (f"nn.{kind}({e.t('x').shape[1]}, eps={e.lit(p['eps'])}, "
                f"momentum={e.lit(p['momentum'])})")

    def onnx_forward(self, p, g):
        # Inference: the running statistics, as the engine's run (train false) uses them.
        return g.op("BatchNormalization", g.x(), g.weight("weight"), g.weight("bias"),
                    g.weight("running_mean"), g.weight("running_var"), epsilon=p["eps"],
                    momentum=1.0 - p["momentum"])

    def infer(self, p, ins):
        x = float_input(ins, "x")
        if x.ndim not in (2, 3, 4):
            raise ShapeError("x", f"expected (B, C), (B, C, L) or (B, C, H, W), got {x.ndim} "
                             f"axes: {x}")
        if x.shape[1] is None:
            raise ShapeError("x", f"needs a known number of channels (axis 1), got {x}")
        return {"y": x}

    def _channels(self, ins) -> int:
        self.infer({}, ins)
        return ins["x"].shape[1]

    def weights(self, p, ins):
        c = self._channels(ins)
        return {"weight": Weight((c,), constant(1.0)), "bias": Weight((c,), constant(0.0))}

    def buffers(self, p, ins):
        c = self._channels(ins)
        return {"running_mean": Weight((c,), constant(0.0)),
                "running_var": Weight((c,), constant(1.0))}
