"""A password is masked in each of the five forms it takes through the lab, and only secrets are."""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
from dataclasses import dataclass, field

import pytest
import trustme

from lab.credentials import PASSWORD_CORE, new_password, register_known
from lab.masking import LAB_PASSWORD, MASK, Masker, encodings, mask, mask_all


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def go_escape(text: str) -> str:
    """Go's encoding/json escapes these three for HTML safety."""
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def dockerconfigjson(server: str, user: str, password: str) -> str:
    """As kubectl writes it: Go's JSON, so `&` in the password is `\\u0026`."""
    entry = {"username": user, "password": password, "auth": b64(f"{user}:{password}")}
    return go_escape(json.dumps({"auths": {server: entry}}))


@pytest.fixture(params=["foo", "bar"])
def credential(request) -> tuple[str, str]:
    user = request.param
    return user, new_password(user)


def forms(user: str, password: str) -> dict[str, str]:
    """Every encoding a leak scan looks for, by name."""
    auth = f"{user}:{password}"
    config = dockerconfigjson("reg.example:5000", user, password)
    return {
        "plain": password,
        "b64 user:pw padded": b64(auth),
        "b64 user:pw unpadded": b64(auth).rstrip("="),
        "b64 dockerconfigjson": b64(config),
        "b64 secret json holding b64 config": b64(
            json.dumps({"data": {".dockerconfigjson": b64(config)}})
        ),
        "b64 three levels deep": b64(json.dumps({"x": b64(json.dumps({"y": b64(config)}))})),
        "url quote safe=''": urllib.parse.quote(password, safe=""),
        "url quote": urllib.parse.quote(password),
        "url quote_plus": urllib.parse.quote_plus(password),
        "json python": json.dumps(password)[1:-1],
        "json go": go_escape(json.dumps(password)[1:-1]),
    }


def test_lab_password_shape_is_the_one_the_masker_knows():
    password = new_password("foo")
    assert PASSWORD_CORE.match(password)
    assert LAB_PASSWORD.fullmatch(password)


def test_every_encoding_of_a_lab_password_is_masked(credential):
    user, password = credential
    for name, form in forms(user, password).items():
        masked = mask(f"before {form} after")
        assert form not in masked, name
        assert MASK in masked, name
        assert masked.startswith("before ") and masked.endswith(" after"), name


def test_encodings_change_the_special_characters():
    found = encodings("plabpw-0123456789abcdef&+/", "foo")
    assert "plabpw-0123456789abcdef%26%2B%2F" in found
    assert "plabpw-0123456789abcdef%26%2B/" in found
    assert "plabpw-0123456789abcdef\\u0026+/" in found


def test_whole_secret_as_the_api_server_returns_it_is_masked(credential):
    user, password = credential
    response = json.dumps(
        {
            "kind": "Secret",
            "data": {".dockerconfigjson": b64(dockerconfigjson("reg:5000", user, password))},
            "type": "kubernetes.io/dockerconfigjson",
        },
        indent=2,
    )
    masked = mask(response)
    assert json.loads(masked)["data"][".dockerconfigjson"] == MASK
    assert json.loads(masked)["kind"] == "Secret"


def test_a_registered_non_lab_password_is_masked_in_every_form():
    masker = Masker()
    masker.add_password("s3cret<x>&y", "alice")
    for name, form in forms("alice", "s3cret<x>&y").items():
        assert form not in masker.mask(f"[{form}]"), name


def test_an_unregistered_lab_password_is_masked_by_its_shape():
    """The xdist controller's masker never saw the workers' passwords."""
    masker = Masker()
    password = "plabpw-00112233445566ff&+/"
    for name, form in forms("foo", password).items():
        assert form not in masker.mask(f"x {form} x"), name


def test_base64_cut_out_of_a_longer_run_is_still_read():
    token = b64(json.dumps({"note": "padding to shift the grid", "pw": new_password("foo")}))
    masked = mask("Zz" + token)  # glued to a word, off the 4-character grid
    assert token[8:] not in masked and MASK in masked


def test_unrelated_base64_is_left_alone():
    ca = trustme.CA()
    cert_pem = ca.cert_pem.bytes().decode()
    body = "".join(cert_pem.strip().splitlines()[1:-1])
    assert mask(cert_pem) == cert_pem
    assert mask(body) == body
    plain = b64(json.dumps({"auths": {}, "note": "no secret here"}))
    assert mask(plain) == plain
    assert mask("pull-lab-t1234abcd-registry-mtls:5000/lab/busybox") == (
        "pull-lab-t1234abcd-registry-mtls:5000/lab/busybox"
    )


def test_tutorial_password_is_masked_once_known():
    masker = Masker()
    text = "curl -u foo:foo123 https://reg/v2/_catalog; auth Zm9vOmZvbzEyMw=="
    masker.add_password("foo123", "foo")
    assert "foo123" not in masker.mask(text) and "Zm9vOmZvbzEyMw" not in masker.mask(text)
    register_known("foo", "foo123")
    assert "Zm9vOmZvbzEyMw" not in mask(text)


@dataclass
class Entry:
    lines: list[str]
    message: str


@dataclass
class Chain:
    chain: list[tuple[Entry, str | None]]
    sections: list[tuple[str, str, str]] = field(default_factory=list)


def test_mask_all_reaches_nested_dataclasses_lists_and_tuples():
    password = new_password("foo")
    entry = Entry([f"E  assert {password!r} == 'x'"], f"AssertionError: {b64('foo:' + password)}")
    chain = Chain([(entry, password)], [("Captured stdout", password, "call")])
    assert mask_all(chain) is chain
    text = repr(chain)
    assert password not in text and b64("foo:" + password) not in text
    assert mask_all(("path", 3, f"skipped: {password}")) == ("path", 3, f"skipped: {MASK}")


def test_registering_while_masking_is_safe():
    masker = Masker()
    errors: list[BaseException] = []

    def register() -> None:
        for i in range(200):
            masker.add_password(f"concurrent-pw-{i}", "u")

    def read() -> None:
        try:
            for _ in range(200):
                masker.mask("concurrent-pw-1 and some text " * 5)
        except BaseException as exc:  # a torn snapshot would raise here
            errors.append(exc)

    threads = [threading.Thread(target=register), threading.Thread(target=read)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert "concurrent-pw-199" not in masker.mask("concurrent-pw-199")


def test_a_posted_secret_is_recorded_as_its_request_without_the_secret():
    import requests

    from lab.http_record import request_text
    from lab.secrets import dockerconfigjson as kubectl_config
    from lab.transcript import Transcript

    password = new_password("foo")
    body = json.dumps(
        {"data": {".dockerconfigjson": b64(kubectl_config("reg:5000", "foo", password).decode())}}
    ).encode()
    request = requests.Request(
        "POST", "https://127.0.0.1:6443/api/v1/namespaces/ns/secrets", data=body
    ).prepare()
    transcript = Transcript()
    transcript.http(
        "POST the secret",
        request_text(request, body, ("TLS client certificate: the kubeconfig's",)),
        "HTTP 201 Created",
    )

    step = transcript.steps[0]
    assert step.kind == "http"
    assert step.command.startswith("POST https://127.0.0.1:6443/api/v1/namespaces/ns/secrets\n")
    assert "Content-Length: " in step.command and "# TLS client certificate" in step.command
    assert json.loads(step.command.split("\n\n", 1)[1]) == {"data": {".dockerconfigjson": MASK}}
