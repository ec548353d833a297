"""`pull-lab doctor`'s rules, run on recorded pods (tests/unit/data/doctor/*.json).

Fixtures whose provenance kind is ``capture`` were recorded on the lab's kind cluster with
lab/doctor/capture.py (masked). The others are still INTERIM: built by hand from the messages in
docs/findings.md (and, where marked, from upstream wording not yet seen on the lab), to be
replaced by captures. See tests/unit/data/doctor/README.md.
"""

from __future__ import annotations

import ast
import base64
import json
from dataclasses import replace
from pathlib import Path

import pytest

from lab.doctor import Diagnosis, Evidence, Stage, diagnose, rules
from lab.doctor.capture import masked
from lab.doctor.evidence import ContainerPull
from lab.doctor.keyring import Key, image_repository
from lab.doctor.rules import CAUSES
from lab.masking import mask

DATA = Path(__file__).parent / "data" / "doctor"
FIXTURES = sorted(DATA.glob("*.json"))
LAB = Path(__file__).resolve().parents[2] / "lab"


def load(name: str) -> dict:
    record: dict = json.loads((DATA / f"{name}.json").read_text())
    return record


def findings_of(record: dict):
    return diagnose(Evidence.from_capture(record))


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_each_recorded_pod_gets_its_diagnosis_first(path):
    record = json.loads(path.read_text())
    expect = record["expect"]

    names = [f.name for f in findings_of(record)]

    assert (names[0] if names else None) == expect["first"], names
    if "names" in expect:
        assert names == expect["names"]
    assert not set(expect.get("absent", ())) & set(names), names


def test_every_cause_doctor_can_name_has_a_recorded_pod():
    named = {
        n
        for p in FIXTURES
        for n in (load(p.stem)["expect"]["first"], *load(p.stem)["expect"].get("names", ()))
    } - {None}

    assert set(CAUSES) <= named, f"causes without a recorded pod: {set(CAUSES) - named}"
    assert named <= set(CAUSES), f"fixtures expect causes no rule names: {named - set(CAUSES)}"


def test_every_fix_and_cause_is_one_line():
    for path in FIXTURES:
        for f in findings_of(json.loads(path.read_text())):
            assert "\n" not in f.fix and "\n" not in f.cause, (path.stem, f)


def test_a_credential_finding_never_outranks_a_failure_before_credentials():
    found = findings_of(load("mtls-ranked-before-secret"))

    assert [f.stage for f in found] == sorted(f.stage for f in found)
    assert found[0].stage < Stage.AUTHENTICATION <= found[1].stage


def test_a_host_that_does_not_resolve_is_never_the_fix_for_a_secret():
    record = load("dns-failure-typo")
    typo_host = record["pod"]["spec"]["containers"][0]["image"].split("/", 1)[0]
    (secret_host,) = json.loads(
        base64.b64decode(record["secrets"][0]["secret"]["data"][".dockerconfigjson"])
    )["auths"]
    assert typo_host != secret_host

    found = findings_of(record)

    assert not any(f"--docker-server={typo_host}" in f.fix for f in found)
    hint = next(f for f in found if f.name == "host-maybe-mistyped")
    assert secret_host in hint.cause


def test_of_two_secrets_the_one_for_the_failing_registry_is_blamed():
    (found,) = findings_of(load("multi-registry-wrong-secret"))

    assert found.container == "b"
    assert "registry-2" in found.cause and "registry-1" not in found.cause


def test_a_bare_back_off_status_is_read_from_the_last_failed_event():
    (found,) = findings_of(load("back-off-bare-status-event"))

    assert found.source == "event"
    assert found.evidence.endswith("x509: certificate signed by unknown authority")
    assert "evidence (from the last Failed event)" in found.render()


def test_an_unknown_message_is_shown_verbatim():
    record = load("not-recognised")
    message = record["pod"]["status"]["containerStatuses"][0]["state"]["waiting"]["message"]

    (found,) = findings_of(record)

    assert found.evidence == message and "not recognise" in found.cause


def test_a_pod_whose_images_all_pulled_exits_0():
    record = load("all-pulled")
    meta, info = record["pod"]["metadata"], record["node"]["nodeInfo"]
    count = len(record["pod"]["spec"]["containers"])
    evidence = Evidence.from_capture(record)
    diagnosis = Diagnosis(evidence, diagnose(evidence))

    assert (diagnosis.exit_code, diagnosis.result) == (0, "all-pulled")
    assert diagnosis.text().splitlines() == [
        f"pod {meta['namespace']}/{meta['name']}: every image pulled ({count} container(s))",
        f"node {record['node']['name']}: kubelet {info['kubeletVersion']}, "
        f"runtime {info['containerRuntimeVersion']}",
    ]


