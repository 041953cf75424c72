"""Kernels of the fused recurrent cells (GRUCell, LSTMCell)."""

from __future__ import annotations

import numpy as np  # noqa: F401
