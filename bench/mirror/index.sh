#!/usr/bin/env bash
# bench/mirror/index.sh — airgapd mirror index against createrepo_c on the
# same folder, in the same run (not part of `make test`). From the repository
# root:
#   bash bench/mirror/index.sh [PACKAGES] [SIZE_BYTES] [ADD]
# Defaults: 1000 noarch RPMs of 100 kB (rpmpack, mirrorbench gen), then ADD=10
# more for the incremental re-index. Three rounds; each round indexes from
# nothing with createrepo_c (default workers), createrepo_c --workers 2 and
# airgapd (offline: no server, the command does the work), then adds ADD
# packages and re-indexes with `createrepo_c --update` and `airgapd mirror
# index`, then removes them again. createrepo_c writes into its own
# --outputdir, airgapd into its data_dir: the RPM folder is shared and
# stays warm in the page cache for both.
set -euo pipefail
N=${1:-1000}
SIZE=${2:-100000}
ADD=${3:-10}
W=$(mktemp -d /tmp/airgapd-bench-index.XXXXXX)
chmod 700 "$W"
trap 'rm -rf "$W"' EXIT

go build -o "$W/airgapd" ./cmd/airgapd
go build -o "$W/mirrorbench" ./bench/mirror
"$W/mirrorbench" gen "$W/rpms" "$N" "$SIZE"
cat > "$W/airgapd.yaml" <<X
data_dir: $W/data
runtime_dir: $W/run
mirror:
  listen: 127.0.0.1:0
  index_every: 0
  repos: [{ name: bench, path: "$W/rpms" }]
X

now() { date +%s.%N; }
timed() { local t0; t0=$(now); "$@" >"$W/last.out"; echo "$(now) - $t0" | bc; }
cr() { rm -rf "$W/cr"; mkdir -p "$W/cr"; timed createrepo_c --quiet "$@" --outputdir "$W/cr" "$W/rpms"; }
ag() { rm -rf "$W/data"; timed "$W/airgapd" mirror index --quiet --config "$W/airgapd.yaml" bench; }

echo "folder: $N packages of $SIZE bytes, $(du -sm "$W/rpms" | cut -f1) MB; add $ADD; $(nproc) cores; $(createrepo_c --version | head -1)"
cat "$W/rpms"/Packages/* >/dev/null # warm the page cache for everyone
declare -a TC TW TA UC UA
for round in 1 2 3; do
  if [ $((round % 2)) = 1 ]; then c=$(cr); w=$(cr --workers 2); a=$(ag); else a=$(ag); w=$(cr --workers 2); c=$(cr); fi
  # $W/cr now holds a default createrepo_c index (or the --workers 2 one:
  # the same metadata), $W/data airgapd's; add ADD packages to both.
  "$W/mirrorbench" gen "$W/rpms" "$ADD" "$SIZE" "$N"
  uc=$(timed createrepo_c --quiet --update --outputdir "$W/cr" "$W/rpms")
  ua=$(timed "$W/airgapd" mirror index --quiet --config "$W/airgapd.yaml" bench)
  got=$(cat "$W/last.out")
  for i in $(seq "$N" $((N + ADD - 1))); do rm -f "$W/rpms/Packages/bench$(printf %04d "$i")-1.0-1.noarch.rpm"; done
  TC+=("$c"); TW+=("$w"); TA+=("$a"); UC+=("$uc"); UA+=("$ua")
  printf "round %d: full: createrepo_c %.3fs, createrepo_c --workers 2 %.3fs, airgapd %.3fs; +%d: createrepo_c --update %.3fs, airgapd %.3fs\n" \
    "$round" "$c" "$w" "$a" "$ADD" "$uc" "$ua"
done
echo "airgapd after the incremental run: $got"
best() { printf '%s\n' "$@" | sort -n | head -1; }
bc_=$(best "${TC[@]}"); bw=$(best "${TW[@]}"); ba=$(best "${TA[@]}"); buc=$(best "${UC[@]}"); bua=$(best "${UA[@]}")
printf "best: full: createrepo_c %.3fs, --workers 2 %.3fs, airgapd %.3fs; +%d: createrepo_c --update %.3fs, airgapd %.3fs\n" "$bc_" "$bw" "$ba" "$ADD" "$buc" "$bua"
printf "speed-up airgapd vs createrepo_c: full %.2fx (default), %.2fx (--workers 2); incremental %.2fx\n" \
  "$(echo "$bc_/$ba" | bc -l)" "$(echo "$bw/$ba" | bc -l)" "$(echo "$buc/$bua" | bc -l)"
