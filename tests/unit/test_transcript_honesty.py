"""A transcript shows only what ran, with the output it printed; narration is a note.

The commands here really run (on this host, and in a local shell that stands in for the kind
node), so each test compares the recorded output with what the command printed.
"""

from __future__ import annotations

import base64
import datetime
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests

from lab.catalog import entry
from lab.errors import LabError
from lab.node import NodeChanges, NodeRegistryConfig
from lab.scenario import ScenarioRun


class LocalNode:
    """Runs the node's commands in a local shell: node_exec as LabCluster has it."""

    def node_exec(self, *args: str, input: bytes | None = None, check: bool = True) -> str:
        proc = subprocess.run(args, input=input, capture_output=True, check=False)
        if check and proc.returncode != 0:
            raise LabError(f"{' '.join(args)} failed: {proc.stderr.decode()}")
        return proc.stdout.decode()


class FakeCore:
    """Stands in for CoreV1Api where a verb reads back what kubectl created."""

    api_client = None

    def read_namespaced_pod(self, name: str, namespace: str) -> Any:
        return SimpleNamespace(metadata=SimpleNamespace(name=name, namespace=namespace))


def run(tmp_path: Path, kubectl: Path | None = None) -> ScenarioRun:
    return ScenarioRun(
        entry=entry("registry-catalog"),
        namespace="lab-test",
        core=FakeCore(),  # type: ignore[arg-type]
        kubectl_bin=kubectl or tmp_path / "kubectl",
        kubeconfig=tmp_path / "kubeconfig",
        kubernetes_version="v1.34.0",
        run_id="r1",
    )


def node_config(recorded: list[tuple[str, str, str]] | None = None) -> NodeRegistryConfig:
    def recorder(title: str, command: str, output: str, seconds: float) -> None:
        if recorded is not None:
            recorded.append((title, command, output))

    return NodeRegistryConfig(NodeChanges(LocalNode(), recorder=recorder, name="kind-node"))


def test_on_host_records_the_output_the_command_printed(tmp_path):
    scenario = run(tmp_path)
    argv = ["printf", "first %s\\nsecond\\n", "line"]
    printed = subprocess.run(argv, capture_output=True, text=True, check=True).stdout

    out = scenario.on_host("say two lines", argv)

    step = scenario.transcript.steps[-1]
    assert out == printed
    assert step.kind == "command"
    assert step.command == "printf 'first %s\\nsecond\\n' line"
    assert step.output == printed.rstrip()


def test_on_host_shows_stdin_by_name_and_its_output_is_the_real_encoding(tmp_path):
    scenario = run(tmp_path)
    config = b'{"auths": {"reg:5000": {"auth": "dXNlcjpzM2NyZXQ="}}}'

    encoded = scenario.on_host(
        "encode", ["base64", "-w", "0"], input=config, input_name="config.json"
    )

    step = scenario.transcript.steps[-1]
    assert encoded == base64.b64encode(config).decode()
    assert step.command == "base64 -w 0 < config.json"
    assert "auths" not in step.command


def test_on_host_records_a_failure_with_its_stderr_before_raising(tmp_path):
    scenario = run(tmp_path)
    missing = str(tmp_path / "no-such-file")

    with pytest.raises(LabError, match="exit 2"):
        scenario.on_host("list a missing file", ["ls", missing])
    shown = scenario.on_host("list it again", ["ls", missing], check=False)

    assert "No such file or directory" in shown
    assert [s.output for s in scenario.transcript.steps] == [shown.rstrip()] * 2


def test_a_note_is_narration_without_a_command(tmp_path):
    scenario = run(tmp_path)

    scenario.note("the tutorial moves the CA away", "the tutorial: mv ca.crt{,.bak}")

    step = scenario.transcript.steps[-1]
    assert step.kind == "note"
    assert step.command == ""
    assert step.output == "the tutorial: mv ca.crt{,.bak}"


