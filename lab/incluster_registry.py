"""A lab registry inside a cluster the lab did not make, reachable by every node's runtime.

A node's container runtime resolves registry names with the host's resolver, never CoreDNS,
and on many clusters (the lab's own included) nothing routes a Service's ClusterIP from the
host network. So the registry runs with ``hostNetwork`` on one node, at a port of its own, and
nodes name it by that node's InternalIP: ``10.0.0.7:31842``, an address in its certificate.
A Service selects it for people who look; the lab itself pushes through ``kubectl
port-forward`` (the certificate also names 127.0.0.1), the one way in every cluster gives.

Everything it makes carries the run's label and lives in the lab's namespace, which goes at
the end; ``stop()`` removes this registry's objects at once.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from kubernetes import client

from lab.errors import LabError
from lab.pki import LabPKI
from lab.portforward import PortForward
from lab.registry import READY_TIMEOUT, RegistryHttp, RegistrySpec, write_registry_files
from lab.settings import LABEL
from lab.signals import shielded
from lab.watch import WaitFailed, WaitTimeout, wait_for

ROLE_LABEL = "io.registry-pull-lab.registry"
# What a node must be able to pull for the registry to run; the remedy names the image.
NOT_STARTING = ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "CrashLoopBackOff")


@dataclass(frozen=True)
class InClusterSpec(RegistrySpec):
    """A registry spec whose host is a node's address and a port of its own. ``name`` is
    that address, as nodes name the registry without its port."""

    resource: str = ""  # the Deployment, Service and Secret's name
    port: int = 0
    node: str = ""  # the node it runs on (hostNetwork)
    # Never for the lab's own image, preloaded in its node image: nothing to pull, and the
    # kubelet never looks up a registry for it.
    pull_policy: str = "IfNotPresent"

    @property
    def host(self) -> str:
        return f"{self.name}:{self.port}"


@dataclass(frozen=True)
class Workspace:
    """Where the lab's objects go on a foreign cluster: its namespace and the tools to use it."""

    namespace: str
    kubectl: Path
    kubeconfig: Path
    api: client.ApiClient

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api)


def registry_objects(spec: InClusterSpec, files: dict[str, bytes]) -> tuple[dict, dict, dict]:
    """Secret (its /lab files), Deployment and Service, as manifests."""
    labels = {LABEL: spec.run_id, ROLE_LABEL: spec.resource}
    meta = {"name": spec.resource, "labels": labels}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque"}
    secret["data"] = {k: _b64(v) for k, v in files.items()}
    pod_spec = {
        "hostNetwork": True,
        "nodeName": spec.node,  # the address nodes use is this node's
        "tolerations": [{"operator": "Exists"}],
        "enableServiceLinks": False,
        "containers": [
            {
                "name": "registry",
                "image": spec.image,
                "imagePullPolicy": spec.pull_policy,
                "args": ["serve", "/lab/config.yml"],
                # The config's :5000 would clash with a second registry on the same node.
                "env": [{"name": "REGISTRY_HTTP_ADDR", "value": f":{spec.port}"}],
                "ports": [{"containerPort": spec.port, "protocol": "TCP"}],
                "readinessProbe": {"tcpSocket": {"port": spec.port}, "periodSeconds": 1},
                "volumeMounts": [
                    {"name": "lab", "mountPath": "/lab", "readOnly": True},
                    {"name": "storage", "mountPath": "/var/lib/registry"},
                ],
            }
        ],
        "volumes": [
            {"name": "lab", "secret": {"secretName": spec.resource, "defaultMode": 0o400}},
            {"name": "storage", "emptyDir": {}},
        ],
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},  # two pods cannot hold one host port
            "selector": {"matchLabels": {ROLE_LABEL: spec.resource}},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "selector": {ROLE_LABEL: spec.resource},
            "ports": [{"port": spec.port, "targetPort": spec.port, "protocol": "TCP"}],
        },
    }
    return secret, deployment, service


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def pod_not_starting(pod: Any) -> str | None:
    """Why the registry's pod cannot start, if waiting longer cannot help."""
    for status in (pod.status.container_statuses or []) if pod.status else []:
        waiting = status.state.waiting if status.state else None
        if waiting is not None and waiting.reason in NOT_STARTING:
            return f"{waiting.reason}: {(waiting.message or '').strip()[:200]}"
    return None


def pod_ready(pod: Any) -> bool:
    conditions = (pod.status.conditions or []) if pod.status else []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


