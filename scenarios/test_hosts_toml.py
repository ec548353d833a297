"""Beyond the tutorial: containerd's hosts.toml, the form containerd 2.x documents.

The tutorial drops `ca.crt` (and a client pair) into `/etc/docker/certs.d/<host>/`. containerd
reads the same directory, and a `hosts.toml` in it says more: where the CA and the client pair
are, whether to verify the server at all, which hosts serve a name (`server`, mirrors) and what
each may do (`capabilities`). Each scenario writes one and shows what the pull does with it.
"""

from __future__ import annotations

import uuid

import pytest

from lab.expect import view_of
from lab.node import certs_dir
from lab.registry import REGISTRY_PORT
from lab.tutorial import tutorial_image

LAB_FILES = "/etc/pull-lab/registry"  # CA and client pairs outside certs.d, named by hosts.toml


def write_hosts_toml(scenario, node, host: str, text: str) -> None:
    """certs.d/<host>/hosts.toml on the node, shown as it is (it holds no secret)."""
    scenario.file(f"hosts.toml for {host}", f"{certs_dir(host)}/hosts.toml", text)
    node.install_hosts_toml(host, text)


def lab_file(node, name: str, data: bytes, mode: int = 0o644) -> str:
    """A file of the lab's own on the node, outside certs.d; removed when the test ends."""
    node.changes.make_dir("/etc/pull-lab")
    path = f"{LAB_FILES}/{name}"
    node.changes.write(path, data, mode=mode)
    return path


def with_secret(scenario, reg, server: str | None = None) -> tuple[str, ...]:
    user, password = reg.credentials
    scenario.secrets.docker_registry(
        "registry-1", scenario.namespace, server or reg.spec.host, user, password
    )
    return ("registry-1",)


@pytest.mark.scenario("hosts-toml-ca")
def test_hosts_toml_ca(lab_scenario, lab_node, lab_own_registry, lab_pki):
    """The CA lives outside certs.d; hosts.toml names it with `ca`: the pull verifies and works."""
    reg = lab_own_registry()
    host = reg.spec.host
    ca = lab_file(lab_node, "lab-ca.crt", lab_pki.ca_pem)
    write_hosts_toml(
        lab_scenario,
        lab_node,
        host,
        f'server = "https://{host}"\n\n[host."https://{host}"]\n  ca = "{ca}"\n',
    )
    listing = lab_scenario.on_node(lab_node, "no ca.crt in certs.d", f"ls {certs_dir(host)}")
    assert listing.split() == ["hosts.toml"], listing
    image = tutorial_image(reg)
    pull_secrets = with_secret(lab_scenario, reg)
    lab_scenario.create_pod(
        lab_scenario.pod("nginx-registry", image, container="nginx", pull_secrets=pull_secrets)
    )
    lab_scenario.pulled_fresh(lab_scenario.expect_running("nginx-registry"), image)
    lab_scenario.differs(
        "ca.crt copied into /etc/docker/certs.d/<host>/ on every node",
        "hosts.toml may name a CA anywhere on the node (`ca = ...`); containerd reads it "
        "per pull, no restart",
    )


@pytest.mark.scenario("hosts-toml-skip-verify")
def test_hosts_toml_skip_verify(lab_scenario, lab_node, lab_own_registry):
    """`skip_verify = true`: no CA on the node and a certificate that does not even name the host
    it is reached by, and the pull still works. Anyone able to answer for that name could serve
    the node any image: this is why skip_verify is dangerous."""
    alias = f"reg-alias-{uuid.uuid4().hex[:6]}"
    reg = lab_own_registry(aliases=(alias,))
    host = f"{alias}:{REGISTRY_PORT}"
    write_hosts_toml(
        lab_scenario,
        lab_node,
        host,
        f'server = "https://{host}"\n\n[host."https://{host}"]\n  skip_verify = true\n',
    )
    cert = str(reg.workdir / "server.crt")
    sans = lab_scenario.on_host(
        "names in the registry's certificate",
        ["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", cert],
    )
    assert alias not in sans, sans
    image = tutorial_image(reg).replace(reg.spec.host, host)
    pull_secrets = with_secret(lab_scenario, reg, server=host)
    lab_scenario.create_pod(
        lab_scenario.pod("nginx-registry", image, container="nginx", pull_secrets=pull_secrets)
    )
    lab_scenario.pulled_fresh(lab_scenario.expect_running("nginx-registry"), image)
    lab_scenario.saw(f"pulled from {host}: no CA on the node, {alias} not in the certificate")
    lab_scenario.differs(
        "the tutorial trusts the registry through its CA",
        "skip_verify turns off every check of the server's certificate (chain, name, dates): "
        "the pull works where cert-name-mismatch fails, and so would a pull from an impostor",
    )


