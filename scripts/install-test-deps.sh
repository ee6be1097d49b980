#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian 12 machine that has
# only Go, gcc and git: the real peers airgapd is tested against (see
# ../shared/PEERS.md) and the Go modules. Idempotent: installs only what is
# missing. Needs root for apt-get.
set -euo pipefail

# command → Debian package providing it.
declare -A want=(
	[curl]=curl
	[ip]=iproute2
	[named]=bind9
	[dig]=dnsutils
	[rpm]=rpm
	[systemd-analyze]=systemd
	[dnsperf]=dnsperf
	[unbound]=unbound
	[chronyd]=chrony
	[iptables]=iptables
	[nft]=nftables
)

# Daemons live in /usr/sbin, which a non-login PATH may lack.
PATH="$PATH:/usr/sbin:/sbin"
missing=()
for cmd in "${!want[@]}"; do
	command -v "$cmd" >/dev/null 2>&1 || missing+=("${want[$cmd]}")
done

if ((${#missing[@]})); then
	if [[ $(id -u) -ne 0 ]]; then
		echo "install-test-deps: missing ${missing[*]}; run as root (apt-get) or install them yourself" >&2
		exit 1
	fi
	echo "install-test-deps: apt-get install ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

go mod download
echo "install-test-deps: ok"
