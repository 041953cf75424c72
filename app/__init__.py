"""The Wiregrad editor: a Qt canvas over the headless document of `core`.

The canvas mirrors the document one way (document events -> scene items); every change a user
makes is a QUndoCommand in `app.commands` that calls Document methods and nothing else.
"""

from .qt_compat import protect as _protect

_protect()  # PySide6 6.12.0 + Python 3.11 leak references to None and True; see qt_compat
