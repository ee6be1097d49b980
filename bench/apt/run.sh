#!/usr/bin/env bash
# bench/apt/run.sh — airgapd's APT mirror sync against apt-mirror (Debian
# package apt-mirror) on the same stand-in upstream, in the same run (not
# part of `make test`). From the repository root, as root (it installs
# apt-mirror with apt-get):
#   bash bench/apt/run.sh [SMALL] [SMALL_BYTES] [LARGE] [LARGE_BYTES] [PARALLEL] [ROUNDS]
# Defaults: 200 .debs with 20 KiB of random content, 5 with 5 MiB, parallel
# 4, 3 rounds. The upstream is built here with dpkg-deb and apt-ftparchive
# (mirror/apt/testdata/mkrepo.sh), signed with a throwaway gpg key, and
# served by bench/mirror's Go file server (mirrorbench serve) on 127.0.0.1,
# pinned to CPU 1. Each round syncs, from an empty destination, with
#   airgapd     airgapd apt sync --quiet (offline: no server runs, the
#               command does the work): InRelease verified, Packages checked,
#               every .deb checked by SHA256, the snapshot, the publish;
#   apt-mirror  apt-mirror with nthreads PARALLEL (one wget per thread),
#               limit_rate raised from its 100m default so it is not capped,
#               no postmirror script; it checks no signature and no hash;
# both pinned to CPU 0, the order alternating. It prints every run, the
# median seconds and the ratio apt-mirror / airgapd (above 1: airgapd faster).
set -euo pipefail
SMALL=${1:-200}
SMALL_BYTES=${2:-20480}
LARGE=${3:-5}
LARGE_BYTES=${4:-5242880}
P=${5:-4}
ROUNDS=${6:-3}
T=600 # seconds any one step may take
command -v apt-mirror >/dev/null || timeout $T apt-get install -y apt-mirror >/dev/null
W=$(mktemp -d /tmp/airgapd-bench-apt.XXXXXX)
G=$(mktemp -d /tmp/agpg.XXXXXX) # short: gpg-agent's socket path is limited
chmod 700 "$W" "$G"
export GNUPGHOME=$G
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  gpgconf --homedir "$G" --kill all 2>/dev/null || true
  rm -rf "$W" "$G"
}
trap cleanup EXIT

MK=./mirror/apt/testdata/mkrepo.sh
timeout $T go build -o "$W/airgapd" ./cmd/airgapd
timeout $T go build -o "$W/mirrorbench" ./bench/mirror
timeout $T "$MK" key
for i in $(seq -w 1 "$SMALL"); do SIZE=$SMALL_BYTES timeout $T "$MK" deb "$W/up/pool/main" "small$i" 1.0; done
for i in $(seq -w 1 "$LARGE"); do SIZE=$LARGE_BYTES timeout $T "$MK" deb "$W/up/pool/main" "large$i" 1.0; done
timeout $T "$MK" index "$W/up" jammy
DEBS=$((SMALL + LARGE))
DEBBYTES=$(find "$W/up/pool" -name '*.deb' -printf '%s\n' | awk '{s += $1} END {print s}')

taskset -c 1 timeout 3600 "$W/mirrorbench" serve "$W/up" "$W/port" & PIDS+=($!)
for _ in $(seq 100); do [ -s "$W/port" ] && break; sleep 0.1; done
[ -s "$W/port" ] || { echo "upstream did not start" >&2; exit 1; }
PORT=$(cat "$W/port")
URL="http://127.0.0.1:$PORT"

cat > "$W/airgapd.yaml" <<X
data_dir: $W/data
runtime_dir: $W/run
advertise: { addresses: [127.0.0.1] }
mirror: { listen: 127.0.0.1:0, repos: [] }
apt:
  parallel: $P
  repos:
    - { name: bench, url: "$URL/", suites: [jammy], components: [main], architectures: [amd64], keyring: "$G/key.gpg" }
X
cat > "$W/mirror.list" <<X
set base_path $W/am
set nthreads $P
set _tilde 0
set defaultarch amd64
set limit_rate 100000m
set run_postmirror 0
deb-amd64 $URL jammy main
X

# run NAME: one timed sync from an empty destination, checked to hold every
# .deb; sets RUN_WALL.
run() {
  local out got t0
  case $1 in airgapd) out=$W/data ;; apt-mirror) out=$W/am ;; esac
  rm -rf "$out"; sync
  [ "$1" = apt-mirror ] && mkdir -p "$out/var"
  t0=$(date +%s.%N)
  case $1 in
    airgapd) taskset -c 0 timeout $T "$W/airgapd" apt sync --quiet --config "$W/airgapd.yaml" bench >"$W/out" 2>&1 ;;
    apt-mirror) taskset -c 0 timeout $T apt-mirror "$W/mirror.list" >"$W/out" 2>&1 ;;
  esac || { cat "$W/out" >&2; exit 1; }
  RUN_WALL=$(echo "$(date +%s.%N) - $t0" | bc)
  got=$(find -L "$out" -name '*.deb' -type f -printf '%P\n' | grep -c "pool/main/" || true)
  [ "$1" = airgapd ] && got=$(find -L "$out" -path '*current*' -name '*.deb' -type f | wc -l)
  [ "$got" = "$DEBS" ] || { echo "$1 holds $got .debs, the upstream $DEBS" >&2; cat "$W/out" >&2; exit 1; }
}

echo "upstream: $SMALL .debs of $SMALL_BYTES random bytes + $LARGE of $LARGE_BYTES; $DEBS .debs, $DEBBYTES bytes ($((DEBBYTES / 1048576)) MiB)"
echo "parallel/nthreads $P, $ROUNDS rounds, client on CPU 0, upstream on CPU 1; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo ?); apt-mirror $(dpkg-query -W -f '${Version}' apt-mirror), $(wget --version | head -1), $("$W/airgapd" --version 2>/dev/null | head -1 || true)"
declare -A WALL
NAMES=(airgapd apt-mirror)
for round in $(seq "$ROUNDS"); do
  line="round $round:"
  for i in 0 1; do
    name=${NAMES[$(((i + round + 1) % 2))]}
    run "$name"
    WALL[$name]+="$RUN_WALL "
    line+=$(printf "  %s %.3fs" "$name" "$RUN_WALL")
  done
  echo "$line"
done
median() { printf '%s\n' $1 | sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ma=$(median "${WALL[airgapd]}"); mm=$(median "${WALL[apt-mirror]}")
printf "median: airgapd %.3fs, apt-mirror %.3fs; apt-mirror / airgapd %.2fx; load %s\n" "$ma" "$mm" "$(echo "$mm/$ma" | bc -l)" "$(cut -d' ' -f1-3 /proc/loadavg)"
