"""The lab's certificates, from a trustme CA: registry server certs, mTLS client certs,
and the files a node needs (a docker-style certs.d directory or a containerd hosts.toml).

    pki = LabPKI.create()
    server = pki.server_cert("pull-lab-reg", "172.18.0.250", "localhost", "127.0.0.1")
    pki.write_pair(server, Path("server.crt"), Path("server.key"))   # key 0600
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path

import trustme

CERTS_D = "/etc/containerd/certs.d"


def write_private(path: Path, data: bytes) -> None:
    """Write key material readable by its owner only, from the first byte on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


@dataclass
class LabPKI:
    ca: trustme.CA

    @classmethod
    def create(cls, organization: str = "registry-pull-lab") -> LabPKI:
        return cls(trustme.CA(organization_name=organization))

    @property
    def ca_pem(self) -> bytes:
        return self.ca.cert_pem.bytes()

    def server_cert(self, *names: str) -> trustme.LeafCert:
        """A certificate valid for every name and IP given (IPs become IP SANs)."""
        return self.ca.issue_cert(*names, common_name=names[0])

    def server_cert_dated(
        self, *names: str, not_before: datetime.datetime, not_after: datetime.datetime
    ) -> trustme.LeafCert:
        """Like ``server_cert``, valid only from ``not_before`` to ``not_after``: a certificate
        that has expired, or is not valid yet, for a registry whose dates alone are wrong.

        >>> day, now = datetime.timedelta(days=1), datetime.datetime.now(datetime.UTC)
        >>> pki.server_cert_dated("reg", not_before=now - 2 * day, not_after=now - day)
        """
        return self.ca.issue_cert(
            *names, common_name=names[0], not_before=not_before, not_after=not_after
        )

    def client_cert(self, name: str = "lab-client") -> trustme.LeafCert:
        return self.ca.issue_cert(name, common_name=name)

    def write_ca(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.ca_pem)
        return path

    @staticmethod
    def write_pair(leaf: trustme.LeafCert, cert: Path, key: Path) -> None:
        cert.parent.mkdir(parents=True, exist_ok=True)
        cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        write_private(key, leaf.private_key_pem.bytes())


def certs_d_files(ca_pem: bytes | None, client: trustme.LeafCert | None = None) -> dict[str, bytes]:
    """Docker's certs.d layout, which containerd also reads when no hosts.toml is present:
    ``*.crt`` are CAs, ``client.cert`` + ``client.key`` a client pair."""
    files: dict[str, bytes] = {}
    if ca_pem is not None:
        files["ca.crt"] = ca_pem
    if client is not None:
        files["client.cert"] = b"".join(blob.bytes() for blob in client.cert_chain_pems)
        files["client.key"] = client.private_key_pem.bytes()
    return files


def hosts_toml(host: str, ca_path: str | None = None, client: tuple[str, str] | None = None) -> str:
    """A containerd hosts.toml for ``host`` ("name:port").

    The CA and client pair sit at the top level with an empty ``[host]`` table: containerd 1.6
    rejects a file with no host tree, and with settings only under ``[host."https://..."]`` it
    retries a 404 on the fallback server without the CA, which masks "not found" as x509.
    """
    lines = [f'server = "https://{host}"']
    if ca_path:
        lines.append(f'ca = "{ca_path}"')
    if client:
        lines.append(f'client = [["{client[0]}", "{client[1]}"]]')
    lines += ["", "[host]", ""]
    return "\n".join(lines)
