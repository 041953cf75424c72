"""Indexing and structure: OneHot, ArgMax, Stack, Split, Pad (format version 2)."""

from __future__ import annotations
