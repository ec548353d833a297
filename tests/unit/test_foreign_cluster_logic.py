"""A cluster the lab did not make: what the lab puts in it and how it reaches its nodes.

Pure logic only: the manifests, the node order, the agent's command line, the option checks.
tests/e2e/test_foreign_cluster.py runs all of it on a real cluster made with plain `kind`.
"""

from __future__ import annotations

import base64
from pathlib import Path
from types import SimpleNamespace

import pytest

from lab.errors import LabError
from lab.foreign import read_nodes
from lab.incluster_registry import InClusterSpec, pod_not_starting, registry_objects
from lab.node_agent import AgentShell, agent_daemonset
from lab.settings import Settings


def spec(**kw) -> InClusterSpec:
    base = dict(
        name="10.0.0.7",
        image="pull-lab.local/registry:2",
        network="",
        run_id="r1",
        users={"foo": "x"},
        resource="registry-node-abc123",
        port=24414,
        node="worker-a",
    )
    return InClusterSpec(**{**base, **kw})  # type: ignore[arg-type]


def test_nodes_name_the_registry_by_the_node_address_and_its_own_port():
    s = spec()
    assert (s.name, s.host) == ("10.0.0.7", "10.0.0.7:24414")


def test_the_registry_runs_on_the_host_network_of_its_node_at_its_port():
    secret, deployment, service = registry_objects(spec(), {"config.yml": b"version: 0.1\n"})
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["hostNetwork"] is True and pod["nodeName"] == "worker-a"
    assert container["env"] == [{"name": "REGISTRY_HTTP_ADDR", "value": ":24414"}]
    assert container["args"] == ["serve", "/lab/config.yml"]
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert pod["volumes"][0]["secret"] == {
        "secretName": "registry-node-abc123",
        "defaultMode": 0o400,
    }
    assert base64.b64decode(secret["data"]["config.yml"]) == b"version: 0.1\n"
    assert service["spec"]["ports"][0]["port"] == 24414
    for made in (secret, deployment, service):
        assert made["metadata"]["labels"]["io.registry-pull-lab.run"] == "r1"


@pytest.mark.parametrize(
    ("reason", "stops"),
    [
        ("ErrImagePull", True),
        ("ImagePullBackOff", True),
        ("CrashLoopBackOff", True),
        ("ContainerCreating", False),
    ],
)
def test_waiting_for_the_registry_stops_at_what_waiting_cannot_cure(reason, stops):
    waiting = SimpleNamespace(reason=reason, message="m")
    status = SimpleNamespace(state=SimpleNamespace(waiting=waiting))
    pod = SimpleNamespace(status=SimpleNamespace(container_statuses=[status]))
    assert (pod_not_starting(pod) is not None) is stops


def node(name: str, ready: bool = True, taint: str | None = None) -> SimpleNamespace:
    taints = [SimpleNamespace(key="k", effect=taint)] if taint else []
    conditions = [SimpleNamespace(type="Ready", status="True" if ready else "False")]
    return SimpleNamespace(
        metadata=SimpleNamespace(name=name),
        spec=SimpleNamespace(taints=taints),
        status=SimpleNamespace(conditions=conditions),
    )


def test_the_default_node_is_where_an_unpinned_pod_lands_and_unready_nodes_are_left_out():
    items = [node("cp", taint="NoSchedule"), node("w2"), node("w1"), node("down", ready=False)]
    core = SimpleNamespace(list_node=lambda: SimpleNamespace(items=items))
    nodes = read_nodes(core)  # type: ignore[arg-type]
    assert nodes.node == "w1"
    assert nodes.nodes == ("w1", "w2", "cp")
    assert nodes.schedulable == ("w1", "w2")
    assert nodes.workers == 2


def test_a_cluster_without_a_ready_node_is_a_one_line_error():
    core = SimpleNamespace(list_node=lambda: SimpleNamespace(items=[node("a", ready=False)]))
    with pytest.raises(LabError, match="no Ready node"):
        read_nodes(core)  # type: ignore[arg-type]


def test_the_agent_runs_the_nodes_own_shell_in_the_nodes_namespaces():
    place = SimpleNamespace(kubectl=Path("kubectl"), kubeconfig=Path("kc"), namespace="pl")
    shell = AgentShell(place, "worker-a", "agent-x")  # type: ignore[arg-type]
    argv = shell.argv("sh", "-c", "ls /etc")
    assert argv[3:7] == ["exec", "-i", "agent-x", "--"]
    nsenter = ["nsenter", "-t", "1", "-m", "-u", "-i", "-n", "-p", "--"]
    assert argv[7:] == [*nsenter, "/bin/sh", "-c", "ls /etc"]
    assert shell.exec_prefix.startswith("kubectl exec -i --namespace=pl agent-x -- nsenter")
    assert "kc" not in shell.exec_prefix  # a transcript never shows the kubeconfig
    # The kubelet is restarted after the exec that asks for it has returned.
    assert "systemd-run" in shell.restart_script


def test_the_agent_is_privileged_in_the_host_pid_namespace_on_every_node():
    pod = agent_daemonset("busybox", "r1")["spec"]["template"]["spec"]
    assert pod["hostPID"] is True
    assert pod["tolerations"] == [{"operator": "Exists"}]
    assert pod["containers"][0]["securityContext"] == {"privileged": True}


def test_node_changes_need_a_kubeconfig_to_consent_for(tmp_path):
    with pytest.raises(LabError, match="--allow-node-changes is for a cluster brought with"):
        Settings(allow_node_changes=True)
    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text("apiVersion: v1\n")
    assert Settings(kubeconfig=kubeconfig, allow_node_changes=True).allow_node_changes
