"""Pull secrets: their content, and the tutorial's four ways to create one.

1. ``kubectl create secret docker-registry`` (today: type kubernetes.io/dockerconfigjson);
2. a YAML Secret whose ``.dockerconfigjson`` is ``base64 -w 0 config.json``, applied with kubectl;
3. the Python client;
4. a raw HTTP POST to the API server, with the cluster's own client certificate.

The lab's own plumbing uses ``SecretMaker.docker_registry`` (the API: no password on a command
line, where other users could read it). Passwords are registered with the masker where they
are made (``lab.credentials``), so nothing here registers them again. The secrets' content
(config.json, .dockercfg) is built in ``lab.dockerconfig``.

A scenario has one maker, ``ScenarioRun.secrets``, bound to its namespace and transcript:

>>> run.secrets.docker_registry("registry-1", run.namespace, reg.spec.host, *reg.credentials)
"""

from __future__ import annotations

import base64
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from kubernetes import client

from lab import manifest_yaml
from lab.dockerconfig import b64, dockerconfigjson
from lab.http_record import request_text, response_text
from lab.kubectl import Kubectl
from lab.masking import mask
from lab.pki import write_private
from lab.transcript import Transcript

DOCKERCONFIGJSON = "kubernetes.io/dockerconfigjson"
DOCKERCFG = "kubernetes.io/dockercfg"


def secret_manifest(name: str, namespace: str, secret_type: str, key: str, content: bytes) -> dict:
    encoded = b64(content)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": secret_type,
        "data": {key: encoded},
    }


def decode_secret(secret: client.V1Secret) -> dict[str, dict]:
    """Each data key's decoded JSON, e.g. {'.dockerconfigjson': {'auths': {...}}}."""
    return {k: json.loads(base64.b64decode(v)) for k, v in (secret.data or {}).items()}


@dataclass(frozen=True)
class RestResult:
    status: int
    body: dict
    url: str


class SecretMaker:
    """The four ways, each recorded in the transcript with its (masked) command and output.

    ``namespace``: the namespace kubectl runs in by default (a scenario's own), left out of the
    command lines shown; each method still names the namespace the secret goes to."""

    def __init__(
        self,
        kubeconfig: Path,
        kubectl: Path,
        api: client.ApiClient,
        transcript: Transcript,
        namespace: str | None = None,
        core: client.CoreV1Api | None = None,
    ) -> None:
        self.kubectl = Kubectl(Path(kubectl), Path(kubeconfig), transcript, namespace)
        self.core = core or client.CoreV1Api(api)
        self.api = api
        self.transcript = transcript

    def via_kubectl_create(
        self,
        name: str,
        namespace: str,
        server: str,
        user: str,
        password: str,
        email: str | None = None,
    ) -> client.V1Secret:
        """The tutorial's command, replayed as it is: the password on kubectl's command line."""
        args = [
            "create",
            "secret",
            "docker-registry",
            name,
            f"--docker-server={server}",
            f"--docker-username={user}",
            f"--docker-password={password}",
        ]
        if email:
            args.append(f"--docker-email={email}")
        self.kubectl.run(*args, title="kubectl create secret docker-registry", namespace=namespace)
        self.transcript.note(
            "the password was on a command line",
            "this replays the tutorial's command: the password is on kubectl's command line, "
            "where other users of this machine can read it (ps, /proc/<pid>/cmdline); the "
            "lab's own plumbing creates secrets through the API (SecretMaker.docker_registry)",
        )
        return self.core.read_namespaced_secret(name, namespace)

    def docker_registry(
        self,
        name: str,
        namespace: str,
        server: str,
        user: str,
        password: str,
        email: str | None = None,
    ) -> client.V1Secret:
        """The secret ``kubectl create secret docker-registry`` makes, made through the API so
        the password is on no command line.

        >>> maker.docker_registry("registry-1", ns, reg.spec.host, *reg.credentials)
        """
        body = client.V1Secret(
            metadata=client.V1ObjectMeta(name=name, namespace=namespace),
            type=DOCKERCONFIGJSON,
            data={".dockerconfigjson": b64(dockerconfigjson(server, user, password, email))},
        )
        fields = "username, password, " + ("email, " if email else "") + "auth"
        started = time.monotonic()
        secret: Any = self.core.create_namespaced_secret(namespace, body)
        self.transcript.add(
            "create the pull secret through the API (no password on a command line)",
            f"CoreV1Api.create_namespaced_secret({namespace!r}, <Secret {name} "
            f"type={DOCKERCONFIGJSON} .dockerconfigjson: auths for {server} ({fields})>)",
            f"created secret {secret.metadata.name} type={secret.type} "
            f"(uid {secret.metadata.uid}, keys: {', '.join(sorted(secret.data or {}))})",
            time.monotonic() - started,
        )
        return secret

    def via_yaml(
        self,
        name: str,
        namespace: str,
        content: bytes,
        secret_type: str = DOCKERCONFIGJSON,
        key: str = ".dockerconfigjson",
    ) -> client.V1Secret:
        """The tutorial's manifest: the config file's ``base64 -w 0`` in ``data``, applied."""
        manifest = manifest_yaml.dump(
            secret_manifest(name, namespace, secret_type, key, content)
        ).encode()
        self.kubectl.run(
            "apply",
            "-f",
            "-",
            title="kubectl apply -f secret.yaml",
            input=manifest,
            input_name="secret.yaml",
            namespace=namespace,
        )
        return self.core.read_namespaced_secret(name, namespace)

    def via_client(
        self,
        name: str,
        namespace: str,
        content: bytes,
        secret_type: str = DOCKERCONFIGJSON,
        key: str = ".dockerconfigjson",
    ) -> client.V1Secret:
        body = secret_manifest(name, namespace, secret_type, key, content)
        started = time.monotonic()
        secret: Any = self.core.create_namespaced_secret(namespace, body)  # type: ignore[arg-type]
        self.transcript.add(
            "create the secret with the Python client",
            f"CoreV1Api.create_namespaced_secret({namespace!r}, "
            f"<Secret {name} type={secret_type}>)",
            f"created secret {secret.metadata.name} (uid {secret.metadata.uid})",
            time.monotonic() - started,
        )
        return secret

    def via_rest(
        self, path: str, body: bytes, content_type: str = "application/json"
    ) -> RestResult:
        """POST ``body`` to ``path`` on the API server with the kubeconfig's client certificate."""
        cfg = self.api.configuration
        url = cfg.host.rstrip("/") + path
        with tempfile.TemporaryDirectory(prefix="pull-lab-rest-") as tmp:
            cert, key = Path(tmp) / "client.crt", Path(tmp) / "client.key"
            cert.write_bytes(Path(cfg.cert_file).read_bytes())
            write_private(key, Path(cfg.key_file).read_bytes())
            session = requests.Session()
            session.trust_env = False  # REQUESTS_CA_BUNDLE would replace the cluster's CA
            started = time.monotonic()
            resp = session.post(
                url,
                data=body,
                headers={"Content-Type": content_type},
                cert=(str(cert), str(key)),
                verify=cfg.ssl_ca_cert,
                timeout=30,
            )
        try:
            parsed = resp.json()
        except ValueError:
            parsed = {"raw": resp.text[:500]}
        self.transcript.http(
            "POST the secret to the API server",
            request_text(
                resp.request,
                body,
                ("TLS client certificate: the kubeconfig's; server verified with its CA",),
            ),
            response_text(resp, mask(json.dumps(parsed, indent=2))[:3000]),
            time.monotonic() - started,
        )
        return RestResult(resp.status_code, parsed, url)
