"""What doctor reads about one pod, as plain data: the pod's containers and what their status
says, the pod's `Failed` events, its pull secrets as they were read, its ServiceAccount, and
the node (versions, and which of the pod's images it already holds).

Evidence is built from a *capture*: a JSON-shaped dict in the API's own field names, the same
whether it was just read from a cluster (``lab.doctor.capture``) or loaded from a file a capture
wrote. So the rules run alike on a live pod and on a recorded one.

>>> evidence = Evidence.from_capture(json.loads(Path("pod.json").read_text()))
>>> evidence.failing[0].error_message
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cached_property

from lab.doctor.keyring import Key, Parsed, image_host, parse_secret, same_image

# Waiting reasons the kubelet sets because of an image or a pull secret
# (pkg/kubelet/images/types.go). Any other waiting reason naming an image or a pull secret
# counts too (see ``pull_related``): doctor must not call such a pod healthy.
PULL_REASONS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "ErrImageNeverPull",
        "InvalidImageName",
        "ImageInspectError",
        "RegistryUnavailable",
        "SignatureValidationFailed",
    }
)
_PULL_WORDS = re.compile(r"image|pull|secret", re.I)
# After a kubelet restart the status may say only this; the error is then in the events.
_BARE_BACK_OFF = re.compile(r'^Back-off pulling image "[^"]*"\.?$')
_FIELD_PATH = re.compile(r"^spec\.(containers|initContainers|ephemeralContainers)\{(.+)\}$")
KINDS = {"initContainers": "init", "containers": "container", "ephemeralContainers": "ephemeral"}


def pull_related(reason: str) -> bool:
    return reason in PULL_REASONS or bool(_PULL_WORDS.search(reason))


@dataclass(frozen=True)
class ContainerPull:
    """One container that pulls an image, and what its status and events say of the pull."""

    name: str
    kind: str  # init / container / ephemeral
    image: str
    state: str  # waiting / running / terminated / none (no status yet)
    reason: str
    message: str
    image_id: str
    failed_events: tuple[str, ...] = ()  # messages of `Failed to pull image` events, oldest first
    pull_policy: str = ""  # Always / IfNotPresent / Never ("" when the capture does not say)
    pulled_after_failure: bool = False  # a `Pulled` event is newer than the last `Failed` one

    @property
    def host(self) -> str:
        return image_host(self.image)

    @property
    def pulled(self) -> bool:
        return bool(self.image_id) or self.state in ("running", "terminated")

    @property
    def failing(self) -> bool:
        return self.state == "waiting" and (
            pull_related(self.reason) or self.failure_in_events_only
        )

    @property
    def failure_in_events_only(self) -> bool:
        """The status says only `ContainerCreating`, the events that the last pull failed.

        Seen on the lab (kubelet v1.34.4) for about 13 s after a kubelet restart while a pod
        backed off: the restarted kubelet forgets the failure until its next pull attempt
        (tests/e2e/test_doctor_causes.py::test_a_kubelet_restart_while_a_pod_backs_off).
        """
        return (
            self.reason == "ContainerCreating"
            and not self.message
            and bool(self.failed_events)
            and not self.pulled_after_failure
            and not self.pulled
        )

    @property
    def message_from_event(self) -> bool:
        """The status carries no error text (empty, or a bare back-off), an event does."""
        bare = not self.message or bool(_BARE_BACK_OFF.match(self.message))
        return bare and bool(self.failed_events)

    @property
    def error_message(self) -> str:
        return self.failed_events[-1] if self.message_from_event else self.message


@dataclass(frozen=True)
class SecretRead:
    """One name in imagePullSecrets, as doctor could read it."""

    name: str
    status: str  # found / missing / forbidden / error
    type: str = ""
    data: tuple[tuple[str, str], ...] = ()
    elsewhere: tuple[str, ...] = ()  # namespaces holding a secret of this name (when missing)
    error: str = ""

    @cached_property
    def parsed(self) -> Parsed:
        return parse_secret(self.name, self.type, dict(self.data))


@dataclass(frozen=True)
class ServiceAccountRead:
    """The pod's ServiceAccount as doctor could read it, and the pull secrets it lists.

    The ServiceAccount admission plugin copies these into the pod when the pod is created, and
    never again; ``extra`` are those the pod does not list (added later), read like the pod's.
    """

    name: str
    status: str  # found / missing / forbidden / error
    secret_names: tuple[str, ...] = ()
    extra: tuple[SecretRead, ...] = ()
    error: str = ""


_VERSION = re.compile(r"v?(\d+)\.(\d+)")


@dataclass(frozen=True)
class NodeInfo:
    name: str
    kubelet_version: str = ""
    runtime_version: str = ""
    os: str = ""
    architecture: str = ""
    images: tuple[str, ...] = ()  # names the node lists (status.images) for the pod's images

    @property
    def platform(self) -> str:
        return f"{self.os}/{self.architecture}" if self.os else ""

    def kubelet_at_least(self, major: int, minor: int) -> bool:
        """Whether the kubelet's version is known and at least major.minor."""
        found = _VERSION.match(self.kubelet_version)
        return found is not None and (int(found[1]), int(found[2])) >= (major, minor)

    def holds(self, image: str) -> bool:
        """Whether the node says it has ``image`` (the names in its status.images)."""
        return any(same_image(name, image) for name in self.images)


