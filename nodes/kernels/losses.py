"""Kernels of the version-2 losses."""

from __future__ import annotations

import numpy as np  # noqa: F401
