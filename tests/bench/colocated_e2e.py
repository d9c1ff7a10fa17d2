#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Colocated backups (docs/benchmarks.md, "Colocated backups"; issue 13).

For each of RUNS rounds, in fresh temporary directories:
  1. starts a host node ([ha-policy.colocated], max-backups 1, no request-backup) and reads its
     RSS once it is up and idle (the node without a hosted instance);
  2. starts a live node with request-backup that lists the host as its static member, and
     measures from its exec until its log says `replication_in_sync backup=colocated_backup_1`
     (its backup on the host is in sync: failover-capable), with the part from `node_started`
     to `colocated_backup_started` (settle wait, request, remote spawn) and the sync;
  3. reads the host's RSS again, now hosting one colocated backup instance (idle journal);
  4. with --fill-mib N: sends N MiB of durable 1 KiB messages to the live with four
     synchronous producers (../shared/bench's stompload, every message confirmed, so on the
     backup's disk too), and reads the host's RSS once more: the instance holding a synced
     journal of that size.
Prints one JSON line per round and a summary line.

usage: colocated_e2e.py NODE [--runs 10] [--fill-mib 100 --stompload /tmp/actormq-bench/stompload]
A benchmark, not a test: it pauses before reading RSS, which is a measurement.
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time

from bench_nodes import start, stamp, wait_log

OFFSET = 100


def free_port(avoid, with_offset=False):
    for port in range(20000, 32000 - OFFSET):
        if port in avoid or (with_offset and port + OFFSET in avoid):
            continue
        ok = True
        for p in [port] + ([port + OFFSET] if with_offset else []):
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                ok = False
            s.close()
        if ok:
            avoid.update([port] + ([port + OFFSET] if with_offset else []))
            return port
    raise RuntimeError("no free port")


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def config(name, stomp, cluster, members, request):
    return f"""name = "{name}"
log-level = "info"
persistence-enabled = true
journal-directory = "journal"
cluster-user = "actormq-cluster"
cluster-password = "bench"
[ha-policy.colocated]
request-backup = {"true" if request else "false"}
max-backups = 1
backup-port-offset = {OFFSET}
backup-request-settle-ms = 3000
[cluster]
host = "127.0.0.1"
port = {cluster}
members = [{", ".join(f'"127.0.0.1:{m}"' for m in members)}]
[acceptors.stomp]
host = "127.0.0.1"
port = {stomp}
[web]
port = 0
[security]
allow-anonymous = false
[security.users.guest]
password = "guest"
"""


def one_round(node, fill_mib=0, stompload=None):
    root = tempfile.mkdtemp(prefix="actormq-colo-bench-")
    procs = []
    try:
        avoid = set()
        host_stomp, live_stomp = free_port(avoid, True), free_port(avoid, True)
        host_cluster, live_cluster = free_port(avoid), free_port(avoid)
        host_dir, live_dir = os.path.join(root, "host"), os.path.join(root, "live")
        os.makedirs(host_dir)
        os.makedirs(live_dir)
        host = start(node, host_dir, config("host", host_stomp, host_cluster, [], False))
        procs.append(host)
        wait_log(host_dir, "node_started")
        time.sleep(2)  # measurement pause: let the idle node settle before its RSS
        host_idle = rss(host.pid)
        t0 = time.monotonic()
        live = start(node, live_dir,
                     config("live", live_stomp, live_cluster, [host_cluster], True))
        procs.append(live)
        started = wait_log(live_dir, "node_started")
        requested = wait_log(live_dir, "colocated_backup_started")
        synced = wait_log(live_dir, "replication_in_sync backup=colocated_backup_1")
        t1 = time.monotonic()
        time.sleep(2)  # measurement pause, as above
        host_hosting = rss(host.pid)
        live_rss = rss(live.pid)
        filled = {}
        if fill_mib > 0:
            count = fill_mib * 1024
            subprocess.run([stompload, "--port", str(live_stomp), "--dest", "/queue/fill",
                            "--producers", "4", "--consumers", "0", "--size", "1024",
                            "--count", str(count), "--persistent", "1", "--receipt", "1",
                            "--login", "guest", "--passcode", "guest"],
                           check=True, stdout=subprocess.DEVNULL)
            time.sleep(2)  # measurement pause, as above
            filled = {
                "host_rss_hosting_one_synced_mib": round(rss(host.pid) / 2**20, 1),
                "colocated_instance_synced_mib": round((rss(host.pid) - host_idle) / 2**20, 1),
                "backup_journal_mib": round(sum(
                    os.path.getsize(os.path.join(dp, f))
                    for dp, _, fs in os.walk(host_dir) for f in fs
                    if f.endswith(".amq")) / 2**20, 1),
            }
        return {
            "exec_to_failover_capable_ms": round((t1 - t0) * 1000, 1),
            "node_started_to_backup_spawned_ms": round((stamp(requested) - stamp(started)) * 1000),
            "backup_spawned_to_in_sync_ms": round((stamp(synced) - stamp(requested)) * 1000),
            "host_rss_idle_mib": round(host_idle / 2**20, 1),
            "host_rss_hosting_one_mib": round(host_hosting / 2**20, 1),
            "colocated_instance_mib": round((host_hosting - host_idle) / 2**20, 1),
            "live_rss_mib": round(live_rss / 2**20, 1),
            **filled,
        }
    finally:
        for p in procs:
            p.kill()
            p.wait()
        shutil.rmtree(root, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("node")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--fill-mib", type=int, default=0)
    ap.add_argument("--stompload", default="/tmp/actormq-bench/stompload")
    a = ap.parse_args()
    rounds = []
    for _ in range(a.runs):
        r = one_round(a.node, a.fill_mib, a.stompload)
        print(json.dumps(r), flush=True)
        rounds.append(r)

    def summary(key):
        xs = sorted(r[key] for r in rounds)
        return {"min": xs[0], "median": statistics.median(xs), "max": xs[-1]}

    print(json.dumps({k: summary(k) for k in rounds[0]}))


if __name__ == "__main__":
    main()
