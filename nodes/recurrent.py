"""Recurrent cells: GRUCell and LSTMCell, each one fused node (format version 2)."""

from __future__ import annotations
