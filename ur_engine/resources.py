"""The package's own data: the JSON Schemas and the default rule library.

Installed wheels carry them under ``ur_engine/_data``; a source checkout reads them from the repository root.
"""

from __future__ import annotations

import sys
from importlib.resources import files
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Traversable moved to importlib.resources.abc in 3.11
    if sys.version_info >= (3, 11):
        from importlib.resources.abc import Traversable
    else:
        from importlib.abc import Traversable


def data(kind: str) -> Traversable:
    """The folder of ``kind`` (``"schemas"`` or ``"rules"``)."""
    packaged = files("ur_engine") / "_data" / kind
    if packaged.is_dir():
        return packaged
    return files("ur_engine") / ".." / kind


def read_text(kind: str, name: str) -> str:
    return (data(kind) / name).read_text(encoding="utf-8")
