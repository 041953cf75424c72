"""The Wiregrad editor: a Qt canvas over the headless document of `core`.

The canvas mirrors the document one way (document events -> scene items); every change a user
makes is a QUndoCommand in `app.commands` that calls Document methods and nothing else.
"""

from .qt_compat import protect_none as _protect_none

_protect_none()  # PySide6 6.12 + Python 3.11 leak None's refcount; see app/qt_compat.py