def test_a_file_step_shows_path_and_content(tmp_path):
    scenario = run(tmp_path)

    scenario.file("the config docker login writes", "~/.docker/config.json", '{"auths": {}}\n')

    step = scenario.transcript.steps[-1]
    assert (step.kind, step.command, step.output) == (
        "file",
        "~/.docker/config.json",
        '{"auths": {}}',
    )


def test_on_node_records_docker_exec_with_stdout_and_stderr_and_the_exit_status(tmp_path):
    scenario = run(tmp_path)
    script = "echo out; echo err >&2; exit 3"

    out = scenario.on_node(node_config(), "a failing script", script, check=False)

    step = scenario.transcript.steps[-1]
    assert out == "out\nerr\n"
    assert step.command == f"docker exec kind-node sh -c '{script}'"
    assert step.output == "out\nerr"
    assert step.title == "a failing script (exit 3)"


def test_on_node_raises_on_failure_when_checked(tmp_path):
    scenario = run(tmp_path)
    missing = tmp_path / "config.json"

    with pytest.raises(LabError, match="No such file"):
        scenario.on_node(node_config(), "no node credentials", f"ls {missing}")
    assert "No such file or directory" in scenario.transcript.steps[-1].output


def test_on_node_output_without_a_final_newline_is_kept_whole(tmp_path):
    scenario = run(tmp_path)

    assert scenario.on_node(node_config(), "no newline", "printf 'ca.crt'") == "ca.crt"


def test_node_changes_are_recorded_as_they_ran_with_stdin_by_reference_only(tmp_path):
    recorded: list[tuple[str, str, str]] = []
    node = node_config(recorded)
    key = tmp_path / "certs.d" / "reg" / "client.key"

    # A key-shaped marker made at run time: the repository holds no key block.
    marker = b"-----BEGIN " + b"PRIVATE KEY-----"
    node.changes.write(str(key), marker + b" not-for-the-transcript", 0o600)

    title, command, output = recorded[-1]
    assert output == ""
    assert key.read_bytes().startswith(marker)
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert title == f"write {key}"
    assert command.startswith("docker exec -i kind-node sh -c ")
    assert command.endswith(" < client.key")
    assert all("PRIVATE KEY" not in part for step in recorded for part in step)


def test_moving_a_file_away_and_restoring_it_are_recorded(tmp_path):
    recorded: list[tuple[str, str, str]] = []
    node = node_config(recorded)
    ca = tmp_path / "ca.crt"
    ca.write_text("pem")

    assert node.changes.move_away(str(ca))
    assert not ca.exists()
    assert node.restore() == []

    assert ca.read_text() == "pem"
    assert [title for title, _, _ in recorded] == [f"move {ca} away", "put the node back"]
    assert f"mv {ca} {ca}.lab-bak" in recorded[0][1]


def test_create_pod_shows_the_manifest_then_kubectl_as_it_ran(tmp_path):
    kubectl = tmp_path / "kubectl"
    kubectl.write_text('#!/bin/sh\ncat > /dev/null\necho "pod/$1 created (args: $*)"\n')
    kubectl.chmod(0o755)
    scenario = run(tmp_path, kubectl)
    manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}}

    scenario.create_pod(manifest)

    manifest_step, kubectl_step = scenario.transcript.steps
    assert (manifest_step.kind, manifest_step.command) == ("file", "web.yaml")
    assert "name: web" in manifest_step.output
    assert kubectl_step.command == "kubectl create -f - < web.yaml"
    assert kubectl_step.output.endswith("create -f -)")  # the arguments kubectl really got


def test_kubectl_in_another_namespace_shows_that_namespace(tmp_path):
    kubectl = tmp_path / "kubectl"
    kubectl.write_text('#!/bin/sh\necho "$2"\n')
    kubectl.chmod(0o755)
    scenario = run(tmp_path, kubectl)

    out = scenario.kubectl("get", "secret", "registry-1", namespace="other")

    assert out == "--namespace=other\n"
    assert scenario.transcript.steps[-1].command == (
        "kubectl get secret registry-1 --namespace=other"
    )


