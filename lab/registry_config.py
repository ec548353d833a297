"""The registry's config.yml: one file for Debian's build and the official image alike."""

from __future__ import annotations

REGISTRY_PORT = 5000


def registry_config(tls: bool = True, mtls: bool = False) -> str:
    """Plain HTTP (the image's default), TLS with htpasswd auth, or TLS that also verifies
    client certificates. The lab mounts its files (certificates, htpasswd) at /lab."""
    text = f"""version: 0.1
log:
  level: info
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
http:
  addr: :{REGISTRY_PORT}
  headers:
    X-Content-Type-Options: [nosniff]
"""
    if not tls:
        return text
    text += "  tls:\n    certificate: /lab/server.crt\n    key: /lab/server.key\n"
    if mtls:
        text += "    clientcas:\n      - /lab/ca.crt\n"
    return text + "auth:\n  htpasswd:\n    realm: lab-registry\n    path: /lab/htpasswd\n"
