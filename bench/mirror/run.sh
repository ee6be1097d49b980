#!/usr/bin/env bash
# bench/mirror/run.sh — airgapd mirror sync against a plain parallel download
# of the same files, in the same run, from the same loopback upstream (not
# part of `make test`). Run from the repository root:
#   bash bench/mirror/run.sh [PACKAGES] [SIZE_BYTES] [PARALLEL]
# Defaults: 200 packages of 1.5 MB (about 300 MB), 4 at once. The upstream
# is a Go file server on 127.0.0.1 over a createrepo_c repo of rpmpack RPMs.
# Two rounds, alternating which goes first; outputs are deleted (and the
# page cache of the outputs dropped by deleting them) between runs.
set -euo pipefail
N=${1:-200}
SIZE=${2:-1500000}
P=${3:-4}
W=$(mktemp -d /tmp/airgapd-bench-mirror.XXXXXX)
chmod 700 "$W"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT

go build -o "$W/airgapd" ./cmd/airgapd
go build -o "$W/mirrorbench" ./bench/mirror
"$W/mirrorbench" gen "$W/up" "$N" "$SIZE"
createrepo_c --quiet "$W/up"
TOTAL=$(du -sb "$W/up" | cut -f1)
"$W/mirrorbench" serve "$W/up" "$W/port" & PIDS+=($!)
for _ in $(seq 100); do [ -s "$W/port" ] && break; sleep 0.1; done
[ -s "$W/port" ] || { echo "upstream did not start" >&2; exit 1; }
URL="http://127.0.0.1:$(cat "$W/port")"

cat > "$W/airgapd.yaml" <<X
data_dir: $W/data
runtime_dir: $W/run
mirror:
  listen: 127.0.0.1:0
  parallel: $P
  repos: [{ name: bench, baseurl: "$URL/" }]
X

now() { date +%s.%N; }
plain() { # $1: "" or sha256
  rm -rf "$W/plain"; sync
  local t0; t0=$(now)
  "$W/mirrorbench" fetch "$URL" "$W/up" "$W/plain" "$P" ${1:-}
  echo "$(now) - $t0" | bc
}
airgapd() {
  rm -rf "$W/data"; sync
  local t0; t0=$(now)
  "$W/airgapd" mirror sync --quiet --config "$W/airgapd.yaml" bench >/dev/null
  echo "$(now) - $t0" | bc
}

echo "upstream: $N packages, $((TOTAL / 1000000)) MB, parallel $P, $(nproc) cores"
mbs() { echo "$TOTAL/$1/1000000" | bc -l; }
declare -a TP TH TA
for round in 1 2 3; do
  if [ $((round % 2)) = 1 ]; then a=$(airgapd); p=$(plain); h=$(plain sha256); else h=$(plain sha256); p=$(plain); a=$(airgapd); fi
  TP+=("$p"); TH+=("$h"); TA+=("$a")
  printf "round %d: plain %.2fs (%.0f MB/s)  plain+sha256 %.2fs (%.0f MB/s)  airgapd %.2fs (%.0f MB/s)\n" "$round" "$p" "$(mbs "$p")" "$h" "$(mbs "$h")" "$a" "$(mbs "$a")"
done
best() { printf '%s\n' "$@" | sort -n | head -1; }
bp=$(best "${TP[@]}"); bh=$(best "${TH[@]}"); ba=$(best "${TA[@]}")
printf "best: plain %.2fs, plain+sha256 %.2fs, airgapd %.2fs\n" "$bp" "$bh" "$ba"
printf "ratio airgapd/plain %.2fx, airgapd/plain+sha256 %.2fx (throughput)\n" "$(echo "$bp/$ba" | bc -l)" "$(echo "$bh/$ba" | bc -l)"
# The resume path: a second sync with everything present.
t0=$(now); "$W/airgapd" mirror sync --quiet --config "$W/airgapd.yaml" bench >/dev/null; t1=$(now)
printf "airgapd re-sync with nothing new: %.3fs\n" "$(echo "$t1 - $t0" | bc)"