def test_a_pull_problem_exits_1_and_its_json_has_the_stable_fields():
    evidence = Evidence.from_capture(load("unknown-ca"))
    diagnosis = Diagnosis(evidence, diagnose(evidence))

    doc = json.loads(diagnosis.json_text())

    assert diagnosis.exit_code == 1
    assert doc["schema"] == "pull-lab-doctor/1" and doc["result"] == "pull-problem"
    assert set(doc) == {"schema", "pod", "result", "node", "containers", "findings", "probe"}
    assert doc["probe"] is None  # not asked for
    assert doc["node"]["kubeletVersion"] == "v1.34.4"
    assert doc["node"]["containerRuntimeVersion"] == "containerd://1.6.20"
    assert set(doc["findings"][0]) == {
        "rank", "name", "stage", "container", "cause", "fix", "evidence", "evidenceSource",
        "notes", "said",
    }  # fmt: skip
    assert (doc["findings"][0]["name"], doc["findings"][0]["stage"]) == ("unknown-ca", "tls-server")
    message = load("unknown-ca")["pod"]["status"]["containerStatuses"][0]["state"]["waiting"]
    assert doc["findings"][0]["said"] == {
        "container": "app",
        "message": message["message"],
        "source": "status",
    }


def test_the_text_keeps_the_form_the_e2e_tests_read():
    evidence = Evidence.from_capture(load("unknown-ca"))
    text = Diagnosis(evidence, diagnose(evidence)).text()

    assert "1. container app: unknown-ca" in text
    assert "likely cause: the node does not trust the registry's CA" in text


def test_the_text_names_the_node_and_its_kubelet_and_runtime_versions():
    evidence = Evidence.from_capture(load("unknown-ca"))

    second = Diagnosis(evidence, diagnose(evidence)).text().splitlines()[1]

    assert second == (
        "node pull-lab-t10365d0e-control-plane: kubelet v1.34.4, runtime containerd://1.6.20"
    )


def test_a_node_doctor_may_not_read_says_its_versions_are_unknown():
    record = load("unknown-ca")
    record["node"] = {"name": "n1"}  # what capture records when get node is forbidden
    evidence = Evidence.from_capture(record)

    assert "node n1: kubelet and runtime versions unknown" in Diagnosis(evidence, []).text()
    assert Diagnosis(evidence, []).to_json()["node"]["kubeletVersion"] == ""


@pytest.mark.parametrize(
    ("key", "image", "serves"),
    [
        ("pull-lab-registry:5000", "pull-lab-registry:5000/lab/nginx:1.7.9", True),
        ("https://pull-lab-registry:5000/v2/", "pull-lab-registry:5000/lab/nginx", True),
        ("pull-lab-registry", "pull-lab-registry:5000/lab/nginx", False),  # ports must match
        ("pull-lab-registry:5000", "pull-lab-registry/lab/nginx", False),
        ("https://index.docker.io/v1/", "busybox", True),
        ("docker.io", "library/busybox:1.36", True),
        ("index.docker.io", "docker.io/library/busybox", True),
        ("*.example.com", "reg.example.com/app", True),
        ("*.example.com", "a.reg.example.com/app", False),  # one label per *
        ("reg.example.com/team", "reg.example.com/team/app:1", True),
        ("reg.example.com/team", "reg.example.com/other/app:1", False),
    ],
)
def test_keys_serve_images_as_the_kubelets_keyring_matches_them(key, image, serves):
    assert Key.parse("s", key, {"auth": "x"}).serves(image) is serves


def test_an_image_repository_drops_tag_and_digest_and_names_docker_hub():
    assert image_repository("busybox:1.36") == "docker.io/library/busybox"
    assert image_repository("reg:5000/lab/app@sha256:" + "a" * 64) == "reg:5000/lab/app"
    assert image_repository("reg:5000/lab/app:1") == "reg:5000/lab/app"


