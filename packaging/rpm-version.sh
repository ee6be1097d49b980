#!/bin/sh
# Prints the RPM Version for the Makefile's VERSION (git describe --tags
# --always --dirty). RPM versions may not contain '-', and should sort the
# way rpm compares them:
#   v1.2.3             -> 1.2.3
#   v1.2.3-rc.1        -> 1.2.3~rc.1           ('~' sorts before 1.2.3)
#   v1.2.3-4-gabc1234  -> 1.2.3+git4.gabc1234  (after 1.2.3)
#   abc1234 (no tag)   -> 0.0.0~gitabc1234
#   anything else      -> 0.0.0~<it, with other characters as '.'>
#   ...-dirty          -> ....dirty
set -eu
v=${1:?usage: rpm-version.sh VERSION}

dirty=
case $v in *-dirty) v=${v%-dirty} dirty=.dirty ;; esac

# Commits since the tag: ...-N-gHASH
post=
if printf '%s\n' "$v" | grep -Eq -- '-[0-9]+-g[0-9a-f]+$'; then
	post=$(printf '%s\n' "$v" | sed -E 's/^.*-([0-9]+)-g([0-9a-f]+)$/+git\1.g\2/')
	v=$(printf '%s\n' "$v" | sed -E 's/-[0-9]+-g[0-9a-f]+$//')
fi

if printf '%s\n' "$v" | grep -Eq '^v?[0-9]+(\.[0-9]+)*(-|$)'; then
	# A release tag, maybe with a pre-release part after '-'.
	v=$(printf '%s\n' "$v" | sed -E 's/^v//; s/-/~/; s/-/./g; s/[^A-Za-z0-9.~_]/./g')
elif printf '%s\n' "$v" | grep -Eq '^[0-9a-f]{4,40}$'; then
	v=0.0.0~git$v
else
	v=0.0.0~$(printf '%s\n' "$v" | sed -E 's/[^A-Za-z0-9.]/./g')
fi
printf '%s%s%s\n' "$v" "$post" "$dirty"
