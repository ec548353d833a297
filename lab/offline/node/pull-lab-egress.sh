#!/bin/sh
# Keep what a lab node sends on its own docker network.
#
# Docker's resolver forwards every name it does not know (a scenario's `.invalid` host,
# docker.io behind a mirror that is down) to the host's upstream servers, from inside the node,
# and the lab's network does not masquerade: the query left the host and no answer came back.
# Here anything leaving eth0 for an address outside eth0's own subnets is refused in the node,
# so it never reaches the host. Loopback stays open: the node's DNS queries are rewritten to
# docker's resolver at 127.0.0.11 while the packet still counts as going out of eth0.
set -eu

CHAIN=PULL-LAB-EGRESS

keep_on_network() {
    tables=$1 family=$2 loopback=$3 refusal=$4
    "$tables" -N "$CHAIN" 2>/dev/null || "$tables" -F "$CHAIN"
    "$tables" -A "$CHAIN" -d "$loopback" -j RETURN
    # `ip -o`: "2: eth0    inet 172.31.0.2/24 brd ...", the address with its prefix fourth.
    ip -o "$family" addr show dev eth0 scope global | while read -r _ _ _ subnet _; do
        "$tables" -A "$CHAIN" -d "$subnet" -j RETURN
    done
    if [ "$family" = -6 ]; then
        "$tables" -A "$CHAIN" -d fe80::/10 -j RETURN  # neighbour discovery on the link
    fi
    "$tables" -A "$CHAIN" -j REJECT --reject-with "$refusal"
    for hook in OUTPUT FORWARD; do
        "$tables" -C "$hook" -o eth0 -j "$CHAIN" 2>/dev/null \
            || "$tables" -I "$hook" 1 -o eth0 -j "$CHAIN"
    done
}

keep_on_network iptables -4 127.0.0.0/8 icmp-admin-prohibited
if ip6tables -L -n >/dev/null 2>&1; then
    keep_on_network ip6tables -6 ::1/128 icmp6-adm-prohibited
fi
