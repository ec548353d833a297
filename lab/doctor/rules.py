"""The causes doctor names: a table of small rules, each evidence in, ``Finding | None`` out.

A rule looks at one failing container (``evidence.focus``) in its pod. Message rules read the
error text the kubelet recorded (the status message, or the last `Failed` event when the status
says only "Back-off"); credential rules read the pull secrets; the first message rule that
matches names the stage the pull reached. Findings are ranked by that stage, in the order a pull
proceeds, so a credential finding never outranks a failure that happened before any credential
was sent. Adding a cause is adding a rule to ``RULES`` and a test with its evidence.

These patterns are doctor's own: ``lab.signatures`` is the scenarios' oracle, and a diagnosis
checked against the table that made it would prove nothing.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import IntEnum

from lab.doctor import keyring
from lab.doctor.evidence import ContainerPull, Evidence, SecretRead
from lab.doctor.keyring import Key

# Said with every finding that rests on a 401: the kubelet also offers the node's own
# credentials, which live in files on the node that no API shows.
NODE_CREDENTIALS_NOTE = (
    "not checked: the node's own credentials (the kubelet's config.json, e.g. "
    "/var/lib/kubelet/config.json, or a credential provider plugin): doctor cannot read node files"
)
# Noted with no-credentials and wrong-password: a plugin that fails leaves the pod's status
# saying only the registry's 401 (docs/findings.md, "Credential provider plugins").
CREDENTIAL_PROVIDER_NOTE = (
    "not checked: a kubelet credential provider plugin may be configured on the node and may "
    "have failed; its errors are only in the kubelet's log: journalctl -u kubelet | grep -i "
    '"credential from external registry credential provider"'
)
# Noted when the status says only ContainerCreating and the events say the last pull failed.
EVENTS_ONLY_NOTE = (
    "the status says only ContainerCreating (as for a few seconds after a kubelet restart): "
    "the last pull, as its Failed event says, failed; the kubelet pulls again soon"
)
# Kubernetes 1.35 turned KubeletEnsureSecretPulledImages on (beta): an image on the node that
# the kubelet pulled with a pull secret is re-verified for every other pod that wants it.
ENSURE_SECRET_PULLED = (1, 35)


class Stage(IntEnum):
    """How far a pull got when it failed, in the order a pull proceeds."""

    REFERENCE = 0  # the image reference or pull policy: nothing was sent
    NAME_RESOLUTION = 1
    CONNECTION = 2
    TLS_SERVER = 3  # the node checks the registry (and speaks TLS at all)
    TLS_CLIENT = 4  # the registry checks the node's client certificate
    AUTHENTICATION = 5  # credentials are sent here, and only here
    MANIFEST = 6
    UNRECOGNISED = 7

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")


@dataclass(frozen=True)
class Said:
    """The kubelet's own words about the container a finding was found on."""

    container: str
    message: str  # the status message, or the last `Failed` event's (or the bare reason)
    source: str  # status / event

    @staticmethod
    def of(pull: ContainerPull) -> Said:
        source = "event" if pull.message_from_event else "status"
        return Said(pull.name, pull.error_message or pull.reason, source)


@dataclass(frozen=True)
class Finding:
    name: str
    container: str | None
    cause: str
    fix: str
    evidence: str
    stage: Stage = Stage.UNRECOGNISED
    # where the evidence comes from: status / event / secret / serviceaccount
    source: str = "status"
    notes: tuple[str, ...] = ()  # more evidence lines: what was also read, or could not be
    said: Said | None = None  # what the kubelet said of the container (set by ``diagnose``)

    def render(self) -> str:
        where = f"container {self.container}: " if self.container else ""
        seen = {
            "event": " (from the last Failed event)",
            "secret": " (from the pull secrets)",
            "serviceaccount": " (from the ServiceAccount)",
        }
        lines = [
            f"{where}{self.name}",
            f"  likely cause: {self.cause}",
            f"  fix: {self.fix}",
            f"  evidence{seen.get(self.source, '')}: {self.evidence}",
            *self._said_line(),
            *(f"  {note}" for note in self.notes),
        ]
        return "\n".join(lines)

    def _said_line(self) -> list[str]:
        """The kubelet's message, when the evidence is something else doctor read."""
        if self.said is None or self.source in ("status", "event"):
            return []
        where = "the last Failed event" if self.said.source == "event" else "its status"
        return [f"  kubelet said (container {self.said.container}, {where}): {self.said.message}"]


