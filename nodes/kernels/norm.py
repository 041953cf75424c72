"""Kernels of normalisation (BatchNorm)."""

from __future__ import annotations

import numpy as np  # noqa: F401
