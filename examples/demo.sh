#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Starts the shared-store demo from a built tree: a live/backup pair (examples/shared-store/) in
# the background, and tells you how to talk to it, kill the live, watch the backup take over and
# fail back. docs/ha.md walks through it step by step.
#
# Usage: examples/demo.sh [start|primary|stop] [BUILD_DIR]   (default: start, build)
#   start    start the primary, wait until it serves, then start the backup (the default)
#   primary  start the primary again after it was killed: it fails back from the backup
#   stop     stop both nodes (SIGTERM) and wait for them to exit
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
command=start
case "${1:-}" in
    start | primary | stop) command=$1; shift ;;
esac
build=$(cd "${1:-$here/../build}" 2>/dev/null && pwd) || {
    echo "demo: build directory ${1:-$here/../build} not found; build first (see README.md)" >&2
    exit 1
}
node=$build/actormq-node
data=$build/demo-data/shared-store  # both nodes run here, so "shared-journal" is one directory
[ -x "$node" ] || { echo "demo: $node not found; build first (see README.md)" >&2; exit 1; }

# Paths as the user should type them: relative to the current directory when inside it.
show() { case "$1" in "$PWD"/*) echo "${1#"$PWD"/}" ;; *) echo "$1" ;; esac; }
# A process that runs: a killed node whose parent never reaps it (a container without an init)
# stays as a zombie, which kill -0 still finds.
running() { kill -0 "$1" 2>/dev/null && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
alive() { [ -f "$data/$1.pid" ] && running "$(cat "$data/$1.pid")"; }
serving() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
logged() { tail -c "+$log_start" "$data/$1.log" | grep -q "$2"; }
ports_free() {
    local port
    for port in "$@"; do
        if serving "$port"; then
            echo "demo: something already listens on 127.0.0.1:$port (an earlier demo?); stop it first" >&2
            exit 1
        fi
    done
}

# start_node NAME: starts the node in the background. Its log
# grows across runs; log_start remembers where this run's lines begin.
start_node() {
    local name=$1
    "$node" --check-config "$here/shared-store/$name.toml" >/dev/null
    log_start=$(($(stat -c %s "$data/$name.log" 2>/dev/null || echo 0) + 1))
    # nohup execs the node, so $! is the node's own pid; it outlives this script and the terminal.
    (
        cd "$data"
        nohup "$node" --config "$here/shared-store/$name.toml" </dev/null >>"$name.log" 2>&1 &
        echo $! >"$name.pid"
    )
}

# wait_for NAME WHAT COMMAND...: polls COMMAND for up to 30 s while the node stays alive.
wait_for() {
    local name=$1 what=$2 i
    shift 2
    for ((i = 0; i < 300; i++)); do
        if ! alive "$name"; then
            echo "demo: the $name exited before $what; the end of $(show "$data/$name.log"):" >&2
            tail -n 20 "$data/$name.log" >&2
            exit 1
        fi
        "$@" && return 0
        sleep 0.1
    done
    echo "demo: the $name did not get to $what within 30 s; see $(show "$data/$name.log")" >&2
    exit 1
}

stop_node() {
    local name=$1 pid i
    alive "$name" || { rm -f "$data/$name.pid"; return 0; }
    pid=$(cat "$data/$name.pid")
    kill -TERM "$pid"
    for ((i = 0; i < 100; i++)); do
        running "$pid" || { echo "stopped the $name (pid $pid)"; rm -f "$data/$name.pid"; return 0; }
        sleep 0.1
    done
    echo "demo: the $name (pid $pid) did not exit within 10 s of SIGTERM" >&2
    return 1
}

print_guide() {
    local d
    d=$(show "$data")
    cat <<TXT

  ActorMQ demo: a shared-store live/backup pair (docs/ha.md)
  ----------------------------------------------------------
  primary   STOMP 127.0.0.1:61613  cluster 61700  web http://127.0.0.1:8161/  pid $(cat "$data/primary.pid" 2>/dev/null || echo -)  log $d/primary.log
  backup    STOMP 127.0.0.1:61614  cluster 61701  web http://127.0.0.1:8162/  pid $(cat "$data/backup.pid" 2>/dev/null || echo -)  log $d/backup.log
  Both share the journal $d/shared-journal; the live holds its lock file server.lock.
  User guest, passcode guest. Configs: examples/shared-store/primary.toml and backup.toml.
  Watch it happen on the status pages (user guest, password guest; docs/web.md):
         http://127.0.0.1:8161/   and   http://127.0.0.1:8162/

  1. Send a first message to the live server:
         /usr/bin/python3 examples/first_message.py
  2. In a second terminal, run a client that knows both servers and keeps sending
     (numbered persistent messages with receipts and _AMQ_DUPL_ID, consumed as they come):
         /usr/bin/python3 examples/shared-store/failover_client.py
     and watch both logs in a third:
         tail -f $d/primary.log $d/backup.log
  3. Kill the live server:
         kill -9 \$(cat $d/primary.pid)
     backup.log shows ha_activating and ha_live with the same node id; the client reconnects
     to 61614, resends what had no receipt, and keeps going. The backup serves now:
         /usr/bin/python3 examples/first_message.py 61614
  4. Fail back: start the primary again; the backup gives way (ha_giving_way) and waits as a
     backup again, and the client moves back to 61613:
         examples/demo.sh primary
  5. Stop the client with Ctrl-C (it prints what it sent and received), then both nodes:
         examples/demo.sh stop

TXT
}

mkdir -p "$data"
case $command in
    start)
        if alive primary || alive backup; then
            echo "demo: already running (examples/demo.sh stop ends it)"
            print_guide
            exit 0
        fi
        ports_free 61613 61614 61700 61701 8161 8162
        # The primary first: a backup that finds no live server would become live itself.
        start_node primary
        wait_for primary "serving on 61613" serving 61613
        start_node backup
        wait_for backup "waiting for the live (ha_waiting_for_live)" logged backup ha_waiting_for_live
        print_guide
        ;;
    primary)
        if alive primary; then
            echo "demo: the primary is running already (pid $(cat "$data/primary.pid"))"
            exit 0
        fi
        ports_free 61613 61700 8161
        start_node primary
        echo "started the primary (pid $(cat "$data/primary.pid")); waiting until it serves on 61613"
        wait_for primary "serving on 61613" serving 61613
        echo "the primary serves on 127.0.0.1:61613 again; see $(show "$data/backup.log") for the backup"
        ;;
    stop)
        status=0
        stop_node backup || status=1
        stop_node primary || status=1
        exit $status
        ;;
esac
