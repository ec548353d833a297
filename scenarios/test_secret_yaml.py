"""Tutorial section 3: a Secret manifest whose `.dockerconfigjson` is `base64 -w 0` of the
config.json that `docker login` wrote, applied with kubectl; pod nginx-registry-3 pulls Always."""

from __future__ import annotations

import base64

import pytest

from lab.dockerconfig import b64, docker_login_config
from lab.secrets import DOCKERCONFIGJSON, decode_secret


@pytest.mark.scenario("secret-yaml")
def test_secret_yaml(lab_scenario, lab_secret_registry, lab_fresh_image):
    """registry-2 from YAML: the same credentials, carried as a whole config.json."""
    reg = lab_secret_registry
    user, password = reg.credentials
    image = lab_fresh_image(reg)
    config = docker_login_config(reg.spec.host, user, password)
    lab_scenario.file(
        "the config.json docker login writes", "~/.docker/config.json", config.decode()
    )
    encoded = lab_scenario.on_host(
        "encode it on one line", ["base64", "-w", "0"], input=config, input_name="config.json"
    )
    assert encoded == base64.b64encode(config).decode()
    assert "\n" not in encoded

    secret = lab_scenario.secrets.via_yaml("registry-2", lab_scenario.namespace, config)
    assert secret.type == DOCKERCONFIGJSON
    assert decode_secret(secret)[".dockerconfigjson"]["auths"][reg.spec.host]["auth"] == b64(
        f"{user}:{password}"
    )
    lab_scenario.saw(f"secret registry-2 of type {secret.type}")

    pod = lab_scenario.pod(
        "nginx-registry-3",
        image,
        container="nginx",
        pull_policy="Always",
        pull_secrets=("registry-2",),
    )
    lab_scenario.create_pod(pod)
    running = lab_scenario.expect_running("nginx-registry-3")
    lab_scenario.pulled_fresh(running, image)
    lab_scenario.describe_tail("nginx-registry-3")
