"""The leak scanner on synthetic files: one per encoding a password takes, and a clean one."""

from __future__ import annotations

import base64
import json
import textwrap
import urllib.parse
from pathlib import Path

import pytest

from lab.credentials import PASSWORD_PREFIX, PASSWORD_SUFFIX
from tests.leakscan import scan, scan_file

# A password of the lab's shape, made here: never registered, never a real one.
PASSWORD = f"{PASSWORD_PREFIX}{'0a1b2c3d4e5f6789'}{PASSWORD_SUFFIX}"
USER = "lab-user"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def dockerconfigjson(with_password: bool) -> str:
    entry = {"auth": b64(f"{USER}:{PASSWORD}")}
    if with_password:
        entry |= {"username": USER, "password": PASSWORD}
    # Go's encoder, as kubectl and the API server write it: & becomes \u0026.
    return json.dumps({"auths": {"reg:5000": entry}}).replace("&", "\\u0026")


def encodings_in(tmp_path: Path, content: str) -> list[str]:
    path = tmp_path / "out.txt"
    path.write_text(f"line one\nsome context: {content} and more\n")
    return [leak.encoding for leak in scan_file(path)]


def test_plain_password_is_found(tmp_path):
    assert encodings_in(tmp_path, PASSWORD) == ["plain"]


def test_base64_of_user_and_password_is_base64_level_1(tmp_path):
    assert encodings_in(tmp_path, f'"auth": "{b64(f"{USER}:{PASSWORD}")}"') == [
        "base64 level 1 (plain)"
    ]


def test_base64_of_a_whole_dockerconfigjson_is_base64_level_2(tmp_path):
    blob = b64(dockerconfigjson(with_password=False))
    assert encodings_in(tmp_path, f'"data": {{".dockerconfigjson": "{blob}"}}') == [
        "base64 level 2 (plain)"
    ]


def test_dockerconfigjson_with_its_password_field_is_found_at_both_levels(tmp_path):
    blob = b64(dockerconfigjson(with_password=True))
    assert encodings_in(tmp_path, blob) == [
        "base64 level 1 (json-escaped)",
        "base64 level 2 (plain)",
    ]


def test_base64_wrapped_over_lines_is_still_decoded(tmp_path):
    wrapped = "\n".join(textwrap.wrap(b64(dockerconfigjson(with_password=False)), 76))
    assert encodings_in(tmp_path, "\n" + wrapped + "\n") == ["base64 level 2 (plain)"]


@pytest.mark.parametrize(
    "encoded",
    [
        urllib.parse.quote(PASSWORD, safe=""),  # %26%2B%2F
        urllib.parse.quote(PASSWORD),  # %26%2B/
        PASSWORD.replace("&", "%26"),  # %26+/
        urllib.parse.quote_plus(PASSWORD),
    ],
    ids=["quote-all", "quote", "ampersand-only", "quote-plus"],
)
def test_url_encoded_password_is_found(tmp_path, encoded):
    assert encodings_in(tmp_path, f"https://h/token?password={encoded}") == ["url-encoded"]


@pytest.mark.parametrize(
    "encoded",
    [PASSWORD.replace("&", "\\u0026"), PASSWORD.replace("/", "\\/"), json.dumps(PASSWORD)[1:-1]],
    ids=["go", "escaped-slash", "python"],
)
def test_json_escaped_password_is_found(tmp_path, encoded):
    expected = "plain" if encoded == PASSWORD else "json-escaped"  # Python leaves &+/ alone
    assert encodings_in(tmp_path, f'{{"password": "{encoded}"}}') == [expected]


def test_html_escaped_password_is_found(tmp_path):
    assert encodings_in(tmp_path, PASSWORD.replace("&", "&amp;")) == ["html-escaped"]


def test_tutorial_password_is_found_plain_and_in_base64(tmp_path):
    found = encodings_in(tmp_path, f"curl -u foo:foo123 ... auth {b64('foo:foo123')}")
    assert found == [
        "base64 level 1 (plain (the tutorial's password))",
        "plain (the tutorial's password)",
    ]


def test_core_without_its_tail_still_counts(tmp_path):
    assert encodings_in(tmp_path, PASSWORD[:-3] + "...") == ["core without its tail"]


def test_a_clean_file_has_no_leaks(tmp_path):
    clean = tmp_path / "report.md"
    clean.write_text(
        "kubectl create secret docker-registry reg --docker-password=******\n"
        '{"auths": {"reg:5000": {"auth": "******"}}}\n'
        f"digest {b64('sha256:' + 'ab' * 32)} and {PASSWORD_PREFIX}<16 hex>&+/\n"
    )
    assert scan([tmp_path]) == []


def test_a_leak_names_file_line_and_encoding_but_not_the_password(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "junit.xml"
    path.write_text(f"<a/>\n<b/>\n<property value='{PASSWORD.replace('&', '&amp;')}'/>\n")
    (leak,) = scan([tmp_path])
    assert (leak.path, leak.line, leak.encoding) == (path, 3, "html-escaped")
    assert PASSWORD[len(PASSWORD_PREFIX) : -3] not in str(leak)
    assert str(path) in str(leak)
