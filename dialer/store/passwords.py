"""Password hashing with the standard library's scrypt (memory-hard, no extra dependency)."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

_N, _R, _P = 2**14, 8, 1


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def digest_for(password: str, params: str) -> str | None:
    """The digest (base64) of `password` under a stored hash's parameters and salt, as the database
    gives them without the digest (`password_params_of`, sql/0046: 'scrypt$N$r$p$salt$length');
    None for parameters it cannot read."""
    try:
        scheme, n, r, p, salt, length = params.split("$")
        if scheme != "scrypt":
            return None
        digest = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=int(length)
        )
    except (ValueError, TypeError):
        return None
    return base64.b64encode(digest).decode()


@functools.cache
def dummy_hash() -> str:
    """Hashed once (on the first login with an unknown name, not at import: every `dialer` command
    imports this) so that such a login costs as much time as one with a known name."""
    return hash_password(secrets.token_hex(8))
