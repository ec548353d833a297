"""Every password the lab uses is made (or, for the tutorial's published one, named) here.

A credential is registered with the masker the moment it exists, in every encoding it can
take on its way through the lab, so no later step can print it by accident.
"""

from __future__ import annotations

import re
import secrets

from lab.masking import MASKER

# Lab passwords have one recognisable shape, so a leak scan can find them without being told
# them: a fixed prefix, 16 random hex digits, and characters that change under URL encoding
# (`&+/`) and under Go's JSON escaping (`&` -> `\u0026`), so those encodings are exercised too.
PASSWORD_PREFIX = "plabpw-"
PASSWORD_SUFFIX = "&+/"
PASSWORD_CORE = re.compile(re.escape(PASSWORD_PREFIX) + r"[0-9a-f]{16}")
# The masker knows this shape too (as LAB_PASSWORD: it cannot import this module), so a process
# that never saw a lab password (the xdist controller) still masks it; a unit test keeps the
# two in step.

# The tutorial's own published credentials (its registry-1 secret holds them).
TUTORIAL_USER = "foo"
TUTORIAL_PASSWORD = "foo123"


def new_password(user: str) -> str:
    """A fresh random password for ``user``, registered with the masker in all its encodings."""
    password = f"{PASSWORD_PREFIX}{secrets.token_hex(8)}{PASSWORD_SUFFIX}"
    MASKER.add_password(password, user)
    return password


def register_known(user: str, password: str) -> str:
    """A password the lab did not make here (the tutorial's, or one read back from a state
    file in another process): masked like the lab's own."""
    MASKER.add_password(password, user)
    return password
