#!/usr/bin/env bash
# The host egress guard of the project's test beds: no packet from a test cluster leaves the
# machine. kwok's kube-apiserver dials Service and pod IPs (10.0.0.0/16) for webhooks and
# aggregated APIs; kind pods reach Service IPs (10.96.0.0/12) before kube-proxy has synced;
# containers could route out through the uplink; kwok nodes have addresses in
# 198.18.0.0/15 (on lo). All of it is rejected here, locally, but on lo.
# Installed by scripts/setup and clusters/kind/install.sh before any cluster starts;
# idempotent; needs root. Exits non-zero when it cannot install the rules.
set -euo pipefail
if [[ $(id -u) != 0 ]]; then
  echo "hostguard: must run as root to install the egress rules" >&2
  exit 1
fi
if ! command -v iptables >/dev/null 2>&1; then
  echo "hostguard: installing iptables (Debian package)" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables; } >/dev/null 2>&1 \
    || { echo "hostguard: iptables is missing and could not be installed" >&2; exit 1; }
fi
ensure() { iptables -C "$@" 2>/dev/null || iptables -I "$@"; }
for cidr in 10.0.0.0/16 10.96.0.0/12 10.244.0.0/16; do
  ensure OUTPUT -d "$cidr" -j REJECT
  ensure FORWARD -d "$cidr" -j REJECT
done
# kwok nodes' addresses (198.18.0.0/15, on lo while the harness runs as root): local only;
# should the address be missing (a reboot, not root), nothing to them goes out either.
ensure OUTPUT -d 198.18.0.0/15 ! -o lo -j REJECT
ensure FORWARD -d 198.18.0.0/15 -j REJECT
uplinks=$(ip -o route show default 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "dev") print $(i + 1)}' | sort -u)
uplinks6=$(ip -o -6 route show default 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "dev") print $(i + 1)}' | sort -u)
iptables -L DOCKER-USER -n >/dev/null 2>&1 || iptables -N DOCKER-USER
for dev in $uplinks; do
  # Docker jumps to DOCKER-USER first in FORWARD; the FORWARD rule covers a later Docker start.
  ensure DOCKER-USER -o "$dev" -j REJECT
  ensure FORWARD -o "$dev" -j REJECT
done
if command -v ip6tables >/dev/null 2>&1; then
  for dev in $uplinks $uplinks6; do
    ip6tables -C FORWARD -o "$dev" -j REJECT 2>/dev/null || ip6tables -I FORWARD -o "$dev" -j REJECT
  done
fi
echo "hostguard: test-cluster CIDRs rejected on OUTPUT/FORWARD; forwarded traffic to ${uplinks:-no uplink} rejected" >&2
