#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A replicating backup's initial sync (docs/benchmarks.md, "Initial sync"; issue 14).

For each of RUNS rounds, in fresh temporary directories:
  1. starts a replication primary alone (every address pages past --max-size-bytes into page
     files of --page-size-bytes, as the crash harness's --paging does with 64 KiB);
  2. sends --fill-mib MiB of durable 1 KiB messages to it with four producers (../shared/bench's
     stompload, every send receipted, nothing consumed), so the journal and the page files hold
     the backlog;
  3. starts a replicating backup and times, from the live's log, `replication_backup_attached`
     (with the snapshot's sync_bytes) to `replication_in_sync` (the backup has all of it on
     its disk): the initial sync's throughput;
  4. with --load: a fifth producer sends durable messages during the sync (the live keeps
     appending, as in the crash harness).
The CPU seconds the live spent from the backup's start to in-sync, and the backup's from its
exec to in-sync, are printed too: on a shared 2-core machine they say more than the rate.
Prints one JSON line per round (with the 1-minute load average at the start of the sync) and
a summary line.

usage: sync_e2e.py NODE [--runs 3] [--fill-mib 200] [--page-size-bytes 65536] [--max-size-bytes N]
                        [--stompload /tmp/actormq-bench/stompload] [--load] [--perf-dir D]
A benchmark, not a test: the fill's speed and the machine's load move the figures.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time

from bench_nodes import start, stamp, wait_log


def free_ports(n):
    out = []
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        out.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return out


def config(name, role, stomp, cluster, members, page_size, max_size):
    return f"""name = "{name}"
log-level = "info"
persistence-enabled = true
journal-directory = "journal"
cluster-user = "actormq-cluster"
cluster-password = "bench"
[ha-policy.replication.{role}]
[cluster]
host = "127.0.0.1"
port = {cluster}
members = [{", ".join(f'"127.0.0.1:{m}"' for m in members)}]
[acceptors.stomp]
host = "127.0.0.1"
port = {stomp}
[web]
enabled = false
[security]
allow-anonymous = false
[security.users.guest]
password = "guest"
[address-settings."#"]
address-full-policy = "PAGE"
max-size-bytes = {max_size}
page-size-bytes = {page_size}
"""


def stompload(binary, port, count, producers, dest):
    return [binary, "--port", str(port), "--dest", dest, "--producers", str(producers),
            "--consumers", "0", "--size", "1024", "--count", str(count), "--persistent", "1",
            "--receipt", "1", "--inflight", "16", "--login", "guest", "--passcode", "guest"]


def cpu_s(pid):
    """User plus system CPU seconds of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid):
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            out += [int(x) for x in f.read().split()]
    return out


def du(path):
    return sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(path) for f in fs)


def one_round(a):
    root = tempfile.mkdtemp(prefix="actormq-sync-bench-")
    procs = []
    wrap = ()
    backup = None
    try:
        live_stomp, live_cluster, bk_stomp, bk_cluster = free_ports(4)
        live_dir, bk_dir = os.path.join(root, "live"), os.path.join(root, "backup")
        os.makedirs(live_dir)
        os.makedirs(bk_dir)
        live = start(a.node, live_dir, config("live", "primary", live_stomp, live_cluster, [],
                                              a.page_size_bytes, a.max_size_bytes))
        procs.append(live)
        wait_log(live_dir, "acceptor_listening", 600, 0.01)
        t = time.monotonic()
        subprocess.run(stompload(a.stompload, live_stomp, a.fill_mib * 1024, 4, "/queue/fill"),
                       check=True, stdout=subprocess.DEVNULL)
        fill_s = time.monotonic() - t
        pages = du(os.path.join(live_dir, "journal", "paging"))
        load = None
        if a.load:
            load = subprocess.Popen(stompload(a.stompload, live_stomp, 10**7, 1, "/queue/load"),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(load)
        loadavg = os.getloadavg()[0]
        live_cpu = cpu_s(live.pid)
        wrap = tuple(a.backup_wrap.split())
        if a.perf_dir:
            # Profiles of the sync: the live's from the backup's start, the backup's whole.
            procs.append(subprocess.Popen(["perf", "record", "-g", "-p", str(live.pid), "-o",
                                           os.path.join(a.perf_dir, "live.data")],
                                          stderr=subprocess.DEVNULL))
            wrap = ("perf", "record", "-g", "-o", os.path.join(a.perf_dir, "backup.data"), "--")
        backup = start(a.node, bk_dir, config("backup", "backup", bk_stomp, bk_cluster,
                                              [live_cluster], a.page_size_bytes,
                                              a.max_size_bytes), wrap)
        procs.append(backup)
        attached = wait_log(live_dir, "replication_backup_attached", 600, 0.01)
        synced = wait_log(live_dir, "replication_in_sync", 600, 0.01)
        live_cpu = cpu_s(live.pid) - live_cpu
        backup_cpu = cpu_s(backup.pid) if not a.perf_dir else 0.0
        sync_bytes = int(re.search(r"sync_bytes=(\d+)", attached).group(1))
        replica_synced = wait_log(bk_dir, "replica_in_sync", 600, 0.01)
        durable = re.search(r"durable_ms=(\d+)", replica_synced)
        sync_s = max(stamp(synced) - stamp(attached), 0.001)
        return {
            "fill_mib": a.fill_mib,
            "fill_s": round(fill_s, 1),
            "page_files_mib": round(pages / 2**20, 1),
            "sync_mib": round(sync_bytes / 2**20, 1),
            "sync_s": round(sync_s, 3),
            "sync_mb_per_s": round(sync_bytes / 1e6 / sync_s, 1),
            "live_cpu_s": round(live_cpu, 2),
            "backup_cpu_s": round(backup_cpu, 2),
            "final_sync_ms": int(durable.group(1)) if durable else None,
            "loadavg_1m": round(loadavg, 2),
            "load": a.load,
        }
    finally:
        if wrap and not a.perf_dir:
            # The wrapped node first: its wrapper (strace) then exits and writes its summary.
            for kid in children(backup.pid):
                os.kill(kid, signal.SIGKILL)
            backup.wait()
        for p in reversed(procs):
            # perf writes its file on SIGINT; the nodes are SIGKILLed.
            p.send_signal(signal.SIGINT if a.perf_dir else signal.SIGKILL)
            p.wait()
        shutil.rmtree(root, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("node")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--fill-mib", type=int, default=200)
    ap.add_argument("--page-size-bytes", type=int, default=65536)
    ap.add_argument("--max-size-bytes", type=int, default=65536,
                    help="-1: no paging, the whole backlog in the journal")
    ap.add_argument("--stompload", default="/tmp/actormq-bench/stompload")
    ap.add_argument("--load", action="store_true")
    ap.add_argument("--perf-dir", default="", help="perf record the live and the backup here")
    ap.add_argument("--backup-wrap", default="",
                    help="a command the backup runs under, e.g. 'strace -f -c -o FILE'")
    a = ap.parse_args()
    rounds = []
    for _ in range(a.runs):
        r = one_round(a)
        print(json.dumps(r), flush=True)
        rounds.append(r)
    xs = sorted(r["sync_mb_per_s"] for r in rounds)
    print(json.dumps({"sync_mb_per_s": {"min": xs[0], "median": statistics.median(xs),
                                        "max": xs[-1]}}))


if __name__ == "__main__":
    main()
