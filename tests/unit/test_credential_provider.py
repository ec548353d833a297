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


# ---- the pod's ServiceAccount token (KEP-4412) ----------------------------------------------
def test_token_attributes_join_the_provider_config():
    token = cp.TokenAttributes("pull-lab-registry", required_annotation_keys=("a.example/role",))
    config = yaml.safe_load(ProviderSetup(("reg:5000",), token=token).config_yaml())
    (provider,) = config["providers"]
    assert provider["tokenAttributes"] == {
        "serviceAccountTokenAudience": "pull-lab-registry",
        "requireServiceAccount": True,
        "cacheType": "ServiceAccount",
        "requiredServiceAccountAnnotationKeys": ["a.example/role"],
    }


def test_answers_name_the_allowed_service_accounts_only_when_given():
    answers = json.loads(answers_json({"reg:5000": ("u", "p")}, service_accounts=("ns:builder",)))
    assert answers["serviceAccounts"] == ["ns:builder"]
    assert "serviceAccounts" not in json.loads(answers_json({"reg:5000": ("u", "p")}))


def test_request_log_gives_images_and_token_mode_decisions():
    log = (
        "2026-11-29T23:44:38Z reg:5000/lab/busybox\n"
        "2026-11-29T23:44:39Z reg:5000/lab/busybox serviceaccount=ns:visitor "
        "audience=pull-lab-registry refused\n"
    )
    (plain, _), (image, decision) = cp.parse_request_log(log)
    assert plain == image == "reg:5000/lab/busybox"
    assert decision == cp.ProviderDecision(
        "reg:5000/lab/busybox", "ns:visitor", "pull-lab-registry", "refused"
    )
    assert cp.parse_request_log(log)[0][1] is None


def test_the_plugin_logs_the_service_account_and_decision_never_the_token():
    log_lines = [line for line in cp.PLUGIN_SCRIPT.splitlines() if cp.REQUEST_LOG in line]
    assert log_lines and all("$request" not in line and "$claims" not in line for line in log_lines)
    assert "serviceAccountToken" not in "".join(log_lines)
    assert "set -x" not in cp.PLUGIN_SCRIPT


def test_a_refused_account_gets_no_credentials_and_no_cached_answer():
    assert "auth: {}" in cp.REFUSAL and 'cacheDuration: "0s"' in cp.REFUSAL
    assert cp.REFUSAL in cp.PLUGIN_SCRIPT


def test_the_nodes_may_request_tokens_for_the_audience_in_one_namespace():
    role, binding = cp.audience_rbac("r", "pull-lab-registry", {"run": "x"})
    assert role["kind"] == "Role" and binding["kind"] == "RoleBinding"
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["pull-lab-registry"],
            "verbs": ["request-serviceaccounts-token-audience"],
        }
    ]
    assert binding["subjects"][0]["name"] == "system:nodes"
    assert role["metadata"]["labels"] == binding["metadata"]["labels"] == {"run": "x"}


def test_token_mode_is_skipped_with_the_version_reason_before_1_34():
    assert cp.token_mode_unsupported((1, 34)) is None
    assert cp.token_mode_unsupported((1, 36)) is None
    assert cp.token_mode_unsupported((1, 33)) == (
        "kubelet v1.33: KubeletServiceAccountTokenForCredentialProviders is alpha and off "
        "by default (beta and on since v1.34)"
    )
    assert cp.token_mode_unsupported((1, 32)) == (
        "kubelet v1.32 has no KubeletServiceAccountTokenForCredentialProviders (alpha in "
        "v1.33, beta and on by default since v1.34)"
    )
