"""pytest's own output carries no secret: assertion messages, skip reasons, captured output,
teardown errors and JUnit properties are masked by the lab plugin, also from xdist workers
(whose passwords the controller never saw)."""

from __future__ import annotations

import base64
import html
import json
import urllib.parse

import pytest

pytest_plugins = ["pytester"]

# Not the lab's password shape: only registration (in the inner test's own process) masks it.
PASSWORD = "Pl4in-t3st-secret&+/<x>"
USER = "foo"

INNER_TESTS = """
import base64, json, os

import pytest

from lab.credentials import register_known


def password():
    return register_known("foo", os.environ["PW"])


def config_b64(pw):
    auth = base64.b64encode(f"foo:{pw}".encode()).decode()
    config = json.dumps({"auths": {"reg:5000": {"username": "foo", "auth": auth}}})
    return base64.b64encode(config.encode()).decode()


@pytest.fixture
def leaky_teardown():
    pw = password()
    yield
    print("teardown sees", pw)
    assert 0, f"teardown failed with {pw}"


def test_plain_assert(record_property):
    pw = password()
    record_property("p", pw)
    record_property("scenario", json.dumps({"note": pw}))
    print(pw)
    assert pw == "x"


def test_base64_config_in_message():
    assert 0, config_b64(password())


def test_skip_reason():
    pytest.skip(f"skipped with {password()}")


def test_passes_with_output(leaky_teardown):
    pw = password()
    print(json.dumps({"pw": pw}), base64.b64encode(f"foo:{pw}".encode()).decode())
"""


def encodings(user: str, password: str) -> dict[str, str]:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    python_json = json.dumps(password)[1:-1]
    return {
        "plain": password,
        "base64 user:password": auth.rstrip("="),
        "url-encoded": urllib.parse.quote(password, safe=""),
        "url-encoded (quote)": urllib.parse.quote(password),
        "url-encoded (quote_plus)": urllib.parse.quote_plus(password),
        "json-escaped": python_json,
        "json-escaped (go)": python_json.replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e"),
        # base64 of the whole config.json: its first characters never change with the grid.
        "base64 config.json": base64.b64encode(
            json.dumps({"auths": {"reg:5000": {"username": "foo", "auth": auth}}}).encode()
        ).decode()[:40],
    }


def leaks(text: str) -> list[str]:
    return [name for name, form in encodings(USER, PASSWORD).items() if form in text]


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("PW", PASSWORD)
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    pytester.makepyfile(test_inner=INNER_TESTS)
    return pytester


@pytest.mark.parametrize(
    "extra",
    [pytest.param([], id="one-process"), pytest.param(["-p", "xdist", "-n", "2"], id="xdist")],
)
def test_pytest_output_and_junit_hold_no_secret(inner: pytest.Pytester, extra: list[str]):
    junit = inner.path / "junit.xml"
    result = inner.runpytest_subprocess(
        "-rA", f"--junitxml={junit}", "-p", "no:cacheprovider", *extra
    )

    result.assert_outcomes(passed=1, failed=2, skipped=1, errors=1)
    output = "\n".join(result.outlines + result.errlines)
    xml = junit.read_text()
    assert leaks(output) == [], output
    assert leaks(xml) == [] and leaks(html.unescape(xml)) == [], xml
    assert "******" in output and "******" in xml
    # What was masked is still there to read around the mask.
    assert "skipped with ******" in output
    assert 'name="p" value="******"' in xml