Rule = Callable[[Evidence], "Finding | None"]


def _focus(evidence: Evidence) -> ContainerPull:
    assert evidence.focus is not None, "rules are asked about one container"
    return evidence.focus


# ---- where containerd really went ----------------------------------------------------------

# containerd names the host it talked to; with a hosts.toml mirror or server for the image's
# registry that is another host, and with several hosts the status keeps the FIRST one's error.
_CONTACTED = (
    re.compile(r'failed to do request: [A-Za-z]+ "https?://([^/"]+)/'),
    re.compile(r"pulling from host (\S+) failed"),
)


def contacted_host(message: str) -> str | None:
    """The registry host the error message says containerd talked to, if it names one."""
    for pattern in _CONTACTED:
        if found := pattern.search(message):
            return found.group(1)
    return None


def elsewhere(pull: ContainerPull) -> str | None:
    """The host containerd went to when it is not the image's registry (a mirror or a server
    from the node's hosts.toml); Docker Hub's own endpoints count as Docker Hub."""
    contacted = contacted_host(pull.error_message)
    if contacted is None or keyring.image_host(f"{contacted}/x") == pull.host:
        return None
    return contacted


def _elsewhere_note(pull: ContainerPull, other: str) -> str:
    return (
        f"containerd reached {other}, not {pull.host}: a mirror or server set for {pull.host} in "
        f"the node's /etc/containerd/certs.d/{pull.host}/hosts.toml (with several hosts the status "
        "keeps the first one's error; journalctl -u containerd | grep 'trying next host' shows the rest)"
    )


# ---- message rules -------------------------------------------------------------------------


@dataclass(frozen=True)
class MessageRule:
    """A cause recognised by the error text alone; cause and fix may name {host} and {platform}."""

    name: str
    stage: Stage
    pattern: re.Pattern[str]
    cause: str
    fix: str

    def __call__(self, evidence: Evidence) -> Finding | None:
        pull = _focus(evidence)
        if not self.pattern.search(pull.error_message):
            return None
        platform = (
            evidence.node.platform
            if evidence.node and evidence.node.platform
            else "the node's platform"
        )
        host = contacted_host(pull.error_message) or pull.host  # where containerd went
        return Finding(
            self.name,
            pull.name,
            self.cause.format(host=host, platform=platform),
            self.fix.format(host=host, platform=platform),
            pull.error_message,
            self.stage,
            "event" if pull.message_from_event else "status",
        )


def _msg(name: str, stage: Stage, pattern: str, cause: str, fix: str) -> MessageRule:
    return MessageRule(name, stage, re.compile(pattern, re.S), cause, fix)


# 401 is read here only to know the stage; what it means depends on the secrets (see below).
UNAUTHORIZED = re.compile(r"401 Unauthorized|no basic auth credentials|authorization failed")

