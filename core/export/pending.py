"""Export rules waiting to move into their node classes (none at present): a type whose
module cannot take its rules yet may put them in RULES as {attribute: template or function
(node_type, p, e)}, and `rules.rule()` finds them here.
"""

from __future__ import annotations

RULES: dict = {}
