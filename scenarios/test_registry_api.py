"""Tutorial section 1, first step: check the registry holds the image, with curl.

curl -u foo:foo123 --cacert /etc/docker/certs.d/<reg>/ca.crt https://<reg>/v2/_catalog
curl -u foo:foo123 --cacert ... https://<reg>/v2/zhangjun3/nginx/tags/list
"""

from __future__ import annotations

import json

import pytest


@pytest.mark.scenario("registry-catalog")
def test_registry_catalog(lab_scenario, lab_registry):
    """`_catalog` and `tags/list` answer with the CA and basic auth; without auth, 401."""
    reg = lab_registry
    user, _ = reg.credentials
    url = reg.url
    lab_scenario.expect("GET /v2/_catalog with CA + basic auth: 200 and the seeded repository")
    catalog = reg.session(reg.credentials).get(f"{url}/v2/_catalog", timeout=10)
    lab_scenario.note(
        "the tutorial lists them with curl",
        f"the tutorial: curl -u {user}:<password> --cacert ca.crt {url}/v2/_catalog; "
        "the lab sends the same request with requests",
    )
    lab_scenario.http("list the registry's repositories", catalog)
    assert catalog.status_code == 200
    assert json.loads(catalog.text) == {"repositories": ["lab/busybox"]}
    lab_scenario.saw(f"_catalog: {catalog.text.strip()}")

    lab_scenario.expect("GET /v2/lab/busybox/tags/list: the seeded tag")
    tags = reg.session(reg.credentials).get(f"{url}/v2/lab/busybox/tags/list", timeout=10)
    lab_scenario.http("list the repository's tags", tags)
    assert json.loads(tags.text) == {"name": "lab/busybox", "tags": ["1.0"]}
    lab_scenario.saw(f"tags/list: {tags.text.strip()}")

    lab_scenario.expect("without credentials: 401 with a Basic challenge and UNAUTHORIZED")
    anonymous = reg.session().get(f"{url}/v2/_catalog", timeout=10)
    lab_scenario.http("the same without credentials (curl without -u)", anonymous)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == 'Basic realm="lab-registry"'
    assert json.loads(anonymous.text)["errors"][0]["code"] == "UNAUTHORIZED"
    lab_scenario.saw(f"without -u: HTTP {anonymous.status_code} {anonymous.text.strip()}")
