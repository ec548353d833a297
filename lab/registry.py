"""A private registry container: TLS from the lab CA, htpasswd users, optional mTLS; or, to
show what goes wrong, plain HTTP, or a certificate whose dates are wrong.

One class per registry, like testcontainers' modules: ``start()``, ``stop()``, ``with``, and a
readiness check over real TLS that fails with the reason. It joins the cluster's docker
network under its container name (a SAN of its certificate) at a fixed address (also a SAN),
and publishes its port on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import os
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import docker
import requests
from docker.types import EndpointConfig
from requests.adapters import HTTPAdapter

# testcontainers reads these when imported. Ryuk is an image from a public registry (none can
# be pulled offline; the lab labels and removes its own containers), and this machine has a
# /.dockerenv that would make testcontainers dial the bridge gateway instead of localhost.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")

from testcontainers.core.container import DockerContainer

from lab.credentials import new_password
from lab.errors import LabError
from lab.pki import LabPKI, write_private
from lab.registry_config import REGISTRY_PORT, registry_config
from lab.settings import LABEL
from lab.signals import shielded

READY_TIMEOUT = 30.0
ADDRESS_ATTEMPTS = 5
# bcrypt cost 10 costs ~70 ms per authenticated request on these machines; 5 keeps pulls fast
# and is still bcrypt, which is all the registry accepts.
BCRYPT_ROUNDS = 5
# OpenSSL's X509_V_FLAG_NO_CHECK_TIME, which Python's ssl.VerifyFlags does not name.
NO_CHECK_TIME = 0x200000


@dataclass(frozen=True)
class RegistrySpec:
    name: str  # container name and DNS name on the network
    image: str
    network: str
    run_id: str
    # A fresh random password (registered with the masker), never the tutorial's public one.
    users: dict[str, str] = field(default_factory=lambda: {"foo": new_password("foo")})
    mtls: bool = False
    index: int | None = None  # a fixed slot from the top of the subnet; None: the first free one
    extra_sans: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()  # extra DNS names on the network, NOT in the certificate
    # False: plain HTTP and no authentication (a registry someone forgot to put TLS on).
    tls: bool = True
    # (notBefore, notAfter) of the server certificate, to make one that has expired or is not
    # valid yet; None: trustme's default (valid now).
    cert_dates: tuple[datetime.datetime, datetime.datetime] | None = None

    @property
    def host(self) -> str:
        """How nodes name it in image references: ``name:5000``."""
        return f"{self.name}:{REGISTRY_PORT}"


def htpasswd(users: dict[str, str], rounds: int = BCRYPT_ROUNDS) -> bytes:
    """An htpasswd file with bcrypt hashes: the only kind docker/distribution accepts."""
    return b"".join(
        user.encode() + b":" + bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=rounds)) + b"\n"
        for user, pw in users.items()
    )


def network_address(subnet: str, index: int) -> str:
    """An address counted down from the top of the subnet, far from what Docker hands out."""
    net = ipaddress.ip_network(subnet)
    return str(net.broadcast_address - 2 - index)


def network_ipv4(client: docker.DockerClient, network: str) -> tuple[str, set[str]]:
    """The network's IPv4 subnet and the addresses its containers hold now."""
    try:
        info = client.networks.get(network).attrs
    except docker.errors.NotFound as exc:
        raise LabError(
            f"docker network {network} does not exist", "create the cluster first"
        ) from exc
    used = {c.get("IPv4Address", "").split("/")[0] for c in (info.get("Containers") or {}).values()}
    for cfg in info.get("IPAM", {}).get("Config") or []:
        subnet = cfg.get("Subnet", "")
        if subnet and ":" not in subnet:
            return subnet, used
    raise LabError(f"docker network {network} has no IPv4 subnet")


def free_address(subnet: str, used: set[str], index: int | None) -> str:
    if index is not None:
        return network_address(subnet, index)
    for i in range(64):
        candidate = network_address(subnet, i)
        if candidate not in used:
            return candidate
    raise LabError(f"no free address left at the top of {subnet}", "stop some lab registries")


