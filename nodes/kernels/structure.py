"""Kernels of indexing, structure and reductions (version 2)."""

from __future__ import annotations

import numpy as np  # noqa: F401
