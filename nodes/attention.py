"""Attention: MultiheadAttention (format version 2)."""

from __future__ import annotations
