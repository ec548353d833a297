"""`doctor --probe`: talk to the registry a failing image names, from where doctor runs.

The kubelet's message says what the node saw; the probe says what this machine sees now, step
by step, the way a pull proceeds: DNS, TCP, the TLS handshake (the chain against the system
store and an optional CA file, the certificate's dates, whether the name is in its SANs),
``GET /v2/`` and its challenge, and, with the credentials of the pod's matching pull secret,
``HEAD /v2/<repository>/manifests/<tag>``. It is evidence of its own, never mixed with the
kubelet's: a different machine may resolve, route and trust differently from the node.

Credentials go into an Authorization header and nowhere else: they are registered with the
masker first, sent only over a connection whose certificate is trusted from here and names the
host, and no line the probe writes holds them.

>>> report = probe_image("reg:5000/lab/app:1", [Credential("registry-1", "reg:5000", ("foo", pw))])
>>> print("\\n".join(report.lines()))
"""

from __future__ import annotations

import base64
import datetime
import http.client
import ipaddress
import json
import socket
import ssl
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from lab.doctor.evidence import Evidence, SecretRead
from lab.doctor.keyring import DOCKER_HUB, image_host, image_repository, key_credentials
from lab.masking import MASKER, mask

TIMEOUT = 3.0  # seconds per step: a probe answers quickly or says it could not
# Docker Hub's images name docker.io; its registry API lives here.
HUB_REGISTRY = "registry-1.docker.io"
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
MEANING = {
    200: "these credentials can pull the image",
    401: "the registry refused these credentials",
    403: "authenticated, but not allowed to pull this repository",
    404: "no such repository or tag",
    429: "rate limited",
}


@dataclass(frozen=True)
class Credential:
    """One key of a pull secret that serves the image, with what it holds (never shown)."""

    secret: str
    key: str
    user_password: tuple[str, str] = field(repr=False)


@dataclass(frozen=True)
class Check:
    """One step of the probe: ``ok`` is None when the step was not tried."""

    name: str  # dns / tcp / tls / tls-chain / tls-name / tls-dates / v2 / manifest / http
    ok: bool | None
    detail: str
    status: int | None = None  # the HTTP status, for v2 and manifest

    def to_json(self) -> dict:
        return {"check": self.name, "ok": self.ok, "detail": self.detail, "status": self.status}


@dataclass(frozen=True)
class ProbeReport:
    registry: str  # host[:port] as the image names it
    image: str
    checks: tuple[Check, ...]

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    def lines(self) -> list[str]:
        return [f"probe: {self.registry}: {c.name}: {c.detail}" for c in self.checks]

    def to_json(self) -> dict:
        return {
            "registry": self.registry,
            "image": self.image,
            "checks": [c.to_json() for c in self.checks],
        }


@dataclass(frozen=True)
class Target:
    """Where the probe connects: the image's registry as host, port and repository path."""

    registry: str
    host: str
    port: int
    repository: str  # the path inside the registry: lab/app, library/busybox
    reference: str  # the tag or the digest

    @staticmethod
    def of(image: str) -> Target:
        registry = image_host(image)
        hostport = HUB_REGISTRY if registry == DOCKER_HUB else registry
        host, port = _split_hostport(hostport)
        repository = image_repository(image).split("/", 1)[1]
        if "@" in image:
            reference = image.split("@", 1)[1]
        else:
            last = image.rsplit("/", 1)[-1]
            reference = last.split(":", 1)[1] if ":" in last else "latest"
        return Target(registry, host, port, repository, reference)


