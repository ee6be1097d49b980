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
	[gpg]=gpg
	[systemd-analyze]=systemd
	[dnsperf]=dnsperf
	[unbound]=unbound
	[chronyd]=chrony
	[iptables]=iptables
	[nft]=nftables
	[createrepo_c]=createrepo-c
	[tinyproxy]=tinyproxy
	[dnf]=dnf
	[skopeo]=skopeo
	[zstd]=zstd
	[script]=bsdutils
	[ctr]=containerd
	[shellcheck]=shellcheck
	[chromium]=chromium
	# APT (test/e2e/apt_test.go, mirror/apt): the stand-in upstream and apt-get.
	[apt-ftparchive]=apt-utils
	[reprepro]=reprepro
	[dpkg-deb]=dpkg
	[dpkg-scanpackages]=dpkg-dev
	[gpgconf]=gpgconf
	[twine]=twine
	[keepalived]=keepalived
)

# Daemons live in /usr/sbin, which a non-login PATH may lack.
PATH="$PATH:/usr/sbin:/sbin"
# shellcheck source=scripts/apt-missing.sh
source "$(dirname "$0")/apt-missing.sh"
apt_install_missing install-test-deps

# keepalived runs only inside the HA test's namespaces, from the config
# `airgapd ha keepalived` prints: never as this host's service.
if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled keepalived >/dev/null 2>&1; then
	systemctl disable --now keepalived >/dev/null 2>&1 || true
fi

# dnf download needs dnf-plugins-core; it has no command of its own to look for.
if ! dpkg -s dnf-plugins-core >/dev/null 2>&1; then
	if [[ $(id -u) -eq 0 ]]; then
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends dnf-plugins-core >/dev/null
	else
		echo "install-test-deps: dnf-plugins-core missing; run as root" >&2
		exit 1
	fi
fi

# The PyPI tests build wheels and install them with Debian's pip in a venv
# (/usr/bin/python3's modules; a python3 earlier in PATH may lack them).
for pkg in python3-pip python3-venv python3-setuptools python3-wheel; do
	if ! dpkg -s "$pkg" >/dev/null 2>&1; then
		if [[ $(id -u) -ne 0 ]]; then
			echo "install-test-deps: $pkg missing; run as root" >&2
			exit 1
		fi
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null 2>&1 ||
			{ apt-get update -qq && apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null; }
	fi
done

# firewall-offline-cmd checks the shipped firewalld service file. It comes
# from Debian's firewalld package, which is unpacked, not installed:
# installing it would start firewalld and take over this host's firewall.
# Its Python library is installed (it starts nothing).
for pkg in python3-firewall python3-nftables; do
	if ! dpkg -s "$pkg" >/dev/null 2>&1; then
		if [[ $(id -u) -ne 0 ]]; then
			echo "install-test-deps: $pkg missing; run as root" >&2
			exit 1
		fi
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null 2>&1 ||
			{ apt-get update -qq && apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null; }
	fi
done
fwroot=${AIRGAPD_FIREWALLD:-/var/cache/airgapd-test/firewalld}
if [[ ! -x $fwroot/usr/bin/firewall-offline-cmd ]]; then
	echo "install-test-deps: unpack firewalld into $fwroot"
	tmp=$(mktemp -d)
	(cd "$tmp" && { apt-get download firewalld >/dev/null 2>&1 || { apt-get update -qq && apt-get download firewalld >/dev/null; }; })
	mkdir -p "$fwroot"
	dpkg-deb -x "$tmp"/firewalld_*.deb "$fwroot"
	rm -rf "$tmp"
fi

go mod download

# crane, the go-containerregistry CLI, pinned, into GOBIN (default ~/go/bin).
gobin=$(go env GOBIN)
gobin=${gobin:-$(go env GOPATH)/bin}
if [[ ! -x $gobin/crane ]]; then
	echo "install-test-deps: go install crane"
	go install github.com/google/go-containerregistry/cmd/crane@v0.20.6
fi
# regctl (regclient), the client that pushes sha512 images
# (TestRegistrySHA512Regctl): built once into the cache folder.
regctl=/var/cache/airgapd-test/regctl/regctl
if [[ ! -x $regctl ]]; then
	echo "install-test-deps: go install regctl"
	GOBIN=$(dirname "$regctl") go install github.com/regclient/regclient/cmd/regctl@v0.11.7
fi
# nfpm, which `make rpm` (TestRPMContents) packages with: built once into
# the cache folder, since `go run` of it fetches and compiles for minutes.
nfpm=/var/cache/airgapd-test/nfpm/nfpm
if [[ ! -x $nfpm ]]; then
	echo "install-test-deps: go install nfpm"
	GOBIN=$(dirname "$nfpm") go install github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.44.0
fi

# SeaweedFS, an S3-compatible object store, for the registry's storage.s3
# test. Not in Debian, and its module's replace directives make `go install`
# refuse it: download the pinned module, build ./weed in a writable copy.
# The build takes minutes, so the binary is cached and reused.
swroot=${AIRGAPD_SEAWEEDFS:-/var/cache/airgapd-test/seaweedfs}
if [[ ! -x $swroot/weed ]]; then
	echo "install-test-deps: build SeaweedFS into $swroot (minutes)"
	swver=v0.0.0-20261109003541-7506e5f91cd6
	tmp=$(mktemp -d)
	swdir=$(cd "$tmp" && go mod download -json "github.com/seaweedfs/seaweedfs@$swver" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
	cp -r "$swdir" "$tmp/src"
	chmod -R u+w "$tmp/src"
	mkdir -p "$swroot"
	(cd "$tmp/src" && go build -o "$swroot/weed.tmp" ./weed)
	mv "$swroot/weed.tmp" "$swroot/weed"
	rm -rf "$tmp"
fi

# helm, the Helm v3 CLI (a test peer of the chart service), pinned, built
# once into /var/cache/airgapd-test/helm (≈5 min cold) and linked into GOBIN.
# v3.22.0 is served by the module proxy here but not approved: keep v3.21.4.
helmdir=${AIRGAPD_HELM:-/var/cache/airgapd-test/helm}
if [[ ! -x $helmdir/helm ]]; then
	echo "install-test-deps: go install helm v3.21.4 into $helmdir"
	mkdir -p "$helmdir"
	GOBIN=$helmdir go install helm.sh/helm/v3/cmd/helm@v3.21.4
fi
if [[ ! -x $gobin/helm ]]; then
	mkdir -p "$gobin"
	ln -sf "$helmdir/helm" "$gobin/helm"
fi
echo "install-test-deps: ok"