# Most specific first: the first rule that matches names the stage the pull reached.
MESSAGE_RULES: tuple[MessageRule, ...] = (
    _msg(
        "dns-failure",
        Stage.NAME_RESOLUTION,
        # a lookup that times out or finds a broken server is DNS too, not a registry timeout
        r"no such host|dial tcp: lookup \S+|server misbehaving",
        "the node cannot resolve the registry's name",
        "check the host in the image reference ({host}) and the node's DNS (/etc/resolv.conf, /etc/hosts)",
    ),
    _msg(
        "connection-refused",
        Stage.CONNECTION,
        r"connect: connection refused",
        "the registry's host answers, but nothing listens at that port",
        "check the port in the image reference ({host}) and that the registry runs and listens there",
    ),
    _msg(
        "no-route",
        Stage.CONNECTION,
        r"no route to host|network is unreachable",
        "the node has no route to the registry's address",
        "check the address in the image reference ({host}) and the node's network and routes",
    ),
    _msg(
        "timeout",
        Stage.CONNECTION,
        r"i/o timeout|connect: connection timed out",
        "the node's connection to the registry got no answer in time (dropped, filtered, or down)",
        "check that {host} is reachable from the node and that no firewall drops the traffic",
    ),
    _msg(
        "https-to-http-registry",
        Stage.TLS_SERVER,
        r"server gave HTTP response to HTTPS client",
        "the node speaks HTTPS but the registry at {host} serves plain HTTP",
        "serve TLS on the registry, or declare it plain HTTP for the node "
        '(/etc/containerd/certs.d/{host}/hosts.toml: server = "http://{host}")',
    ),
    _msg(
        "http-to-https-registry",
        Stage.TLS_SERVER,
        # Go's TLS server answers plain HTTP with a bare 400 on the HEAD: containerd 1.6 says
        # "failed with status code [manifests <tag>]: 400" (captured: http-to-https-registry.json),
        # 2.x "unexpected status from HEAD request to http://...: 400 Bad Request".
        r"malformed HTTP response|Client sent an HTTP request to an HTTPS server|"
        r"failed with status code \[manifests [^\]]*\]: 400 Bad Request|"
        r"unexpected status from HEAD request to http://\S+: 400 Bad Request",
        "the node speaks plain HTTP but the registry at {host} serves HTTPS "
        "(a registry answers a bare 400 to the manifest request when it gets HTTP on its TLS port)",
        "use https:// for {host} in the node's hosts.toml (and give the node the registry's CA)",
    ),
    _msg(
        "unknown-ca",
        Stage.TLS_SERVER,
        r"x509: certificate signed by unknown authority",
        "the node does not trust the registry's CA",
        "put the CA at /etc/containerd/certs.d/{host}/ca.crt on every node "
        "(containerd < 2.2 also needs config_path set)",
    ),
    _msg(
        "cert-expired",
        Stage.TLS_SERVER,
        r"x509: certificate has expired or is not yet valid: current time \S+ is after",
        "the registry's certificate has expired",
        "renew the registry's certificate (and check the node's clock)",
    ),
    _msg(
        "cert-not-yet-valid",
        Stage.TLS_SERVER,
        r"x509: certificate has expired or is not yet valid: current time \S+ is before",
        "the registry's certificate is not valid yet: its notBefore is in the node's future",
        "check the node's clock (NTP), or reissue the certificate with a notBefore in the past",
    ),
    _msg(
        "cert-validity",
        Stage.TLS_SERVER,
        r"x509: certificate has expired or is not yet valid",
        "the registry's certificate is expired or not yet valid by the node's clock",
        "compare the certificate's dates (openssl x509 -noout -dates) with the node's clock",
    ),
    _msg(
        "name-mismatch",
        Stage.TLS_SERVER,
        r"x509: certificate is valid for .*?, not \S+|"
        r"x509: cannot validate certificate for \S+ because it doesn't contain any IP SANs|"
        r"x509: certificate is not valid for any names",
        "the registry's certificate does not name the host the image reference uses ({host})",
        "reissue the certificate with that name (or IP) in its SANs, or use a name it has",
    ),
    _msg(
        "client-cert-required",
        Stage.TLS_CLIENT,
        r"remote error: tls: (?:bad certificate|certificate required)",
        "the registry requires a client certificate and the node sent none it accepts",
        "put client.cert and client.key for {host} in /etc/containerd/certs.d/{host}/ on the node "
        "(or a hosts.toml `client` entry)",
    ),
    _msg(
        "unauthorized",  # never emitted: see ``unauthorized`` below
        Stage.AUTHENTICATION,
        UNAUTHORIZED.pattern,
        "",
        "",
    ),
    _msg(
        "forbidden",
        Stage.AUTHENTICATION,
        r"403 Forbidden",
        "the registry accepted the credentials but this user may not pull this repository",
        "grant the user pull access to the repository on {host}, or use a user who has it",
    ),
    _msg(
        "rate-limited",
        Stage.MANIFEST,
        r"429 Too Many Requests|toomanyrequests",
        "the registry is rate-limiting pulls (429)",
        "wait, pull with credentials that have a higher limit, or use a mirror or cache for {host}",
    ),
    _msg(
        "no-platform-manifest",
        Stage.MANIFEST,
        r"no match for platform in manifest",
        "the image has no manifest for the node's platform ({platform})",
        "push the image for {platform} (a multi-platform index), or use a tag that has it",
    ),
    _msg(
        "tag-not-found",
        Stage.MANIFEST,
        r"manifest unknown",
        "the repository exists but has no such tag (credentials were accepted)",
        "push the tag, or fix the tag in the pod spec",
    ),
    _msg(
        "repository-not-found",
        Stage.MANIFEST,
        r"name unknown|repository name not known to registry",
        "the registry has no such repository (credentials were accepted)",
        "push the image, or fix the repository path in the image reference",
    ),
    _msg(
        "not-found",
        Stage.MANIFEST,
        # containerd reads a HEAD 404, which has no body: repository and tag look the same
        r"code = NotFound|: not found$",
        "the registry has no such repository or tag (credentials were accepted)",
        "check the repository and tag on {host} (GET /v2/<repository>/tags/list), then push or fix the reference",
    ),
)


