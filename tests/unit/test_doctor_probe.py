"""`doctor --probe` against a real TLS registry stand-in on 127.0.0.1.

The server is a threaded ``http.server`` behind a trustme certificate: ``/v2/`` answers 401 with
a Basic challenge (200 with the right credentials), the one manifest it holds answers 200 to
the right credentials and 401 to others, anything else 404. It records every Authorization
header it got, so a test can prove the probe sent none where it must not.
"""

from __future__ import annotations

import base64
import http.server
import json
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme

from lab.doctor import Diagnosis, Evidence, diagnose
from lab.doctor.probe import Credential, probe_failing, probe_image

DATA = Path(__file__).parent / "data" / "doctor"
USER, PASSWORD = "foo", "probe-pw-7f3a9c&+/"
REPO, TAG = "lab/app", "1.0"


@dataclass
class Registry:
    port: int
    ca_file: Path
    seen_auth: list[str] = field(default_factory=list)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def image(self, tag: str = TAG) -> str:
        return f"{self.host}/{REPO}:{tag}"


def _handler(registry: Registry, challenge: str, token: str | None):
    good_basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    good = f"Bearer {token}" if token else good_basic

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _answer(self, status: int, body: bytes = b"") -> None:
            self.send_response(status)
            if status == 401:
                self.send_header("WWW-Authenticate", challenge)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _route(self) -> None:
            auth = self.headers.get("Authorization", "")
            if auth:
                registry.seen_auth.append(auth)
            if token and self.path.startswith("/token"):
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                ok = auth == good_basic and query.get("scope") == [f"repository:{REPO}:pull"]
                body = json.dumps({"token": token}).encode() if ok else b"{}"
                self._answer(200 if ok else 401, body)
            elif auth != good:
                self._answer(401)
            elif self.path in ("/v2/", f"/v2/{REPO}/manifests/{TAG}"):
                self._answer(200)
            else:
                self._answer(404)

        do_GET = do_HEAD = _route

    return Handler


@pytest.fixture
def serve(tmp_path) -> Iterator:
    servers = []

    def start(
        names: tuple[str, ...] = ("127.0.0.1", "localhost"),
        tls: bool = True,
        bearer: bool = False,
    ) -> Registry:
        ca = trustme.CA()
        ca_file = tmp_path / f"ca-{len(servers)}.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        registry = Registry(0, ca_file)
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), http.server.BaseHTTPRequestHandler
        )
        registry.port = server.server_address[1]
        realm = f"https://127.0.0.1:{registry.port}/token"
        challenge = f'Bearer realm="{realm}",service="lab"' if bearer else 'Basic realm="lab"'
        server.RequestHandlerClass = _handler(registry, challenge, "tok-1" if bearer else None)
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ca.issue_cert(*names).configure_cert(context)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return registry

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _cred(password: str = PASSWORD) -> Credential:
    return Credential("registry-1", "127.0.0.1", (USER, password))


def _by_name(report) -> dict:
    return {c.name: c for c in report.checks}


def test_the_right_credentials_get_200_and_every_step_is_shown(serve):
    reg = serve()

    report = probe_image(reg.image(), [_cred()], ca_file=reg.ca_file)
    checks = _by_name(report)

    assert [c.name for c in report.checks] == [
        "dns", "tcp", "tls", "tls-chain", "tls-name", "tls-dates", "v2", "manifest",
    ]  # fmt: skip
    assert checks["dns"].detail == "127.0.0.1 -> 127.0.0.1"
    assert "not trusted by the system store" in checks["tls-chain"].detail
    assert f"trusted by --ca-file {reg.ca_file}" in checks["tls-chain"].detail
    assert checks["tls-chain"].ok and checks["tls-name"].ok and checks["tls-dates"].ok
    assert checks["v2"].status == 401
    assert checks["v2"].detail == 'GET /v2/: 401, WWW-Authenticate: Basic realm="lab"'
    assert (checks["manifest"].status, checks["manifest"].ok) == (200, True)
    assert checks["manifest"].detail.startswith(
        f"HEAD /v2/{REPO}/manifests/{TAG} with secret registry-1 (key 127.0.0.1): 200"
    )


