"""The tutorial's names as the lab stands them in, for every scenario to share.

The tutorial pulls ``zhangjun3/nginx:1.7.9`` from its registry; the lab pushes its small
workload image (busybox tools, pause as the command) under the stand-in name below.
"""

from __future__ import annotations

from typing import Any

from lab.credentials import new_password

TUTORIAL_REPO = "lab/nginx"
TUTORIAL_TAG = "1.7.9"


def tutorial_image(registry: Any) -> str:
    """The tutorial's image in ``registry`` (a ``LabRegistry``): ``<host:port>/lab/nginx:1.7.9``."""
    return f"{registry.spec.host}/{TUTORIAL_REPO}:{TUTORIAL_TAG}"


def wrong_password(user: str = "foo") -> str:
    """A wrong password, made and registered with the masker like any other: it must not leak
    either."""
    return new_password(user)