@pytest.mark.scenario("hosts-toml-client")
def test_hosts_toml_client(lab_scenario, lab_node, lab_own_registry, lab_pki):
    """A registry that verifies client certificates; hosts.toml names the pair with `client`."""
    reg = lab_own_registry(mtls=True)
    host = reg.spec.host
    ca = lab_file(lab_node, "lab-ca.crt", lab_pki.ca_pem)
    cert = lab_file(lab_node, "client.cert", (reg.workdir / "client.cert").read_bytes())
    key = lab_file(lab_node, "client.key", (reg.workdir / "client.key").read_bytes(), 0o600)
    write_hosts_toml(
        lab_scenario,
        lab_node,
        host,
        f'server = "https://{host}"\n\n[host."https://{host}"]\n  ca = "{ca}"\n'
        f'  client = [["{cert}", "{key}"]]\n',
    )
    image = tutorial_image(reg)
    pull_secrets = with_secret(lab_scenario, reg)
    lab_scenario.create_pod(
        lab_scenario.pod("nginx-registry", image, container="nginx", pull_secrets=pull_secrets)
    )
    lab_scenario.pulled_fresh(lab_scenario.expect_running("nginx-registry"), image)
    lab_scenario.differs(
        "client.cert and client.key beside ca.crt in certs.d/<host>/",
        "hosts.toml's `client = [[cert, key]]` names the pair anywhere on the node",
    )


def mirror_toml(mirror, origin_ip: str, ca: str, capabilities: str = '"pull", "resolve"') -> str:
    """docker.io served by the lab registry; the origin stands at a closed port of the lab
    network (offline, and no traffic leaves it if the mirror fails)."""
    return (
        f'server = "https://{origin_ip}:5999"\n\n'
        f'[host."https://{mirror.spec.host}"]\n'
        f"  capabilities = [{capabilities}]\n"
        f'  ca = "{ca}"\n'
    )


@pytest.fixture
def mirror_setup(lab_scenario, lab_node, lab_own_registry, lab_pki, lab_fresh_image):
    """A lab registry mirroring docker.io on the node; returns it and an image named under
    docker.io that only the mirror has."""
    mirror = lab_own_registry()
    ca = lab_file(lab_node, "lab-ca.crt", lab_pki.ca_pem)
    write_hosts_toml(lab_scenario, lab_node, "docker.io", mirror_toml(mirror, mirror.ip, ca))
    image = lab_fresh_image(mirror, repo="lab/busybox").replace(mirror.spec.host, "docker.io")
    return mirror, image


def containerd_tried(scenario, node, tag: str) -> str:
    """containerd's own log of the hosts it tried for this tag, and why each failed: a host
    it moved on from is `trying next host`, the last one `fetch failed` (containerd 2.x)."""
    return scenario.on_node(
        node,
        "containerd's log: the hosts it tried",
        "journalctl -u containerd --no-pager -o cat"
        f" | grep -F -e 'trying next host' -e 'fetch failed' | grep -F {tag}",
        check=False,
    )


@pytest.mark.scenario("mirror-creds-original-host")
def test_mirror_creds_original_host(lab_scenario, mirror_setup):
    """Image docker.io/..., secret keyed to docker.io: the kubelet matches the secret to the
    image's host and containerd hands those credentials to the mirror, which serves the image."""
    mirror, image = mirror_setup
    pull_secrets = with_secret(lab_scenario, mirror, server="https://index.docker.io/v1/")
    lab_scenario.create_pod(lab_scenario.pod("app", image, pull_secrets=pull_secrets))
    lab_scenario.pulled_fresh(lab_scenario.expect_running("app"), image)
    lab_scenario.saw(f"{image} pulled: only the mirror {mirror.spec.host} holds it")
    lab_scenario.differs(
        "one registry per image name, its secret keyed to that registry",
        "a mirror serves an image under another registry's name; the secret is keyed to the "
        "name in the image reference (docker.io), and containerd sends it to the mirror",
    )


@pytest.mark.scenario("mirror-creds-mirror-host")
def test_mirror_creds_mirror_host(lab_scenario, lab_node, mirror_setup):
    """Secret keyed to the mirror's own host: the kubelet matches secrets against the image's
    host (docker.io) only, so the mirror is asked without credentials (401), then the origin."""
    mirror, image = mirror_setup
    pull_secrets = with_secret(lab_scenario, mirror)
    lab_scenario.create_pod(lab_scenario.pod("app", image, pull_secrets=pull_secrets))
    pod = lab_scenario.expect_pull_failure("app", "unauthorized", diagnosis="secret-other-host")
    tag = image.rsplit(":", 1)[1]
    # containerd 2.x keeps the mirror's answer (no credentials for it), and names no host.
    assert view_of(pod).message == (
        f'failed to pull and unpack image "{image}": failed to resolve reference "{image}": '
        "pull access denied, repository does not exist or may require authorization: "
        "authorization failed: no basic auth credentials"
    ), view_of(pod).message
    tried = containerd_tried(lab_scenario, lab_node, tag)
    assert f"{mirror.ip}:5999: connect: connection refused" in tried, tried
    lab_scenario.saw(
        "the mirror answered 401 and containerd had no credentials for it; the origin was tried "
        "next; the status names neither host"
    )
    lab_scenario.differs(
        "a secret keyed to the registry that serves the image",
        "with a mirror the secret must be keyed to the name in the image reference (docker.io): "
        "the kubelet matches that name, never the mirror's",
    )