def write_registry_files(
    workdir: Path, spec: RegistrySpec, pki: LabPKI, sans: tuple[str, ...]
) -> None:
    """What a registry reads from /lab (config, server pair, htpasswd) and what the lab keeps
    to reach it (the CA, a client pair for mTLS), in a 0700 dir: keys are 0600."""
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o700)
    pki.write_ca(workdir / "ca.crt")
    (workdir / "config.yml").write_text(registry_config(tls=spec.tls, mtls=spec.mtls))
    if not spec.tls:
        return  # plain HTTP: no certificate, no users
    if spec.cert_dates is None:
        server = pki.server_cert(*sans)
    else:
        not_before, not_after = spec.cert_dates
        server = pki.server_cert_dated(*sans, not_before=not_before, not_after=not_after)
    LabPKI.write_pair(server, workdir / "server.crt", workdir / "server.key")
    write_private(workdir / "htpasswd", htpasswd(spec.users))
    if spec.mtls:
        client = pki.client_cert(f"{spec.name}-client")
        LabPKI.write_pair(client, workdir / "client.cert", workdir / "client.key")


class DatesUncheckedAdapter(HTTPAdapter):
    """HTTPS that trusts only ``ca_file`` and checks chain and names, but not the dates: the
    lab's own way into a registry whose certificate is out of date on purpose."""

    def __init__(self, ca_file: Path) -> None:
        self.context = ssl.create_default_context(cafile=str(ca_file))
        self.context.verify_flags |= NO_CHECK_TIME
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self.context
        super().init_poolmanager(*args, **kwargs)


class RegistryHttp:
    """The lab's own way into a registry, wherever it runs: over ``url`` from this host,
    trusting only the lab CA, with the registry's first user."""

    spec: RegistrySpec
    workdir: Path

    @property
    def ca_file(self) -> Path:
        return self.workdir / "ca.crt"

    @property
    def url(self) -> str:
        raise NotImplementedError

    def session(
        self, auth: tuple[str, str] | None = None, client_cert: bool = True
    ) -> requests.Session:
        """A session that trusts only the lab CA (REQUESTS_CA_BUNDLE would override it)."""
        s = requests.Session()
        s.trust_env = False
        s.verify = str(self.ca_file)
        if auth:
            s.auth = auth
        if self.spec.mtls and client_cert:
            s.cert = (str(self.workdir / "client.cert"), str(self.workdir / "client.key"))
        if self.spec.cert_dates is not None:
            s.mount("https://", DatesUncheckedAdapter(self.ca_file))
        return s

    @property
    def credentials(self) -> tuple[str, str]:
        user, password = next(iter(self.spec.users.items()))
        return user, password

    @property
    def auth(self) -> tuple[str, str] | None:
        """The credentials to send: none to a plain-HTTP registry (it has no users, and a
        password has no business on an unencrypted connection)."""
        return self.credentials if self.spec.tls else None

    def get_json(self, path: str) -> dict:
        resp = self.session(self.auth).get(f"{self.url}{path}", timeout=10)
        resp.raise_for_status()
        return json.loads(resp.text)

    def catalog(self) -> list[str]:
        return list(self.get_json("/v2/_catalog").get("repositories") or [])

    def tags(self, repo: str) -> list[str]:
        return list(self.get_json(f"/v2/{repo}/tags/list").get("tags") or [])


