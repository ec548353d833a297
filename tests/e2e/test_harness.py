"""Self-tests of the harness against the real cluster and registries: each piece does what
the scenarios rely on, checked through real TLS, a real kubelet and real containerd."""

from __future__ import annotations

import json

import pytest
import requests

from lab import manifest_yaml
from lab.diagnose import namespace_report, node_report
from lab.dockerconfig import dockerconfigjson
from lab.expect import view_of
from lab.kubectl import Kubectl
from lab.node import KUBELET_CONFIG_JSON, certs_dir
from lab.pods import pod_manifest
from lab.secrets import DOCKERCONFIGJSON, SecretMaker, decode_secret
from lab.settings import LABEL
from lab.transcript import Transcript
from lab.waits import wait_event, wait_pod_running, wait_waiting

pytestmark = pytest.mark.e2e


@pytest.fixture
def trusted(lab_node, lab_registry, lab_pki):
    """The node trusts the lab CA for the session registry, for this test only."""
    lab_node.install_ca(lab_registry.spec.host, lab_pki.ca_pem)
    return lab_registry


def test_registry_serves_catalog_over_tls_with_basic_auth(lab_registry):
    assert "lab/busybox" in lab_registry.catalog()
    assert lab_registry.tags("lab/busybox") == ["1.0"]
    anonymous = lab_registry.session().get(f"{lab_registry.url}/v2/_catalog", timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == 'Basic realm="lab-registry"'
    wrong = lab_registry.session(("foo", "wrong")).get(f"{lab_registry.url}/v2/", timeout=10)
    assert wrong.status_code == 401


def test_registry_certificate_is_not_trusted_without_the_lab_ca(lab_registry):
    with pytest.raises(requests.exceptions.SSLError, match="certificate verify failed"):
        requests.get(f"{lab_registry.url}/v2/", verify=True, timeout=10)


def test_mtls_registry_refuses_a_client_without_certificate(lab_registries):
    mtls = lab_registries.start("mtls-selftest", mtls=True)
    with pytest.raises(requests.exceptions.SSLError):
        mtls.session(mtls.credentials, client_cert=False).get(f"{mtls.url}/v2/", timeout=10)
    assert mtls.session(mtls.credentials).get(f"{mtls.url}/v2/", timeout=10).status_code == 200


def test_registry_files_keep_private_keys_private(lab_registry):
    for name in ("server.key", "htpasswd"):
        assert (lab_registry.workdir / name).stat().st_mode & 0o777 == 0o600
    assert lab_registry.workdir.stat().st_mode & 0o777 == 0o700


def test_pull_with_a_secret_runs_the_pod_and_node_changes_are_undone(
    trusted, lab_node, lab_namespace, lab_core_v1, lab_kube_api, lab_cluster, lab_transcript
):
    host = trusted.spec.host
    user, password = trusted.credentials
    maker = SecretMaker(
        lab_cluster.kubeconfig_path, lab_cluster.kubectl_path, lab_kube_api, lab_transcript
    )
    maker.via_client("reg", lab_namespace, dockerconfigjson(host, user, password))
    image = f"{host}/lab/busybox:1.0"
    lab_node.remove_image(image)
    lab_core_v1.create_namespaced_pod(
        lab_namespace,
        pod_manifest("p", image, run_id="t", pull_policy="Always", pull_secrets=("reg",)),
    )
    pod, _ = wait_pod_running(lab_core_v1, lab_namespace, "p", timeout=90)
    pulled = wait_event(
        lab_core_v1, lab_namespace, pod, "Pulled", r'Successfully pulled image "' + image
    )
    assert pulled.source == "kubelet"
    assert lab_node.image_present(image)

    assert lab_node.changes.exists(f"{certs_dir(host)}/ca.crt")
    assert lab_node.restore() == []
    assert not lab_node.changes.exists(certs_dir(host))


def test_pull_without_ca_waits_with_unknown_authority(lab_registry, lab_namespace, lab_core_v1):
    image = f"{lab_registry.spec.host}/lab/busybox:1.0"
    lab_core_v1.create_namespaced_pod(
        lab_namespace, pod_manifest("p", image, run_id="t", pull_policy="Always")
    )
    pod, timeline = wait_waiting(
        lab_core_v1,
        lab_namespace,
        "p",
        "ErrImagePull",
        message="x509: certificate signed by unknown authority",
    )
    assert view_of(pod).reason == "ErrImagePull"
    assert pod.status.phase == "Pending"
    assert timeline.entries
    failed = wait_event(lab_core_v1, lab_namespace, pod, "Failed", r"Failed to pull image .*x509")
    assert failed.type == "Warning"


def test_secret_content_is_identical_all_four_ways(
    lab_namespace, lab_core_v1, lab_kube_api, lab_cluster, lab_transcript
):
    maker = SecretMaker(
        lab_cluster.kubeconfig_path, lab_cluster.kubectl_path, lab_kube_api, lab_transcript
    )
    content = dockerconfigjson("reg.example:5000", "foo", "s3cret-pw", "foo@example.com")
    kubectl = maker.via_kubectl_create(
        "a", lab_namespace, "reg.example:5000", "foo", "s3cret-pw", "foo@example.com"
    )
    yaml_made = maker.via_yaml("b", lab_namespace, content)
    client_made = maker.via_client("c", lab_namespace, content)
    body = json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "d"},
            "type": DOCKERCONFIGJSON,
            "data": {".dockerconfigjson": __import__("base64").b64encode(content).decode()},
        }
    ).encode()
    result = maker.via_rest(f"/api/v1/namespaces/{lab_namespace}/secrets", body)
    assert result.status == 201
    rest_made = lab_core_v1.read_namespaced_secret("d", lab_namespace)

    decoded = [decode_secret(s) for s in (kubectl, yaml_made, client_made, rest_made)]
    assert all(s.type == DOCKERCONFIGJSON for s in (kubectl, yaml_made, client_made, rest_made))
    assert decoded[0] == decoded[1] == decoded[2] == decoded[3]
    assert decoded[0][".dockerconfigjson"]["auths"]["reg.example:5000"]["username"] == "foo"
    text = "\n".join(f"{s.command}\n{s.output}" for s in lab_transcript.steps)
    assert "s3cret-pw" not in text and "--docker-password=******" in text


