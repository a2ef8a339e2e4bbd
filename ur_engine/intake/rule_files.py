"""Files in and out, for the edges (CLI, API, batch): the core itself takes texts, never paths."""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

from ur_engine import resources
from ur_engine.errors import MissingRuleFileError
from ur_engine.rules.library import Library, Source, digest, load

# Loaded libraries kept on disk, newest first; older ones are removed past this many (a rule author's edits each
# leave one behind).
CACHE_KEEP = 16


def read_sources(root: str | Path) -> list[Source]:
    """Every ``*.yaml`` file under ``root``, named relative to it (``valuesets/ipo.yaml``)."""
    root = Path(root)
    if not root.is_dir():
        raise MissingRuleFileError(f"no rule directory at {root}", file=str(root))
    out = []
    for path in sorted(root.rglob("*.y*ml")):
        if path.suffix not in (".yaml", ".yml") or any(p.startswith(".") for p in path.relative_to(root).parts):
            continue
        out.append(Source(path.relative_to(root).as_posix(), path.read_text(encoding="utf-8")))
    return out


def default_sources() -> list[Source]:
    """The default rule library shipped with ur-engine."""
    return read_sources(Path(str(resources.data("rules"))))


def load_library(root: str | Path | None = None, *, cache: bool = True) -> Library:
    """Load the rule library under ``root`` (the default library when None).

    Checking a library's files costs ~0.3 s, as much as reviewing a thousand stays: a library that loaded without
    error is kept in the cache folder (``cache_folder``), under the digest of its files and of the engine's own
    code and schemas, and the next load of the very same files reads it back in milliseconds. A library with
    errors is never kept: its errors are found and reported again on every load.
    """
    sources = read_sources(root) if root is not None else default_sources()
    folder = cache_folder() if cache else None
    if folder is None:
        return load(sources)
    path = folder / f"library-{_key(sources)}.pickle"
    try:
        with path.open("rb") as f:
            found = pickle.load(f)
        if isinstance(found, Library):
            return found
    except FileNotFoundError:
        pass
    except Exception:  # noqa: BLE001 - a cache file cut short, unreadable or from elsewhere: load the files instead
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass
    library = load(sources)
    _keep(folder, path, library)
    return library


def cache_folder() -> Path | None:
    """Where loaded libraries are kept: ``$UR_CACHE_DIR``, else ``$XDG_CACHE_HOME/ur-engine``, else
    ``~/.cache/ur-engine``; None (no cache) when ``UR_CACHE_DIR`` is set empty."""
    given = os.environ.get("UR_CACHE_DIR")
    if given is not None:
        return Path(given) if given else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ur-engine"


def _key(sources: list[Source]) -> str:
    h = hashlib.sha256(digest(sources).encode())
    h.update(_code_digest().encode())
    return h.hexdigest()[:32]


@lru_cache(maxsize=1)
def _code_digest() -> str:
    """The engine's own code and schemas, the YAML parser that read the files and the Python that pickled them:
    any change makes a new key, so a library is never read back into code other than the code that built it."""
    import yaml

    h = hashlib.sha256(f"{sys.version}\0{yaml.__version__}".encode())
    package = Path(__file__).resolve().parents[1]
    schemas = Path(str(resources.data("schemas")))
    for folder, pattern in ((package, "*.py"), (schemas, "*.json")):
        for path in sorted(folder.rglob(pattern)):
            h.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _keep(folder: Path, path: Path, library: Library) -> None:
    """Write ``library`` to ``path`` whole or not at all, and drop the oldest beyond CACHE_KEEP. A cache that cannot
    be written (read-only home, full disk) only means the next load checks the files again."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # pickles are code to whoever may write them
        with tempfile.NamedTemporaryFile("wb", dir=folder, prefix=".library-", delete=False) as f:
            pickle.dump(library, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(f.name, path)
        kept = sorted(folder.glob("library-*.pickle"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in kept[CACHE_KEEP:]:
            old.unlink(missing_ok=True)
    except OSError:
        try:
            os.unlink(f.name)
        except (OSError, NameError):
            pass