class InClusterRegistry(RegistryHttp):
    spec: InClusterSpec

    def __init__(self, spec: InClusterSpec, pki: LabPKI, workdir: Path, place: Workspace) -> None:
        if spec.mtls and not spec.tls:
            raise LabError(f"registry {spec.resource}: mTLS needs TLS", "drop mtls or tls=False")
        self.spec = spec
        self.pki = pki
        self.workdir = workdir
        self.place = place
        self.forward: PortForward | None = None
        self.pod = ""

    @property
    def ip(self) -> str:
        """The node address nodes reach it at (what a lab registry's network address is)."""
        return self.spec.name

    @property
    def url(self) -> str:
        """Through the forward, opened again if it ended: a restart of the kubelet on the
        registry's node (a node-level scenario's) cuts every forward through it."""
        scheme = "https" if self.spec.tls else "http"
        assert self.forward is not None, "start() first"
        if not self.forward.alive():
            self.forward.reopen()
        return f"{scheme}://127.0.0.1:{self.forward.local_port}"

    def _files(self) -> dict[str, bytes]:
        sans = (self.spec.name, "localhost", "127.0.0.1", *self.spec.extra_sans)
        write_registry_files(self.workdir, self.spec, self.pki, sans)
        names = ["config.yml", "ca.crt"] + (
            ["server.crt", "server.key", "htpasswd"] if self.spec.tls else []
        )
        return {name: (self.workdir / name).read_bytes() for name in names}

    def start(self) -> InClusterRegistry:
        """Create its objects, wait for its pod Ready, open the forward, wait for /v2/."""
        secret, deployment, service = registry_objects(self.spec, self._files())
        ns = self.place.namespace
        try:
            with shielded():
                self.place.core.create_namespaced_secret(ns, secret)  # type: ignore[arg-type]
                self.place.apps.create_namespaced_deployment(ns, deployment)  # type: ignore[arg-type]
                self.place.core.create_namespaced_service(ns, service)  # type: ignore[arg-type]
            self.pod = self._wait_pod()
            self.forward = PortForward(
                self.place.kubectl, self.place.kubeconfig, ns, self.pod, self.spec.port
            )
            self.forward.open()
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_pod(self) -> str:
        selector = f"{ROLE_LABEL}={self.spec.resource}"
        try:
            pod, _ = wait_for(
                self.place.core.list_namespaced_pod,
                what=f"registry {self.spec.host} Ready on node {self.spec.node}",
                done=pod_ready,
                describe=lambda p: f"pod {p.metadata.name} {p.status.phase if p.status else '?'}",
                fail_fast=pod_not_starting,
                timeout=READY_TIMEOUT * 2,
                namespace=self.place.namespace,
                label_selector=selector,
            )
        except WaitFailed as exc:
            raise LabError(
                f"the registry cannot run on node {self.spec.node}: {exc}",
                f"the node must be able to get {self.spec.image}: load it into every node "
                "(see README, 'Against your own cluster') or pass --registry-image",
            ) from exc
        except WaitTimeout as exc:
            raise LabError(f"registry {self.spec.host} not Ready: {exc}") from exc
        return str(pod.metadata.name)

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Ready when /v2/ answers 401 over TLS through the forward (200 over plain HTTP)."""
        deadline = time.monotonic() + timeout
        session, last = self.session(), "no answer yet"
        while time.monotonic() < deadline:
            try:
                resp = session.get(f"{self.url}/v2/", timeout=2)
                if resp.status_code == (401 if self.spec.tls else 200):
                    return
                last = f"HTTP {resp.status_code}"
            except requests.exceptions.RequestException as exc:
                last = f"{type(exc).__name__}: {str(exc)[:200]}"
            time.sleep(0.1)  # the forward's first connection may race the listener
        raise LabError(f"registry {self.spec.host} not answering within {timeout:.0f}s: {last}")

    def stop(self) -> None:
        with shielded():
            if self.forward is not None:
                self.forward.close()
                self.forward = None
            self._delete()

    def _delete(self) -> None:
        ns, name = self.place.namespace, self.spec.resource
        for delete in (
            self.place.core.delete_namespaced_service,
            self.place.apps.delete_namespaced_deployment,
            self.place.core.delete_namespaced_secret,
        ):
            try:
                delete(name, ns, grace_period_seconds=0)
            except client.ApiException as exc:
                if exc.status != 404:
                    raise

    def logs(self, tail: int = 50) -> str:
        if not self.pod:
            return ""
        try:
            return str(
                self.place.core.read_namespaced_pod_log(
                    self.pod, self.place.namespace, tail_lines=tail
                )
            )
        except client.ApiException:
            return ""
