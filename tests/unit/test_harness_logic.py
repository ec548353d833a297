"""Pure logic of the harness: secret content, node files, masking, messages, settings."""

from __future__ import annotations

import base64
import ipaddress
import json

import bcrypt
import pytest
import yaml
from cryptography import x509

from lab import push
from lab.cluster import ClusterSpec, kind_config, pick_subnet
from lab.dockerconfig import auth_entry, dockercfg, dockerconfigjson
from lab.errors import LabError
from lab.masking import MASK, Masker
from lab.pki import LabPKI, certs_d_files, hosts_toml, write_private
from lab.pods import pod_manifest
from lab.push import PreparedImage, _blob, gzip_deterministic
from lab.registry import free_address, htpasswd, network_address
from lab.registry_config import registry_config
from lab.secrets import secret_manifest
from lab.settings import Settings, settings_from_env
from lab.sharing import SharedUse
from lab.signatures import classify

# Messages seen from containerd 1.6 on the lab's kind node (crictl pull / kubelet events).
X509 = (
    'failed to pull and unpack image "reg:5000/lab/busybox:1.0": failed to resolve reference '
    '"reg:5000/lab/busybox:1.0": failed to do request: Head '
    '"https://reg:5000/v2/lab/busybox/manifests/1.0": x509: certificate signed by unknown authority'
)
UNAUTHORIZED_16 = (
    'failed to pull and unpack image "reg:5000/lab/busybox:1.0": failed to resolve reference '
    '"reg:5000/lab/busybox:1.0": pulling from host reg:5000 failed with status code '
    "[manifests 1.0]: 401 Unauthorized"
)


def test_auth_entry_is_base64_of_user_colon_password():
    entry = auth_entry("foo", "foo123", "foo@example.com")
    assert base64.b64decode(entry["auth"]) == b"foo:foo123"
    assert entry["email"] == "foo@example.com"


def test_dockerconfigjson_wraps_hosts_in_auths_and_dockercfg_does_not():
    assert list(json.loads(dockerconfigjson("reg:5000", "u", "p"))) == ["auths"]
    assert list(json.loads(dockercfg("reg:5000", "u", "p"))) == ["reg:5000"]


def test_secret_manifest_holds_base64_of_the_content():
    m = secret_manifest(
        "s", "ns", "kubernetes.io/dockerconfigjson", ".dockerconfigjson", b'{"auths":{}}'
    )
    assert m["type"] == "kubernetes.io/dockerconfigjson"
    assert base64.b64decode(m["data"][".dockerconfigjson"]) == b'{"auths":{}}'


def test_masker_hides_password_auth_value_and_fields():
    masker = Masker()
    masker.add_password("foo123", "foo")
    auth = base64.b64encode(b"foo:foo123").decode()
    text = (
        f'--docker-password=foo123 {{"auth": "{auth}", "password": "x"}} '
        f"curl -u foo:foo123 https://r {auth}"
    )
    masked = masker.mask(text)
    assert "foo123" not in masked and auth not in masked
    assert '"password": "******"' in masked
    assert masked.count(MASK) >= 4


def test_masker_hides_private_keys():
    # A fake key, built here so no key-shaped block sits in the repository.
    label = "EC " + "PRIVATE KEY"
    key = f"-----BEGIN {label}-----\nMHcCAQEE\n-----END {label}-----"
    assert "MHcCAQEE" not in Masker().mask(f"before {key} after")