def message_rule(evidence: Evidence) -> MessageRule | None:
    """The first message rule that recognises the focused container's error, if any."""
    message = _focus(evidence).error_message
    return next((r for r in MESSAGE_RULES if r.pattern.search(message)), None)


def failure_stage(evidence: Evidence) -> Stage:
    pull = _focus(evidence)
    if pull.reason in ("InvalidImageName", "ErrImageNeverPull"):
        return Stage.REFERENCE
    rule = message_rule(evidence)
    return rule.stage if rule else Stage.UNRECOGNISED


def recognised_message(evidence: Evidence) -> Finding | None:
    if failure_stage(evidence) is Stage.REFERENCE:
        return None  # no pull was attempted: the reference rules speak
    rule = message_rule(evidence)
    return rule(evidence) if rule and rule.cause else None


def mirror_unreachable(evidence: Evidence) -> Finding | None:
    """The pull went to a mirror or server from hosts.toml, and that host could not be reached:
    the fix is in the node's hosts.toml, not in the image reference."""
    pull = _focus(evidence)
    other = elsewhere(pull)
    stage = failure_stage(evidence)
    if other is None or stage not in (Stage.NAME_RESOLUTION, Stage.CONNECTION):
        return None
    return Finding(
        "mirror-unreachable",
        pull.name,
        f"the node's containerd sends pulls of {pull.host} to {other} (a mirror or server in its "
        f"hosts.toml), and {other} cannot be reached",
        f"check /etc/containerd/certs.d/{pull.host}/hosts.toml on every node: start {other} or fix "
        "its address; containerd tries each listed host in turn and the status keeps the first "
        "one's error (journalctl -u containerd | grep 'trying next host' shows the others)",
        pull.error_message,
        stage,
        "event" if pull.message_from_event else "status",
    )


# ---- rules on the reference and the pull policy -------------------------------------------


def invalid_image_name(evidence: Evidence) -> Finding | None:
    pull = _focus(evidence)
    if pull.reason != "InvalidImageName":
        return None
    return Finding(
        "invalid-image-name",
        pull.name,
        f"the image reference {pull.image!r} is not a valid reference",
        "fix the image: [host[:port]/]path[:tag][@digest], lower-case repository, no scheme",
        pull.message or pull.reason,
        Stage.REFERENCE,
    )


def never_pull(evidence: Evidence) -> Finding | None:
    pull = _focus(evidence)
    if pull.reason != "ErrImageNeverPull" or cached_image_needs_credentials(evidence):
        return None
    return Finding(
        "never-pull",
        pull.name,
        "imagePullPolicy is Never and the image is not on the node",
        "load the image onto the node first, or set imagePullPolicy: IfNotPresent",
        pull.message or pull.reason,
        Stage.REFERENCE,
    )


# ---- rules on the pull secrets ------------------------------------------------------------


def _secret_finding(name: str, cause: str, fix: str, evidence: str) -> Finding:
    return Finding(name, None, cause, fix, evidence, Stage.AUTHENTICATION, "secret")


