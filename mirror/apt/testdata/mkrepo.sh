#!/bin/bash
# A stand-in APT upstream for the tests, made with the real tools:
#   mkrepo.sh key                         make a signing key in $GNUPGHOME, export it to $GNUPGHOME/key.gpg
#   mkrepo.sh deb DIR NAME VERSION [DEP]  build DIR/NAME_VERSION_amd64.deb with dpkg-deb (Depends: DEP;
#                                         SIZE=N in the environment adds N random bytes)
#   mkrepo.sh index REPO SUITE            index REPO/pool with apt-ftparchive into REPO/dists/SUITE,
#                                         signed with $GNUPGHOME's key (InRelease, Release.gpg)
set -euo pipefail
cmd=$1; shift
case $cmd in
key)
	gpg --batch --passphrase '' --quick-gen-key 'airgapd test <test@example.invalid>' ed25519 sign never 2>/dev/null
	gpg --batch --export >"$GNUPGHOME/key.gpg"
	;;
deb)
	dir=$1 name=$2 version=$3 dep=${4:-}
	work=$(mktemp -d)
	mkdir -p "$work/DEBIAN" "$work/usr/share/$name"
	echo "$name $version" >"$work/usr/share/$name/VERSION"
	# SIZE=N adds N random bytes, for a package big enough to stall half-way.
	[ -n "${SIZE:-}" ] && head -c "$SIZE" /dev/urandom >"$work/usr/share/$name/blob"
	{
		echo "Package: $name"
		echo "Version: $version"
		echo "Architecture: amd64"
		echo "Maintainer: airgapd test <test@example.invalid>"
		echo "Section: misc"
		echo "Priority: optional"
		[ -n "$dep" ] && echo "Depends: $dep"
		echo "Description: test package $name"
		echo " Built by airgapd's tests."
	} >"$work/DEBIAN/control"
	mkdir -p "$dir"
	dpkg-deb --root-owner-group -Zgzip -b "$work" "$dir/${name}_${version}_amd64.deb" >/dev/null
	rm -rf "$work"
	;;
index)
	repo=$1 suite=$2
	cd "$repo"
	mkdir -p "dists/$suite/main/binary-amd64"
	apt-ftparchive packages pool >"dists/$suite/main/binary-amd64/Packages"
	gzip -9nkf "dists/$suite/main/binary-amd64/Packages"
	apt-ftparchive -o APT::FTPArchive::Release::Suite="$suite" -o APT::FTPArchive::Release::Codename="$suite" \
		-o APT::FTPArchive::Release::Architectures=amd64 -o APT::FTPArchive::Release::Components=main \
		-o APT::FTPArchive::Release::Acquire-By-Hash=yes \
		release "dists/$suite" >"dists/$suite/Release.new"
	mv "dists/$suite/Release.new" "dists/$suite/Release"
	for f in Packages Packages.gz; do
		h=$(sha256sum "dists/$suite/main/binary-amd64/$f" | cut -d' ' -f1)
		mkdir -p "dists/$suite/main/binary-amd64/by-hash/SHA256"
		cp "dists/$suite/main/binary-amd64/$f" "dists/$suite/main/binary-amd64/by-hash/SHA256/$h"
	done
	rm -f "dists/$suite/InRelease" "dists/$suite/Release.gpg"
	gpg --batch --yes --clearsign -o "dists/$suite/InRelease" "dists/$suite/Release"
	gpg --batch --yes -abs -o "dists/$suite/Release.gpg" "dists/$suite/Release"
	;;
*)
	echo "unknown command $cmd" >&2
	exit 2
	;;
esac
