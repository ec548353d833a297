"""The kubelet's own words that scenarios assert in more than one place, and those that changed
between the minors the lab supports.

Scenarios and tests assert these exactly, choosing by the kubelet version the node reports
(lab/pods.py `node_kubelet_version`), never by the version the lab meant to build.
"""

from __future__ import annotations

# 1.35 turned KubeletEnsureSecretPulledImages on: the event says the pod may use the image.
ACCESS_CLAUSE_SINCE = (1, 35)
# 1.35 moved the credential provider's errors to structured logging.
STRUCTURED_PROVIDER_LOG_SINCE = (1, 35)


def image_present(image: str, kubelet: tuple[int, int]) -> str:
    """The `Pulled` event of a container whose image the node already holds."""
    said = f'Container image "{image}" already present on machine'
    return said + (" and can be accessed by the pod" if kubelet >= ACCESS_CLAUSE_SINCE else "")


def provider_failure(plugin: str, repository: str, stderr: str, kubelet: tuple[int, int]) -> str:
    """The kubelet's log line (its core) when a credential provider plugin exits 1."""
    failed = (
        "failed to get credential"
        if kubelet >= STRUCTURED_PROVIDER_LOG_SINCE
        else "Failed getting credential"
    )
    return (
        f"{failed} from external registry credential provider: error execing credential "
        f"provider plugin {plugin} for image {repository}: exit status 1: {stderr}"
    )


# The API server's NodeRestriction admission reworded its refusal in 1.37.
AUDIENCE_REFUSAL_REWORDED_SINCE = (1, 37)


def token_refused(
    namespace: str, account: str, node: str, audience: str, kubelet: tuple[int, int]
) -> str:
    """The kubelet's log line when the API server refuses it a token for the plugin's audience.

    Observed on 1.34.4 and 1.37.2; the 1.35/1.36 form is read from their source (structured
    log since 1.35, the admission plugin's older wording until 1.36). The lab's clusters run
    one version throughout, so the kubelet's version stands for the API server's."""
    user = f"system:node:{node}"
    refusal = (
        f'{user} is not authorized to request tokens for audience "{audience}"'
        if kubelet >= AUDIENCE_REFUSAL_REWORDED_SINCE
        else f'audience "{audience}" not found in pod spec volume, {user} is not authorized to '
        "request tokens for this audience"
    )
    reason = f'failed to fetch token: serviceaccounts "{account}" is forbidden: {refusal}'
    if kubelet >= STRUCTURED_PROVIDER_LOG_SINCE:
        quoted = f"failed to get service account token: {reason}".replace('"', '\\"')
        return f'"Failed to provide credentials for image" err="{quoted}"'
    return f"Error getting service account token {namespace}/{account}: {reason}"


def unknown_ca_failure(image: str, host: str) -> str:
    """A waiting container's message when the node does not trust the registry's CA: containerd
    fails the manifest HEAD, and Go's crypto/tls (since Go 1.20, which containerd 2.x is built
    with) wraps the x509 error."""
    repo, tag = image.removeprefix(f"{host}/").rsplit(":", 1)
    return (
        f'failed to pull and unpack image "{image}": failed to resolve reference "{image}": '
        f'failed to do request: Head "https://{host}/v2/{repo}/manifests/{tag}": '
        "tls: failed to verify certificate: x509: certificate signed by unknown authority"
    )
