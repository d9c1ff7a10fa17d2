#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Shared-store failover time on a large journal (docs/benchmarks.md, "Recovery").

Starts a shared-store primary on JOURNAL_DIR (one filled by `actormq-recovery-bench fill`),
waits until it is live, starts its backup, waits until the backup waits for the live, then
SIGKILLs the primary and measures, from the kill:
  - the backup's `ha_live` line (it took the lock and recovered the journal; its
    `activation_ms` is printed too),
  - the first MESSAGE a STOMP consumer of --queue (default q0) gets from the backup.
Then it stops the backup with SIGTERM.

usage: failover_e2e.py NODE JOURNAL_DIR [--runs 3] [--queue q0]
A benchmark, not a test.
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from recovery_e2e import first_message  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(role, journal, ports_file, cluster_port, peer_port, stomp_port):
    return (
        f'name = "{role}"\nlog-level = "info"\njournal-directory = "{journal}"\n'
        f'ports-file = "{ports_file}"\n'
        'cluster-user = "bench"\ncluster-password = "bench-secret"\n'
        f"[ha-policy.shared-store.{role}]\nfailover-on-shutdown = false\n"
        "lock-poll-interval-ms = 10\n"
        + ("allow-failback = false\n" if role == "backup" else "")
        + f'[cluster]\nhost = "127.0.0.1"\nport = {cluster_port}\n'
        f'members = ["127.0.0.1:{peer_port}"]\n'
        f'[acceptors.stomp]\nhost = "127.0.0.1"\nport = {stomp_port}\n'
        '[web]\nhost = "127.0.0.1"\nport = 0\n'
        '[security.users.guest]\npassword = "guest"\n'
    )


class node:
    def __init__(self, binary, cfg_path):
        self.lines = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen([binary, "--config", cfg_path], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append((time.monotonic(), line.strip()))
                self.cond.notify_all()

    def wait_for(self, key, after=0.0, timeout=600):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for t, line in self.lines:
                    if t >= after and key in line:
                        return t, line
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise SystemExit(f"no {key}: {self.lines[-5:]}")
                self.cond.wait(timeout=1)


def one_run(binary, journal, queue):
    work = tempfile.mkdtemp(prefix="actormq-failover-e2e-")
    cp, cb, sp, sb = free_port(), free_port(), free_port(), free_port()
    paths = {}
    for role, mine, peer, stomp in (("primary", cp, cb, sp), ("backup", cb, cp, sb)):
        paths[role] = os.path.join(work, role + ".toml")
        with open(paths[role], "w") as f:
            f.write(config(role, journal, os.path.join(work, role + ".ports"), mine, peer, stomp))
    started = []
    try:
        primary = node(binary, paths["primary"])
        started.append(primary)
        primary.wait_for("ha_live")
        backup = node(binary, paths["backup"])
        started.append(backup)
        backup.wait_for("ha_waiting_for_live")
        kill_at = time.monotonic()
        primary.proc.send_signal(signal.SIGKILL)
        primary.proc.wait()
        t_live, line = backup.wait_for("ha_live", after=kill_at)
        phases = backup.wait_for("journal_recovery_phases", after=kill_at)[1]
        recovered = backup.wait_for("journal_recovered", after=kill_at)[1]
        with socket.create_connection(("127.0.0.1", sb), timeout=60) as sock:
            t_message = first_message(sock, queue)
        backup.proc.send_signal(signal.SIGTERM)
        backup.proc.wait(timeout=120)
    finally:
        for n in started:
            if n.proc.poll() is None:
                n.proc.kill()
                n.proc.wait()
    activation = re.search(r"activation_ms=(\d+)", line)
    return {
        "ha_live_after_kill_s": t_live - kill_at,
        "first_message_after_kill_s": t_message - kill_at,
        "backup_activation_ms": int(activation.group(1)) if activation else None,
        "backup_journal": dict(re.findall(r"(\w+)=([\d.]+)", phases + " " + recovered)),
    }


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    binary, journal = sys.argv[1], os.path.abspath(sys.argv[2])
    runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 3
    queue = sys.argv[sys.argv.index("--queue") + 1] if "--queue" in sys.argv else "q0"
    results = []
    for _ in range(runs):
        r = one_run(binary, journal, queue)
        print(json.dumps(r), flush=True)
        results.append(r)
    print(json.dumps({"median_of": runs, **{
        k: statistics.median(r[k] for r in results)
        for k in ("ha_live_after_kill_s", "first_message_after_kill_s")}}))


if __name__ == "__main__":
    main()
