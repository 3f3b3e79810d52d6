"""The URL paths the engine serves, defined once.

Every API route is served under both prefixes: ``/ovirt-engine/api`` (oVirt's, first: the one
answers link to by default) and ``/api`` (the seed's).  The admin page's script repeats the
first and the token path; a test compares them.
"""

from __future__ import annotations

PREFIXES = ("/ovirt-engine/api", "/api")
API = PREFIXES[0]
TOKEN_PATH = "/ovirt-engine/sso/oauth/token"
LOGOUT_PATH = "/ovirt-engine/services/sso-logout"
OPENAPI = "/openapi.json"  # under each prefix
HEALTH = "/health"
METRICS_PATH = "/metrics"  # Prometheus; outside the API, so it needs no token (like /health)


def prefix_of(path: str) -> str:
    """The API prefix a request came by (answers' hrefs start with it)."""
    return next((p for p in PREFIXES if path == p or path.startswith(p + "/")), API)


def is_api(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in PREFIXES)
