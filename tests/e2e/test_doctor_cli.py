"""`pull-lab doctor`'s interface on the lab's real cluster, run as a user runs it (a subprocess):
`--all` over a namespace, `--context` over a KUBECONFIG of two files, `--probe` against the lab's
registry with a pull secret that holds a wrong password (and never shows it).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from lab.credentials import new_password
from lab.dockerconfig import dockerconfigjson
from lab.pods import pod_manifest
from lab.registry import REGISTRY_PORT
from lab.waits import wait_pod_running, wait_waiting

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def doctor(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lab.cli", "doctor", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def pull_secret(core: client.CoreV1Api, namespace: str, name: str, content: bytes) -> None:
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=name),
            type="kubernetes.io/dockerconfigjson",
            data={".dockerconfigjson": base64.b64encode(content).decode()},
        ),
    )


def start_pod(core, namespace, run_id, name, image, pull_secrets=()) -> None:
    manifest = pod_manifest(
        name, image, run_id=run_id, container="app", pull_secrets=tuple(pull_secrets)
    )
    core.create_namespaced_pod(namespace, manifest)


def test_all_lists_the_failing_pod_and_not_the_running_one(
    lab_core_v1, lab_namespace, lab_settings, lab_cluster, lab_secret_registry, lab_fresh_image
):
    reg, ns, run_id = lab_secret_registry, lab_namespace, lab_settings.run_id
    kubeconfig = str(lab_cluster.kubeconfig_path)
    user, password = reg.credentials
    pull_secret(lab_core_v1, ns, "registry-1", dockerconfigjson(reg.spec.host, user, password))
    start_pod(lab_core_v1, ns, run_id, "runs", lab_fresh_image(reg), ["registry-1"])
    start_pod(lab_core_v1, ns, run_id, "fails", lab_fresh_image(reg))  # no secret: 401
    wait_pod_running(lab_core_v1, ns, "runs")
    wait_waiting(lab_core_v1, ns, "fails", "ErrImagePull")

    text = doctor("--all", "-n", ns, "--kubeconfig", kubeconfig)
    listed = doctor("--all", "-n", ns, "--kubeconfig", kubeconfig, "--json")

    assert text.returncode == 1, text.stderr
    assert text.stdout.startswith(f"namespace {ns}: 1 of 2 pod(s) with an image pull problem")
    assert f"pod {ns}/fails: 1 finding(s)" in text.stdout
    assert "1. container app: no-credentials" in text.stdout
    assert f"pod {ns}/runs" not in text.stdout
    doc = json.loads(listed.stdout)
    assert (listed.returncode, doc["schema"], doc["checked"]) == (1, "pull-lab-doctor-list/1", 2)
    assert [(d["pod"]["name"], d["findings"][0]["name"]) for d in doc["pods"]] == [
        ("fails", "no-credentials")
    ]

    lab_core_v1.delete_namespaced_pod("fails", ns, grace_period_seconds=0)
    wait_gone(lab_core_v1, ns, "fails")
    healthy = doctor("--all", "-n", ns, "--kubeconfig", kubeconfig)

    assert (healthy.returncode, healthy.stdout.strip()) == (
        0,
        f"namespace {ns}: no pod with an image pull problem (1 pod(s) checked)",
    )


def wait_gone(core: client.CoreV1Api, namespace: str, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            core.read_namespaced_pod(name, namespace)
        except client.ApiException as exc:
            if exc.status == 404:
                return
            raise
        time.sleep(0.5)
    raise AssertionError(f"pod {namespace}/{name} still there after {timeout:.0f}s")


def test_context_picks_the_lab_cluster_out_of_a_two_file_kubeconfig(
    lab_core_v1,
    lab_namespace,
    lab_settings,
    lab_cluster,
    lab_secret_registry,
    lab_fresh_image,
    tmp_path,
):
    ns = lab_namespace
    lab_file = Path(lab_cluster.kubeconfig_path)
    lab_context = yaml.safe_load(lab_file.read_text())["current-context"]
    with socket.socket() as s:  # a server where nothing listens, in the first file
        s.bind(("127.0.0.1", 0))
        dead = f"https://127.0.0.1:{s.getsockname()[1]}"
    decoy = tmp_path / "decoy.yaml"
    decoy.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "decoy",
                "clusters": [{"name": "decoy", "cluster": {"server": dead}}],
                "users": [{"name": "decoy", "user": {"token": "t"}}],
                "contexts": [{"name": "decoy", "context": {"cluster": "decoy", "user": "decoy"}}],
            }
        )
    )
    env = {**os.environ, "KUBECONFIG": os.pathsep.join([str(decoy), str(lab_file)])}
    start_pod(lab_core_v1, ns, lab_settings.run_id, "fails", lab_fresh_image(lab_secret_registry))
    wait_waiting(lab_core_v1, ns, "fails", "ErrImagePull")

    chosen = doctor("fails", "-n", ns, "--context", lab_context, env=env)
    current = doctor("fails", "-n", ns, env=env)  # the first file's current context: decoy
    unknown = doctor("fails", "-n", ns, "--context", "no-such-context", env=env)

    assert chosen.returncode == 1, chosen.stderr
    assert "1. container app: no-credentials" in chosen.stdout
    assert current.returncode == 2 and current.stdout == ""
    (line,) = current.stderr.strip().splitlines()
    assert line.startswith(f"pull-lab: error: cannot read pod {ns}/fails from {dead}: ")
    assert line.endswith("(check the API server of context decoy)")
    assert "Connection refused" in current.stderr
    assert unknown.returncode == 2 and len(unknown.stderr.strip().splitlines()) == 1
    assert "context 'no-such-context' is not in kubeconfig" in unknown.stderr


def test_probe_says_the_registry_refuses_the_secrets_password_and_never_shows_it(
    lab_core_v1,
    lab_namespace,
    lab_settings,
    lab_cluster,
    lab_secret_registry,
    lab_fresh_image,
    lab_node,
    lab_pki,
):
    """The image names the registry by its address on the lab network, which this machine
    reaches too (the name is the network's alone); the node trusts the lab CA for it."""
    reg, ns = lab_secret_registry, lab_namespace
    host = f"{reg.ip}:{REGISTRY_PORT}"
    lab_node.install_ca(host, lab_pki.ca_pem)
    image = lab_fresh_image(reg).replace(reg.spec.host, host, 1)
    user, right = reg.credentials
    wrong = new_password(user)
    pull_secret(lab_core_v1, ns, "registry-1", dockerconfigjson(host, user, wrong))
    start_pod(lab_core_v1, ns, lab_settings.run_id, "app", image, ["registry-1"])
    wait_waiting(lab_core_v1, ns, "app", "ErrImagePull")
    kubeconfig = str(lab_cluster.kubeconfig_path)
    ca = str(reg.ca_file)

    text = doctor("app", "-n", ns, "--kubeconfig", kubeconfig, "--probe", "--ca-file", ca)
    as_json = doctor(
        "app", "-n", ns, "--kubeconfig", kubeconfig, "--probe", "--ca-file", ca, "--json"
    )

    assert text.returncode == 1, text.stderr
    assert "1. container app: wrong-password" in text.stdout
    repo, tag = image.split("/", 1)[1].rsplit(":", 1)
    assert (
        f"probe: {host}: manifest: HEAD /v2/{repo}/manifests/{tag} with secret registry-1 "
        f"(key {host}): 401 (the registry refused these credentials)"
    ) in text.stdout
    assert f"probe: {host}: tls-chain: not trusted by the system store" in text.stdout
    assert f"trusted by --ca-file {ca}" in text.stdout
    assert f"probe: {host}: v2: GET /v2/: 401, WWW-Authenticate: Basic" in text.stdout
    checks = {c["check"]: c for c in json.loads(as_json.stdout)["probe"][0]["checks"]}
    assert (checks["manifest"]["status"], checks["tls-name"]["ok"]) == (401, True)
    for shown in (text.stdout, text.stderr, as_json.stdout, as_json.stderr):
        assert wrong not in shown and right not in shown
