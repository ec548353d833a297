"""YAML text for kubectl and kind that Go's YAML parser reads back as the same strings.

PyYAML writes by YAML 1.1's rules, where `79148e82` is a plain string; sigs.k8s.io/yaml (kubectl,
kind) reads it as a float and rejects it as a label value. A random run id hit exactly that. So
every string that any YAML parser could resolve to a number, bool or null is double-quoted.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

# Plain scalars that go-yaml (v2, v3) or a YAML 1.1/1.2 parser reads as a non-string.
_NOT_A_STRING = re.compile(
    r"""^(?:
        [-+]?(?:\.[0-9_]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?   # ints, floats, 1e5
      | [-+]?0[xX][0-9a-fA-F_]+ | [-+]?0[oO]?[0-7_]+ | [-+]?0[bB][01_]+    # other bases
      | [-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?                   # sexagesimal (1.1)
      | [-+]?\.(?:inf|Inf|INF) | \.(?:nan|NaN|NAN)
      | y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE
      | on|On|ON|off|Off|OFF|null|Null|NULL|~|
    )$""",
    re.VERBOSE,
)


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = '"' if _NOT_A_STRING.match(value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(document: Any, sort_keys: bool = True) -> str:
    """`yaml.safe_dump`, with every number-, bool- or null-shaped string quoted."""
    return yaml.dump(document, Dumper=_Dumper, sort_keys=sort_keys)
