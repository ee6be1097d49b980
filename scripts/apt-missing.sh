# shellcheck shell=bash disable=SC2154
# scripts/apt-missing.sh, sourced by the install-*-deps scripts:
# apt_install_missing WHO installs, with apt-get, the Debian package of
# every command in the associative array `want` (command → package) that
# is not on PATH. WHO names the caller in its messages. Needs root only
# when something is missing.
apt_install_missing() {
	local who=$1 cmd
	local missing=()
	for cmd in "${!want[@]}"; do
		command -v "$cmd" >/dev/null 2>&1 || missing+=("${want[$cmd]}")
	done
	((${#missing[@]})) || return 0
	if [[ $(id -u) -ne 0 ]]; then
		echo "$who: missing ${missing[*]}; run as root (apt-get) or install them yourself" >&2
		exit 1
	fi
	echo "$who: apt-get install ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
