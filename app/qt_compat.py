"""Guards against PySide6 6.12.0's reference-count bugs, which kill the process on Python 3.11.

With PySide6 6.12.0 on Python 3.11:
- every call of a Qt method that returns void (`QPainterPath.cubicTo`, `QPen.setWidth`, ...)
  hands back `None` without taking a reference to it;
- every `SignalInstance.emit()` hands back `True` the same way.
Each call lowers the object's reference count by one; a few thousand canvas updates or signal
emits later CPython aborts ("none_dealloc" / "bool_dealloc"). Python 3.12 made these objects
immortal (PEP 683), which hides the bug, and PySide6 6.11.3 does not have it: pyproject.toml
excludes 6.12.0. These guards are for an environment that has it anyway.

`protect()` probes for each leak and, only where one is present, lifts that object's reference
count by 2**40 (at a million leaked references a second, twelve days of constant use), which
is what 3.12 does by design. Nothing else is touched.
"""

from __future__ import annotations

import ctypes
import sys

_LIFT = 1 << 40
_done = False


def leaks_none() -> bool:
    from PySide6.QtCore import QPointF

    point = QPointF()
    before = sys.getrefcount(None)
    for _ in range(100):
        point.setX(1.0)
    return sys.getrefcount(None) < before - 50


def leaks_true() -> bool:
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        ping = Signal()

    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(100):
        probe.ping.emit()
    return sys.getrefcount(True) < before - 50


def protect() -> list:
    """Make None, True and False effectively immortal where this PySide6 leaks them.

    Returns the objects it lifted (empty where nothing leaks).
    """
    global _done
    if _done or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return []
    _done = True
    lifted = []
    if leaks_none():
        lifted.append(None)
    if leaks_true():
        lifted += [True, False]
    for value in lifted:
        ctypes.c_ssize_t.from_address(id(value)).value += _LIFT  # ob_refcnt: PyObject's first field
    return lifted
