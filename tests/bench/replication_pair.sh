#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The nodes of docs/benchmarks.md "Replication": a live-only node (STOMP 61713), a replication
# primary (STOMP 61714, web 8199, cluster 61800) and its backup (STOMP 61715, cluster 61801,
# journal on tmpfs), each with a fresh journal; waits until the backup is in sync.
#   tests/bench/replication_pair.sh start [MIDDLEMAN_WORKERS]   (e.g. 1: CAF's default)
#   tests/bench/replication_pair.sh stop
# Then: ../shared/bench/compare.sh --reps 3 C replicated=61714 liveonly=61713
set -euo pipefail
NODE=${NODE:-$(cd "$(dirname "$0")/../.." && pwd)/build/actormq-node}
DIR=${DIR:-/tmp/actormq-repl-bench}
# Stops the nodes this script started (their pids are in $DIR/pids), and only those.
stop() {
  if [ -f "$DIR/pids" ]; then
    for p in $(cat "$DIR/pids"); do kill "$p" 2>/dev/null || true; done
    rm -f "$DIR/pids"
  fi
}
if [ "${1:-}" = stop ]; then stop; exit 0; fi
stop; sleep 0.5
rm -rf "$DIR" /dev/shm/actormq-repl-bench-B; mkdir -p "$DIR"
common='log-level = "warn"
persistence-enabled = true
cluster-user = "c"
cluster-password = "p"'
cat > "$DIR/L.toml" <<T
name = "liveonly"
log-level = "warn"
persistence-enabled = true
journal-directory = "$DIR/L"
[acceptors.stomp]
protocol = "stomp"
port = 61713
[web]
enabled = false
[security]
allow-anonymous = true
T
cat > "$DIR/P.toml" <<T
name = "P"
$common
journal-directory = "$DIR/P"
[ha-policy.replication.primary]
[cluster]
port = 61800
members = []
[acceptors.stomp]
protocol = "stomp"
port = 61714
[web]
port = 8199
[security]
allow-anonymous = true
[security.users.guest]
password = "guest"
T
cat > "$DIR/B.toml" <<T
name = "B"
$common
journal-directory = "/dev/shm/actormq-repl-bench-B"
[ha-policy.replication.backup]
[cluster]
port = 61801
members = ["127.0.0.1:61800"]
[acceptors.stomp]
protocol = "stomp"
port = 61715
[web]
enabled = false
[security]
allow-anonymous = true
T
if [ -n "${2:-}" ]; then export ACTORMQ_MM_WORKERS=$2; else unset ACTORMQ_MM_WORKERS; fi
for n in L P; do nohup "$NODE" --config "$DIR/$n.toml" > "$DIR/$n.log" 2>&1 & echo $! >> "$DIR/pids"; done
sleep 1
nohup "$NODE" --config "$DIR/B.toml" > "$DIR/B.log" 2>&1 &
echo $! >> "$DIR/pids"
for _ in $(seq 100); do
  if curl -s -u guest:guest localhost:8199/api/status | grep -q '"backup":"in-sync"'; then
    echo "in sync"; exit 0
  fi
  sleep 0.2
done
echo "the backup is not in sync; see $DIR/*.log" >&2; exit 1
