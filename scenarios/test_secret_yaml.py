"""Tutorial section 3: a Secret manifest whose `.dockerconfigjson` is `base64 -w 0` of the
config.json that `docker login` wrote, applied with kubectl; pod nginx-registry-3 pulls Always."""

from __future__ import annotations

import base64
import json

import pytest

from lab.pods import pod_manifest
from lab.secrets import DOCKERCONFIGJSON, SecretMaker, b64, decode_secret


def docker_login_config(host: str, user: str, password: str) -> bytes:
    """config.json as `docker login` writes it: tab-indented, only the `auth` field."""
    return json.dumps({"auths": {host: {"auth": b64(f"{user}:{password}")}}}, indent="\t").encode()


@pytest.mark.scenario("secret-yaml")
def test_secret_yaml(
    scenario, secret_registry, fresh_image, lab_cluster, kube_api, transcript, lab_settings
):
    """registry-2 from YAML: the same credentials, carried as a whole config.json."""
    reg = secret_registry
    user, password = reg.credentials
    image = fresh_image(reg)
    config = docker_login_config(reg.spec.host, user, password)
    scenario.file("the config.json docker login writes", "~/.docker/config.json", config.decode())
    encoded = scenario.on_host(
        "encode it on one line", ["base64", "-w", "0"], input=config, input_name="config.json"
    )
    assert encoded == base64.b64encode(config).decode()
    assert "\n" not in encoded

    maker = SecretMaker(lab_cluster.kubeconfig_path, lab_cluster.kubectl_path, kube_api, transcript)
    secret = maker.via_yaml("registry-2", scenario.namespace, config)
    assert secret.type == DOCKERCONFIGJSON
    assert decode_secret(secret)[".dockerconfigjson"]["auths"][reg.spec.host]["auth"] == b64(
        f"{user}:{password}"
    )
    scenario.saw(f"secret registry-2 of type {secret.type}")

    pod = pod_manifest(
        "nginx-registry-3",
        image,
        run_id=lab_settings.run_id,
        container="nginx",
        pull_policy="Always",
        pull_secrets=("registry-2",),
    )
    scenario.create_pod(pod)
    running = scenario.expect_running("nginx-registry-3")
    scenario.pulled_fresh(running, image)
    scenario.describe_tail("nginx-registry-3")