def secret_forbidden(evidence: Evidence) -> Finding | None:
    names = [s.name for s in evidence.secrets if s.status == "forbidden"]
    if not names:
        return None
    return _secret_finding(
        "secret-forbidden",
        f"doctor may not read secret {', '.join(names)} (forbidden): it cannot tell whether it is right",
        f"run doctor with a kubeconfig that may get secrets in {evidence.namespace}",
        f"get secret {', '.join(names)}: 403 Forbidden",
    )


def secret_missing(evidence: Evidence) -> Finding | None:
    names = [s.name for s in evidence.secrets if s.status == "missing" and not s.elsewhere]
    if not names:
        return None
    return _secret_finding(
        "secret-missing",
        f"imagePullSecrets names {', '.join(names)}, which does not exist: the pull goes without it",
        f"create it: kubectl create secret docker-registry {names[0]} -n {evidence.namespace} "
        f"--docker-server={_focus(evidence).host} ...",
        f"get secret {', '.join(names)}: 404 Not Found",
    )


def secret_other_namespace(evidence: Evidence) -> Finding | None:
    found = [s for s in evidence.secrets if s.status == "missing" and s.elsewhere]
    if not found:
        return None
    where = "; ".join(f"{s.name} in {', '.join(s.elsewhere)}" for s in found)
    return _secret_finding(
        "secret-other-namespace",
        f"secret {where}, not in {evidence.namespace}: pods only see their own namespace's secrets",
        f"create the secret in namespace {evidence.namespace}",
        f"get secret {', '.join(s.name for s in found)} -n {evidence.namespace}: 404 Not Found",
    )


def _unusable(evidence: Evidence, kind: str) -> list[str]:
    return [
        f"{s.name}: {s.parsed.problem}"
        for s in evidence.secrets
        if s.status == "found" and s.parsed.problem_kind == kind
    ]


@dataclass(frozen=True)
class UnusableSecret:
    """A pull secret the kubelet reads but cannot use, of one ``kind`` (see SecretRead.parsed)."""

    name: str
    kind: str
    why: str
    fix: str

    def __call__(self, evidence: Evidence) -> Finding | None:
        bad = _unusable(evidence, self.kind)
        if not bad:
            return None
        return _secret_finding(
            self.name, f"secret {'; '.join(bad)}: {self.why}", self.fix, "; ".join(bad)
        )


secret_wrong_type = UnusableSecret(
    "secret-wrong-type",
    "wrong-type",
    "the kubelet reads only kubernetes.io/dockerconfigjson and kubernetes.io/dockercfg",
    "recreate it with kubectl create secret docker-registry (or type kubernetes.io/dockerconfigjson)",
)
secret_wrong_shape = UnusableSecret(
    "secret-wrong-shape",
    "wrong-shape",
    "the kubelet finds no credentials in it",
    'store config.json\'s content base64-encoded once, as {"auths": {"<host:port>": {...}}}',
)
credsstore = UnusableSecret(
    "credsstore",
    "credsstore",
    "made from a config.json whose credentials stay in a helper, it holds none",
    "make the secret with kubectl create secret docker-registry --docker-username/--docker-password",
)


def _serving(evidence: Evidence) -> list[Key]:
    pull = _focus(evidence)
    return [k for k in evidence.usable_keys if k.serves(pull.image)]


def _keys_text(keys: list[Key]) -> str:
    return ", ".join(f"{k.secret}: {k.raw}" for k in keys) or "(none)"


def _sent_nothing_yet(evidence: Evidence) -> bool:
    # Never tell anyone to key a secret to a host that does not resolve or does not answer.
    return failure_stage(evidence) < Stage.TLS_SERVER


def secret_port_mismatch(evidence: Evidence) -> Finding | None:
    pull = _focus(evidence)
    bare = pull.host.split(":", 1)[0].lower()
    keys = evidence.usable_keys
    near = [k for k in keys if k.host == bare and k.hostport != pull.host.lower()]
    if not near or _serving(evidence) or _sent_nothing_yet(evidence):
        return None
    return Finding(
        "secret-port-mismatch",
        pull.name,
        f"the pull secrets have credentials for {', '.join(k.raw for k in near)} but the image's "
        f"registry is {pull.host}: the kubelet wants host and port to match exactly",
        f"key the credentials as {pull.host}",
        f"keys: {_keys_text(keys)}",
        Stage.AUTHENTICATION,
        "secret",
    )


