"""Known pull-failure signatures: the message shapes the kubelet and containerd produce.

Patterns tolerate the known variants: the `(combined from similar events): ` prefix, an
`rpc error: code = X desc = ` prefix, "failed to resolve reference" vs "failed to resolve
image", Go's `tls: failed to verify certificate: ` prefix (Go >= 1.20), and containerd 1.6's
"401 Unauthorized" vs 2.x's "no basic auth credentials".

Network failures keep separate names (connection refused, DNS, timeout, no route): each has a
different fix, and a scenario asserts the one it provokes, not "some network problem".
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Signature:
    name: str
    pattern: re.Pattern[str]
    cause: str
    fix: str

    def matches(self, message: str) -> bool:
        return bool(self.pattern.search(message))


def _sig(name: str, pattern: str, cause: str, fix: str) -> Signature:
    return Signature(name, re.compile(pattern, re.S), cause, fix)


SIGNATURES: tuple[Signature, ...] = (
    _sig(
        "unknown-ca",
        r"x509: certificate signed by unknown authority",
        "the node does not trust the registry's CA",
        "put the CA at /etc/containerd/certs.d/<host:port>/ca.crt on every node "
        "(containerd < 2.2 also needs config_path set)",
    ),
    _sig(
        "name-mismatch",
        r"x509: certificate is valid for .*?, not \S+|"
        r"x509: cannot validate certificate for \S+ because it doesn't contain any IP SANs",
        "the registry's certificate does not name the host the image reference uses",
        "reissue the certificate with that name (or IP) in its SANs, or use a name it has",
    ),
    _sig(
        "client-cert-required",
        r"remote error: tls: (?:bad certificate|certificate required)",
        "the registry requires a client certificate and the node sent none it accepts",
        "add client.cert and client.key (or a hosts.toml `client` entry) for that host on the node",
    ),
    _sig(
        "unauthorized",
        r"401 Unauthorized|no basic auth credentials|authorization failed",
        "the registry refused the credentials: none matched the image's host, or they are wrong",
        "create a docker-registry secret keyed exactly to host:port, list it in imagePullSecrets, "
        "and check the password",
    ),
    _sig(
        "not-found",
        r"(?:code = NotFound|: not found$|manifest unknown)",
        "the registry has no such repository or tag (credentials were accepted)",
        "push the image or fix the tag in the pod spec",
    ),
    _sig(
        "never-pull",
        r"is not present with pull policy of Never",
        "imagePullPolicy Never and the image is not on the node",
        "load the image onto every node (ctr -n k8s.io images import), or allow pulls",
    ),
    _sig(
        "connection-refused",
        r"connect: connection refused",
        "the registry's host answers, but nothing listens at that port",
        "check the port in the image reference and that the registry runs and listens there",
    ),
    _sig(
        "dns-failure",
        r"no such host|dial tcp: lookup \S+",  # a lookup that timed out is DNS too
        "the node cannot resolve the registry's name",
        "check the host name in the image reference and the node's DNS (/etc/resolv.conf, hosts)",
    ),
    _sig(
        "timeout",
        r"i/o timeout",
        "the node's connection to the registry got no answer in time (dropped, filtered, or down)",
        "check that the registry's address is reachable from the node and no firewall drops it",
    ),
    _sig(
        "no-route",
        r"no route to host|network is unreachable",
        "the node has no route to the registry's address",
        "check the address in the image reference and the node's network and routes",
    ),
    _sig(
        "http-vs-https",
        r"server gave HTTP response to HTTPS client|malformed HTTP response",
        "one side speaks plain HTTP and the other HTTPS",
        "serve TLS on the registry or fix the scheme in hosts.toml",
    ),
)

_BY_NAME = {s.name: s for s in SIGNATURES}


def signature(name: str) -> Signature:
    return _BY_NAME[name]


def classify(message: str) -> Signature | None:
    """The first signature whose pattern the message matches (most specific first)."""
    for sig in SIGNATURES:
        if sig.matches(message):
            return sig
    return None
