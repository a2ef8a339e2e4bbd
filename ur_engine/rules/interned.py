"""Interned mapping keys for objects read back from a pickle.

A library read back from a pickle (a batch worker's copy, the load cache) gets its mappings' keys interned again:
unpickled, each key is a string of its own, and every fact and criterion looked up by one costs a little more —
2 % of a stay's instructions in ``ur batch`` (callgrind).
"""

from __future__ import annotations

import sys
from datetime import date


def intern_keys(root: object) -> None:
    """Intern the string keys of every dict reachable from ``root`` (through dicts, lists, tuples, sets and the
    attributes of the engine's own objects), in place."""
    seen: set[int] = set()
    todo = [root]
    while todo:
        o = todo.pop()
        if id(o) in seen or isinstance(o, (str, int, float, bool, type(None), date)):
            continue
        seen.add(id(o))
        if type(o) is dict:
            items = [(sys.intern(k) if type(k) is str else k, v) for k, v in o.items()]
            o.clear()
            o.update(items)
            todo += [v for _, v in items]
        elif isinstance(o, (list, tuple, set, frozenset)):
            todo += o
        elif type(o).__module__.startswith("ur_engine."):  # the engine's own objects, never a module or a class
            if hasattr(o, "__dict__"):
                todo.append(o.__dict__)
            todo += [getattr(o, name) for cls in type(o).__mro__ for name in getattr(cls, "__slots__", ())
                     if isinstance(name, str) and hasattr(o, name)]