def _split_hostport(hostport: str) -> tuple[str, int]:
    if hostport.startswith("["):  # [v6]:port
        host, _, rest = hostport[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else 443
    host, _, port = hostport.partition(":")
    return host, int(port) if port else 443


def probe_failing(evidence: Evidence, ca_file: Path | None = None) -> tuple[ProbeReport, ...]:
    """One probe per registry a failing container's image names, with the credentials the
    pod's pull secrets hold for it (or, if none, those its ServiceAccount alone lists)."""
    reports, seen = [], set()
    for pull in evidence.failing:
        if pull.host in seen or pull.reason == "InvalidImageName":
            continue
        seen.add(pull.host)
        sa_only = evidence.service_account.extra if evidence.service_account else ()
        creds = credentials_for(evidence.secrets, pull.image) or credentials_for(
            sa_only, pull.image
        )
        reports.append(probe_image(pull.image, creds, ca_file))
    return tuple(reports)


def credentials_for(secrets: Sequence[SecretRead], image: str) -> list[Credential]:
    """The keys that serve ``image`` under the kubelet's rules, with what they hold."""
    found = []
    for read in secrets:
        if read.status != "found" or read.parsed.problem:
            continue
        for key in read.parsed.keys:
            pair = (
                key_credentials(read.type, dict(read.data), key.raw) if key.serves(image) else None
            )
            if pair is not None:
                found.append(Credential(read.name, key.raw, pair))
    return found


def probe_image(
    image: str,
    credentials: Sequence[Credential] = (),
    ca_file: Path | None = None,
    timeout: float = TIMEOUT,
) -> ProbeReport:
    """Probe the registry ``image`` names; ``credentials`` are tried on its manifest."""
    for cred in credentials:  # whatever happens next, no output can show them
        MASKER.add_password(cred.user_password[1], cred.user_password[0])
    target = Target.of(image)
    checks = _probe(target, credentials, ca_file, timeout)
    masked = tuple(Check(c.name, c.ok, mask(c.detail), c.status) for c in checks)
    return ProbeReport(target.registry, image, masked)


def _probe(
    target: Target, credentials: Sequence[Credential], ca_file: Path | None, timeout: float
) -> list[Check]:
    checks: list[Check] = []
    addresses = _resolve(target, checks)
    if not addresses:
        return checks
    address = _connect(target, addresses, timeout, checks)
    if address is None:
        return checks
    cert = _handshake(target, address, timeout, checks)
    if cert is None:
        checks.append(_plain_http(target, address, timeout))
        return checks
    trusted = _chain(target, address, ca_file, timeout, checks)
    named = _name(target, cert, checks)
    _dates(cert, checks)
    challenge = _v2(target, address, timeout, checks)
    checks += _manifest(target, credentials, ca_file, timeout, trusted and named, challenge)
    return checks


def _resolve(target: Target, checks: list[Check]) -> list[str]:
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except OSError as exc:
        checks.append(Check("dns", False, f"{target.host} does not resolve here: {exc}"))
        return []
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    checks.append(Check("dns", True, f"{target.host} -> {', '.join(addresses)}"))
    return addresses


def _connect(
    target: Target, addresses: list[str], timeout: float, checks: list[Check]
) -> str | None:
    errors = []
    for address in addresses:
        started = time.monotonic()
        try:
            with socket.create_connection((address, target.port), timeout=timeout):
                ms = (time.monotonic() - started) * 1000
                checks.append(
                    Check("tcp", True, f"connected to {address} port {target.port} in {ms:.0f} ms")
                )
                return address
        except OSError as exc:
            errors.append(f"{address} port {target.port}: {exc.strerror or exc}")
    checks.append(Check("tcp", False, "; ".join(errors)))
    return None


def _open(address: str, port: int, timeout: float) -> socket.socket:
    return socket.create_connection((address, port), timeout=timeout)


def _handshake(
    target: Target, address: str, timeout: float, checks: list[Check]
) -> x509.Certificate | None:
    """The server's certificate, read without judging it (the checks after judge it)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            _open(address, target.port, timeout) as raw,
            context.wrap_socket(raw, server_hostname=_sni(target.host)) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
            version = tls.version()
    except (OSError, ssl.SSLError) as exc:
        checks.append(Check("tls", False, f"no TLS handshake: {_reason(exc)}"))
        return None
    if not der:
        checks.append(Check("tls", False, f"{version}: the server sent no certificate"))
        return None
    cert = x509.load_der_x509_certificate(der)
    checks.append(
        Check(
            "tls",
            True,
            f"{version}; certificate for {cert.subject.rfc4514_string()}, issued by {cert.issuer.rfc4514_string()}",
        )
    )
    return cert


def _sni(host: str) -> str | None:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host
    return None  # no SNI for an address


def _chain(
    target: Target, address: str, ca_file: Path | None, timeout: float, checks: list[Check]
) -> bool:
    """Whether the chain verifies against the system store, and against ``ca_file``."""
    verdicts, trusted = [], False
    stores: list[tuple[str, Path | None]] = [("the system store", None)]
    if ca_file is not None:
        stores.append((f"--ca-file {ca_file}", ca_file))
    for label, path in stores:
        context = _verifying_context(path, check_hostname=False, system=path is None)
        try:
            with (
                _open(address, target.port, timeout) as raw,
                context.wrap_socket(raw, server_hostname=_sni(target.host)),
            ):
                pass
        except ssl.SSLCertVerificationError as exc:
            verdicts.append(f"not trusted by {label} ({exc.verify_message})")
            continue
        except (OSError, ssl.SSLError) as exc:
            verdicts.append(f"not checked against {label}: {_reason(exc)}")
            continue
        trusted = True
        verdicts.append(f"trusted by {label}")
    checks.append(Check("tls-chain", trusted, "; ".join(verdicts)))
    return trusted


def _verifying_context(
    ca_file: Path | None, check_hostname: bool, system: bool = True
) -> ssl.SSLContext:
    """A context that verifies against the system store, ``ca_file``, or both."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = check_hostname
    if system:
        context.load_default_certs()
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return context


def _name(target: Target, cert: x509.Certificate, checks: list[Check]) -> bool:
    names = _sans(cert)
    shown = ", ".join(names) or "none"
    ok = any(_matches(target.host, name) for name in names)
    verdict = "in" if ok else "NOT in"
    checks.append(
        Check("tls-name", ok, f"{target.host} is {verdict} the certificate's SANs ({shown})")
    )
    return ok


def _sans(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    dns = [f"DNS:{n}" for n in ext.get_values_for_type(x509.DNSName)]
    ips = [f"IP:{ip}" for ip in ext.get_values_for_type(x509.IPAddress)]
    return dns + ips


def _matches(host: str, san: str) -> bool:
    kind, _, value = san.partition(":")
    if kind == "IP":
        try:
            return ipaddress.ip_address(host) == ipaddress.ip_address(value)
        except ValueError:
            return False
    host, value = host.lower(), value.lower()
    if value.startswith("*."):  # one label, as Go's crypto/x509 matches
        return host.count(".") == value.count(".") and host.endswith(value[1:])
    return host == value


def _dates(cert: x509.Certificate, checks: list[Check]) -> None:
    now = datetime.datetime.now(datetime.UTC)
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    span = f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
    if now < start:
        checks.append(
            Check("tls-dates", False, f"not valid yet: valid {span} (now {now:%Y-%m-%d %H:%M})")
        )
    elif now > end:
        checks.append(
            Check("tls-dates", False, f"expired: valid {span} (now {now:%Y-%m-%d %H:%M})")
        )
    else:
        checks.append(Check("tls-dates", True, f"valid {span}"))


def _v2(target: Target, address: str, timeout: float, checks: list[Check]) -> str:
    """GET /v2/ without credentials (none are sent before the chain is judged)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        status, headers = _request(target, "GET", "/v2/", {}, context, timeout, address)
    except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
        checks.append(Check("v2", False, f"GET /v2/: {_reason(exc)}"))
        return ""
    challenge = headers.get("www-authenticate", "")
    said = f", WWW-Authenticate: {challenge}" if challenge else ", no challenge"
    checks.append(Check("v2", status in (200, 401), f"GET /v2/: {status}{said}", status))
    return challenge


def _plain_http(target: Target, address: str, timeout: float) -> Check:
    """After a failed handshake: does the port speak plain HTTP (a registry without TLS)?"""
    conn = http.client.HTTPConnection(address, target.port, timeout=timeout)
    try:
        conn.request("GET", "/v2/", headers={"Host": f"{target.host}:{target.port}"})
        status = conn.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        return Check("http", False, f"plain HTTP GET /v2/ does not answer either: {_reason(exc)}")
    finally:
        conn.close()
    if status in (200, 401):
        said = f"plain HTTP GET /v2/: {status}: the registry speaks plain HTTP, not HTTPS"
        return Check("http", True, said, status)
    return Check("http", False, f"plain HTTP GET /v2/: {status}", status)


def _manifest(
    target: Target,
    credentials: Sequence[Credential],
    ca_file: Path | None,
    timeout: float,
    safe: bool,
    challenge: str,
) -> list[Check]:
    path = f"/v2/{target.repository}/manifests/{target.reference}"
    if not credentials:
        return [
            Check(
                "manifest",
                None,
                f"HEAD {path}: not tried: no pull secret of the pod has credentials for {target.registry}",
            )
        ]
    if not safe:
        return [
            Check(
                "manifest",
                None,
                f"HEAD {path}: not tried: credentials are sent only to a registry whose certificate is trusted here and names {target.host} (see --ca-file)",
            )
        ]
    return [_manifest_with(target, cred, path, ca_file, timeout, challenge) for cred in credentials]


def _manifest_with(
    target: Target,
    cred: Credential,
    path: str,
    ca_file: Path | None,
    timeout: float,
    challenge: str,
) -> Check:
    who = f"HEAD {path} with secret {cred.secret} (key {cred.key})"
    context = _verifying_context(ca_file, check_hostname=True)
    try:
        auth = _authorization(target, cred, challenge, context, timeout)
        headers = {"Authorization": auth, "Accept": MANIFEST_TYPES}
        status, _ = _request(target, "HEAD", path, headers, context, timeout)
    except (OSError, ssl.SSLError, http.client.HTTPException, ValueError) as exc:
        return Check("manifest", False, f"{who}: {_reason(exc)}")
    meaning = MEANING.get(status, "")
    return Check(
        "manifest", status == 200, f"{who}: {status}" + (f" ({meaning})" if meaning else ""), status
    )


def _authorization(
    target: Target, cred: Credential, challenge: str, context: ssl.SSLContext, timeout: float
) -> str:
    """Basic for a Basic challenge; for a Bearer one, a pull token fetched with Basic."""
    user, password = cred.user_password
    basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    if not challenge.lower().startswith("bearer "):
        return basic
    params = dict(_challenge_params(challenge[len("bearer ") :]))
    realm = urllib.parse.urlsplit(params.get("realm", ""))
    if realm.scheme != "https" or not realm.hostname:
        raise ValueError(f"no usable token realm in the challenge ({challenge})")
    query = urllib.parse.urlencode(
        {"service": params.get("service", ""), "scope": f"repository:{target.repository}:pull"}
    )
    token_target = Target(target.registry, realm.hostname, realm.port or 443, "", "")
    status, body = _token(token_target, f"{realm.path or '/'}?{query}", basic, context, timeout)
    if status != 200:
        raise ValueError(f"the token service {realm.hostname} answered {status}")
    token = body.get("token") or body.get("access_token")
    if not isinstance(token, str):
        raise ValueError(f"the token service {realm.hostname} gave no token")
    return f"Bearer {token}"


def _challenge_params(text: str) -> list[tuple[str, str]]:
    params = []
    for part in text.split(","):
        key, _, value = part.strip().partition("=")
        params.append((key.strip().lower(), value.strip().strip('"')))
    return params


def _token(
    target: Target, path: str, basic: str, context: ssl.SSLContext, timeout: float
) -> tuple[int, dict]:
    conn = http.client.HTTPSConnection(target.host, target.port, timeout=timeout, context=context)
    try:
        conn.request("GET", path, headers={"Authorization": basic})
        response = conn.getresponse()
        text = response.read(1_000_000)
    finally:
        conn.close()
    try:
        body = json.loads(text)
    except ValueError:
        body = {}
    return response.status, body if isinstance(body, dict) else {}


def _request(
    target: Target,
    method: str,
    path: str,
    headers: dict[str, str],
    context: ssl.SSLContext,
    timeout: float,
    address: str | None = None,
) -> tuple[int, dict[str, str]]:
    """One HTTPS request; with ``address``, to that address with the host's name in SNI."""
    conn = http.client.HTTPSConnection(target.host, target.port, timeout=timeout, context=context)
    if address is not None:
        conn.sock = context.wrap_socket(
            _open(address, target.port, timeout), server_hostname=_sni(target.host)
        )
    try:
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        response.read(65536)
        return response.status, {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()


def _reason(exc: BaseException) -> str:
    """One line saying what went wrong, without Python's decoration."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
