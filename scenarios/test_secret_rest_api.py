"""Tutorial section 4: create the dockerconfigjson secret with a POST to the API server.

As written the request is wrong twice: its URL lacks `secrets`, and `.dockerconfigjson` holds
the literal text `{cat ~/.docker/config.json |base64 -w 0}` instead of base64.
"""

from __future__ import annotations

import json

import pytest

from lab.dockerconfig import b64, docker_login_config
from lab.secrets import DOCKERCONFIGJSON, decode_secret

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


@pytest.mark.scenario("secret-rest-api")
def test_secret_rest_api(lab_scenario, lab_secret_registry, lab_fresh_image, lab_core_v1):
    """The corrected request: POST /api/v1/namespaces/<ns>/secrets with base64 data: 201."""
    reg = lab_secret_registry
    user, password = reg.credentials
    image = lab_fresh_image(reg)
    data = b64(docker_login_config(reg.spec.host, user, password))
    lab_scenario.expect("POST .../secrets answers 201 Created")
    result = lab_scenario.secrets.via_rest(
        f"/api/v1/namespaces/{lab_scenario.namespace}/secrets",
        secret_body("registry", lab_scenario.namespace, data),
    )
    assert result.status == 201, result.body
    lab_scenario.saw(
        f"HTTP {result.status} {result.body.get('kind')} {result.body['metadata']['name']}"
    )
    secret = lab_core_v1.read_namespaced_secret("registry", lab_scenario.namespace)
    assert reg.spec.host in decode_secret(secret)[".dockerconfigjson"]["auths"]

    pod = lab_scenario.pod(
        "nginx-registry-4",
        image,
        container="nginx",
        pull_policy="Always",
        pull_secrets=("registry",),
    )
    lab_scenario.create_pod(pod)
    running = lab_scenario.expect_running("nginx-registry-4")
    lab_scenario.pulled_fresh(running, image)


@pytest.mark.scenario("secret-rest-api-as-written")
def test_secret_rest_api_as_written(lab_scenario, lab_core_v1):
    """The tutorial's request, replayed: both of its mistakes are rejected, nothing is created."""
    ns = lab_scenario.namespace
    body = secret_body("registry", ns, TUTORIAL_DATA)

    lab_scenario.expect(
        "POST to /api/v1/namespaces/<ns>/ (no `secrets`): rejected, 405 Method Not Allowed"
    )
    as_written = lab_scenario.secrets.via_rest(f"/api/v1/namespaces/{ns}/", body)
    lab_scenario.saw(
        f"URL as written: HTTP {as_written.status} {json.dumps(as_written.body)[:300]}"
    )
    assert as_written.status == 405, as_written.body

    lab_scenario.expect("the right URL with the literal `{cat ...}` text: 400, illegal base64 data")
    right_url = lab_scenario.secrets.via_rest(f"/api/v1/namespaces/{ns}/secrets", body)
    lab_scenario.saw(
        f"data as written: HTTP {right_url.status} {right_url.body.get('message', '')[:300]}"
    )
    assert right_url.status == 400
    assert "illegal base64 data" in right_url.body.get("message", "")
    assert (
        lab_core_v1.list_namespaced_secret(ns, field_selector="metadata.name=registry").items == []
    )
    lab_scenario.differs(
        "curl -X POST http://<apiserver>:8080/api/v1/namespaces/default/ with "
        "'.dockerconfigjson': '{cat ~/.docker/config.json |base64 -w 0}'",
        f"that URL answers {as_written.status}; with /secrets added the body answers "
        f"{right_url.status} (the shell substitution never ran: the text is not base64); the "
        "insecure port 8080 no longer exists, the API server wants TLS and a client identity",
    )
