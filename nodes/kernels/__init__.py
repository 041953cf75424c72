"""The numpy functions node rules call: the one place each of these computations is written.

The engine calls them as they are; an exported numpy module carries a copy of the source of
those its graph uses (see core/codegen/rules.py). So each is a plain, self-contained function:
it may use `np`, `math` and the other functions here, by name, and nothing else.

They are grouped by what they serve, one module each; this package gathers them, so a rule
names any of them as `kernels.name`. A kernel may call kernels of other modules here (it
imports them by name): an export copies those too.
"""

from .attention import *
from .basic import *
from .conv import *
from .flow import *
from .losses import *
from .norm import *
from .pool import *
from .recurrent import *
from .structure import *
