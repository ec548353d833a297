"""A request the lab made with ``requests``, written the way it went over the wire.

Transcripts show these instead of a `curl` line that never ran: the request line and the
headers really sent (an Authorization value shows its scheme only), then the status line, the
headers that carry meaning and the body.
"""

from __future__ import annotations

import requests

# Response headers worth showing beside the status line: the rest is transport detail.
SHOWN_RESPONSE_HEADERS = ("Content-Type", "WWW-Authenticate")


def request_text(
    request: requests.PreparedRequest, body: bytes | None = None, notes: tuple[str, ...] = ()
) -> str:
    """The request line, its headers, ``# notes`` (e.g. how TLS identified us), the body."""
    lines = [f"{request.method} {request.url}"]
    for name, value in request.headers.items():
        if name.lower() in ("authorization", "proxy-authorization"):
            value = f"{str(value).split(' ', 1)[0]} ******"
        lines.append(f"{name}: {value}")
    lines += [f"# {note}" for note in notes]
    text = "\n".join(lines)
    return text + "\n\n" + body.decode(errors="replace") if body else text


def response_text(response: requests.Response, body: str | None = None) -> str:
    """The status line, the headers that carry meaning, then the body (``body`` replaces the
    raw text, e.g. pretty-printed JSON)."""
    lines = [f"HTTP {response.status_code} {response.reason}"]
    lines += [
        f"{h}: {response.headers[h]}" for h in SHOWN_RESPONSE_HEADERS if h in response.headers
    ]
    return "\n".join(lines) + "\n\n" + (response.text if body is None else body)
