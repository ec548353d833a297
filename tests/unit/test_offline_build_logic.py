"""Pure logic of the offline build: keys, cache atomicity, pipeline resume, error lines."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from lab.errors import LabError, StepFailed
from lab.offline import commands, gobuild
from lab.offline.cache import BuildCache, cache_key
from lab.offline.pipeline import Pipeline, Step
from lab.versions import load_versions, parse_versions


def test_versions_file_defaults_to_the_newest_minor_and_derives_staging_version(monkeypatch):
    monkeypatch.delenv("PULL_LAB_KUBERNETES", raising=False)
    v = load_versions()
    newest = v.supported[-1]
    assert v.default_minor == newest == "1.37"
    assert v.kubernetes == dict(v.kubernetes_minors)[newest]
    assert v.staging_version == "v0.37." + v.kubernetes.rsplit(".", 1)[1]
    assert v.kubernetes_minor == (1, 37)
    assert "kubelet" in v.kubernetes_binaries and "kube-proxy" not in v.kubernetes_binaries


@pytest.mark.parametrize(
    ("wanted", "patch"),
    [("1.34", "v1.34.4"), ("v1.35", "v1.35.4"), ("1.36.3", "v1.36.3"), ("v1.37.2", "v1.37.2")],
)
def test_a_minor_or_its_pinned_patch_resolves_to_the_patch(wanted, patch):
    assert load_versions(kubernetes=wanted).kubernetes == patch


@pytest.mark.parametrize(
    ("wanted", "says"),
    [
        ("1.33", "unsupported Kubernetes version '1.33' (use one of: 1.34, 1.35, 1.36, 1.37)"),
        ("latest", "unsupported Kubernetes version 'latest'"),
        ("1.37.1", "Kubernetes 1.37.1 is not the pinned patch of 1.37 (v1.37.2)"),
    ],
)
def test_an_unsupported_version_is_one_line_naming_the_supported_ones(wanted, says):
    with pytest.raises(LabError) as err:
        load_versions(kubernetes=wanted)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_the_environment_picks_the_version_and_an_argument_wins(monkeypatch):
    monkeypatch.setenv("PULL_LAB_KUBERNETES", "1.35")
    assert load_versions().kubernetes == "v1.35.4"
    assert load_versions(kubernetes="1.36").kubernetes == "v1.36.3"


def test_a_version_list_resolves_oldest_first_once_each():
    from lab.versions import parse_kubernetes_list

    v = load_versions(kubernetes="1.37")
    assert parse_kubernetes_list("1.37, v1.34.4,1.37", v) == ["v1.34.4", "v1.37.2"]
    assert parse_kubernetes_list("all", v) == ["v1.34.4", "v1.35.4", "v1.36.3", "v1.37.2"]
    with pytest.raises(LabError):
        parse_kubernetes_list(" , ", v)


def test_the_runtime_is_shared_by_every_version_and_named_in_the_node_tag(tmp_path):
    from lab.offline.build import Builder

    def builder(minor: str) -> Builder:
        b = Builder(BuildCache(tmp_path), load_versions(kubernetes=minor), io.StringIO())
        b._go = "go1.26.8"  # the key's Go version, without running go
        return b

    old, new = builder("1.34"), builder("1.37")
    for key in ("key_containerd", "key_runc", "key_cni", "key_crictl", "key_kind", "key_rootfs"):
        assert getattr(old, key)() == getattr(new, key)(), key
    assert old.key_kubernetes(("kubelet",)) != new.key_kubernetes(("kubelet",))
    assert old.node_ref == "pull-lab.local/kind-node:v1.34.4-containerd2.3.4"
    assert new.node_ref == "pull-lab.local/kind-node:v1.37.2-containerd2.3.4"


def test_runtime_binaries_are_built_as_their_makefiles_build_them():
    containerd = gobuild.containerd_commands("v2.3.4")
    assert [c.output for c in containerd] == [
        "bin/containerd",
        "bin/ctr",
        "bin/containerd-shim-runc-v2",
    ]
    assert all("version.Version=v2.3.4" in c.ldflags for c in containerd)
    assert containerd[2].tags.endswith("no_grpc")
    (runc,) = gobuild.runc_commands()
    assert "seccomp" in runc.tags.split()
    cni = gobuild.cni_commands("v1.9.1", ("main/ptp", "ipam/host-local"))
    assert [c.output for c in cni] == ["cni/ptp", "cni/host-local"]


def test_cache_key_changes_with_any_input():
    assert cache_key("v1.34.4", "go1.26") == cache_key("v1.34.4", "go1.26")
    assert cache_key("v1.34.4", "go1.26") != cache_key("v1.34.3", "go1.26")
    assert len(cache_key("x")) == 16


def test_interrupted_build_leaves_no_entry_a_later_run_trusts(tmp_path):
    cache = BuildCache(tmp_path)

    def half_then_fail(out: Path) -> None:
        (out / "kubeadm").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.build("go-kubernetes", "k1", half_then_fail)

    assert not cache.has("go-kubernetes", "k1")
    assert list((tmp_path / "go-kubernetes").iterdir()) == []


def test_successful_build_appears_whole_and_is_not_rebuilt(tmp_path):
    cache = BuildCache(tmp_path)
    calls = []

    def produce(out: Path) -> None:
        calls.append(out)
        (out / "bin").mkdir()

    first = cache.build("go-kind", "k", produce)
    second = cache.build("go-kind", "k", produce)

    assert first == second == tmp_path / "go-kind" / "k"
    assert (first / "bin").is_dir()
    assert len(calls) == 1


def test_sweep_removes_temp_dirs_of_dead_builds(tmp_path):
    stale = tmp_path / "debian-rootfs" / ".tmp-abc-999999999"
    stale.mkdir(parents=True)
    removed = BuildCache(tmp_path).sweep_partial()
    assert removed == [stale]
    assert not stale.exists()


def _step(name: str, done: bool, log: list[str], fail: bool = False) -> Step:
    def run() -> None:
        log.append(name)
        if fail:
            raise StepFailed(name, "boom")

    return Step(name, done=lambda: done, run=run)


def test_pipeline_skips_done_steps_and_reports_progress_and_timing():
    ran: list[str] = []
    out = io.StringIO()
    results = Pipeline("build", [_step("a", True, ran), _step("b", False, ran)], out).run()

    assert ran == ["b"]
    assert [(r.name, r.status) for r in results] == [("a", "cached"), ("b", "built")]
    text = out.getvalue()
    assert "[build 1/2] a: cached" in text
    assert "[build 2/2] b: done in" in text


def test_pipeline_stops_at_failed_step_naming_it():
    ran: list[str] = []
    steps = [_step("a", False, ran, fail=True), _step("b", False, ran)]
    with pytest.raises(StepFailed, match="step 'a' failed: boom"):
        Pipeline("build", steps, io.StringIO()).run()
    assert ran == ["a"]


def test_pipeline_turns_disk_errors_into_one_line_step_failure():
    def full() -> None:
        raise OSError(28, "No space left on device", "/cache/x")

    with pytest.raises(
        StepFailed, match=r"step 'rootfs' failed: No space left on device: /cache/x"
    ):
        Pipeline("build", [Step("rootfs", lambda: False, full)], io.StringIO()).run()


def test_failed_command_reports_its_last_meaningful_line(tmp_path):
    log = tmp_path / "x.log"
    with pytest.raises(StepFailed) as err:
        commands.run(
            "go-kind",
            ["sh", "-c", "echo progress; echo 'go: module not found' >&2; exit 1"],
            log=log,
        )
    assert str(err.value).startswith("step 'go-kind' failed: go: module not found")
    assert str(log) in str(err.value)
    assert "progress" in log.read_text()


def test_missing_tool_is_named_with_a_hint():
    with pytest.raises(StepFailed, match="no-such-tool-xyz is not installed"):
        commands.run("s", ["no-such-tool-xyz"])


@pytest.mark.parametrize(
    ("output", "line"),
    [
        ("a\nb\nexit status 1\n", "b"),
        ("\n\n", "no output"),
        ("only\n", "only"),
    ],
)
def test_last_meaningful_line_skips_noise(output, line):
    assert commands.last_meaningful_line(output) == line


def test_staging_modules_are_read_from_kubernetes_go_mod():
    go_mod = """module k8s.io/kubernetes
replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tgithub.com/x/y => github.com/x/y v1.0.0
)"""
    assert gobuild.staging_modules(go_mod) == ["k8s.io/api", "k8s.io/client-go"]


def test_wrapper_module_pins_each_staging_module_to_its_release():
    v = load_versions()
    text = gobuild.kubernetes_wrapper_go_mod(v, ["k8s.io/api", "k8s.io/kubelet"])
    assert f"require k8s.io/kubernetes {v.kubernetes}" in text
    assert f"\tk8s.io/api => k8s.io/api {v.staging_version}" in text
    assert f"\tk8s.io/kubelet => k8s.io/kubelet {v.staging_version}" in text


def test_version_ldflags_stamp_what_kubeadm_reads():
    flags = gobuild.version_ldflags("v1.34.4")
    assert "-X k8s.io/component-base/version.gitVersion=v1.34.4" in flags
    assert "-X k8s.io/component-base/version.gitMinor=34" in flags
    assert "-X k8s.io/client-go/pkg/version.gitMajor=1" in flags


@pytest.mark.parametrize(("tag", "module"), [("3.6.5-0", "v3.6.5"), ("3.5.21", "v3.5.21")])
def test_etcd_module_version_from_kubeadm_tag(tag, module):
    assert gobuild.etcd_module_version(tag) == module


def test_etcd_tag_that_is_not_a_version_is_rejected():
    with pytest.raises(ValueError):
        gobuild.etcd_module_version("latest")


def test_versions_parse_rejects_a_missing_section():
    with pytest.raises(KeyError):
        parse_versions({"kind": {"version": "v0.33.0"}})


def test_lab_error_carries_hint():
    err = LabError("Docker is not running", "run `pull-lab host-prep`")
    assert str(err) == "Docker is not running (run `pull-lab host-prep`)"


def test_indented_last_line_is_joined_to_the_line_it_continues():
    out = "go: kind@v0.0.9: reading .../v0.0.9.info: 403 Forbidden\n\tserver response: n/a.\n"
    assert commands.last_meaningful_line(out) == (
        "go: kind@v0.0.9: reading .../v0.0.9.info: 403 Forbidden server response: n/a."
    )


def test_offline_steps_never_pull_and_upstream_steps_pull_only_pinned_images(tmp_path):
    from lab.offline.build import Builder

    builder = Builder(BuildCache(tmp_path), load_versions(), io.StringIO())
    offline = [s.name for s in builder.offline_steps()]
    upstream = [s.name for s in builder.upstream_steps()]
    assert not any("pull" in name for name in offline)
    assert "node-image" in offline and "debian-rootfs" in offline
    v = load_versions()
    assert upstream == [
        "go-kind",
        "go-kubernetes",
        f"pull {v.upstream_node_image}",
        f"pull {v.upstream_registry_image}",
        f"pull {v.upstream_workload_image}",
    ]
    assert "@sha256:" in v.upstream_node_image, "the official node image is pinned by digest"


def test_upstream_node_image_is_pinned_per_minor_or_refused_in_one_line():
    assert load_versions(kubernetes="1.37").upstream_node_image.startswith("kindest/node:v1.37.")
    assert load_versions(kubernetes="1.34").upstream_node_image.startswith("kindest/node:v1.34.")
    with pytest.raises(LabError) as err:
        load_versions(kubernetes="1.35").upstream_node_image  # noqa: B018 - the property raises
    assert "no pinned kindest/node image for Kubernetes 1.35" in str(err.value)
