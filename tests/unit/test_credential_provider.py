"""The files that put the lab's credential provider on a node."""

from __future__ import annotations

import json

import yaml

from lab import credential_provider as cp
from lab.credential_provider import ProviderSetup, answers_json, with_extra_args

KIND_DEFAULTS = "KUBELET_EXTRA_ARGS=--runtime-cgroups=/system.slice/containerd.service\n"


def test_provider_flags_join_kinds_extra_args():
    text = with_extra_args(KIND_DEFAULTS)
    assert text == (
        "KUBELET_EXTRA_ARGS=--runtime-cgroups=/system.slice/containerd.service "
        f"--image-credential-provider-config={cp.CONFIG_PATH} "
        f"--image-credential-provider-bin-dir={cp.BIN_DIR}\n"
    )


def test_provider_flags_are_added_when_the_file_has_no_extra_args():
    assert with_extra_args("") == f"KUBELET_EXTRA_ARGS={' '.join(cp.KUBELET_FLAGS)}\n"
    assert with_extra_args("A=1") == f"A=1\nKUBELET_EXTRA_ARGS={' '.join(cp.KUBELET_FLAGS)}\n"


def test_quoted_extra_args_keep_their_value():
    text = with_extra_args('KUBELET_EXTRA_ARGS="--v=2"\nOTHER=x\n', ("--a=b",))
    assert text == "KUBELET_EXTRA_ARGS=--v=2 --a=b\nOTHER=x\n"


def test_config_names_the_plugin_with_its_patterns_and_cache():
    config = yaml.safe_load(ProviderSetup(("reg.example:5000", "*.lab"), "10m").config_yaml())
    assert config["kind"] == "CredentialProviderConfig"
    assert config["apiVersion"] == "kubelet.config.k8s.io/v1"
    (provider,) = config["providers"]
    assert provider == {
        "name": cp.PROVIDER_NAME,
        "apiVersion": cp.API_VERSION,
        "defaultCacheDuration": "10m",
        "matchImages": ["reg.example:5000", "*.lab"],
    }


def test_answers_hold_credentials_per_host_or_a_failure():
    answers = json.loads(answers_json({"reg:5000": ("u", "p")}))
    assert answers == {"fail": False, "auth": {"reg:5000": {"username": "u", "password": "p"}}}
    assert json.loads(answers_json({}, fail=True)) == {"fail": True, "auth": {}}


def test_the_plugin_reads_its_answers_from_the_file_never_from_arguments():
    assert cp.ANSWERS_PATH in cp.PLUGIN_SCRIPT
    assert '"$1"' not in cp.PLUGIN_SCRIPT and "$@" not in cp.PLUGIN_SCRIPT