def test_http_shows_the_request_made_with_its_credentials_hidden(tmp_path):
    scenario = run(tmp_path)
    response = requests.Response()
    response.request = requests.Request(
        "GET", "https://reg:5000/v2/_catalog", auth=("user", "s3cret-pw")
    ).prepare()
    response.status_code, response.reason = 200, "OK"
    response._content = b'{"repositories":["lab/busybox"]}\n'
    response.headers["Content-Type"] = "application/json"
    response.elapsed = datetime.timedelta(seconds=0.05)

    scenario.http("list the repositories", response)

    step = scenario.transcript.steps[-1]
    assert step.kind == "http"
    assert step.command.splitlines() == [
        "GET https://reg:5000/v2/_catalog",
        "Authorization: Basic ******",
    ]
    assert base64.b64encode(b"user:s3cret-pw").decode() not in step.command
    assert step.output == (
        'HTTP 200 OK\nContent-Type: application/json\n\n{"repositories":["lab/busybox"]}'
    )
    assert "curl" not in step.command


def test_result_entries_carry_their_kind(tmp_path):
    scenario = run(tmp_path)
    scenario.note("narration", "nothing ran")
    scenario.on_host("ran", ["printf", "x"])

    steps = scenario.result("passed").to_dict()["transcript"]

    assert [s["kind"] for s in steps] == ["note", "command"]
    assert {"title", "command", "output", "at"} <= set(steps[0])
    assert steps[1]["output"] == "x"


def test_a_scenarios_pod_carries_the_run_label_it_did_not_pass(tmp_path):
    from lab.settings import LABEL

    pod = run(tmp_path).pod("nginx-registry", "reg:5000/lab/nginx:1.7.9", container="nginx")

    assert pod["metadata"]["labels"] == {"app": "nginx-registry", LABEL: "r1"}
    assert pod["spec"]["containers"] == [
        {"name": "nginx", "image": "reg:5000/lab/nginx:1.7.9", "imagePullPolicy": "IfNotPresent"}
    ]


def test_the_secret_maker_runs_kubectl_like_the_scenario_does(tmp_path):
    """One kubectl runner: the tutorial's `kubectl create secret` is shown like any other
    kubectl step (no kubeconfig, the scenario's own namespace left out), password masked."""
    from lab.credentials import new_password

    kubectl = tmp_path / "kubectl"
    kubectl.write_text('#!/bin/sh\necho "secret/registry-1 created ($2)"\n')
    kubectl.chmod(0o755)
    scenario = run(tmp_path, kubectl)
    scenario.core.read_namespaced_secret = lambda name, ns: name
    password = new_password("foo")

    assert scenario.secrets is scenario.secrets, "one maker per scenario"
    scenario.secrets.via_kubectl_create("registry-1", "lab-test", "reg:5000", "foo", password)

    step = next(s for s in scenario.transcript.steps if s.kind == "command")
    assert step.command.startswith("kubectl create secret docker-registry registry-1 ")
    assert "--kubeconfig" not in step.command and "--namespace" not in step.command
    assert password not in step.command and "--docker-password=******" in step.command
    assert step.output == "secret/registry-1 created (--namespace=lab-test)"


def test_describe_tail_keeps_the_last_lines_of_what_kubectl_printed(tmp_path):
    kubectl = tmp_path / "kubectl"
    kubectl.write_text("#!/bin/sh\nseq 1 30\n")
    kubectl.chmod(0o755)
    scenario = run(tmp_path, kubectl)

    tail = scenario.describe_tail("web")

    assert tail.splitlines() == [str(n) for n in range(19, 31)]
    assert scenario.transcript.steps[-1].command == "kubectl describe pod web"
