"""Export a document as a standalone Python module: numpy or PyTorch code that computes what
the engine computes. `export_source(doc, target)` returns the module's text.
"""

from __future__ import annotations

from ..codegen.layout import Layout

TARGETS = ("numpy", "torch")


def export_source(doc, target: str = "numpy", dtype: str | None = None,
                  weights_file: str | None = None, data_dir: str | None = None) -> str:
    """The text of the exported module. `dtype` defaults to the training section's (else
    float32); `weights_file` is a file name the module loads its weights from, beside itself;
    `data_dir` the document's folder as seen from the module's (dataset paths start there)."""
    if target not in TARGETS:
        from ..errors import GraphError

        raise GraphError(f"unknown export target {target!r} (targets: {', '.join(TARGETS)})")
    if dtype is None:
        from ..training_section import DEFAULTS, setting

        dtype = setting(doc.training, "dtype")
        if dtype not in ("float32", "float64"):  # a broken section: check says so; export
            dtype = DEFAULTS["dtype"]
    if target == "numpy":
        from .numpy_target import NumpyExporter

        return NumpyExporter(Layout.of(doc, dtype, lowered=True), weights_file, data_dir).export()
    from .torch_target import TorchExporter

    return TorchExporter(Layout.of(doc, dtype), weights_file, data_dir).export()


__all__ = ["TARGETS", "export_source"]
