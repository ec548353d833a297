"""A lab node's traffic stays on the lab's docker network (the node image's pull-lab-egress
unit, lab/offline/node/pull-lab-egress.sh).

Docker's resolver forwards a name it does not know to the host's upstream servers from inside
the node; the lab's network does not masquerade, so before this unit such a query (a scenario's
`.invalid` host, docker.io behind a mirror that is down) left the host, unanswered. The node's
own counter of refused packets shows each attempt stopped in the node, before the host.
"""

from __future__ import annotations

import uuid

import pytest

from lab.cluster import LabCluster
from lab.registry import REGISTRY_PORT

pytestmark = pytest.mark.e2e

CHAIN = "PULL-LAB-EGRESS"
# TEST-NET-3 (RFC 5737): an address outside every network, never anyone's.
OUTSIDE = "203.0.113.7"


@pytest.fixture
def node(lab_cluster) -> LabCluster:
    if not isinstance(lab_cluster, LabCluster):
        pytest.skip("the egress unit is in the lab's node image: this cluster is not the lab's")
    return lab_cluster


def refused(node: LabCluster) -> int:
    table = node.node_exec("iptables", "-L", CHAIN, "-v", "-n", "-x")
    return sum(int(line.split()[0]) for line in table.splitlines() if " REJECT " in line)


def exit_status(node: LabCluster, script: str) -> int:
    out = node.node_exec("sh", "-c", f"{script} >/dev/null 2>&1; echo $?", check=False)
    return int(out.strip().splitlines()[-1])


def test_a_name_dockers_resolver_does_not_know_is_stopped_in_the_node(node):
    before = refused(node)
    host = f"no-such-registry-{uuid.uuid4().hex[:6]}.invalid"
    # One try of one second: the resolver never answers a name it could not forward.
    status = exit_status(node, f"RES_OPTIONS='timeout:1 attempts:1' getent hosts {host}")
    assert status == 2  # getent: not found
    assert refused(node) > before, "docker's resolver forwarded the query and nothing stopped it"


def test_an_address_outside_the_network_is_refused_at_once(node):
    before = refused(node)
    status = exit_status(node, f"curl -sS --max-time 20 https://{OUTSIDE}/")
    assert status == 7  # curl: could not connect (refused in the node, not timed out: 28)
    assert refused(node) > before


def test_the_lab_registry_is_still_reached_by_name(node, lab_secret_registry):
    name = lab_secret_registry.spec.name
    assert node.node_exec("getent", "hosts", name).split()[0] == lab_secret_registry.ip
    assert exit_status(node, f"curl -sS --max-time 20 -k https://{name}:{REGISTRY_PORT}/v2/") == 0
