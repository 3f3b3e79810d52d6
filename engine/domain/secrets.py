"""Password hashes and token digests, and the login throttle's arithmetic (pure, stdlib only).

Passwords are kept only as scrypt hashes (``scrypt$n$r$p$salt$hash``, hex); API tokens only as
their SHA-256 digest, so neither a database dump nor a log line opens anything.  Repeated failed
logins lock the user name and the client address for a while that doubles with each further
failure, up to a cap: guessing slows down, and the right user is never locked out for good.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

_N, _R, _P = 2**14, 8, 1  # about 30 ms per hash here: cheap for a login, dear for a guesser


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        again = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                               dklen=len(digest) // 2)  # fmt: skip
    except ValueError:
        return False
    return hmac.compare_digest(again.hex(), digest)


# A hash no password matches, checked for unknown users so that they cost as much as known ones.
UNKNOWN_USER = hash_password(secrets.token_urlsafe(16))


def new_token() -> tuple[str, str]:
    """A token for the client and the digest the database keeps."""
    token = secrets.token_urlsafe(32)
    return token, token_digest(token)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def lock_after(failures: int, allowed: int, longest: float, now: datetime) -> datetime | None:
    """When ``failures`` failed logins in a window lock a key: none up to ``allowed``, then
    1 s, 2 s, 4 s … up to ``longest`` seconds."""
    if failures < allowed:
        return None
    return now + timedelta(seconds=min(2.0 ** (failures - allowed), longest))
