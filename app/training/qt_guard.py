"""Guard against a second PySide6 6.12 reference-count leak on Python 3.11 (see app/qt_compat).

Besides None (which `app.qt_compat` protects), `SignalInstance.emit()` hands back `True`
without taking a reference to it: each emit of a Python-declared signal lowers True's
reference count by one. A training run emits a few thousand signals a minute, and when the
count reaches zero CPython aborts ("bool_dealloc: deallocating True or False").

`protect_bools()` probes for the leak and, only where it is present, lifts the reference
counts of True and False by 2**40, as qt_compat does for None (3.12 makes both immortal).
"""

from __future__ import annotations

import ctypes
import sys

_LIFT = 1 << 40
_done = False


def leaks_true() -> bool:
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        ping = Signal()

    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(100):
        probe.ping.emit()
    return sys.getrefcount(True) < before - 50


def protect_bools() -> bool:
    """Make True and False effectively immortal if this PySide6 leaks them. True if it did."""
    global _done
    if _done or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    if not leaks_true():
        return False
    for value in (True, False):
        ctypes.c_ssize_t.from_address(id(value)).value += _LIFT
    _done = True
    return True
