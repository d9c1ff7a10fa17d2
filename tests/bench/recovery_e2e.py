#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""End-to-end recovery time of a real node (docs/benchmarks.md, "Recovery").

Starts actormq-node on an existing journal directory (one filled by
`actormq-recovery-bench fill`) and measures, from just before the process is started:
  - the `journal_recovery_phases` and `journal_recovered` log lines (the journal is read),
  - the ports file appearing (the server holds every message and its acceptors listen),
  - the first TCP connection accepted on the STOMP port,
  - the first MESSAGE a consumer of --queue (default q0) receives: the queue holds its
    recovered messages and delivers,
and the node's peak RSS (VmHWM) at that point. Then it stops the node with SIGTERM.

usage: recovery_e2e.py NODE JOURNAL_DIR [--runs 3] [--queue q0] [--evict]
--evict drops the journal's files from the page cache before each run (a cold start).
A benchmark, not a test: it polls the ports file every 2 ms, which is a measurement
resolution, not a synchronisation.
"""
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def first_message(sock, queue):
    """Subscribes to `queue` (client-individual, prefetch 1, never acked, so nothing is
    written to the journal) and returns the monotonic time the first MESSAGE frame arrived."""
    sock.sendall(b"CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\n\n\0")
    sock.sendall(f"SUBSCRIBE\nid:1\ndestination:/queue/{queue}\nack:client-individual\n"
                 "prefetch-count:1\n\n\0".encode())
    data = b""
    while b"MESSAGE\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit(f"connection closed before a MESSAGE: {data[:200]!r}")
        data += chunk
    return time.monotonic()


def evict(journal):
    """Drops the journal's files (and nothing else) from the page cache, as after a reboot."""
    for name in os.listdir(journal):
        fd = os.open(os.path.join(journal, name), os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)


def one_run(node, journal, queue):
    work = tempfile.mkdtemp(prefix="actormq-recovery-e2e-")
    ports_file = os.path.join(work, "ports.json")
    cfg = os.path.join(work, "node.toml")
    with open(cfg, "w") as f:
        f.write(
            'name = "recovery-bench"\nlog-level = "info"\n'
            f'ports-file = "{ports_file}"\n'
            f'journal-directory = "{journal}"\n'
            "[acceptors.stomp]\nport = 0\n"
            '[security.users.guest]\npassword = "guest"\n'
        )
    marks = {}
    start = time.monotonic()
    proc = subprocess.Popen([node, "--config", cfg], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)

    def read_log():
        for line in proc.stdout:
            now = time.monotonic() - start
            for key in ("journal_recovery_phases", "journal_recovered", "node_started"):
                if key in line and key not in marks:
                    marks[key] = (now, line.strip())

    reader = threading.Thread(target=read_log, daemon=True)
    reader.start()
    deadline = start + 600
    while not os.path.exists(ports_file):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"node exited or hung before listening: {marks}")
        time.sleep(0.002)
    t_ports = time.monotonic() - start
    with open(ports_file) as f:
        port = json.load(f)["stomp"]
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        t_connect = time.monotonic() - start
        t_message = first_message(sock, queue) - start if queue else None
    hwm = 0
    with open(f"/proc/{proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) // 1024
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    reader.join(timeout=10)
    os.remove(ports_file)
    os.remove(cfg)
    os.rmdir(work)
    rec = marks.get("journal_recovered", (None, ""))
    phases = marks.get("journal_recovery_phases", (None, ""))
    fields = dict(re.findall(r"(\w+)=([\d.]+)", phases[1] + " " + rec[1]))
    return {
        "journal_recovered_s": rec[0],
        "ports_file_s": t_ports,
        "first_connect_s": t_connect,
        "first_message_s": t_message,
        "vm_hwm_mib": hwm,
        "node_fields": fields,
    }


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    node, journal = sys.argv[1], os.path.abspath(sys.argv[2])
    runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 3
    queue = sys.argv[sys.argv.index("--queue") + 1] if "--queue" in sys.argv else "q0"
    results = []
    for _ in range(runs):
        if "--evict" in sys.argv:
            evict(journal)
        r = one_run(node, journal, queue)
        print(json.dumps(r), flush=True)
        results.append(r)
    med = {k: statistics.median(r[k] for r in results)
           for k in ("journal_recovered_s", "ports_file_s", "first_connect_s",
                     "first_message_s", "vm_hwm_mib")}
    print(json.dumps({"median_of": runs, **med}))


if __name__ == "__main__":
    main()
