"""Docker's credential files as the kubelet reads them: config.json and the legacy .dockercfg.

One builder of ``{"auths": ...}`` for every place that needs one: a pull secret's
``.dockerconfigjson``, the node's ``/var/lib/kubelet/config.json``, and the file ``docker
login`` writes in the tutorial. The kubelet reads only ``auths``; anything else in the file (a
``credsStore``, say) is ignored.

>>> config_json({"reg:5000": auth_entry("foo", "s3cret")})
b'{"auths": {"reg:5000": {"username": "foo", "password": "s3cret", "auth": "Zm9vOnMzY3JldA=="}}}'
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any


def b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


def basic_auth(user: str, password: str) -> str:
    """The ``auth`` field: base64 of ``user:password``, as HTTP basic auth sends it."""
    return b64(f"{user}:{password}")


def auth_entry(user: str, password: str, email: str | None = None) -> dict:
    """One registry's credentials as docker writes them: the base64 `auth` plus its parts."""
    entry = {"username": user, "password": password, "auth": basic_auth(user, password)}
    if email:
        entry["email"] = email
    return entry


def config_json(
    auths: Mapping[str, Mapping[str, Any]], indent: int | str | None = None, **top_level: Any
) -> bytes:
    """config.json content: ``{"auths": {server: entry}}`` plus any other top-level keys
    (e.g. ``credsStore="desktop"``), in that order."""
    return json.dumps({"auths": dict(auths), **top_level}, indent=indent).encode()


def dockerconfigjson(server: str, user: str, password: str, email: str | None = None) -> bytes:
    """A ``.dockerconfigjson`` for one registry, as ``kubectl create secret docker-registry``
    makes it."""
    return config_json({server: auth_entry(user, password, email)})


def docker_login_config(server: str, user: str, password: str) -> bytes:
    """config.json as ``docker login`` writes it: tab-indented, only the ``auth`` field."""
    return config_json({server: {"auth": basic_auth(user, password)}}, indent="\t")


def dockercfg(server: str, user: str, password: str, email: str | None = None) -> bytes:
    """The legacy .dockercfg format: the bare host map, no `auths` wrapper."""
    return json.dumps({server: auth_entry(user, password, email)}).encode()
