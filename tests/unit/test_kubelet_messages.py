"""The kubelet's version-dependent words, as the lab observed them on 1.34.4 and 1.37.2."""

from __future__ import annotations

from lab.kubelet_messages import image_present, provider_failure, token_refused


def test_image_present_gained_the_access_clause_in_1_35():
    assert image_present("r/a:1", (1, 34)) == 'Container image "r/a:1" already present on machine'
    assert image_present("r/a:1", (1, 35)) == (
        'Container image "r/a:1" already present on machine and can be accessed by the pod'
    )


def test_provider_failure_is_lowercase_and_structured_since_1_35():
    old = provider_failure("p", "h:5000/r", "boom (h:5000/r)", (1, 34))
    new = provider_failure("p", "h:5000/r", "boom (h:5000/r)", (1, 37))
    assert old.startswith("Failed getting credential from external registry credential provider")
    assert new.startswith("failed to get credential from external registry credential provider")
    assert old.endswith(": error execing credential provider plugin p for image h:5000/r: "
                        "exit status 1: boom (h:5000/r)")  # fmt: skip
    assert new.split(": ", 1)[1] == old.split(": ", 1)[1]


def test_token_refusal_as_logged_on_1_34_and_1_37():
    assert token_refused("ns", "builder", "n1", "aud", (1, 34)) == (
        "Error getting service account token ns/builder: failed to fetch token: serviceaccounts "
        '"builder" is forbidden: audience "aud" not found in pod spec volume, system:node:n1 is '
        "not authorized to request tokens for this audience"
    )
    assert token_refused("ns", "builder", "n1", "aud", (1, 37)) == (
        '"Failed to provide credentials for image" err="failed to get service account token: '
        'failed to fetch token: serviceaccounts \\"builder\\" is forbidden: system:node:n1 is not '
        'authorized to request tokens for audience \\"aud\\""'
    )


def test_the_unknown_ca_message_names_the_manifest_request_and_the_wrapped_x509_error():
    from lab.kubelet_messages import unknown_ca_failure

    image = "10.0.0.7:24414/lab/nginx:1.7.9"
    assert unknown_ca_failure(image, "10.0.0.7:24414") == (
        'failed to pull and unpack image "10.0.0.7:24414/lab/nginx:1.7.9": failed to resolve '
        'reference "10.0.0.7:24414/lab/nginx:1.7.9": failed to do request: Head '
        '"https://10.0.0.7:24414/v2/lab/nginx/manifests/1.7.9": tls: failed to verify '
        "certificate: x509: certificate signed by unknown authority"
    )