def secret_other_host(evidence: Evidence) -> Finding | None:
    pull = _focus(evidence)
    keys = evidence.usable_keys
    usable = [s for s in evidence.secrets if s.status == "found" and not s.parsed.problem]
    if not usable or _serving(evidence) or _sent_nothing_yet(evidence):
        return None
    if secret_port_mismatch(evidence):
        return None
    return Finding(
        "secret-other-host",
        pull.name,
        f"no pull secret has credentials for {pull.host} (keys: {', '.join(k.raw for k in keys) or 'none'}): "
        "the pull goes without",
        f"kubectl create secret docker-registry ... --docker-server={pull.host}",
        f"keys: {_keys_text(keys)}",
        Stage.AUTHENTICATION,
        "secret",
    )


def mistyped_host(evidence: Evidence) -> Finding | None:
    """A name that does not resolve, and a secret keyed to a name close to it: likely a typo."""
    pull = _focus(evidence)
    if failure_stage(evidence) not in (Stage.NAME_RESOLUTION, Stage.CONNECTION):
        return None
    others = sorted({k.hostport for k in evidence.usable_keys} - {pull.host.lower()})
    close = difflib.get_close_matches(pull.host.lower(), others, n=1, cutoff=0.75)
    if not close:
        return None
    return Finding(
        "host-maybe-mistyped",
        pull.name,
        f"a pull secret is keyed to {close[0]}, close to the image's registry {pull.host}: "
        "the image reference may be mistyped",
        f"check the image reference; if the registry is {close[0]}, use that host in the image",
        f"image {pull.image}; keys: {_keys_text(evidence.usable_keys)}",
        failure_stage(evidence),
        "secret",
    )


# ---- rules on the ServiceAccount ----------------------------------------------------------


def _serving_keys(secrets: tuple[SecretRead, ...], image: str) -> list[Key]:
    return [
        k
        for s in secrets
        if s.status == "found" and not s.parsed.problem
        for k in s.parsed.keys
        if k.serves(image) and k.has_credentials
    ]


def sa_secret_after_pod(evidence: Evidence) -> Finding | None:
    """A secret on the ServiceAccount that the pod does not list: added after the pod was made."""
    pull, sa = _focus(evidence), evidence.service_account
    if sa is None or sa.status != "found" or not sa.extra:
        return None
    if not UNAUTHORIZED.search(pull.error_message) or _sent_credentials(evidence):
        return None  # only a pull that went without credentials is explained by them
    keys = _serving_keys(sa.extra, pull.image)
    if not keys:
        return None
    names = ", ".join(sorted({k.secret for k in keys}))
    return Finding(
        "sa-secret-added-after-pod",
        pull.name,
        f"ServiceAccount {sa.name} lists {names} (credentials for {pull.host}) but the pod does "
        "not: the ServiceAccount admission plugin copies its secrets into a pod only when the pod "
        "is created, so they were added after this pod was",
        f"recreate the pod (kubectl delete pod {evidence.pod} and create it again, or restart its "
        "controller): the new pod gets the ServiceAccount's secrets",
        f"serviceaccount {sa.name} imagePullSecrets: {', '.join(sa.secret_names)}; "
        f"pod imagePullSecrets: {', '.join(s.name for s in evidence.secrets) or '(none)'}; "
        f"keys: {_keys_text(keys)}",
        Stage.AUTHENTICATION,
        "serviceaccount",
        (NODE_CREDENTIALS_NOTE,),
    )


def serviceaccount_forbidden(evidence: Evidence) -> Finding | None:
    sa = evidence.service_account
    if sa is None or sa.status not in ("forbidden", "error"):
        return None
    return Finding(
        "serviceaccount-forbidden",
        None,
        f"doctor could not read ServiceAccount {sa.name} ({sa.error}): it cannot tell whether "
        "pull secrets were added to it after the pod was created",
        f"run doctor with a kubeconfig that may get serviceaccounts in {evidence.namespace}",
        f"get serviceaccount {sa.name}: {sa.error}",
        Stage.AUTHENTICATION,
        "serviceaccount",
    )


