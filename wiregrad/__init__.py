"""Wiregrad: build differentiable programs by wiring blocks, train them, export them.

`import wiregrad` gives the engine's API (`wiregrad.load`, `wiregrad.compile`,
`wiregrad.GraphError`, ...: README's "The Python API"); the parts are
`wiregrad.core` (headless engine), `wiregrad.nodes` (the block library) and `wiregrad.app`
(the Qt editor). One top-level name, so that installing Wiregrad never shadows a user's own
`core` or `app`.
"""

import os as _os

# In a checkout the three parts sit beside this folder (core/, nodes/, app/ at the top of the
# repository); an install puts them inside it. Looking beside it as well makes both work.
_here = _os.path.dirname(_os.path.abspath(__file__))
_beside = _os.path.dirname(_here)
if not _os.path.isdir(_os.path.join(_here, "core")) and all(
        _os.path.isfile(_os.path.join(_beside, part, "__init__.py"))
        for part in ("core", "nodes", "app")):
    __path__.append(_beside)

from .core import *  # the API: load, save, compile, train, GraphError, ...
from .core import __all__  # noqa: F401
