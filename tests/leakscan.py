"""Find the lab's passwords in files, in every encoding they take, and say which encoding.

Written apart from `lab.masking` on purpose: the leak test checks the masker's work, so it
must not share its blind spots. It needs no list of passwords: every lab password has one
shape (`lab.credentials.PASSWORD_CORE` plus the tail `&+/`), and the tutorial's is published.

    leaks = scan([report_dir, log_dir])
    assert not leaks, "\\n".join(map(str, leaks))

How a hit is named: the password's core is found, then what follows it tells the encoding
(`&+/` plain, `%26...` URL-encoded, `\\u0026` or `\\/` JSON-escaped, `&amp;` HTML-escaped);
a core found only after base64-decoding a token is "base64 level N (...)", N decodings deep
(base64 of `user:password` is level 1, base64 of a whole `.dockerconfigjson` with its `auth`
field is level 2). Hits never carry the password itself, so a failure message is safe to print.
"""

from __future__ import annotations

import base64
import binascii
import re
import urllib.parse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from lab.credentials import PASSWORD_CORE, PASSWORD_SUFFIX, TUTORIAL_PASSWORD

MAX_DEPTH = 3
TUTORIAL = re.compile(re.escape(TUTORIAL_PASSWORD))
# base64 runs long enough to hold `user:password`; standard and URL-safe alphabets.
B64_TOKEN = re.compile(r"[A-Za-z0-9+/_-]{12,}={0,2}")
# base64 wrapped over lines (`base64` without -w 0), raw or inside a JSON string ("\n").
B64_WRAPPED = re.compile(r"(?:[A-Za-z0-9+/]{40,}(?:\\n|\r?\n[ \t]*))+[A-Za-z0-9+/]+={0,2}")
_WRAP = re.compile(r"\\n|\s")
_URLSAFE = str.maketrans("-_", "+/")
# What follows a password's core, by encoding; checked in this order.
TAILS = (
    ("plain", re.compile(re.escape(PASSWORD_SUFFIX))),
    ("html-escaped", re.compile(r"&amp;|&#0*38;|&#x0*26;", re.I)),
    ("json-escaped", re.compile(r"\\u0026|\\\\u0026|&\+\\/", re.I)),
    ("url-encoded", re.compile(r"%26", re.I)),
)


@dataclass(frozen=True)
class Hit:
    encoding: str
    offset: int


@dataclass(frozen=True)
class Leak:
    path: Path
    encoding: str
    line: int
    count: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: a password, {self.encoding} ({self.count}x)"


def tail_encoding(text: str, end: int) -> str:
    """The encoding a password is in, from the characters after its core."""
    for name, pattern in TAILS:
        if pattern.match(text, end):
            return name
    return "core without its tail"  # cut short, or an encoding not named here: still a leak


def decodings(token: str) -> Iterator[str]:
    """The text a token could stand for, read from each of its first four characters (a token
    glued to a neighbouring word starts off the 4-character grid)."""
    for shift in range(4):
        core = token[shift:].rstrip("=").translate(_URLSAFE)
        core = core[: len(core) - len(core) % 4] if len(core) % 4 == 1 else core
        if len(core) < 8:
            return
        try:
            raw = base64.b64decode(core + "=" * (-len(core) % 4))
        except (binascii.Error, ValueError):
            continue
        yield raw.decode("utf-8", errors="replace")


def _tokens(text: str) -> Iterator[tuple[int, str]]:
    for match in B64_TOKEN.finditer(text):
        yield match.start(), match.group()
    for match in B64_WRAPPED.finditer(text):
        yield match.start(), _WRAP.sub("", match.group())


def _variants(text: str) -> Iterator[str]:
    """The text, and the text with URL and JSON escapes undone (a base64 token may be escaped)."""
    yield text
    if "%" in text:
        yield urllib.parse.unquote(text)
    if "\\" in text:
        yield text.replace("\\/", "/").replace("\\u002b", "+").replace("\\u003d", "=")


def find(text: str, depth: int = 0) -> list[Hit]:
    """Every password in ``text``, at most ``MAX_DEPTH - depth`` base64 decodings deep."""
    hits = [Hit(tail_encoding(text, m.end()), m.start()) for m in PASSWORD_CORE.finditer(text)]
    hits += [Hit("plain (the tutorial's password)", m.start()) for m in TUTORIAL.finditer(text)]
    if depth >= MAX_DEPTH:
        return hits
    seen: set[str] = set()
    for variant in _variants(text):
        for offset, token in _tokens(variant):
            if token in seen:
                continue
            seen.add(token)
            for decoded in decodings(token):
                hits += [
                    Hit(_one_level_deeper(inner.encoding), min(offset, len(text) - 1))
                    for inner in find(decoded, depth + 1)
                ]
    return list(dict.fromkeys(hits))


def _one_level_deeper(encoding: str) -> str:
    match = re.fullmatch(r"base64 level (\d+) \((.*)\)", encoding)
    if match:
        return f"base64 level {int(match.group(1)) + 1} ({match.group(2)})"
    return f"base64 level 1 ({encoding})"


def scan_file(path: Path) -> list[Leak]:
    text = path.read_bytes().decode("utf-8", errors="replace")
    by_encoding: dict[str, list[int]] = {}
    for hit in find(text):
        by_encoding.setdefault(hit.encoding, []).append(hit.offset)
    return [
        Leak(path, encoding, text.count("\n", 0, min(offsets)) + 1, len(offsets))
        for encoding, offsets in sorted(by_encoding.items())
    ]


def files_under(roots: Iterable[Path]) -> Iterator[Path]:
    for root in roots:
        if root.is_file():
            yield root
        elif root.is_dir():
            yield from (p for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink())


def scan(roots: Iterable[Path]) -> list[Leak]:
    """Every leak in every regular file under ``roots``, by file and encoding."""
    return [leak for path in files_under(roots) for leak in scan_file(path)]