def serviceaccount_missing(evidence: Evidence) -> Finding | None:
    sa = evidence.service_account
    if sa is None or sa.status != "missing":
        return None
    return Finding(
        "serviceaccount-missing",
        None,
        f"the pod's ServiceAccount {sa.name} does not exist (deleted after the pod was created?): "
        "the pod keeps the pull secrets it was given, new pods cannot be created with it",
        f"recreate ServiceAccount {sa.name} in {evidence.namespace} with its imagePullSecrets, "
        "or use another serviceAccountName",
        f"get serviceaccount {sa.name}: 404 Not Found",
        Stage.AUTHENTICATION,
        "serviceaccount",
    )


# ---- the kubelet's re-verification of cached images (Kubernetes 1.35+) ---------------------


def cached_image_needs_credentials(evidence: Evidence) -> Finding | None:
    """The image is on the node, yet this pod must pull it: the kubelet re-verified it.

    From 1.35 (KubeletEnsureSecretPulledImages, default policy NeverVerifyPreloadedImages) an
    image the kubelet pulled with a pull secret is usable by another pod only with credentials
    of its own (pkg/kubelet/images/image_manager.go, EnsureImageExists): with IfNotPresent the
    kubelet pulls again ("Pulling image", then the registry's 401); with Never it answers as if
    the image were absent ("Container image ... is not present with pull policy of Never").
    """
    pull, node = _focus(evidence), evidence.node
    if node is None or not node.kubelet_at_least(*ENSURE_SECRET_PULLED):
        return None
    if pull.pull_policy == "Always" or not node.holds(pull.image):
        return None  # Always pulls whatever the node holds: nothing was re-verified
    never = pull.reason == "ErrImageNeverPull"
    if not never and (not UNAUTHORIZED.search(pull.error_message) or _sent_credentials(evidence)):
        return None
    said = (
        "the kubelet answers as if it were absent (policy Never)"
        if never
        else "the kubelet pulled it again and the registry refused the pull"
    )
    return Finding(
        "cached-image-needs-credentials",
        pull.name,
        f"the node already holds {pull.image}, but kubelet {node.kubelet_version} re-verifies "
        "it for this pod (KubeletEnsureSecretPulledImages): another pod pulled it with a pull "
        "secret, or the node's imagePullCredentialsVerificationPolicy (AlwaysVerify, or an "
        "allowlist that does not name it) exempts not even preloaded images; and this pod has "
        f"no credentials for {pull.host} that it accepts: {said}",
        f"give this pod a pull secret for {pull.host} (its imagePullSecrets or its "
        "ServiceAccount's); for an image loaded onto the nodes that no registry serves, set the "
        "kubelet's imagePullCredentialsVerificationPolicy to NeverVerifyPreloadedImages or list "
        "it in preloadedImagesVerificationAllowlist",
        f"{pull.reason}: {pull.error_message or pull.reason}; node {node.name} lists "
        f"{', '.join(n for n in node.images if n)}",
        Stage.AUTHENTICATION,
        "event" if pull.message_from_event else "status",
        () if never else (NODE_CREDENTIALS_NOTE,),
    )


def _sent_credentials(evidence: Evidence) -> list[Key]:
    """The keys of the pod's own secrets that served the image with credentials."""
    return [k for k in _serving(evidence) if k.has_credentials]