def test_server_certificate_covers_names_and_ips(tmp_path):
    pki = LabPKI.create()
    leaf = pki.server_cert("reg", "172.31.0.253", "localhost", "127.0.0.1")
    LabPKI.write_pair(leaf, tmp_path / "s.crt", tmp_path / "s.key")
    cert = x509.load_pem_x509_certificate((tmp_path / "s.crt").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["reg", "localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == [
        "172.31.0.253",
        "127.0.0.1",
    ]
    assert (tmp_path / "s.key").stat().st_mode & 0o777 == 0o600


def test_write_private_is_0600_even_over_an_existing_file(tmp_path):
    path = tmp_path / "k"
    path.write_text("old")
    path.chmod(0o644)
    write_private(path, b"new")
    assert path.stat().st_mode & 0o777 == 0o600 and path.read_bytes() == b"new"


def test_certs_d_files_use_dockers_names():
    pki = LabPKI.create()
    files = certs_d_files(pki.ca_pem, pki.client_cert())
    assert sorted(files) == ["ca.crt", "client.cert", "client.key"]
    assert files["client.key"].startswith(b"-----BEGIN")


def test_hosts_toml_puts_ca_and_client_at_top_level_with_a_host_table():
    text = hosts_toml("reg:5000", "/etc/c/ca.crt", ("/etc/c/client.cert", "/etc/c/client.key"))
    assert text.splitlines()[:3] == [
        'server = "https://reg:5000"',
        'ca = "/etc/c/ca.crt"',
        'client = [["/etc/c/client.cert", "/etc/c/client.key"]]',
    ]
    assert "[host]" in text


def test_htpasswd_is_bcrypt_and_verifies():
    line = htpasswd({"foo": "foo123"}, rounds=4).decode().strip()
    user, hashed = line.split(":", 1)
    assert user == "foo" and hashed.startswith("$2b$04$")
    assert bcrypt.checkpw(b"foo123", hashed.encode())


def test_registry_config_asks_for_client_certs_only_with_mtls():
    assert "clientcas" not in registry_config(mtls=False)
    assert "clientcas:\n      - /lab/ca.crt" in registry_config(mtls=True)
    assert "tls:" not in registry_config(tls=False) and "htpasswd" not in registry_config(tls=False)


def test_registry_addresses_count_down_from_the_top_of_the_subnet():
    assert network_address("172.31.0.0/24", 0) == "172.31.0.253"
    assert free_address("172.31.0.0/24", {"172.31.0.253"}, None) == "172.31.0.252"


def test_subnet_picking_avoids_routes_and_networks_in_use():
    used = [ipaddress.ip_network("172.31.0.0/24"), ipaddress.ip_network("172.31.1.0/24")]
    assert pick_subnet(used) == "172.31.2.0/24"
    with pytest.raises(LabError):
        pick_subnet([ipaddress.ip_network("172.31.0.0/16")])


def test_kind_config_turns_off_what_pulls_do_not_need(tmp_path):
    spec = ClusterSpec("c", "img", tmp_path, tmp_path, tmp_path, "net", "r", default_cni=False)
    cfg = kind_config(spec)
    assert cfg["networking"] == {"kubeProxyMode": "none", "disableDefaultCNI": True}
    assert "addon/coredns" in cfg["kubeadmConfigPatches"][0]
    assert "preflight" in cfg["kubeadmConfigPatches"][0]
    kubelet = yaml.safe_load(cfg["kubeadmConfigPatches"][1])
    assert kubelet == {
        "kind": "KubeletConfiguration",
        "failCgroupV1": False,
        "syncFrequency": "10s",
    }


def test_pod_manifest_from_template():
    pod = pod_manifest(
        "nginx-registry", "reg:5000/app:1", run_id="r1", pull_secrets=("registry-1",)
    )
    container = pod["spec"]["containers"][0]
    assert container["image"] == "reg:5000/app:1" and container["imagePullPolicy"] == "IfNotPresent"
    assert pod["spec"]["imagePullSecrets"] == [{"name": "registry-1"}]


@pytest.mark.parametrize(
    ("message", "name"),
    [
        (X509, "unknown-ca"),
        ("(combined from similar events): Failed to pull image: " + X509, "unknown-ca"),
        (UNAUTHORIZED_16, "unauthorized"),
        ("...: authorization failed: no basic auth credentials", "unauthorized"),
        ("x509: certificate is valid for reg, localhost, not other", "name-mismatch"),
        ("remote error: tls: certificate required", "client-cert-required"),
        (
            'rpc error: code = NotFound desc = ...: "reg:5000/lab/busybox:9.9": not found',
            "not-found",
        ),
        ("dial tcp 172.31.0.9:5000: connect: connection refused", "connection-refused"),
    ],
)
def test_known_messages_are_classified(message, name):
    sig = classify(message)
    assert sig is not None and sig.name == name


def test_push_manifest_lists_config_and_compressed_layers():
    layer = _blob(gzip_deterministic(b"tar"), "application/vnd.docker.image.rootfs.diff.tar.gzip")
    image = PreparedImage(_blob(b"{}", "application/vnd.docker.container.image.v1+json"), (layer,))
    doc = json.loads(image.manifest())
    assert doc["schemaVersion"] == 2
    assert doc["layers"][0]["digest"] == layer.digest and doc["layers"][0]["size"] == len(
        layer.data
    )
    assert gzip_deterministic(b"tar") == layer.data


def test_an_image_is_saved_and_compressed_once_per_id_and_again_when_rebuilt(monkeypatch):
    """Every scenario pushes the workload under a fresh tag: one `docker save` per process,
    unless the tag now names another image (a rebuild)."""
    ids = {"lab/busybox:1.0": "sha256:aaa"}
    saved: list[str] = []

    def save(ref: str) -> bytes:
        saved.append(ids[ref])
        return ids[ref].encode()

    def prepare(archive: bytes) -> PreparedImage:
        return PreparedImage(_blob(archive, push.CONFIG_V1), ())

    monkeypatch.setattr(push, "_prepared", {})
    monkeypatch.setattr(push, "docker_image_id", ids.__getitem__)
    monkeypatch.setattr(push, "docker_save", save)
    monkeypatch.setattr(push, "prepare_from_archive", prepare)

    first = push.prepared("lab/busybox:1.0")
    assert push.prepared("lab/busybox:1.0") is first
    ids["lab/busybox:1.0"] = "sha256:bbb"
    rebuilt = push.prepared("lab/busybox:1.0")

    assert saved == ["sha256:aaa", "sha256:bbb"]
    assert rebuilt.config.data == b"sha256:bbb"


def test_settings_reject_bad_names_and_sources():
    with pytest.raises(LabError, match="invalid cluster name"):
        Settings(cluster_name="Bad_Name")
    with pytest.raises(LabError, match="unknown image source"):
        Settings(images="docker-hub")


def test_settings_from_env(tmp_path):
    s = settings_from_env(
        {
            "PULL_LAB_IMAGES": "upstream",
            "PULL_LAB_CLUSTER_NAME": "x1",
            "PULL_LAB_KEEP_CLUSTER": "1",
            "PULL_LAB_CACHE_DIR": str(tmp_path),
        }
    )
    assert (s.images, s.cluster_name, s.keep_cluster, s.cache_dir) == (
        "upstream",
        "x1",
        True,
        tmp_path,
    )
    assert s.state_dir == tmp_path / "clusters" / "x1"


def test_masker_leaves_prose_about_auth_alone():
    text = "GET /v2/_catalog with CA + basic auth: 200 and the repository"
    assert Masker().mask(text) == text
    assert Masker().mask("  auth: c2VjcmV0") == "  auth: ******"


def test_masking_keeps_json_valid():
    doc = {
        "command": "kubectl create secret --docker-password=not-the-password",
        "n": "curl -u foo:bar x",
    }
    masked = Masker().mask(json.dumps(doc, indent=2))
    assert json.loads(masked) == {
        "command": "kubectl create secret --docker-password=******",
        "n": "curl -u foo:****** x",
    }


@pytest.mark.parametrize(
    ("image", "host"),
    [
        ("reg:5000/lab/nginx:1.7.9", "reg:5000"),
        ("registry.example.com/app:1", "registry.example.com"),
        ("busybox:1.36", "docker.io"),
        ("library/busybox", "docker.io"),
        ("localhost/app:1", "localhost"),
    ],
)
def test_doctor_reads_the_registry_host_of_an_image(image, host):
    from lab.doctor import image_host

    assert image_host(image) == host


@pytest.mark.parametrize(
    ("key", "host"),
    [
        ("https://index.docker.io/v1/", "index.docker.io"),
        ("reg:5000", "reg:5000"),
        ("http://reg/v2/", "reg"),
    ],
)
def test_doctor_reads_credential_keys_like_the_kubelet(key, host):
    from lab.doctor import key_host

    assert key_host(key) == host


def _use(tmp_path, me: str) -> SharedUse:
    return SharedUse(tmp_path / ".cluster-x.lock", tmp_path / ".cluster-x.users", me)


def test_the_last_user_out_of_a_shared_cluster_is_told_so(tmp_path):
    gw0, gw1 = _use(tmp_path, "gw0"), _use(tmp_path, "gw1")
    for use in (gw0, gw1):
        with use.locked():
            use.join()
    assert gw0.users() == {"gw0", "gw1"}

    with gw0.locked():
        first_out_is_last = gw0.leave()
    with gw1.locked():
        second_out_is_last = gw1.leave()

    assert (first_out_is_last, second_out_is_last) == (False, True)
    assert not gw1.users_path.exists()


def test_leaving_without_having_joined_is_last_when_nobody_uses_it(tmp_path):
    use = _use(tmp_path, "main")  # a cluster that existed before: never joined
    with use.locked():
        assert use.leave() is True
    use.forget()
    assert list(tmp_path.iterdir()) == []


def test_kind_config_speeds_the_control_planes_start_for_both_kubeadm_apis(tmp_path):
    spec = ClusterSpec("c", "img", tmp_path, tmp_path, tmp_path, "net", "r", default_cni=False)
    patches = [yaml.safe_load(p) for p in kind_config(spec)["kubeadmConfigPatches"]]
    by_api = {p.get("apiVersion"): p for p in patches if p["kind"] == "ClusterConfiguration"}
    manager = {
        "kube-api-qps": "200",
        "kube-api-burst": "400",
        "leader-elect-retry-period": "500ms",
    }
    old, new = by_api["kubeadm.k8s.io/v1beta3"], by_api["kubeadm.k8s.io/v1beta4"]
    assert old["controllerManager"]["extraArgs"] == manager
    assert old["scheduler"]["extraArgs"] == {"leader-elect-retry-period": "500ms"}

    def listed(args: list[dict[str, str]]) -> dict[str, str]:
        return {a["name"]: a["value"] for a in args}

    assert listed(new["controllerManager"]["extraArgs"]) == {
        "enable-hostpath-provisioner": "true",
        **manager,
    }
    assert listed(new["scheduler"]["extraArgs"]) == {"leader-elect-retry-period": "500ms"}
