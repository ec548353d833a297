"""`pull-lab check`'s pure logic (which nodes, the probe pod, lines, JSON, exit codes) and the
plumbing of `--workers`; the real probes run in tests/e2e/test_check.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from lab.check import (
    CheckReport,
    ImagePulled,
    NodeFacts,
    NodeResult,
    Target,
    parse_node_selector,
    probe_pod_manifest,
    probe_pod_name,
    pulled,
    pulled_seconds,
    select_nodes,
)
from lab.cli import main
from lab.cluster import ClusterSpec, kind_config
from lab.doctor.rules import Finding, Stage
from lab.errors import LabError
from lab.settings import LABEL, Settings, settings_from_env

CP_TAINT = "node-role.kubernetes.io/control-plane:NoSchedule"


# ---- which nodes ------------------------------------------------------------------------------
def test_a_tainted_control_plane_is_skipped_and_says_how_to_probe_it():
    nodes = [NodeFacts("w1"), NodeFacts("cp", taints=(CP_TAINT,))]

    targets = select_nodes(nodes, {}, tolerate_taints=False)

    assert targets == [
        Target("cp", f"tainted {CP_TAINT} (--tolerate-taints probes it)"),
        Target("w1"),
    ]


def test_tolerate_taints_probes_tainted_and_cordoned_nodes_but_not_unready_ones():
    nodes = [
        NodeFacts("cp", taints=(CP_TAINT,)),
        NodeFacts("cordoned", cordoned=True),
        NodeFacts("down", ready=False),
    ]

    targets = select_nodes(nodes, {}, tolerate_taints=True)

    assert targets == [Target("cordoned"), Target("cp"), Target("down", "not Ready")]


def test_a_cordoned_node_is_skipped_without_tolerate_taints():
    (target,) = select_nodes([NodeFacts("n", cordoned=True)], {}, tolerate_taints=False)
    assert target.skipped == "cordoned (--tolerate-taints probes it)"


def test_the_node_selector_leaves_other_nodes_out_entirely():
    nodes = [
        NodeFacts("a", labels={"zone": "a", "gpu": "yes"}),
        NodeFacts("b", labels={"zone": "b"}),
        NodeFacts("c", labels={"zone": "a"}),
    ]

    targets = select_nodes(nodes, {"zone": "a", "gpu": "yes"}, tolerate_taints=False)

    assert targets == [Target("a")]


def test_node_facts_keep_only_taints_that_keep_pods_off():
    node = client.V1Node(
        metadata=client.V1ObjectMeta(name="n1", labels={"zone": "a"}),
        spec=client.V1NodeSpec(
            unschedulable=True,
            taints=[
                client.V1Taint(key="node-role.kubernetes.io/control-plane", effect="NoSchedule"),
                client.V1Taint(key="dedicated", value="gpu", effect="NoExecute"),
                client.V1Taint(key="soft", effect="PreferNoSchedule"),
            ],
        ),
        status=client.V1NodeStatus(
            conditions=[client.V1NodeCondition(type="Ready", status="False")]
        ),
    )

    facts = NodeFacts.of(node)

    assert facts == NodeFacts(
        "n1",
        {"zone": "a"},
        (CP_TAINT, "dedicated=gpu:NoExecute"),
        ready=False,
        cordoned=True,
    )


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (["zone=a"], {"zone": "a"}),
        (["zone=a,disk=ssd", "gpu="], {"zone": "a", "disk": "ssd", "gpu": ""}),
        ([], {}),
    ],
)
def test_node_selector_pairs_from_flags(texts, expected):
    assert parse_node_selector(texts) == expected


@pytest.mark.parametrize("bad", ["zone", "=a"])
def test_a_node_selector_without_a_key_and_value_is_a_usage_error(bad):
    with pytest.raises(LabError, match="is not key=value"):
        parse_node_selector([bad])


# ---- the probe pod ----------------------------------------------------------------------------
def test_the_probe_is_pinned_pulls_always_names_the_secret_and_carries_the_run_label():
    pod = probe_pod_manifest("p", "node-b", "reg:5000/a:1", "r1", "registry-1", False)

    spec = pod["spec"]
    assert pod["metadata"]["labels"][LABEL] == "r1"
    assert spec["nodeName"] == "node-b"
    assert spec["restartPolicy"] == "Never"
    assert spec["imagePullSecrets"] == [{"name": "registry-1"}]
    (container,) = spec["containers"]
    assert (container["image"], container["imagePullPolicy"]) == ("reg:5000/a:1", "Always")
    assert container["command"] == ["true"]
    assert "tolerations" not in spec


def test_the_probe_tolerates_every_taint_only_when_asked_and_names_no_secret_without_one():
    pod = probe_pod_manifest("p", "cp", "reg:5000/a:1", "r1", None, True)

    assert pod["spec"]["tolerations"] == [{"operator": "Exists"}]
    assert "imagePullSecrets" not in pod["spec"]


def test_probe_names_say_which_node_and_stay_valid():
    assert probe_pod_name("ab12cd34", "kind-worker2") == "pull-lab-check-ab12cd34-kind-worker2"
    long = probe_pod_name("ab12cd34", "n" * 250 + "-x")
    assert len(long) <= 253 and not long.endswith(("-", "."))


def pod_with(state: client.V1ContainerState, phase: str = "Pending") -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name="p", uid="u1"),
        spec=client.V1PodSpec(containers=[client.V1Container(name="probe", image="x")]),
        status=client.V1PodStatus(
            phase=phase,
            container_statuses=[
                client.V1ContainerStatus(
                    name="probe", image="x", image_id="", ready=False, restart_count=0, state=state
                )
            ],
        ),
    )


def waiting(reason: str, message: str = "") -> client.V1ContainerState:
    return client.V1ContainerState(
        waiting=client.V1ContainerStateWaiting(reason=reason, message=message)
    )


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (client.V1ContainerState(terminated=client.V1ContainerStateTerminated(exit_code=0)), True),
        (waiting("CreateContainerConfigError"), True),  # after the pull: runAsNonRoot, say
        (waiting("ContainerCreating"), False),
        (waiting("ErrImagePull"), False),
    ],
)
def test_pulled_means_the_container_got_past_the_pull(state, expected):
    assert pulled(pod_with(state)) is expected


def test_a_pull_failure_stops_the_wait_and_a_rejected_pod_too():
    condition = ImagePulled()
    failing = pod_with(waiting("ErrImagePull", "x509: certificate signed by unknown authority"))
    rejected = pod_with(waiting("ContainerCreating"), phase="Failed")
    rejected.status.reason, rejected.status.message = "OutOfcpu", "no cpu left"

    assert condition.fail_fast(failing, scope=None) == (
        "container probe: ErrImagePull: x509: certificate signed by unknown authority"
    )
    assert condition.fail_fast(rejected, scope=None) == (
        "the node rejected the pod: OutOfcpu: no cpu left"
    )
    assert condition.fail_fast(pod_with(waiting("ContainerCreating")), scope=None) is None


@pytest.mark.parametrize(
    ("message", "seconds"),
    [
        (
            'Successfully pulled image "reg:5000/a:1" in 512ms (512ms including waiting). '
            "Image size: 1 bytes.",
            0.512,
        ),
        ('Successfully pulled image "reg:5000/a:1" in 1m2.5s (1m3s including waiting)', 62.5),
        ('Container image "reg:5000/a:1" already present on machine', None),
    ],
)
def test_pull_time_comes_from_the_kubelets_pulled_event(message, seconds):
    assert pulled_seconds(message) == seconds


# ---- lines, JSON, exit codes ------------------------------------------------------------------
UNKNOWN_CA = Finding(
    name="unknown-ca",
    container="probe",
    cause="the node does not trust the registry's CA",
    fix="put the CA in certs.d",
    evidence="x509: certificate signed by unknown authority",
    stage=Stage.TLS_SERVER,
)


def report(*nodes: NodeResult) -> CheckReport:
    return CheckReport("reg:5000/a:1", "default", "registry-1", nodes)


def test_one_line_per_node_and_a_verdict():
    text = report(
        NodeResult("cp", "skipped", detail="tainted x:NoSchedule"),
        NodeResult("w1", "pulled", 0.512, pod="p1"),
        NodeResult("w2", "failed", finding=UNKNOWN_CA, pod="p2", kept=True),
        NodeResult("w3", "failed", detail="not reached within 120s"),
    ).text()

    assert text.splitlines() == [
        "pull-lab check: reg:5000/a:1 on 3 of 4 node(s) (namespace default, secret registry-1)",
        "  cp: skipped: tainted x:NoSchedule",
        "  w1: pulled in 0.51 s",
        "  w2: failed: unknown-ca: the node does not trust the registry's CA — "
        + "put the CA in certs.d (kept: pod p2)",
        "  w3: failed: not reached within 120s",
        "2 of 3 probed node(s) failed to pull",
    ]


def test_exit_1_when_any_node_failed_and_0_when_every_probed_node_pulled():
    assert report(NodeResult("a", "pulled", 1.0), NodeResult("b", "skipped")).exit_code == 0
    assert report(NodeResult("a", "pulled", 1.0), NodeResult("b", "failed")).exit_code == 1


def test_json_names_the_schema_every_node_and_doctors_finding():
    doc = json.loads(
        report(
            NodeResult("w1", "pulled", 0.5124, pod="p1"),
            NodeResult("w2", "failed", finding=UNKNOWN_CA, pod="p2"),
        ).json_text()
    )

    assert doc == {
        "schema": "pull-lab-check/1",
        "image": "reg:5000/a:1",
        "namespace": "default",
        "secret": "registry-1",
        "result": "failed",
        "nodes": [
            {
                "name": "w1",
                "result": "pulled",
                "seconds": 0.512,
                "pod": "p1",
                "kept": False,
                "detail": None,
                "finding": None,
            },
            {
                "name": "w2",
                "result": "failed",
                "seconds": None,
                "pod": "p2",
                "kept": False,
                "detail": None,
                "finding": {
                    "name": "unknown-ca",
                    "stage": "tls-server",
                    "cause": "the node does not trust the registry's CA",
                    "fix": "put the CA in certs.d",
                    "evidence": "x509: certificate signed by unknown authority",
                },
            },
        ],
    }


# ---- usage errors: one line, exit 2, nothing contacted ---------------------------------------
def run(capsys, *argv: str) -> tuple[int, list[str], list[str]]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


def kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "lab",
                "clusters": [{"name": "lab", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "lab", "user": {"token": "t"}}],
                "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "lab"}}],
            }
        )
    )
    return path


def test_check_without_image_is_one_line_and_exit_2(capsys):
    code, out, err = run(capsys, "check")
    assert (code, out) == (2, [])
    assert err == [
        "pull-lab: error: --image is required "
        + "(e.g. pull-lab check --image reg:5000/team/app:1.0)"
    ]


def test_check_with_an_unknown_context_is_one_line_and_exit_2(capsys, tmp_path):
    config = kubeconfig(tmp_path)
    code, out, err = run(
        capsys, "check", "--image", "r/a:1", "--kubeconfig", str(config), "--context", "nope"
    )
    assert (code, out) == (2, [])
    assert err == [f"pull-lab: error: context 'nope' is not in kubeconfig {config} (contexts: lab)"]


def test_check_with_a_bad_node_selector_is_one_line_and_exit_2(capsys):
    code, _, err = run(capsys, "check", "--image", "r/a:1", "--node-selector", "zone")
    assert code == 2 and len(err) == 1 and "is not key=value" in err[0]


def test_check_against_an_api_server_that_does_not_answer_is_one_line_and_exit_2(capsys, tmp_path):
    code, _, err = run(
        capsys, "check", "--image", "r/a:1", "--kubeconfig", str(kubeconfig(tmp_path))
    )
    assert code == 2
    assert len(err) == 1 and err[0].startswith(
        "pull-lab: error: cannot list nodes on https://127.0.0.1:1: "
    )


# ---- workers ---------------------------------------------------------------------------------
def spec(workers: int) -> ClusterSpec:
    return ClusterSpec(
        name="lab",
        node_image="img",
        kind_bin=Path("kind"),
        kubectl_bin=Path("kubectl"),
        state_dir=Path("/tmp/x"),
        network="lab-net",
        run_id="r",
        default_cni=False,
        workers=workers,
    )


def test_the_default_cluster_stays_one_node():
    assert kind_config(spec(0))["nodes"] == [{"role": "control-plane"}]
    assert spec(0).nodes == ("lab-control-plane",)
    assert Settings().workers == 0


def test_workers_join_from_the_same_image_under_kinds_names():
    config = kind_config(spec(2))
    assert config["nodes"] == [{"role": "control-plane"}, {"role": "worker"}, {"role": "worker"}]
    assert spec(2).nodes == ("lab-control-plane", "lab-worker", "lab-worker2")


def test_workers_from_the_environment_and_their_bounds():
    assert settings_from_env({"PULL_LAB_WORKERS": "2"}).workers == 2
    with pytest.raises(LabError, match="invalid number of workers 'two'"):
        settings_from_env({"PULL_LAB_WORKERS": "two"})
    with pytest.raises(LabError, match="invalid number of workers 99"):
        Settings(workers=99)


def test_up_rejects_a_bad_worker_count_before_doing_anything(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["up", "--workers", "-1"])
    assert exited.value.code == 2
    assert "use 0 to 8 workers, not -1" in capsys.readouterr().err
