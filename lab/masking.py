"""Keep secrets out of every log line and report: passwords, base64 `auth` values, keys.

Every password the lab creates is registered here the moment it exists; ``mask`` then
replaces it, its base64 forms, and anything shaped like a credential field.
"""

from __future__ import annotations

import base64
import re
import threading

MASK = "******"

_FIELD_PATTERNS = (
    # JSON or YAML fields that hold credentials: "auth": "...", password: ...
    re.compile(
        r'(?P<k>"(?:auth|password|identitytoken|registrytoken)"\s*:\s*")(?P<v>[^"]+)(?P<e>")', re.I
    ),
    re.compile(r"(?P<k>^\s*(?:password|auth)\s*:\s*)(?P<v>[^\s,}\"']+)(?P<e>)", re.I | re.M),
    # Command lines: --docker-password=x, --password x, -u user:pass
    re.compile(r"(?P<k>--(?:docker-)?password[= ])(?P<v>[^\s\"']+)(?P<e>)"),
    re.compile(r"(?P<k>\s-u\s+[^:\s]+:)(?P<v>[^\s\"']+)(?P<e>)"),
    # Private keys, whole.
    re.compile(
        r"(?P<k>-----BEGIN [A-Z ]*PRIVATE KEY-----)(?P<v>.*?)"
        r"(?P<e>-----END [A-Z ]*PRIVATE KEY-----)",
        re.S,
    ),
)


def _b64_variants(text: str) -> set[str]:
    raw = text.encode()
    padded = base64.b64encode(raw).decode()
    return {padded, padded.rstrip("=")}


class Masker:
    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add_password(self, password: str, user: str | None = None) -> None:
        """Register a password; with its user, also the base64 `user:password` auth value."""
        if not password:
            return
        with self._lock:
            self._secrets.add(password)
            self._secrets |= _b64_variants(password)
            if user is not None:
                self._secrets |= _b64_variants(f"{user}:{password}")

    def add_blob(self, blob: str) -> None:
        """Register any secret text (e.g. a whole base64 .dockerconfigjson)."""
        if blob:
            with self._lock:
                self._secrets.add(blob)

    def mask(self, text: str) -> str:
        for pattern in _FIELD_PATTERNS:
            text = pattern.sub(lambda m: m.group("k") + MASK + m.group("e"), text)
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            if len(secret) >= 4:
                text = text.replace(secret, MASK)
        return text


# One masker per process: everything that writes a log or report line goes through it.
MASKER = Masker()


def mask(text: str) -> str:
    return MASKER.mask(text)
