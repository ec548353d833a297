"""`pull-lab up`, `status` and `down` as a user runs them: a lab that works from the host,
an idempotent second `up`, and a `down` that removes exactly what the lab made."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests
from kubernetes import client

from lab.kube import api_client
from lab.waits import wait_waiting

pytestmark = pytest.mark.e2e


def pull_lab(*args: str, cache: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lab.cli", *args],
        env={**os.environ, "PULL_LAB_CACHE_DIR": str(cache)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def docker_names(*filters: str) -> list[str]:
    args = ["docker", "ps", "-a", "--format", "{{.Names}}"]
    for f in filters:
        args += ["--filter", f]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout.split()


def test_up_status_down_round_trip(lab_images, lab_settings):
    name = f"pull-lab-cli-{uuid.uuid4().hex[:6]}"
    cache = lab_settings.cache_dir
    bystander = f"not-the-labs-{uuid.uuid4().hex[:6]}"
    subprocess.run(
        ["docker", "run", "-d", "--name", bystander, lab_images.workload_image],
        capture_output=True,
        check=True,
    )
    try:
        up = pull_lab("up", "--name", name, cache=cache)
        assert up.returncode == 0, up.stderr[-2000:]
        assert f"export KUBECONFIG={cache}/clusters/{name}/kubeconfig" in up.stdout

        status = pull_lab("status", "--name", name, "--json", cache=cache)
        state = json.loads(status.stdout)
        assert state["cluster"] == name and len(state["registries"]) == 2
        for reg in state["registries"]:
            creds_file = Path(reg["credentials_file"])
            assert creds_file.stat().st_mode & 0o777 == 0o600
            creds = json.loads(creds_file.read_text())
            session = requests.Session()
            session.trust_env = False
            if reg["mtls"]:
                workdir = creds_file.parent
                session.cert = (str(workdir / "client.cert"), str(workdir / "client.key"))
            resp = session.get(
                f"https://{reg['host_address']}/v2/_catalog",
                auth=(creds["username"], creds["password"]),
                verify=reg["ca_file"],
                timeout=10,
            )
            assert resp.json() == {"repositories": ["lab/busybox"]}
            assert reg["host_address"].startswith("127.0.0.1:")

        again = pull_lab("up", "--name", name, cache=cache)
        assert again.returncode == 0 and "already up" in again.stderr

        kubeconfig = state["kubeconfig"]
        missing = pull_lab("doctor", "no-such-pod", "--kubeconfig", kubeconfig, cache=cache)
        assert missing.returncode == 2
        assert missing.stderr.strip().splitlines() == [
            "pull-lab: error: pod no-such-pod not found in namespace default "
            + "(check the name and -n)"
        ]
        # A pod that pulls from the lab registry without the node trusting its CA.
        image = f"{state['registries'][0]['in_cluster']}/lab/busybox:1.0"
        subprocess.run(
            [
                str(lab_images.kubectl_bin),
                f"--kubeconfig={kubeconfig}",
                "run",
                "p",
                f"--image={image}",
            ],
            capture_output=True,
            check=True,
        )
        core = client.CoreV1Api(api_client(Path(kubeconfig)))
        wait_waiting(core, "default", "p", "ErrImagePull")
        diagnosis = pull_lab("doctor", "p", "--kubeconfig", kubeconfig, cache=cache)
        assert diagnosis.returncode == 1  # a pull problem was found
        assert "1. container p: unknown-ca" in diagnosis.stdout
        assert "likely cause: the node does not trust the registry's CA" in diagnosis.stdout
    finally:
        down = pull_lab("down", "--name", name, cache=cache)
    assert down.returncode == 0, down.stderr
    assert docker_names(f"name={name}") == []
    assert docker_names(f"name={bystander}") == [bystander], (
        "down must not touch others' containers"
    )
    subprocess.run(["docker", "rm", "-f", bystander], capture_output=True, check=False)
    assert not (cache / "clusters" / name).exists()
    nets = subprocess.run(
        ["docker", "network", "ls", "--format", "{{.Name}}"], capture_output=True, text=True
    )
    assert f"{name}-net" not in nets.stdout.split()


def test_status_without_a_lab_is_one_line_and_exit_2(tmp_path):
    proc = pull_lab("status", "--name", "pull-lab-none", cache=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "pull-lab: error: no lab is up for cluster pull-lab-none (run `pull-lab up` first)"
    ]
