"""Keep secrets out of every log line and report, in every encoding a secret takes on its way.

A password travels through the lab in five shapes: as itself; as base64 of ``user:password``
(the ``auth`` value, padded or not); inside base64 of a larger text (a whole
``.dockerconfigjson`` as the API server returns it, even base64 inside base64); URL-encoded;
and JSON-escaped (Python's ``json.dumps`` and Go's HTML-safe escaping, ``&`` -> ``\\u0026``).
Every password is registered here once, where it is made (``lab.credentials``); ``mask`` then
replaces each of its literal forms, every base64 token that decodes to text holding one, and
anything shaped like a credential field or a lab password, registered or not (so a process that
never saw a password, such as the xdist controller, still masks the lab's own).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any

MASK = "******"

# Shorter strings are too likely to be ordinary words to replace everywhere.
MIN_SECRET_LEN = 4
# Shorter base64 runs cannot hold a `user:password` worth masking and are mostly plain words.
MIN_TOKEN_LEN = 12
# base64 of a JSON holding base64 of a JSON...: how deep a token is unwrapped.
MAX_DEPTH = 3

# Every password the lab makes has this shape (see lab.credentials): masked even when this
# process never registered it, with its `&+/` tail in any of its encodings.
LAB_PASSWORD = re.compile(
    r"plabpw-[0-9a-f]{16}(?:&|\+|/|%26|%2B|%2F|\\u0026|\\\\u0026)*", re.IGNORECASE
)

_CREDENTIAL_FIELDS = (
    # JSON or YAML fields that hold credentials: "auth": "...", password: ...
    re.compile(
        r'(?P<k>"(?:auth|password|identitytoken|registrytoken)"\s*:\s*")(?P<v>[^"]+)(?P<e>")', re.I
    ),
    re.compile(r"(?P<k>^\s*(?:password|auth)\s*:\s*)(?P<v>[^\s,}\"']+)(?P<e>)", re.I | re.M),
)
_COMMAND_LINE_FIELDS = (
    # Command lines: --docker-password=x, --password x, -u user:pass
    re.compile(r"(?P<k>--(?:docker-)?password[= ])(?P<v>[^\s\"']+)(?P<e>)"),
    re.compile(r"(?P<k>\s-u\s+[^:\s]+:)(?P<v>[^\s\"']+)(?P<e>)"),
)
_PRIVATE_KEY = re.compile(
    r"(?P<k>-----BEGIN [A-Z ]*PRIVATE KEY-----)(?P<v>.*?)(?P<e>-----END [A-Z ]*PRIVATE KEY-----)",
    re.S,
)
_FIELD_PATTERNS = (*_CREDENTIAL_FIELDS, *_COMMAND_LINE_FIELDS, _PRIVATE_KEY)
# What makes a decoded base64 token secret even without a registered password in it.
_SECRET_INSIDE = (*_CREDENTIAL_FIELDS, _PRIVATE_KEY, LAB_PASSWORD)

# Standard and URL-safe alphabets alike; the padding only at the end.
_B64_TOKEN = re.compile(rf"[A-Za-z0-9+/_-]{{{MIN_TOKEN_LEN},}}={{0,2}}")
_URLSAFE_TO_STD = str.maketrans("-_", "+/")


def _b64(text: str) -> set[str]:
    padded = base64.b64encode(text.encode()).decode()
    urlsafe = base64.urlsafe_b64encode(text.encode()).decode()
    return {padded, padded.rstrip("="), urlsafe, urlsafe.rstrip("=")}


def _url_encoded(text: str) -> set[str]:
    forms = {
        urllib.parse.quote(text, safe=""),
        urllib.parse.quote(text),
        urllib.parse.quote_plus(text),
    }
    return forms | {f.lower() for f in forms if "%" in f}  # some encoders write %2b


def _json_escaped(text: str) -> set[str]:
    python = json.dumps(text)[1:-1]
    go = python.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
    ascii_only = json.dumps(text, ensure_ascii=True)[1:-1]
    return {python, go, ascii_only}


def encodings(password: str, user: str | None = None) -> set[str]:
    """Every literal form of a password (and its `user:password` auth value) to mask."""
    forms = {password} | _url_encoded(password) | _json_escaped(password) | _b64(password)
    if user is not None:
        for auth in _b64(f"{user}:{password}"):
            forms |= {auth} | _url_encoded(auth) | _json_escaped(auth)
    return {f for f in forms if len(f) >= MIN_SECRET_LEN}


def _decode_token(token: str, shift: int) -> str | None:
    """The text a base64 token stands for, read from ``shift`` characters in (a token glued to
    a neighbouring word, or cut out of a longer one, starts off the 4-character grid)."""
    core = token[shift:].rstrip("=").translate(_URLSAFE_TO_STD)
    core = core[: len(core) - 1] if len(core) % 4 == 1 else core
    if len(core) < MIN_TOKEN_LEN - 3:
        return None
    try:
        raw = base64.b64decode(core + "=" * (-len(core) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw.decode("utf-8", errors="replace")


def _mostly_text(decoded: str) -> bool:
    printable = sum((c.isprintable() and c != "\ufffd") or c in "\n\r\t" for c in decoded)
    return printable >= 0.8 * len(decoded)


@dataclass(frozen=True)
class _Known:
    """A snapshot of the registered secrets, so ``mask`` runs without holding the lock."""

    literals: re.Pattern[str] | None

    def holds_secret(self, text: str, depth: int) -> bool:
        """Whether ``text`` holds a secret, directly or in a base64 token up to ``depth``."""
        if not _mostly_text(text):
            return False  # what a random word "decodes" to: bytes, not text
        if self.literals is not None and self.literals.search(text):
            return True
        if any(p.search(text) for p in _SECRET_INSIDE):
            return True
        return depth > 0 and any(
            self.token_is_secret(m.group(), depth - 1) for m in _B64_TOKEN.finditer(text)
        )

    def token_is_secret(self, token: str, depth: int) -> bool:
        for shift in range(4):
            decoded = _decode_token(token, shift)
            if decoded is not None and self.holds_secret(decoded, depth):
                return True
        return False


class Masker:
    """Registered secrets plus the shapes of credentials; thread-safe, one per process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._known = _Known(None)

    def add_password(self, password: str, user: str | None = None) -> None:
        """Register a password in all its encodings; with its user, also its `auth` value."""
        if password:
            self._add(encodings(password, user))

    def knows_secrets(self) -> bool:
        """True once this process registered a password: the lab is in use here."""
        return self._known.literals is not None

    def _add(self, forms: set[str]) -> None:
        with self._lock:
            if forms <= self._secrets:
                return
            self._secrets |= forms
            ordered = sorted(self._secrets, key=len, reverse=True)  # longest first
            literals = re.compile("|".join(re.escape(s) for s in ordered))
            self._known = _Known(literals)

    def mask(self, text: str) -> str:
        known = self._known  # one consistent snapshot, read atomically
        # Whole base64 tokens first, while they are intact: a token hiding a secret goes.
        text = _B64_TOKEN.sub(
            lambda m: MASK if known.token_is_secret(m.group(), MAX_DEPTH - 1) else m.group(), text
        )
        for pattern in _FIELD_PATTERNS:
            text = pattern.sub(lambda m: m.group("k") + MASK + m.group("e"), text)
        if known.literals is not None:
            text = known.literals.sub(MASK, text)
        return LAB_PASSWORD.sub(MASK, text)


# One masker per process: everything that writes a log or report line goes through it.
MASKER = Masker()


def mask(text: str) -> str:
    return MASKER.mask(text)


def mask_all(value: Any, _seen: set[int] | None = None) -> Any:
    """``value`` with every string in it masked, however deeply nested: lists, dicts and
    dataclass instances (pytest's structured failure reports) are masked in place, tuples
    rebuilt. Other objects come back as they are."""
    seen = set() if _seen is None else _seen
    if isinstance(value, str):
        return mask(value)
    if id(value) in seen:
        return value
    if isinstance(value, tuple):
        items = [mask_all(v, seen) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    seen.add(id(value))
    if isinstance(value, list):
        value[:] = [mask_all(v, seen) for v in value]
    elif isinstance(value, dict):
        for key in value:
            value[key] = mask_all(value[key], seen)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            # object.__setattr__ also reaches frozen dataclasses.
            object.__setattr__(value, f.name, mask_all(getattr(value, f.name), seen))
    return value