class LabRegistry(RegistryHttp):
    def __init__(self, spec: RegistrySpec, pki: LabPKI, workdir: Path) -> None:
        if spec.mtls and not spec.tls:
            raise LabError(f"registry {spec.name}: mTLS needs TLS", "drop mtls=True or tls=False")
        self.spec = spec
        self.pki = pki
        self.workdir = workdir
        self.client = docker.from_env()
        subnet, used = network_ipv4(self.client, spec.network)
        self.ip = free_address(subnet, used, spec.index)
        self.container: DockerContainer | None = None
        self.host_port: int | None = None

    # ---- files --------------------------------------------------------------------------
    def _write_files(self) -> None:
        sans = (self.spec.name, self.ip, "localhost", "127.0.0.1", *self.spec.extra_sans)
        write_registry_files(self.workdir, self.spec, self.pki, sans)

    # ---- lifecycle ----------------------------------------------------------------------
    @staticmethod
    def find(name: str) -> bool:
        """Whether a container of that name exists (ours from an earlier run, or anyone's)."""
        try:
            docker.from_env().containers.get(name)
        except docker.errors.NotFound:
            return False
        return True

    def start(self) -> LabRegistry:
        """Start and wait until ready. Another run may take the chosen address between our
        look at the network and the start: then the next free address is tried."""
        for attempt in range(ADDRESS_ATTEMPTS):
            self._write_files()  # the certificate names the address, so it follows it
            try:
                with shielded():  # create + start is one step: no container left half-made
                    self._start_container()
                break
            except BaseException as exc:
                if not isinstance(exc, docker.errors.APIError):
                    self.stop()
                    raise
                self.stop()
                if (
                    "address already in use" not in str(exc).lower()
                    or attempt == ADDRESS_ATTEMPTS - 1
                ):
                    raise LabError(
                        f"registry {self.spec.name} did not start: {exc.explanation}"
                    ) from exc
                subnet, used = network_ipv4(self.client, self.spec.network)
                self.ip = free_address(subnet, used | {self.ip}, None)
        try:
            self.host_port = self._published_port()
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_container(self) -> None:
        container = (
            DockerContainer(self.spec.image)
            .with_name(self.spec.name)
            .with_volume_mapping(str(self.workdir), "/lab", "ro")
            .with_command("serve /lab/config.yml")
        )
        # docker-py takes (host_ip,) for "this interface, any free port": loopback only.
        container.ports[f"{REGISTRY_PORT}/tcp"] = ("127.0.0.1",)  # type: ignore[assignment]
        container.with_kwargs(
            network=self.spec.network,
            networking_config={
                self.spec.network: EndpointConfig(
                    docker.__version__, ipv4_address=self.ip, aliases=list(self.spec.aliases)
                )
            },
            labels={LABEL: self.spec.run_id, "io.registry-pull-lab.role": "registry"},
        )
        self.container = container
        container.start()

    def stop(self) -> None:
        with shielded():
            self._stop()

    def _stop(self) -> None:
        if self.container is not None:
            with contextlib.suppress(docker.errors.NotFound):
                self.container.stop()
            self.container = None

    def __enter__(self) -> LabRegistry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        scheme = "https" if self.spec.tls else "http"
        return f"{scheme}://127.0.0.1:{self.host_port}"

    def _published_port(self) -> int:
        """The loopback port docker chose, read from the container itself: testcontainers'
        own lookup waits for a running state that a container which exits at once never
        reaches, and would hide the cause behind a timeout."""
        self._raise_if_exited()
        assert self.container is not None and self.container._container is not None
        bindings = self.container._container.ports.get(f"{REGISTRY_PORT}/tcp") or []
        if not bindings:  # it exited between the two looks
            self._raise_if_exited()
            raise LabError(f"registry {self.spec.name} published no port for {REGISTRY_PORT}")
        return int(bindings[0]["HostPort"])

    def _raise_if_exited(self) -> None:
        assert self.container is not None and self.container._container is not None
        self.container._container.reload()
        if self.container._container.status in ("exited", "dead"):
            raise LabError(
                f"registry {self.spec.name} exited while starting",
                "its log ends: " + self.logs(5).strip().replace("\n", " | ")[-300:],
            )

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Ready when /v2/ answers 401 over TLS (200 over plain HTTP, which has no users);
        fail at once if the container exits."""
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        session = self.session()
        while time.monotonic() < deadline:
            self._raise_if_exited()
            try:
                resp = session.get(f"{self.url}/v2/", timeout=2)
                if resp.status_code == (401 if self.spec.tls else 200):
                    return
                last = f"HTTP {resp.status_code}"
            except requests.exceptions.SSLError as exc:
                last = f"TLS error: {exc}"
            except requests.exceptions.ConnectionError as exc:
                last = f"connection error: {type(exc).__name__}"
            time.sleep(0.1)  # the registry opens its port within a second; poll until it does
        raise LabError(f"registry {self.spec.name} not ready within {timeout:.0f}s: {last}")

    def logs(self, tail: int = 50) -> str:
        if self.container is None or self.container._container is None:
            return ""
        try:
            return self.container._container.logs(tail=tail).decode(errors="replace")
        except docker.errors.APIError:
            return ""


def seed(registry: RegistryHttp, source_ref: str, repo: str, tag: str) -> str:
    """Push a host Docker image into ``registry`` as ``repo:tag``; return its manifest digest."""
    from lab.push import prepared, push_image

    image = prepared(source_ref)
    return push_image(registry.session(registry.auth), registry.url, repo, tag, image)
