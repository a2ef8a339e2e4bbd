"""The reviewer's service around the ur-engine core: audit store, API keys, worklist, web pages, metrics.

The core (``ur_engine``) never imports any of this; ``api.create_app`` wires it together.
"""

# Roles an API key can hold (here, not in auth.py, so the CLI can list them without importing Flask).
ROLES = ("reviewer", "physician", "rules_admin")
