#!/usr/bin/env bash
# bench/registry/run.sh — pulling one blob (default 1 GiB) from airgapd's
# registry, from the reference distribution `registry` binary (the same
# distribution version airgapd embeds), from a bare net/http file server
# (the floor for any Go server) and reading the file from disk, in
# the same run, on loopback (not part of `make test`). From the repository
# root:  bash bench/registry/run.sh [SIZE_MIB] [RUNS]
# Both registries use filesystem storage in a temp dir; each mode (plain
# HTTP, then TLS with a certificate from airgapd's CA for both) uploads the
# blob once per registry, checks one pull byte for byte, then times RUNS
# pulls from each, rotating the order, first with every copy of the blob in
# the page cache (warm), then with each copy evicted by
# posix_fadvise(DONTNEED) right before it is read (cold: from the disk; the
# temp dir must be on a disk, not tmpfs). The reference registry is built once
# into $REGISTRY_BIN_DIR (default ~/.cache/airgapd-bench; about 100 s cold).
# BASE_REV=REV (a git revision) also times airgapd built at REV, as the
# target airgapd@REV beside the checkout's, in the same rounds: an A/B of
# two builds on the same load (the ratio line airgapd/airgapd@REV).
# BENCH_MODES (default "http https") and BENCH_CACHE (default "warm,cold")
# narrow a run to one state, e.g. a long warm plain-HTTP A/B.
set -euo pipefail
SIZE=${1:-1024}
RUNS=${2:-5}
# The version go.mod requires (issue 22 moved it from v3.0.0).
DIST_VERSION=v3.1.2
BASE_REV=${BASE_REV:-}
BIN_DIR=${REGISTRY_BIN_DIR:-$HOME/.cache/airgapd-bench}
W=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/airgapd-bench-registry.XXXXXX")
chmod 700 "$W"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
if [[ $(stat -f -c %T "$W") == tmpfs ]]; then
  echo "$W is on tmpfs: cold reads would never touch a disk; set BENCH_TMPDIR to a directory on one" >&2
  exit 1
fi
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
# wait_up URL [CA]: poll /v2/ until it answers at all (bounded).
wait_up() {
  for i in $(seq 100); do
    curl -s -o /dev/null ${2:+--cacert "$2"} "$1/v2/" && return 0
    sleep 0.1
  done
  echo "nothing answers on $1" >&2; exit 1
}
stop() { kill "$1"; wait "$1" 2>/dev/null || true; }

# One binary per version under BIN_DIR (a bare BIN_DIR/registry may be
# another version's).
REGISTRY=$BIN_DIR/$DIST_VERSION/registry
if [[ ! -x $REGISTRY ]]; then
  echo "building the reference registry $DIST_VERSION into $(dirname "$REGISTRY")"
  mkdir -p "$(dirname "$REGISTRY")"
  GOBIN=$(dirname "$REGISTRY") go install "github.com/distribution/distribution/v3/cmd/registry@$DIST_VERSION"
fi
go build -o "$W/airgapd" ./cmd/airgapd
if [[ -n $BASE_REV ]]; then
  mkdir "$W/src-base"
  git archive "$BASE_REV" | tar -x -C "$W/src-base"
  (cd "$W/src-base" && go build -o "$W/airgapd-base" ./cmd/airgapd)
  rm -rf "$W/src-base"
fi
go build -o "$W/regbench" ./bench/registry

echo "making a ${SIZE} MiB random blob"
head -c $((SIZE << 20)) /dev/urandom >"$W/blob"

# bcrypt("bench") for airgapd's push user.
HASH=$(go run ./bench/registry/hash bench)

