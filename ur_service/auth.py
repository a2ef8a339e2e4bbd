"""API keys and roles.

A key reads ``ur_<key id>_<secret>``; the store keeps only the key id and a SHA-256 of the whole key. The
secret has 256 bits of entropy, so a fast hash is enough (slow password hashes guard guessable secrets).

    reviewer      submit reviews and read them, the worklist and the statistics
    physician     read reviews and the worklist; record determinations on them
    rules_admin   reload the rule library
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets

from flask import current_app, g, request

from . import ROLES
from .http import problem
from .store import Actor, Store

KEY_PATTERN = re.compile(r"^ur_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(store: Store, role: str, name: str | None = None) -> str:
    """Store a new key for ``role`` and return it; this is the only time the key is seen."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    key_id = secrets.token_hex(6)
    key = f"ur_{key_id}_{secrets.token_urlsafe(32)}"
    store.add_key(key_id, name=(name or role)[:100], role=role, key_hash=hash_key(key))
    return key


def authenticate(store: Store, key: str | None) -> Actor | None:
    """The actor a key belongs to, or None for a malformed, unknown or revoked key."""
    match = KEY_PATTERN.match(key or "")
    if not match:
        return None
    row = store.get_key(match.group(1))
    if row is None or row["revoked_at"] or not hmac.compare_digest(row["key_hash"], hash_key(key)):
        return None
    return Actor(row["key_id"], row["name"], row["role"])


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def unauthorized(detail: str):
    res = problem(401, "Unauthorized", detail)
    res.headers["WWW-Authenticate"] = 'Bearer realm="ur-engine"'
    return res


def require(*roles: str):
    """Decorator: the request needs ``Authorization: Bearer <key>`` of one of ``roles`` (401, else 403)."""

    def wrap(view):
        @functools.wraps(view)
        def guarded(*args, **kwargs):
            token = bearer_token()
            if token is None:
                return unauthorized("send an API key as 'Authorization: Bearer <key>'")
            actor = authenticate(current_app.extensions["ur_store"], token)
            if actor is None:
                return unauthorized("the API key is unknown or revoked")
            g.actor = actor
            if actor.role not in roles:
                return problem(403, "Forbidden", f"this needs the role {' or '.join(roles)}; the key has {actor.role}")
            return view(*args, **kwargs)

        guarded.roles = roles  # read by the OpenAPI document and its tests
        return guarded

    return wrap
