"""Tutorial section 4: create the dockerconfigjson secret with a POST to the API server.

As written the request is wrong twice: its URL lacks `secrets`, and `.dockerconfigjson` holds
the literal text `{cat ~/.docker/config.json |base64 -w 0}` instead of base64.
"""

from __future__ import annotations

import json

import pytest

from lab.pods import pod_manifest
from lab.secrets import DOCKERCONFIGJSON, SecretMaker, b64, decode_secret
from scenarios.test_secret_yaml import docker_login_config

TUTORIAL_DATA = "{cat ~/.docker/config.json |base64 -w 0}"


def secret_body(name: str, namespace: str, data: str) -> bytes:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "data": {".dockerconfigjson": data},
            "type": DOCKERCONFIGJSON,
        },
        indent=2,
    ).encode()


@pytest.fixture
def maker(lab_cluster, kube_api, transcript):
    return SecretMaker(lab_cluster.kubeconfig_path, lab_cluster.kubectl_path, kube_api, transcript)


@pytest.mark.scenario("secret-rest-api")
def test_secret_rest_api(scenario, maker, secret_registry, fresh_image, lab_settings, core_v1):
    """The corrected request: POST /api/v1/namespaces/<ns>/secrets with base64 data: 201."""
    reg = secret_registry
    user, password = reg.credentials
    image = fresh_image(reg)
    data = b64(docker_login_config(reg.spec.host, user, password))
    scenario.expect("POST .../secrets answers 201 Created")
    result = maker.via_rest(
        f"/api/v1/namespaces/{scenario.namespace}/secrets",
        secret_body("registry", scenario.namespace, data),
    )
    assert result.status == 201, result.body
    scenario.saw(
        f"HTTP {result.status} {result.body.get('kind')} {result.body['metadata']['name']}"
    )
    secret = core_v1.read_namespaced_secret("registry", scenario.namespace)
    assert reg.spec.host in decode_secret(secret)[".dockerconfigjson"]["auths"]

    pod = pod_manifest(
        "nginx-registry-4",
        image,
        run_id=lab_settings.run_id,
        container="nginx",
        pull_policy="Always",
        pull_secrets=("registry",),
    )
    scenario.create_pod(pod)
    running = scenario.expect_running("nginx-registry-4")
    scenario.pulled_fresh(running, image)


@pytest.mark.scenario("secret-rest-api-as-written")
def test_secret_rest_api_as_written(scenario, maker, core_v1):
    """The tutorial's request, replayed: both of its mistakes are rejected, nothing is created."""
    ns = scenario.namespace
    body = secret_body("registry", ns, TUTORIAL_DATA)

    scenario.expect(
        "POST to /api/v1/namespaces/<ns>/ (no `secrets`): rejected, 405 Method Not Allowed"
    )
    as_written = maker.via_rest(f"/api/v1/namespaces/{ns}/", body)
    scenario.saw(f"URL as written: HTTP {as_written.status} {json.dumps(as_written.body)[:300]}")
    assert as_written.status == 405, as_written.body

    scenario.expect("the right URL with the literal `{cat ...}` text: 400, illegal base64 data")
    right_url = maker.via_rest(f"/api/v1/namespaces/{ns}/secrets", body)
    scenario.saw(
        f"data as written: HTTP {right_url.status} {right_url.body.get('message', '')[:300]}"
    )
    assert right_url.status == 400
    assert "illegal base64 data" in right_url.body.get("message", "")
    assert core_v1.list_namespaced_secret(ns, field_selector="metadata.name=registry").items == []
    scenario.differs(
        "curl -X POST http://<apiserver>:8080/api/v1/namespaces/default/ with "
        "'.dockerconfigjson': '{cat ~/.docker/config.json |base64 -w 0}'",
        f"that URL answers {as_written.status}; with /secrets added the body answers "
        f"{right_url.status} (the shell substitution never ran: the text is not base64); the "
        "insecure port 8080 no longer exists, the API server wants TLS and a client identity",
    )