def unauthorized(evidence: Evidence) -> Finding | None:
    """A 401 means different things: credentials sent and refused, or none sent at all."""
    pull = _focus(evidence)
    if not UNAUTHORIZED.search(pull.error_message):
        return None
    source = "event" if pull.message_from_event else "status"
    sent = _sent_credentials(evidence)
    if sent:
        return Finding(
            "wrong-password",
            pull.name,
            f"secret {sent[0].secret} has credentials for {pull.host} (key {sent[0].raw}) "
            "and the registry refused them: the user or password is wrong",
            f"fix the password in secret {sent[0].secret} (it is read at the next pull attempt)",
            pull.error_message,
            Stage.AUTHENTICATION,
            source,
            (NODE_CREDENTIALS_NOTE, CREDENTIAL_PROVIDER_NOTE),
        )
    explained = any(
        rule(evidence)
        for rule in (
            secret_forbidden,
            secret_missing,
            secret_other_namespace,
            secret_wrong_type,
            secret_wrong_shape,
            credsstore,
            secret_port_mismatch,
            secret_other_host,
            sa_secret_after_pod,
            cached_image_needs_credentials,
        )
    )
    if explained:
        return None  # the secret findings are the more precise cause
    return Finding(
        "no-credentials",
        pull.name,
        f"the pod has no pull secret for {pull.host}, and the node offered no credentials the "
        "registry accepts",
        f"kubectl create secret docker-registry <name> --docker-server={pull.host} ... "
        "and list it in the pod's imagePullSecrets",
        pull.error_message,
        Stage.AUTHENTICATION,
        source,
        (NODE_CREDENTIALS_NOTE, CREDENTIAL_PROVIDER_NOTE),
    )


def not_recognised(evidence: Evidence) -> Finding | None:
    """Shown verbatim, never guessed."""
    pull = _focus(evidence)
    if failure_stage(evidence) is not Stage.UNRECOGNISED:
        return None
    return Finding(
        "not-recognised",
        pull.name,
        f"doctor does not recognise this message ({pull.reason}); it is shown verbatim",
        "read the message; the node's containerd and kubelet logs say more",
        pull.error_message or pull.reason,
        Stage.UNRECOGNISED,
        "event" if pull.message_from_event else "status",
    )


RULES: tuple[Rule, ...] = (
    invalid_image_name,
    never_pull,
    mirror_unreachable,
    recognised_message,
    mistyped_host,
    secret_forbidden,
    secret_missing,
    secret_other_namespace,
    secret_wrong_type,
    secret_wrong_shape,
    credsstore,
    secret_port_mismatch,
    secret_other_host,
    sa_secret_after_pod,
    cached_image_needs_credentials,
    unauthorized,
    serviceaccount_forbidden,
    serviceaccount_missing,
    not_recognised,
)


# Every name a finding can have: each has a recorded pod in tests/unit/data/doctor/.
CAUSES: tuple[str, ...] = (
    "invalid-image-name",
    "never-pull",
    "mirror-unreachable",
    *(r.name for r in MESSAGE_RULES if r.cause),
    "host-maybe-mistyped",
    "secret-forbidden",
    "secret-missing",
    "secret-other-namespace",
    "secret-wrong-type",
    "secret-wrong-shape",
    "credsstore",
    "secret-port-mismatch",
    "secret-other-host",
    "sa-secret-added-after-pod",
    "cached-image-needs-credentials",
    "wrong-password",
    "no-credentials",
    "serviceaccount-forbidden",
    "serviceaccount-missing",
    "not-recognised",
)


def _with_said(found: Finding, pull: ContainerPull) -> Finding:
    """The finding with the kubelet's own words about the container it was found on."""
    notes = (*found.notes, EVENTS_ONLY_NOTE) if pull.failure_in_events_only else found.notes
    other = elsewhere(pull)
    if other is not None and found.name != "mirror-unreachable":
        notes = (*notes, _elsewhere_note(pull, other))
    return replace(found, said=found.said or Said.of(pull), notes=notes)


def diagnose(evidence: Evidence, rules: tuple[Rule, ...] = RULES) -> list[Finding]:
    """Every finding for every failing container, ranked by how far each pull got."""
    findings: list[Finding] = []
    seen: set[tuple[str, str | None, str]] = set()
    for pull in evidence.failing:
        focused = evidence.about(pull)
        for rule in rules:
            found = rule(focused)
            # a pod-wide finding (a missing secret) comes once, not once per failing container
            if found is not None and (found.name, found.container, found.cause) not in seen:
                seen.add((found.name, found.container, found.cause))
                findings.append(_with_said(found, pull))
    return sorted(findings, key=lambda f: f.stage)  # stable: table order within a stage
