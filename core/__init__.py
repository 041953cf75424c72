"""The Wiregrad engine, headless: documents, compiler, autodiff, training, file I/O, export.

Pure Python and numpy; nothing here imports Qt. Installed, this is `wiregrad.core`, and `import wiregrad` gives the same names
(README, "The Python API").
"""

from .document import Document, Edge, Event, Graph, Node
from .errors import DataError, GraphError
from .fileio import load, loads, save


def compile(doc, dtype="float32"):
    """Compile a document into a Program: validated, ordered, shapes inferred."""
    from .compiler import compile_document

    return compile_document(doc, dtype)


def train(doc, epochs=None, seed=None, callback=None, stop=None, **options):
    """Train a document by its training section; see core.trainer.train (which also takes
    `params` to start from and `base_dir` for dataset paths)."""
    from .trainer import train as _train

    return _train(doc, epochs=epochs, seed=seed, callback=callback, stop=stop, **options)


__all__ = ["DataError", "Document", "Edge", "Event", "Graph", "GraphError", "Node", "compile",
           "load", "loads", "save", "train"]
