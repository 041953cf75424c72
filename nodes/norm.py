"""Normalisation with buffers: BatchNorm (format version 2)."""

from __future__ import annotations
