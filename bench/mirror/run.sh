#!/usr/bin/env bash
# bench/mirror/run.sh — airgapd mirror sync against plain parallel downloads
# of the same files, in the same run, from the same loopback upstream (not
# part of `make test`). Run from the repository root:
#   bash bench/mirror/run.sh [PACKAGES] [SIZE_BYTES] [PARALLEL] [ROUNDS]
#   AIRGAPD_OLD=/path/to/an/older/airgapd bash bench/mirror/run.sh ...
# Defaults: 200 packages of 1.5 MB (about 300 MB), 4 at once, 5 rounds. The
# upstream is a Go file server on 127.0.0.1 over a createrepo_c repo of
# rpmpack RPMs. Needs createrepo_c, curl and bc.
#
# Each round runs the five, from an empty destination each, in an order
# that rotates from round to round:
#   curl        curl --parallel --parallel-max PARALLEL, every file of the repo
#               (packages and repodata) written to disk, no checks
#   go          mirrorbench fetch: the same in Go (net/http, io.Copy)
#   go-512k     the same through a 512 KiB buffer (airgapd's copy size): a
#               plain download with airgapd's fewer system calls
#   go+sha256   go, hashing each file with SHA-256 as it arrives (no
#               comparison): the least a download that verifies must do
#   airgapd     airgapd mirror sync --quiet on an empty data_dir with
#               parallel: PARALLEL (no server running, so the command does the
#               work itself): start, repomd.xml, metadata verified, packages
#               verified, the snapshot of hard links, the publish
#   airgapd-old with AIRGAPD_OLD set: the same with that binary (a before
#               and after in one run)
# It prints each run's wall time, the CPU time (user+sys) of the client
# process and of the upstream (from /proc, in 10 ms ticks), then the best
# and median wall time of each, the throughput ratios airgapd/baseline for
# both, and the time of a second sync with nothing new. Client, upstream
# and airgapd share the machine's cores.
set -euo pipefail
N=${1:-200}
SIZE=${2:-1500000}
P=${3:-4}
ROUNDS=${4:-5}
W=$(mktemp -d /tmp/airgapd-bench-mirror.XXXXXX)
chmod 700 "$W"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT

go build -o "$W/airgapd" ./cmd/airgapd
go build -o "$W/mirrorbench" ./bench/mirror
"$W/mirrorbench" gen "$W/up" "$N" "$SIZE"
createrepo_c --quiet "$W/up"
TOTAL=$(find "$W/up" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
"$W/mirrorbench" serve "$W/up" "$W/port" & PIDS+=($!)
UPSTREAM=$!
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
sed "s|$W/data|$W/data-old|" "$W/airgapd.yaml" > "$W/airgapd-old.yaml"
# curl's list: every file of the repo, each to its own output name.
(cd "$W/up" && find . -type f -printf '%P\n' | sort) | while read -r rel; do
  printf 'url = "%s/%s"\noutput = "%s/curl/%s"\n' "$URL" "$rel" "$W" "$rel"
done > "$W/curl.cfg"

# client NAME: one download of the whole repo.
client() {
  case $1 in
    curl) curl -sS --fail --parallel --parallel-max "$P" --create-dirs -K "$W/curl.cfg" ;;
    go) "$W/mirrorbench" fetch "$URL" "$W/up" "$W/plain" "$P" ;;
    go-512k) "$W/mirrorbench" fetch "$URL" "$W/up" "$W/plain" "$P" buf=524288 ;;
    go+sha256) "$W/mirrorbench" fetch "$URL" "$W/up" "$W/plain" "$P" sha256 ;;
    airgapd) "$W/airgapd" mirror sync --quiet --config "$W/airgapd.yaml" bench >/dev/null ;;
    airgapd-old) "$AIRGAPD_OLD" mirror sync --quiet --config "$W/airgapd-old.yaml" bench >/dev/null ;;
  esac
}
# upstream_ticks: the upstream's user+sys CPU time so far, in clock ticks.
upstream_ticks() { awk '{print $14 + $15}' "/proc/$UPSTREAM/stat"; }
# run NAME: one timed run from an empty destination, checked to hold every
# byte of the repo; sets RUN_WALL, RUN_CPU (user+sys of the client) and
# RUN_UP (the upstream's).
run() {
  local out=$W/plain
  case $1 in curl) out=$W/curl ;; airgapd) out=$W/data ;; airgapd-old) out=$W/data-old ;; esac
  rm -rf "$out"; sync
  local TIMEFORMAT='%R %U %S' up0
  up0=$(upstream_ticks)
  if ! { time client "$1" 2>"$W/stderr"; } 2>"$W/time"; then cat "$W/stderr" >&2; exit 1; fi
  RUN_UP=$(echo "($(upstream_ticks) - $up0) / $(getconf CLK_TCK)" | bc -l)
  case $1 in airgapd*) out=$out/mirror/repos/bench/current/ ;; esac
  local got; got=$(find "$out" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
  [ "$got" = "$TOTAL" ] || { echo "$1 wrote $got bytes, the repo has $TOTAL" >&2; exit 1; }
  read -r RUN_WALL RUN_CPU < <(awk '{printf "%s %.3f\n", $1, $2 + $3}' "$W/time")
}

NAMES=(curl go go-512k go+sha256 airgapd)
[ -n "${AIRGAPD_OLD:-}" ] && NAMES+=(airgapd-old)
K=${#NAMES[@]}
echo "upstream: $N packages, $((TOTAL / 1000000)) MB, parallel $P, $(nproc) cores, $ROUNDS rounds"
declare -A WALL CPU UP
mbs() { echo "$TOTAL/$1/1000000" | bc -l; }
for round in $(seq "$ROUNDS"); do
  line="round $round:"
  for i in $(seq 0 $((K - 1))); do
    name=${NAMES[$(((i + round) % K))]}
    run "$name"
    WALL[$name]+="$RUN_WALL "; CPU[$name]+="$RUN_CPU "; UP[$name]+="$RUN_UP "
    line+=$(printf "  %s %.2fs %.0f MB/s (cpu %.2fs, upstream %.2fs)" "$name" "$RUN_WALL" "$(mbs "$RUN_WALL")" "$RUN_CPU" "$RUN_UP")
  done
  echo "$line"
done
best() { printf '%s\n' $1 | sort -n | head -1; }
median() { printf '%s\n' $1 | sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
printf "%-11s %7s %6s %9s %11s %13s %17s %19s\n" "" "best s" "MB/s" "median s" "median cpu" "upstream cpu" "airgapd/it, best" "airgapd/it, median"
ba=$(best "${WALL[airgapd]}"); ma=$(median "${WALL[airgapd]}")
for name in "${NAMES[@]}"; do
  b=$(best "${WALL[$name]}"); m=$(median "${WALL[$name]}"); c=$(median "${CPU[$name]}"); u=$(median "${UP[$name]}")
  printf "%-11s %7.3f %6.0f %9.3f %11.3f %13.2f %16.2fx %18.2fx\n" "$name" "$b" "$(mbs "$b")" "$m" "$c" "$u" "$(echo "$b/$ba" | bc -l)" "$(echo "$m/$ma" | bc -l)"
done
# The resume path: a second sync with everything present.
TIMEFORMAT='%R'
t=$( { time "$W/airgapd" mirror sync --quiet --config "$W/airgapd.yaml" bench >/dev/null; } 2>&1 )
printf "airgapd re-sync with nothing new: %.3fs\n" "$t"