for mode in ${BENCH_MODES:-http https}; do
  APORT=$(free_port); RPORT=$(free_port); DPORT=$(free_port); FPORT=$(free_port)
  tls=off; [[ $mode == https ]] && tls=auto
  rm -rf "$W/a" "$W/b" "$W/r"; mkdir -p "$W/a" "$W/r"
  # airgapd_conf DIR PORT: an airgapd config with its data under DIR.
  airgapd_conf() {
    cat <<X
data_dir: $1/data
runtime_dir: $1/run
log: { level: warn }
registry:
  listen: 127.0.0.1:$2
  tls: $tls
  users: [{ name: bench, password_hash: "$HASH" }]
  pull_from: [127.0.0.0/8]
X
  }
  airgapd_conf "$W/a" "$APORT" >"$W/a/airgapd.yaml"
  "$W/airgapd" serve --config "$W/a/airgapd.yaml" >"$W/a/log" 2>&1 & APID=$!; PIDS+=($APID)
  CA=""
  if [[ $mode == https ]]; then
    for i in $(seq 100); do [[ -s $W/a/data/pki/server.key ]] && break; sleep 0.1; done
    CA=$W/a/data/pki/ca.crt
    TLSCONF="  tls:
    certificate: $W/a/data/pki/server.crt
    key: $W/a/data/pki/server.key"
  else
    TLSCONF=""
  fi
  BASE_TARGET=()
  if [[ -n $BASE_REV ]]; then
    # The base build starts from a copy of the first one's CA and
    # certificate (it keeps what it finds), so one -cacert fits all.
    BPORT=$(free_port); mkdir -p "$W/b/data"
    airgapd_conf "$W/b" "$BPORT" >"$W/b/airgapd.yaml"
    [[ $mode == https ]] && cp -a "$W/a/data/pki" "$W/b/data/pki"
    "$W/airgapd-base" serve --config "$W/b/airgapd.yaml" >"$W/b/log" 2>&1 & BPID=$!; PIDS+=($BPID)
    wait_up "$mode://127.0.0.1:$BPORT" "$CA"
    BASE_TARGET=(-target "airgapd@$BASE_REV=$mode://127.0.0.1:$BPORT,bench:bench,storage=$W/b/data/registry")
  fi
  cat >"$W/r/config.yml" <<X
version: 0.1
log: { level: warn, accesslog: { disabled: true } }
storage:
  filesystem: { rootdirectory: $W/r/data }
  delete: { enabled: true }
http:
  addr: 127.0.0.1:$RPORT
  secret: bench
  debug: { addr: 127.0.0.1:$DPORT }
$TLSCONF
X
  OTEL_TRACES_EXPORTER=none "$REGISTRY" serve "$W/r/config.yml" >"$W/r/log" 2>&1 & RPID=$!; PIDS+=($RPID)
  # The floor: the same file from a bare net/http server (regbench -serve).
  "$W/regbench" -serve "127.0.0.1:$FPORT" -file "$W/blob" ${CA:+-tlscert "$W/a/data/pki/server.crt" -tlskey "$W/a/data/pki/server.key"} >"$W/f.log" 2>&1 & FPID=$!; PIDS+=($FPID)
  wait_up "$mode://127.0.0.1:$APORT" "$CA"
  wait_up "$mode://127.0.0.1:$RPORT" "$CA"
  wait_up "$mode://127.0.0.1:$FPORT" "$CA"
  echo "== $mode"
  "$W/regbench" -file "$W/blob" -runs "$RUNS" -cache "${BENCH_CACHE:-warm,cold}" ${CA:+-cacert "$CA"} \
    -target "reference=$mode://127.0.0.1:$RPORT,storage=$W/r/data" \
    -target "airgapd=$mode://127.0.0.1:$APORT,bench:bench,storage=$W/a/data/registry" \
    -target "net/http=$mode://127.0.0.1:$FPORT,file=$W/blob" "${BASE_TARGET[@]}"
  stop "$APID"; stop "$RPID"; stop "$FPID"
  [[ -n $BASE_REV ]] && stop "$BPID"
done
echo "storage: $(df --output=source,fstype "$W" | tail -1 | tr -s ' '), read_ahead_kb $(cat /sys/class/block/"$(basename "$(df --output=source "$W" | tail -1)")"/queue/read_ahead_kb 2>/dev/null || echo '?')"
echo "machine: $(nproc) cores, $(. /etc/os-release; echo "$PRETTY_NAME"), $(go version | cut -d' ' -f3)"
echo "reference: distribution registry $("$REGISTRY" --version 2>/dev/null | head -1)"
echo "airgapd: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . || echo '+changes')${BASE_REV:+, base $BASE_REV = $(git rev-parse --short "$BASE_REV")}"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
