#!/usr/bin/env bash
# bench/ntp/run.sh — airgapd's NTP responder against chronyd 4.x, in the same
# run, on loopback (not part of `make test`). Run as root from the repository
# root:  bash bench/ntp/run.sh [DURATION] [QRUNS]
#   DURATION  load per server and round (default 5s; ntpload caps it at 60s)
#   QRUNS     chronyd -Q runs per server for the offset jitter (default 5)
#   AIRGAPD_BEFORE=REV   also measure airgapd built from git revision REV
#   AIRGAPD_LISTEN=0.0.0.0   airgapd on the wildcard (each request's destination
#                        read, the reply sent from it), queried at 127.0.0.1
# Both serve `local stratum 10` on 127.0.0.1 with no rate limit (chronyd's
# default; airgapd's is switched off here). The load alternates between
# the two servers over two rounds so neither always runs on a warmer machine.
set -euo pipefail
DUR=${1:-5s}
QRUNS=${2:-5}
CLIENTS=${CLIENTS:-32}
W=$(mktemp -d /tmp/airgapd-bench-ntp.XXXXXX)
chmod 700 "$W"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

go build -o "$W/airgapd" ./cmd/airgapd
go build -o "$W/ntpload" ./bench/ntp

CPORT=$(free_port); CCMD=$(free_port)
mkdir -m 700 "$W/chrony"
cat > "$W/chrony/chrony.conf" <<X
port $CPORT
bindaddress 127.0.0.1
local stratum 10
allow 127.0.0.0/8
cmdport $CCMD
bindcmdaddress 127.0.0.1
bindcmdaddress $W/chrony/chronyd.sock
pidfile $W/chrony/chronyd.pid
driftfile $W/chrony/drift
logdir $W/chrony
X
chronyd -x -d -u root -f "$W/chrony/chrony.conf" >"$W/chrony/log" 2>&1 & PIDS+=($!)

start_airgapd() { # name binary port
  cat > "$W/$1.yaml" <<X
data_dir: $W/$1.data
runtime_dir: $W/$1.run
log: { level: warn }
ntp:
  listen: [${AIRGAPD_LISTEN:-127.0.0.1}:$3]
  allow: [127.0.0.0/8]
  local_stratum: 10
  ratelimit: { enabled: false }
X
  "$2" serve --config "$W/$1.yaml" >"$W/$1.log" 2>&1 & PIDS+=($!)
}
APORT=$(free_port)
start_airgapd airgapd "$W/airgapd" "$APORT"
SERVERS=("chronyd $CPORT" "airgapd $APORT")
if [ -n "${AIRGAPD_BEFORE:-}" ]; then
  # The same server from another revision, so before and after share this
  # run's machine and load.
  git worktree add -q --detach "$W/before-src" "$AIRGAPD_BEFORE"
  (cd "$W/before-src" && go build -o "$W/airgapd-before" ./cmd/airgapd)
  git worktree remove --force "$W/before-src"
  BPORT=$(free_port)
  start_airgapd airgapd-before "$W/airgapd-before" "$BPORT"
  SERVERS+=("airgapd-before $BPORT")
fi

# Readiness: each answers one query (bounded).
for sp in "${SERVERS[@]}"; do
  port=${sp#* }
  for i in $(seq 50); do
    "$W/ntpload" -addr 127.0.0.1:$port -clients 1 -window 1 -duration 100ms | grep -qv 'responses/s 0' && break
    [ "$i" = 50 ] && { echo "server on port $port does not answer" >&2; exit 1; }
  done
done

echo "# load: $CLIENTS clients x window 4, $DUR per server per round"
for round in 1 2; do
  for sp in "${SERVERS[@]}"; do
    "$W/ntpload" -addr "127.0.0.1:${sp#* }" -clients "$CLIENTS" -duration "$DUR" -label "${sp% *} round $round"
  done
done

echo "# offset a one-shot chrony client (chronyd -Q) sees, $QRUNS runs each"
qrun() { # port → offset in seconds
  local d="$W/q$1"; mkdir -p -m 700 "$d"
  printf 'server 127.0.0.1 port %s iburst\nport 0\ncmdport 0\npidfile %s/pid\n' "$1" "$d" > "$d/c.conf"
  chronyd -Q -u root -t 20 -f "$d/c.conf" 2>&1 | sed -n 's/.*System clock wrong by \([-+0-9.e]*\) seconds.*/\1/p'
}
for sp in "${SERVERS[@]}"; do
  name=${sp% *}; port=${sp#* }
  offs=()
  for i in $(seq "$QRUNS"); do offs+=("$(qrun $port)"); done
  printf '%s\n' "${offs[@]}" | python3 -c '
import sys, statistics
v=[float(x) for x in sys.stdin.read().split()]
print("%s\truns %d\tmean offset %+.1f us\tstddev %.1f us\tmax |offset| %.1f us" % (sys.argv[1], len(v), statistics.mean(v)*1e6, (statistics.stdev(v) if len(v)>1 else 0)*1e6, max(abs(x) for x in v)*1e6))' $name
done