def test_a_masked_capture_keeps_the_secret_readable_but_holds_no_credential():
    password = "s3cret-pw-never-shown"
    auth = base64.b64encode(f"foo:{password}".encode()).decode()
    config = {"auths": {"reg:5000": {"username": "foo", "password": password, "auth": auth}}}
    data = base64.b64encode(json.dumps(config).encode()).decode()
    record = load("wrong-password")
    record["secrets"][0]["secret"]["data"] = {".dockerconfigjson": data}
    record["secrets"][0]["secret"]["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": data
    }

    out = masked(record)
    text = json.dumps(out)

    assert password not in text and auth not in text and data not in text
    assert mask(text) == text  # nothing left that looks like a credential
    (secret,) = Evidence.from_capture(out).secrets
    (key,) = secret.parsed.keys
    assert (key.raw, key.has_credentials) == ("reg:5000", True)


def test_the_doctor_has_its_own_rules_not_the_scenarios_signatures():
    for path in (LAB / "doctor").glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {
            n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
        } | {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert "lab.signatures" not in imported, path


def test_causes_and_fixes_have_their_placeholders_filled():
    for path in FIXTURES:
        for f in findings_of(json.loads(path.read_text())):
            assert "{" not in f.cause + f.fix.replace('{"auths": {"<host:port>": {...}}}', ""), (
                path.stem,
                f,
            )


class FakeCore:
    """The few CoreV1Api calls capture makes, answered from a recorded pod."""

    def __init__(
        self,
        record: dict,
        forbidden: tuple[str, ...] = (),
        service_account: tuple[str, ...] | int = (),  # its secrets' names, or 403 / 404
        node_images: tuple[str, ...] = (),
        other_pods: tuple[dict, ...] = (),
    ):
        from kubernetes import client

        self.api_client = client.ApiClient()
        self.record, self.forbidden = record, forbidden
        self.service_account, self.node_images = service_account, list(node_images)
        self.other_pods = other_pods

    def _model(self, data, kind):
        return self.api_client._ApiClient__deserialize(data, kind)

    def read_namespaced_pod(self, name, namespace):
        return self._model(self.record["pod"], "V1Pod")

    def list_namespaced_event(self, namespace, field_selector):
        return self._model({"items": self.record["events"]}, "CoreV1EventList")

    def read_namespaced_secret(self, name, namespace):
        from kubernetes import client

        if name in self.forbidden:
            raise client.ApiException(status=403, reason="Forbidden")
        for read in self.record["secrets"]:
            if read["name"] == name and read["status"] == "found":
                return self._model(read["secret"], "V1Secret")
        raise client.ApiException(status=404, reason="Not Found")

    def list_secret_for_all_namespaces(self, field_selector):
        return self._model({"items": []}, "V1SecretList")

    def read_node(self, name):
        required = ("bootID", "kernelVersion", "kubeProxyVersion", "machineID", "osImage")
        info = {**dict.fromkeys((*required, "systemUUID"), ""), **self.record["node"]["nodeInfo"]}
        images = [{"names": self.node_images}] if self.node_images else []
        node = {"metadata": {"name": name}, "status": {"nodeInfo": info, "images": images}}
        return self._model(node, "V1Node")

    def read_namespaced_service_account(self, name, namespace):
        from kubernetes import client

        if self.service_account in (403, 404):
            reason = {403: "Forbidden", 404: "Not Found"}[self.service_account]
            raise client.ApiException(status=self.service_account, reason=reason)
        refs = [{"name": n} for n in self.service_account or ()]
        sa = {"metadata": {"name": name, "namespace": namespace}, "imagePullSecrets": refs}
        return self._model(sa, "V1ServiceAccount")

    def list_namespaced_pod(self, namespace):
        return self._model({"items": [self.record["pod"], *self.other_pods]}, "V1PodList")


@pytest.mark.parametrize(
    "name", ["wrong-password", "back-off-bare-status-event", "init-container", "secret-missing"]
)
def test_a_live_read_gives_the_same_evidence_as_the_recording(name):
    from lab.doctor.capture import capture

    record = load(name)
    for event in record["events"]:
        event.setdefault("metadata", {"name": "e"})  # events always have one on a cluster
        event["involvedObject"].setdefault("uid", "uid")

    live = capture(FakeCore(record), "lab", record["pod"]["metadata"]["name"])

    assert [f.name for f in findings_of(live)] == [f.name for f in findings_of(record)]
    assert Evidence.from_capture(live).pulls == Evidence.from_capture(record).pulls


def test_a_secret_doctor_may_not_read_is_forbidden_not_missing():
    from lab.doctor.capture import capture

    record = load("wrong-password")

    live = capture(FakeCore(record, forbidden=("registry-1",)), "lab", "app")

    assert live["secrets"] == [
        {"name": "registry-1", "status": "forbidden", "error": "403 Forbidden"}
    ]
    assert [f.name for f in findings_of(live)] == ["secret-forbidden"]


# ---- the kubelet's own words beside what doctor read -------------------------------------

SECRET_AND_SA_FIXTURES = [
    "secret-missing",
    "secret-other-namespace",
    "secret-port-mismatch",
    "secret-wrong-type",
    "secret-wrong-shape",
    "credsstore",
    "secret-other-host",
    "secret-forbidden",
    "sa-secret-added-after-pod",
]


def status_message(record: dict, container: str = "app") -> str:
    statuses = record["pod"]["status"]["containerStatuses"]
    (status,) = [s for s in statuses if s["name"] == container]
    message: str = status["state"]["waiting"]["message"]
    return message


@pytest.mark.parametrize("name", SECRET_AND_SA_FIXTURES)
def test_a_finding_read_from_a_secret_also_shows_what_the_kubelet_said(name):
    record = load(name)

    first = findings_of(record)[0]

    assert first.source in ("secret", "serviceaccount")
    assert first.said is not None
    assert (first.said.container, first.said.source) == ("app", "status")
    assert first.said.message == status_message(record)
    assert "401 Unauthorized" in first.said.message
    said_line = f"  kubelet said (container app, its status): {status_message(record)}"
    assert said_line in first.render().splitlines()


def test_a_finding_read_from_the_message_does_not_repeat_it_in_the_text():
    (found,) = findings_of(load("unknown-ca"))

    assert found.said is not None and found.said.message == found.evidence
    assert "kubelet said" not in found.render()


# ---- a kubelet restart: the status forgets the failure, the events keep it ----------------


def test_a_status_that_says_only_container_creating_is_read_from_the_failed_events():
    record = load("kubelet-restart-container-creating")
    waiting = record["pod"]["status"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting == {"reason": "ContainerCreating"}

    (found,) = findings_of(record)

    assert (found.name, found.source) == ("no-credentials", "event")
    assert found.evidence.startswith("Failed to pull image ")
    assert found.evidence.endswith("401 Unauthorized")
    assert any("says only ContainerCreating" in n for n in found.notes)


def test_container_creating_after_a_successful_pull_is_no_pull_problem():
    record = load("kubelet-restart-container-creating")
    failed = next(e for e in record["events"] if e["message"].startswith("Failed to pull"))
    pulled = {
        **failed,
        "reason": "Pulled",
        "type": "Normal",
        "message": "Successfully pulled image (by hand, for this test)",
        "lastTimestamp": "2999-01-01T00:00:00Z",
    }
    record["events"].append(pulled)

    assert findings_of(record) == []


def test_container_creating_without_failed_events_is_no_pull_problem():
    record = load("kubelet-restart-container-creating")
    record["events"] = []

    assert findings_of(record) == []


def test_examine_namespace_finds_a_pod_whose_failure_is_only_in_its_events():
    from lab.doctor import examine_namespace

    record = load("kubelet-restart-container-creating")

    answer = examine_namespace(FakeCore(record), "lab")

    assert [d.findings[0].name for d in answer.diagnoses] == ["no-credentials"]


# ---- the ServiceAccount --------------------------------------------------------------------


def test_a_secret_added_to_the_serviceaccount_after_the_pod_says_recreate_the_pod():
    record = load("sa-secret-added-after-pod")

    (found,) = findings_of(record)

    assert found.name == "sa-secret-added-after-pod" and found.source == "serviceaccount"
    assert "registry-1" in found.cause and "only when the pod is created" in found.cause
    assert found.fix.startswith("recreate the pod")


def test_a_serviceaccount_secret_for_another_host_explains_nothing():
    record = load("sa-secret-added-after-pod")
    sa_secret = record["serviceAccount"]["secrets"][0]["secret"]
    auths = {"elsewhere.example:5000": {"username": "foo", "password": ["<masked>"]}}
    sa_secret["data"][".dockerconfigjson"] = base64.b64encode(
        json.dumps({"auths": auths}).encode()
    ).decode()

    assert [f.name for f in findings_of(record)] == ["no-credentials"]


def test_a_live_read_records_the_serviceaccount_and_reads_its_secrets_the_pod_lacks():
    from lab.doctor.capture import capture

    record = load("sa-secret-added-after-pod")
    fake = FakeCore(record, service_account=("registry-1",))
    fake.record = {**record, "secrets": record["serviceAccount"]["secrets"]}  # readable by name

    live = capture(fake, "lab", "app")

    assert live["serviceAccount"]["imagePullSecrets"] == ["registry-1"]
    assert [s["status"] for s in live["serviceAccount"]["secrets"]] == ["found"]
    assert live["secrets"] == []  # the pod itself lists none
    assert [f.name for f in findings_of(live)] == ["sa-secret-added-after-pod"]


@pytest.mark.parametrize(
    ("status", "name"), [(403, "serviceaccount-forbidden"), (404, "serviceaccount-missing")]
)
def test_a_serviceaccount_doctor_cannot_read_is_a_finding_of_its_own(status, name):
    from lab.doctor.capture import capture

    live = capture(FakeCore(load("no-credentials"), service_account=status), "lab", "app")

    assert live["serviceAccount"]["status"] == {403: "forbidden", 404: "missing"}[status]
    assert [f.name for f in findings_of(live)] == ["no-credentials", name]


def test_a_masked_capture_masks_the_serviceaccounts_secrets_too():
    password = "sa-pw-never-shown"
    config = {"auths": {"reg:5000": {"username": "foo", "password": password}}}
    record = load("sa-secret-added-after-pod")
    record["serviceAccount"]["secrets"][0]["secret"]["data"] = {
        ".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()
    }

    text = json.dumps(masked(record))

    assert password not in text
    (extra,) = Evidence.from_capture(json.loads(text)).service_account.extra
    assert extra.parsed.keys[0].has_credentials


# ---- node credentials ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["no-credentials", "wrong-password", "cached-image-needs-credentials"]
)
def test_a_401_finding_says_the_nodes_own_credentials_were_not_checked(name):
    first = findings_of(load(name))[0]
    text = first.render()

    assert any("node's own credentials" in n and "config.json" in n for n in first.notes)
    assert "  not checked: the node's own credentials" in text


@pytest.mark.parametrize("name", ["no-credentials", "wrong-password"])
def test_a_401_finding_says_a_credential_provider_plugin_may_have_failed(name):
    first = findings_of(load(name))[0]

    (note,) = [n for n in first.notes if "credential provider plugin may be configured" in n]
    # one grep for both wordings: 1.34's "Failed getting credential from ..." and 1.35+'s
    # structured "failed to get credential from ..." (lab/kubelet_messages.py)
    assert note.endswith(
        'journalctl -u kubelet | grep -i "credential from external registry credential provider"'
    )


def test_a_tls_finding_says_nothing_of_node_credentials():
    (found,) = findings_of(load("unknown-ca"))

    assert found.notes == ()


# ---- Kubernetes 1.35: KubeletEnsureSecretPulledImages --------------------------------------


def test_the_135_fixtures_carry_the_kubelets_own_wording_and_name_the_source():
    for name in ("cached-image-needs-credentials", "cached-image-never-pull"):
        provenance = load(name)["provenance"]

        assert provenance["kind"] == "interim: upstream-wording"
        assert "pkg/kubelet/images/image_manager.go" in provenance["source"]
    never = load("cached-image-never-pull")
    image = never["pod"]["spec"]["containers"][0]["image"]
    waiting = never["pod"]["status"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting == {
        "reason": "ErrImageNeverPull",
        "message": f'Container image "{image}" is not present with pull policy of Never',
    }


@pytest.mark.parametrize(
    ("version", "first"),
    [
        ("v1.34.4", "no-credentials"),
        ("v1.35.0", "cached-image-needs-credentials"),
        ("v1.36.3", "cached-image-needs-credentials"),
        ("", "no-credentials"),  # the node could not be read: no version, no guess
    ],
)
def test_the_cached_image_rule_applies_only_from_kubelet_1_35(version, first):
    record = load("cached-image-needs-credentials")
    record["node"]["nodeInfo"]["kubeletVersion"] = version

    assert findings_of(record)[0].name == first


@pytest.mark.parametrize(
    ("version", "first"), [("v1.34.4", "never-pull"), ("v1.35.4", "cached-image-needs-credentials")]
)
def test_policy_never_on_a_node_that_holds_the_image_is_the_re_verification(version, first):
    record = load("cached-image-never-pull")
    record["node"]["nodeInfo"]["kubeletVersion"] = version

    assert [f.name for f in findings_of(record)] == [first]


def test_the_cached_image_rule_needs_the_image_on_the_node_and_a_policy_that_would_use_it():
    absent = load("cached-image-needs-credentials")
    absent["node"]["images"] = ["elsewhere:5000/lab/busybox:1.0"]
    always = load("cached-image-needs-credentials")
    always["pod"]["spec"]["containers"][0]["imagePullPolicy"] = "Always"

    assert findings_of(absent)[0].name == "no-credentials"
    assert findings_of(always)[0].name == "no-credentials"


def test_a_pod_that_offered_credentials_is_blamed_for_them_not_for_the_cache():
    record = load("wrong-password")
    record["node"]["nodeInfo"]["kubeletVersion"] = "v1.35.4"
    record["node"]["images"] = [record["pod"]["spec"]["containers"][0]["image"]]

    assert findings_of(record)[0].name == "wrong-password"


def test_a_live_read_keeps_only_the_nodes_names_for_the_pods_images():
    from lab.doctor.capture import capture

    record = load("no-credentials")
    image = record["pod"]["spec"]["containers"][0]["image"]
    fake = FakeCore(record, node_images=(image, "docker.io/library/other:1"))

    live = capture(fake, "lab", "app")

    assert live["node"]["images"] == [image]


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("busybox", "docker.io/library/busybox:latest", True),
        ("reg:5000/lab/app:1", "reg:5000/lab/app:1", True),
        ("reg:5000/lab/app:1", "reg:5000/lab/app:2", False),
        ("reg:5000/lab/app", "reg:5000/lab/app:latest", True),
    ],
)
def test_image_names_compare_as_references(a, b, same):
    from lab.doctor.keyring import same_image

    assert same_image(a, b) is same