@dataclass(frozen=True)
class Evidence:
    """Everything doctor knows of one pod; ``focus`` is the container a rule is asked about."""

    namespace: str
    pod: str
    pulls: tuple[ContainerPull, ...]
    secrets: tuple[SecretRead, ...] = ()
    node: NodeInfo | None = None
    focus: ContainerPull | None = None
    service_account: ServiceAccountRead | None = None  # None: the capture did not record it

    def about(self, pull: ContainerPull) -> Evidence:
        return replace(self, focus=pull)

    @property
    def failing(self) -> list[ContainerPull]:
        return [p for p in self.pulls if p.failing]

    @property
    def usable_keys(self) -> list[Key]:
        return [k for s in self.secrets if s.status == "found" for k in s.parsed.keys]

    @staticmethod
    def from_capture(capture: dict) -> Evidence:
        pod = capture["pod"]
        meta, spec, status = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status") or {}
        events = _pull_events(capture.get("events") or [])
        statuses = {
            "initContainers": status.get("initContainerStatuses") or [],
            "containers": status.get("containerStatuses") or [],
            "ephemeralContainers": status.get("ephemeralContainerStatuses") or [],
        }
        pulls = []
        for field, kind in KINDS.items():
            by_name = {cs["name"]: cs for cs in statuses[field]}
            for c in spec.get(field) or []:
                pulls.append(_pull(c, kind, by_name.get(c["name"]), events.get((kind, c["name"]))))
        return Evidence(
            meta.get("namespace", ""),
            meta.get("name", ""),
            tuple(pulls),
            _secret_reads(capture.get("secrets")),
            _node(capture.get("node")),
            service_account=_service_account(capture.get("serviceAccount")),
        )


def _secret_reads(reads: list[dict] | None) -> tuple[SecretRead, ...]:
    return tuple(
        SecretRead(
            s["name"],
            s["status"],
            (s.get("secret") or {}).get("type") or "",
            tuple(sorted(((s.get("secret") or {}).get("data") or {}).items())),
            tuple(s.get("elsewhere") or ()),
            s.get("error") or "",
        )
        for s in reads or []
    )


def _service_account(read: dict | None) -> ServiceAccountRead | None:
    if read is None:
        return None  # a capture made before doctor read ServiceAccounts
    return ServiceAccountRead(
        read.get("name", ""),
        read.get("status", ""),
        tuple(read.get("imagePullSecrets") or ()),
        _secret_reads(read.get("secrets")),
        read.get("error") or "",
    )


def _node(node: dict | None) -> NodeInfo | None:
    if not node:
        return None
    info = node.get("nodeInfo") or {}
    return NodeInfo(
        node.get("name", ""),
        info.get("kubeletVersion", ""),
        info.get("containerRuntimeVersion", ""),
        info.get("operatingSystem", ""),
        info.get("architecture", ""),
        tuple(node.get("images") or ()),
    )


@dataclass(frozen=True)
class PullEvents:
    """One container's pull events: the `Failed to pull image` messages, oldest first, and
    whether a `Pulled` event came after the last of them."""

    failed: tuple[str, ...] = ()
    pulled_after: bool = False


def _pull(container: dict, kind: str, cs: dict | None, events: PullEvents | None) -> ContainerPull:
    image = container.get("image", "")
    policy = container.get("imagePullPolicy") or ""
    events = events or PullEvents()
    if cs is None:
        return ContainerPull(
            container["name"],
            kind,
            image,
            "none",
            "",
            "",
            "",
            events.failed,
            policy,
            events.pulled_after,
        )
    state: dict[str, dict] = cs.get("state") or {}
    name = next((k for k in ("waiting", "running", "terminated") if state.get(k)), "none")
    found: dict[str, str] = state.get(name) or {}
    reason = found.get("reason") or ("Running" if name == "running" else "")
    return ContainerPull(
        container["name"],
        kind,
        image,
        name,
        reason,
        found.get("message") or "",
        cs.get("imageID") or "",
        events.failed,
        policy,
        events.pulled_after,
    )


def _pull_events(events: list[dict]) -> dict[tuple[str, str], PullEvents]:
    """Per (kind, container): `Failed to pull image ...` messages, oldest first, and whether
    a `Pulled` event (pulled, or already present) is newer than the last of them."""
    found: dict[tuple[str, str], list[tuple[str, bool, str]]] = {}
    for e in events:
        message = e.get("message") or ""
        failed = e.get("reason") == "Failed" and message.startswith("Failed to pull image")
        if not failed and e.get("reason") != "Pulled":
            continue
        match = _FIELD_PATH.match((e.get("involvedObject") or {}).get("fieldPath") or "")
        if match is None:
            continue
        when = (
            e.get("lastTimestamp")
            or e.get("eventTime")
            or (e.get("metadata") or {}).get("creationTimestamp")
            or ""
        )
        found.setdefault((KINDS[match[1]], match[2]), []).append((str(when), failed, message))
    out: dict[tuple[str, str], PullEvents] = {}
    for key, seen in found.items():
        ordered = sorted(seen, key=lambda t: t[0])
        failed_at = [i for i, (_, failed, _) in enumerate(ordered) if failed]
        out[key] = PullEvents(
            tuple(m for _, failed, m in ordered if failed),
            bool(failed_at) and any(not f for _, f, _ in ordered[failed_at[-1] + 1 :]),
        )
    return out
