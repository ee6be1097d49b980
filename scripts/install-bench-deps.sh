#!/usr/bin/env bash
# Installs the extra peers the benchmarks in bench/ compare against, beyond
# what scripts/install-test-deps.sh installs for `make test` (named, unbound,
# dnsperf, chronyd come from there). Bench only: `make test` never needs
# these, so they stay out of install-test-deps. Idempotent; needs root for
# apt-get. The packages' own services are stopped and disabled right after
# installing: the benchmarks start their own instances by PID.
set -euo pipefail
PATH="$PATH:/usr/sbin:/sbin"

# command → Debian package providing it.
declare -A want=(
	# bench/dns: PowerDNS Recursor and Knot Resolver as caching forwarders.
	[pdns_recursor]=pdns-recursor
	[kresd]=knot-resolver
	# bench/dns/miss.sh and rss.sh read the servers' memory with ps.
	[ps]=procps
)
# shellcheck source=scripts/apt-missing.sh
source "$(dirname "$0")/apt-missing.sh"
apt_install_missing install-bench-deps

# The packages ship services that listen on port 53; this host is not a
# resolver, so none of them may run or start at boot.
if command -v systemctl >/dev/null 2>&1; then
	for unit in pdns-recursor kresd@1 kres-cache-gc; do
		if systemctl is-enabled "$unit" >/dev/null 2>&1 || systemctl is-active "$unit" >/dev/null 2>&1; then
			systemctl disable --now "$unit" >/dev/null 2>&1 || true
		fi
	done
fi
echo "install-bench-deps: ok"