@pytest.mark.scenario("mirror-down")
def test_mirror_down(lab_scenario, lab_node, lab_own_registry, lab_pki, lab_fresh_image):
    """The mirror does not answer and the origin cannot be reached (offline): the pull fails,
    and the message names the last host tried."""
    mirror = lab_own_registry()
    ca = lab_file(lab_node, "lab-ca.crt", lab_pki.ca_pem)
    toml = (
        f'server = "https://{mirror.ip}:5999"\n\n[host."https://{mirror.ip}:5998"]\n'
        f'  capabilities = ["pull", "resolve"]\n  ca = "{ca}"\n'
    )
    tried = pull_through_closed_mirror(lab_scenario, lab_node, mirror, lab_fresh_image, toml)
    assert "trying next host" in tried, tried
    lab_scenario.saw("the status names the mirror, the first host tried; containerd went on")
    lab_scenario.differs(
        "one registry; when it is down, the error names it",
        "with a mirror and an origin, containerd tries each in turn and the status keeps the "
        "FIRST error (the mirror's), not the origin's",
    )


@pytest.mark.scenario("mirror-down-no-fallback")
def test_mirror_down_no_fallback(lab_scenario, lab_node, lab_own_registry, lab_fresh_image):
    """hosts.toml's `server` is the mirror itself and no other host is listed: containerd has
    nowhere else to go. Nothing listens there: the pull fails naming only that host, and
    containerd's log shows one host tried (no `trying next host`)."""
    mirror = lab_own_registry()
    toml = f'server = "https://{mirror.ip}:5998"\n'
    tried = pull_through_closed_mirror(lab_scenario, lab_node, mirror, lab_fresh_image, toml)
    assert "trying next host" not in tried, tried
    lab_scenario.saw("one host tried, the server itself; the status names it")
    lab_scenario.differs(
        "one registry; when it is down, the error names it",
        "a hosts.toml whose server is the mirror replaces the registry outright: no fallback, "
        "so a mirror outage is an outage (mirror-down shows the fallback variant)",
    )


def pull_through_closed_mirror(scenario, node, mirror, fresh_image, toml: str) -> str:
    """docker.io/<repo>:<fresh tag> pulled with ``toml`` as docker.io's hosts.toml, whose first
    host is the mirror's closed port 5998: the status names it, and so does containerd's log
    (returned, for what else it says)."""
    write_hosts_toml(scenario, node, "docker.io", toml)
    image = fresh_image(mirror, repo="lab/busybox").replace(mirror.spec.host, "docker.io")
    scenario.create_pod(scenario.pod("app", image))
    pod = scenario.expect_pull_failure("app", "connection-refused", diagnosis="mirror-unreachable")
    tag = image.rsplit(":", 1)[1]
    assert view_of(pod).message == refused(image, f"{mirror.ip}:5998", tag), view_of(pod).message
    tried = containerd_tried(scenario, node, tag)
    assert f'host="{mirror.ip}:5998"' in tried, tried
    return tried


def refused(image: str, host: str, tag: str) -> str:
    """The status message of a pull whose first host refused the connection.

    containerd 2.x redacts the query of the URL in its errors: the mirror request's
    `?ns=docker.io` reads `?ns=%5BREDACTED%5D` ("[REDACTED]", URL-encoded)."""
    return (
        f'failed to pull and unpack image "{image}": failed to resolve reference "{image}": '
        f'failed to do request: Head "https://{host}/v2/lab/busybox/manifests/{tag}'
        f'?ns=%5BREDACTED%5D": dial tcp {host}: connect: connection refused'
    )


@pytest.mark.scenario("mirror-pull-only")
def test_mirror_pull_only(lab_scenario, lab_node, lab_own_registry, lab_pki, lab_fresh_image):
    """A mirror with capabilities ["pull"] only: tags are resolved at the origin, so a mirror
    that holds the image cannot serve it while the origin is unreachable."""
    mirror = lab_own_registry()
    ca = lab_file(lab_node, "lab-ca.crt", lab_pki.ca_pem)
    write_hosts_toml(
        lab_scenario, lab_node, "docker.io", mirror_toml(mirror, mirror.ip, ca, '"pull"')
    )
    image = lab_fresh_image(mirror, repo="lab/busybox").replace(mirror.spec.host, "docker.io")
    lab_scenario.create_pod(lab_scenario.pod("app", image))
    pod = lab_scenario.expect_pull_failure(
        "app", "connection-refused", diagnosis="mirror-unreachable"
    )
    tag = image.rsplit(":", 1)[1]
    assert view_of(pod).message == refused(image, f"{mirror.ip}:5999", tag), view_of(pod).message
    tried = containerd_tried(lab_scenario, lab_node, tag)
    assert mirror.spec.host not in tried, tried
    lab_scenario.saw("the tag was resolved only at the origin; the mirror was never asked")
    lab_scenario.differs(
        "no mirrors",
        'a host with capabilities ["pull"] serves blobs only; resolving a tag needs "resolve", '
        "so a pull-only mirror cannot help when the origin is unreachable",
    )
