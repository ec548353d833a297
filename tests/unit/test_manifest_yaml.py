"""Manifests the lab writes for kubectl and kind keep every string a string."""

from __future__ import annotations

import pytest
import yaml

from lab import manifest_yaml

NUMBER_SHAPED = [
    "79148e82",
    "1e3",
    "12345678",
    "0x1f",
    "0o17",
    "017",
    "1_000",
    "1.5",
    ".5",
    "-2",
    "+3",
    "1:20",
    ".inf",
    ".NaN",
    "yes",
    "No",
    "on",
    "OFF",
    "y",
    "true",
    "null",
    "~",
    "",
]


@pytest.mark.parametrize("value", NUMBER_SHAPED)
def test_a_number_bool_or_null_shaped_string_is_double_quoted(value):
    text = manifest_yaml.dump({"v": value})
    assert text == f'v: "{value}"\n'
    assert yaml.safe_load(text) == {"v": value}


@pytest.mark.parametrize("value", ["a1b2c3d4", "7eda9738", "lab-056df8b5", "e82", "1e", "1.2.3"])
def test_an_ordinary_string_stays_plain(value):
    assert manifest_yaml.dump({"v": value}) == f"v: {value}\n"


def test_numbers_stay_numbers_and_key_order_can_be_kept():
    text = manifest_yaml.dump({"b": 1, "a": 2.5, "c": True}, sort_keys=False)
    assert text == "b: 1\na: 2.5\nc: true\n"