def test_a_wrong_password_gets_401_and_no_credential_is_ever_shown(serve):
    reg = serve()
    wrong = "wrong-pw-2b8e1d"

    report = probe_image(reg.image(), [_cred(wrong)], ca_file=reg.ca_file)
    shown = "\n".join(report.lines()) + json.dumps(report.to_json())

    manifest = _by_name(report)["manifest"]
    assert (manifest.status, manifest.ok) == (401, False)
    assert "the registry refused these credentials" in manifest.detail
    auth = base64.b64encode(f"{USER}:{wrong}".encode()).decode()
    assert wrong not in shown and auth not in shown
    assert reg.seen_auth == [f"Basic {auth}"]  # sent once, to the manifest, and only there


def test_a_missing_tag_gets_404(serve):
    reg = serve()

    report = probe_image(reg.image("no-such-tag"), [_cred()], ca_file=reg.ca_file)

    assert _by_name(report)["manifest"].status == 404


def test_credentials_are_not_sent_to_a_registry_this_machine_does_not_trust(serve):
    reg = serve()

    report = probe_image(reg.image(), [_cred()])  # no --ca-file: the system store only
    checks = _by_name(report)

    assert checks["tls-chain"].ok is False
    assert "unable to get local issuer certificate" in checks["tls-chain"].detail
    assert checks["v2"].status == 401  # asked without credentials
    assert checks["manifest"].ok is None and "not tried" in checks["manifest"].detail
    assert reg.seen_auth == []


def test_a_name_missing_from_the_certificate_is_shown_and_stops_the_credentials(serve):
    reg = serve(names=("reg.example",))

    report = probe_image(reg.image(), [_cred()], ca_file=reg.ca_file)
    checks = _by_name(report)

    assert checks["tls-name"].ok is False
    assert checks["tls-name"].detail == (
        "127.0.0.1 is NOT in the certificate's SANs (DNS:reg.example)"
    )
    assert checks["manifest"].ok is None
    assert reg.seen_auth == []


def test_without_a_matching_secret_the_manifest_is_not_tried(serve):
    reg = serve()

    report = probe_image(reg.image(), [], ca_file=reg.ca_file)

    manifest = _by_name(report)["manifest"]
    assert manifest.ok is None
    assert f"no pull secret of the pod has credentials for {reg.host}" in manifest.detail


def test_a_bearer_challenge_fetches_a_pull_token_with_the_credentials(serve):
    reg = serve(bearer=True)

    report = probe_image(reg.image(), [_cred()], ca_file=reg.ca_file)

    assert _by_name(report)["manifest"].status == 200
    assert "tok-1" not in "\n".join(report.lines())
    assert reg.seen_auth[-1] == "Bearer tok-1"


def test_a_plain_http_registry_fails_the_handshake_and_says_it_speaks_http(serve):
    reg = serve(tls=False)

    report = probe_image(reg.image(), [_cred()], ca_file=reg.ca_file)
    checks = _by_name(report)

    assert [c.name for c in report.checks] == ["dns", "tcp", "tls", "http"]
    assert checks["tls"].ok is False
    assert checks["http"].detail.endswith("the registry speaks plain HTTP, not HTTPS")
    assert reg.seen_auth == []


def test_a_closed_port_stops_at_tcp():
    with socket.socket() as s:  # a port that was free a moment ago, and is closed now
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    report = probe_image(f"127.0.0.1:{port}/lab/app:1", [_cred()])

    assert [c.name for c in report.checks] == ["dns", "tcp"]
    assert _by_name(report)["tcp"].detail == f"127.0.0.1 port {port}: Connection refused"


def test_the_probe_uses_the_pods_matching_secret_and_its_output_holds_no_password(serve):
    reg = serve()
    wrong = "wrong-pw-9d0c44"
    record = json.loads((DATA / "wrong-password.json").read_text())
    record["pod"]["spec"]["containers"][0]["image"] = reg.image()
    config = {"auths": {reg.host: {"username": USER, "password": wrong}}}
    data = base64.b64encode(json.dumps(config).encode()).decode()
    record["secrets"][0]["secret"]["data"] = {".dockerconfigjson": data}
    evidence = Evidence.from_capture(record)

    probes = probe_failing(evidence, reg.ca_file)
    diagnosis = Diagnosis(evidence, diagnose(evidence), probes)
    text, doc = diagnosis.text(), diagnosis.to_json()

    (report,) = probes
    assert report.registry == reg.host
    secret = record["secrets"][0]["name"]
    assert f"with secret {secret} (key {reg.host}): 401" in text
    assert "probe (from where doctor runs, not from the node" in text
    assert doc["probe"][0]["checks"][-1]["status"] == 401
    for shown in (text, json.dumps(doc)):
        assert wrong not in shown and data not in shown
        assert base64.b64encode(f"{USER}:{wrong}".encode()).decode() not in shown