# ---- a namespace at once -------------------------------------------------------------------


def test_examine_namespace_diagnoses_only_the_pods_that_wait_on_a_pull():
    from lab.doctor import examine_namespace

    failing = load("no-credentials")
    running = load("all-pulled")["pod"]
    fake = FakeCore(failing, other_pods=(running,))

    answer = examine_namespace(fake, "lab")
    doc = answer.to_json()

    assert (answer.checked, answer.exit_code) == (2, 1)
    assert doc["schema"] == "pull-lab-doctor-list/1"
    assert [d["pod"]["name"] for d in doc["pods"]] == [failing["pod"]["metadata"]["name"]]
    assert answer.text().startswith("namespace lab: 1 of 2 pod(s) with an image pull problem")


def test_examine_namespace_without_a_pull_problem_exits_0():
    from lab.doctor.output import NamespaceDiagnosis

    answer = NamespaceDiagnosis("lab", 3, [])

    assert answer.exit_code == 0
    assert answer.text() == "namespace lab: no pod with an image pull problem (3 pod(s) checked)"
    assert answer.to_json()["pods"] == []


# ---- where containerd went: mirrors and servers from hosts.toml ---------------------------
MIRROR_401 = (
    'failed to pull and unpack image "docker.io/lab/busybox:1.0": failed to resolve reference '
    '"docker.io/lab/busybox:1.0": pulling from host 172.31.0.252:5000 failed with status code '
    "[manifests 1.0]: 401 Unauthorized"
)
MIRROR_REFUSED = (
    'failed to pull and unpack image "docker.io/lab/busybox:1.0": failed to resolve reference '
    '"docker.io/lab/busybox:1.0": failed to do request: Head '
    '"https://172.31.0.253:5998/v2/lab/busybox/manifests/1.0?ns=docker.io": dial tcp '
    "172.31.0.253:5998: connect: connection refused"
)


@pytest.mark.parametrize(
    ("message", "host"),
    [(MIRROR_401, "172.31.0.252:5000"), (MIRROR_REFUSED, "172.31.0.253:5998"), ("boom", None)],
)
def test_the_host_containerd_talked_to_is_read_from_its_message(message, host):
    assert rules.contacted_host(message) == host


def test_docker_hubs_own_endpoints_are_not_elsewhere():
    hub = 'failed to do request: Head "https://registry-1.docker.io/v2/library/x/manifests/1": EOF'
    pull = ContainerPull("app", "container", "busybox:1", "waiting", "ErrImagePull", hub, "")
    assert rules.elsewhere(pull) is None
    mirrored = replace(pull, message=MIRROR_REFUSED, image="docker.io/lab/busybox:1.0")
    assert rules.elsewhere(mirrored) == "172.31.0.253:5998"
