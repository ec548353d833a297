"""Pure logic of host preparation, Debian sources and image assembly (the runc wrapper, a Go
program, is tested built: tests/integration/test_runc_wrapper.py)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import tarfile

import pytest

from lab.errors import LabError
from lab.offline import archive, debian, hostprep, nodeimage
from lab.offline.archive import FileEntry, ImageSpec

# This machine's bounding set: every capability up to 40 but CAP_SYS_RESOURCE (24).
CAPBND_NO_SYS_RESOURCE = "CapBnd:\t000001fffeffffff\n"


def test_missing_capabilities_finds_sys_resource():
    assert hostprep.missing_capabilities(CAPBND_NO_SYS_RESOURCE, 40) == [24]
    assert hostprep.missing_capabilities("CapBnd:\t000001ffffffffff\n", 40) == []


def test_daemon_config_merge_keeps_other_settings():
    merged = hostprep.merged_daemon_config(
        {"log-level": "warn", "runtimes": {"other": {"path": "/x"}}}
    )
    assert merged["log-level"] == "warn"
    assert merged["runtimes"]["other"] == {"path": "/x"}
    assert merged["runtimes"][hostprep.RUNTIME_NAME] == {"path": str(hostprep.WRAPPER_PATH)}
    assert merged["default-runtime"] == hostprep.RUNTIME_NAME


DEB822 = """Types: deb
# a comment
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
"""


def test_debian_mirrors_are_read_from_deb822_sources():
    mirrors = debian.parse_sources({"debian.sources": DEB822}, "bookworm")
    assert mirrors == debian.Mirrors(
        "http://mirror.example/debian", "http://mirror.example/debian-security"
    )


def test_debian_mirrors_are_read_from_one_line_sources():
    text = "deb [arch=amd64] http://m.example/debian bookworm main\n"
    assert (
        debian.parse_sources({"sources.list": text}, "bookworm").main == "http://m.example/debian"
    )


def test_no_mirror_for_the_suite_is_a_clear_error():
    with pytest.raises(LabError, match="no apt source for Debian trixie"):
        debian.parse_sources({"debian.sources": DEB822}, "trixie")


def test_disabled_source_files_are_ignored():
    mirrors = debian.parse_sources(
        {"x.list.disabled-by-farm": "deb http://other/ bookworm main", "debian.sources": DEB822},
        "bookworm",
    )
    assert mirrors.main == "http://mirror.example/debian"


def test_layers_are_deterministic_and_have_parent_dirs(tmp_path):
    entries = [FileEntry("usr/local/bin/tool", data=b"x", mode=0o755)]
    first, second = archive.layer_bytes(entries), archive.layer_bytes(entries)
    assert first == second
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        names = [m.name for m in tar.getmembers()]
        assert names == ["usr", "usr/local", "usr/local/bin", "usr/local/bin/tool"]
        assert tar.getmember("usr/local/bin/tool").mode == 0o755


def test_archive_manifest_config_and_layer_digests_agree():
    spec = ImageSpec(
        refs=("pull-lab.local/t:1",),
        entries=(FileEntry("a", data=b"hi"),),
        cmd=("/a",),
        stop_signal="SIGRTMIN+3",
    )
    buf = io.BytesIO()
    (digest,) = archive.write_archive([spec], buf)
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        assert manifest[0]["RepoTags"] == ["pull-lab.local/t:1"]
        config_bytes = tar.extractfile(manifest[0]["Config"]).read()
        layer = tar.extractfile(manifest[0]["Layers"][0]).read()
    config = json.loads(config_bytes)
    assert digest == "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(layer).hexdigest()]
    assert config["config"]["StopSignal"] == "SIGRTMIN+3"
    assert config["config"]["Cmd"] == ["/a"]


def test_node_containerd_config_is_version_3_with_the_labs_changes():
    import tomllib

    from lab.versions import load_versions

    text = (nodeimage.NODE_FILES / "containerd2-config.toml").read_text()
    config = tomllib.loads(text)
    assert config["version"] == 3
    images = config["plugins"]["io.containerd.cri.v1.images"]
    runtime = config["plugins"]["io.containerd.cri.v1.runtime"]
    assert images["registry"]["config_path"] == "/etc/containerd/certs.d"
    assert images["pinned_images"]["sandbox"] == load_versions().pause_image
    assert runtime["restrict_oom_score_adj"] is True  # no CAP_SYS_RESOURCE on our hosts
    assert runtime["cni"]["bin_dirs"] == ["/opt/cni/bin"]
    # kind's entrypoint rewrites these exact strings: they must keep kind's spelling.
    assert 'snapshotter = "overlayfs"' in text


def test_preload_daemon_runs_without_any_cri_plugin(tmp_path):
    import tomllib

    config = tomllib.loads(nodeimage.preload_config(tmp_path / "root", tmp_path, tmp_path / "s"))
    assert config["version"] == 3
    assert set(config["disabled_plugins"]) == set(nodeimage.PRELOAD_DISABLED_PLUGINS)
    assert config["root"] == str(tmp_path / "root/var/lib/containerd")


def test_cri_base_spec_adds_product_hook_and_drops_rlimits():
    spec = nodeimage.cri_base_spec(
        {"process": {"rlimits": [{"type": "RLIMIT_NOFILE"}]}, "hooks": {}}
    )
    assert spec["hooks"]["createContainer"] == [{"path": "/kind/bin/mount-product-files.sh"}]
    assert "rlimits" not in spec["process"]


def test_enable_and_mask_units_like_systemctl(tmp_path):
    unit = tmp_path / "etc/systemd/system/kubelet.service"
    unit.parent.mkdir(parents=True)
    unit.write_text("[Unit]\n[Install]\nWantedBy=multi-user.target\n")
    nodeimage.enable_unit(tmp_path, "kubelet.service")
    nodeimage.mask_unit(tmp_path, "systemd-binfmt.service")
    link = tmp_path / "etc/systemd/system/multi-user.target.wants/kubelet.service"
    assert link.is_symlink() and str(link.readlink()) == "/etc/systemd/system/kubelet.service"
    assert str((tmp_path / "etc/systemd/system/systemd-binfmt.service").readlink()) == "/dev/null"


def test_start_ticks_reads_field_22_even_with_odd_process_names():
    stat = "12 (a b) c) S 1 " + " ".join(str(i) for i in range(4, 30))
    assert hostprep.start_ticks(stat) == 21


def test_recorded_dockerd_matches_only_the_same_process(tmp_path, monkeypatch):
    me = hostprep.ProcessIdentity(pid=4242, start_ticks=99, boot_id="b", binary="/usr/sbin/dockerd")
    monkeypatch.setattr(hostprep, "running_dockerd", lambda pid_file=None: me)
    record = tmp_path / "dockerd.json"
    assert hostprep.dockerd_started_by_host_prep(record) is None  # nothing recorded
    hostprep.record_dockerd(me, record)
    assert hostprep.dockerd_started_by_host_prep(record) == me
    hostprep.record_dockerd(dataclasses.replace(me, start_ticks=100), record)  # pid reused
    assert hostprep.dockerd_started_by_host_prep(record) is None


def test_a_foreign_dockerd_is_reconfigured_only_with_consent(monkeypatch):
    monkeypatch.setattr(hostprep, "dockerd_started_by_host_prep", lambda: None)
    assert not hostprep.may_reconfigure_dockerd({})
    assert hostprep.may_reconfigure_dockerd({hostprep.RECONFIGURE_OPT_IN: "1"})


KIND_ENTRYPOINT_LINE = (
    "  docker_host_ip=\"$( (head -n1 <(timeout 5 getent ahostsv4 'host.docker.internal') "
    "| cut -d' ' -f1) || true)\"\n"
)


def test_node_entrypoint_asks_only_the_hosts_file_for_the_docker_host(tmp_path):
    entrypoint = tmp_path / "entrypoint"
    entrypoint.write_text("#!/bin/bash\n" + KIND_ENTRYPOINT_LINE + "echo done\n")
    nodeimage.look_up_docker_host_in_hosts_file(entrypoint)
    text = entrypoint.read_text()
    assert "getent -s files ahostsv4 'host.docker.internal'" in text
    assert text.count("getent") == 1
    assert text.endswith("echo done\n")


def test_kind_entrypoint_without_the_lookup_fails_the_build(tmp_path):
    entrypoint = tmp_path / "entrypoint"
    entrypoint.write_text("#!/bin/bash\necho changed upstream\n")
    with pytest.raises(LabError, match=r"node-image.*no longer has exactly one"):
        nodeimage.look_up_docker_host_in_hosts_file(entrypoint)