def test_kubelet_reads_node_credentials_from_its_root_dir(
    trusted, lab_node, lab_namespace, lab_core_v1
):
    host = trusted.spec.host
    user, password = trusted.credentials
    from lab.dockerconfig import auth_entry

    lab_node.set_credentials({host: auth_entry(user, password)})
    assert json.loads(lab_node.read(KUBELET_CONFIG_JSON))["auths"][host]["username"] == user
    lab_node.restart_kubelet()
    image = f"{host}/lab/busybox:1.0"
    lab_node.remove_image(image)
    lab_core_v1.create_namespaced_pod(
        lab_namespace, pod_manifest("p", image, run_id="t", pull_policy="Always")
    )
    wait_pod_running(lab_core_v1, lab_namespace, "p", timeout=90)


def test_diagnostics_show_pods_events_and_node_logs(
    lab_registry, lab_namespace, lab_core_v1, lab_cluster
):
    image = f"{lab_registry.spec.host}/lab/busybox:1.0"
    lab_core_v1.create_namespaced_pod(
        lab_namespace, pod_manifest("p", image, run_id="t", pull_policy="Always")
    )
    wait_waiting(lab_core_v1, lab_namespace, "p", "ErrImagePull")
    report = namespace_report(lab_cluster.kubeconfig_path, lab_namespace)
    assert "pod p " in report and "ErrImagePull" in report and "Failed" in report
    node_text = node_report(lab_cluster)
    assert "--- journal (containerd, kubelet)" in node_text and "kubelet" in node_text


@pytest.mark.parametrize("run_id", ["79148e82", "1e3", "0x1f", "yes"])
def test_kubectl_reads_a_number_shaped_run_id_back_as_the_same_label(
    run_id, lab_namespace, lab_cluster
):
    """Run id 79148e82 once made kubectl reject a pod: Go's YAML reads it as a float."""
    manifest = pod_manifest("shaped", "pull-lab.local/busybox:1.0", run_id=run_id)
    kubectl = Kubectl(lab_cluster.kubectl_path, lab_cluster.kubeconfig_path, Transcript())
    status, output, _ = kubectl.execute(
        "create",
        "--dry-run=server",
        "-f",
        "-",
        "-o",
        "json",
        input=manifest_yaml.dump(manifest).encode(),
        namespace=lab_namespace,
    )
    assert status == 0, output
    assert json.loads(output)["metadata"]["labels"][LABEL] == run_id
