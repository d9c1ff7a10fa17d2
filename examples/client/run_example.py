#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Runs one client example (examples/client/) against the demo pair, as a test.

Usage: run_example.py NAME BINARY   (ACTORMQ_NODE names actormq-node)

It starts the shared-store pair of examples/shared-store/ (every port chosen by the OS, one
temporary journal directory for both), runs the example against the primary, waits until it
sends, then breaks what the example is about: SIGKILL of the live (transaction_failover,
failover, application_failover) or a cut of the example's TCP connection while the server runs
(reattach, with `ss -K`, which needs root). It waits until the example says it went on (on the
backup, or reattached to the same server), stops it with SIGINT and checks its summary:
"lost 0, duplicated 0, unexpected 0" and exit status 0. Every wait polls against a deadline.
"""
import os
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(SOURCE, "tests", "process"))

from actormq_node import DEFAULT_TIMEOUT, Lines, Node, wait_until  # noqa: E402

FAILOVER_EXAMPLES = ("transaction_failover", "failover", "application_failover")


def example_config(name):
    with open(os.path.join(SOURCE, "examples", "shared-store", name), encoding="utf-8") as f:
        return f.read()


def cut_connections_to(port):
    """Destroys the client side of every established TCP connection to 127.0.0.1:port."""
    out = subprocess.run(["ss", "-K", "-t", "-n", "-H", "state", "established", "dst",
                          "127.0.0.1", "dport", "=", str(port)],
                         capture_output=True, text=True, timeout=DEFAULT_TIMEOUT)
    destroyed = [l for l in out.stdout.splitlines() if f"127.0.0.1:{port}" in l]
    if len(destroyed) != 1:
        raise AssertionError(f"ss -K destroyed {len(destroyed)} connections, not the example's "
                             f"one (it needs root and CONFIG_INET_DIAG_DESTROY):\n"
                             f"{out.stdout}{out.stderr}")


def main():
    name, binary = sys.argv[1], sys.argv[2]
    cleanups = []
    try:
        journal = tempfile.TemporaryDirectory(prefix="actormq-example-journal-")
        cleanups.append(journal.cleanup)
        common = ["--set", "acceptors.stomp.port=0", "--set", "acceptors.native.port=0",
                  "--set", "cluster.port=0", "--set", f"journal-directory={journal.name}"]
        primary = Node(example_config("primary.toml"),
                       extra_args=common + ["--set", "cluster.members=[]"])
        cleanups.append(primary.cleanup)
        primary.start()
        wait_until(lambda: primary.accepts_connections(primary.ports["native"]),
                   what=lambda: f"the primary to serve\n{primary.describe()}")
        backup = Node(example_config("backup.toml"),
                      extra_args=common + ["--set", f'cluster.members=["127.0.0.1:'
                                                    f'{primary.cluster_port}"]'])
        cleanups.append(backup.cleanup)
        backup.start()
        backup.wait_for_log("ha_waiting_for_live")
        live = f"127.0.0.1:{primary.ports['native']}"
        standby = f"127.0.0.1:{backup.ports['native']}"

        proc = subprocess.Popen([binary, "--server", live, "--backup", standby],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        cleanups.append(lambda: proc.poll() is None and proc.kill())
        cleanups.append(proc.stdout.close)
        lines = Lines(proc, echo=True)
        lines.wait_for(lambda l: l.startswith(f"connected to {live}"), "the first connection")
        if name in ("transaction_failover", "failover"):
            # ha=true: the client must know the backup before the live dies.
            lines.wait_for(lambda l: l == f"backup is now {standby}", "the backup in the topology")
        progress = ("committed " if name == "transaction_failover" else "sent ")
        lines.wait_for(lambda l: l.startswith(progress) and f"via {live}" in l,
                       "progress on the live")
        if name in FAILOVER_EXAMPLES:
            primary.kill()
            if name == "application_failover":
                lines.wait_for(lambda l: l.startswith("failure listener: DISCONNECT"),
                               "the listener's DISCONNECT")
                lines.wait_for(lambda l: l.startswith(f"connected to {standby}"),
                               "the application's new connection to the backup")
            else:
                lines.wait_for(lambda l: l == f"failure listener: FAILOVER: failed over to "
                                              f"{standby}", "FAILOVER to the backup")
            after = standby
        else:
            cut_connections_to(primary.ports["native"])
            lines.wait_for(lambda l: l.startswith("failure listener: FAILURE_DETECTED"),
                           "FAILURE_DETECTED")
            lines.wait_for(lambda l: l == f"failure listener: FAILOVER: reattached to {live}",
                           "the reattach to the same server")
            after = live
        lines.wait_for(lambda l: l.startswith(progress) and f"via {after}" in l,
                       f"progress via {after} after the failure")
        proc.send_signal(signal.SIGINT)
        summary = lines.wait_for(lambda l: ", lost " in l, "the summary")
        status = proc.wait(timeout=DEFAULT_TIMEOUT * 3)
        problems = []
        if not summary.endswith(", lost 0, duplicated 0, unexpected 0"):
            problems.append(f"summary: {summary}")
        if status != 0:
            problems.append(f"exit status {status}")
        if name == "reattach" and "redelivered 0 (a reattach redelivers nothing)" not in lines.seen:
            problems.append("messages were redelivered: the sessions were recreated")
        if name == "reattach" and not primary.running():
            problems.append("the server the example reattached to is gone")
        if name != "application_failover" and any("DISCONNECT" in l for l in lines.seen):
            problems.append("the library gave up (DISCONNECT)")
        if problems:
            raise AssertionError("; ".join(problems) + "\nthe example printed:\n"
                                 + "\n".join(lines.seen))
        print(f"example {name}: ok", flush=True)
        return 0
    except AssertionError as e:
        print(f"example {name}: FAILED: {e}", flush=True)
        return 1
    finally:
        for c in reversed(cleanups):
            try:
                c()
            except Exception:  # noqa: BLE001 - cleanup must go on
                pass


if __name__ == "__main__":
    sys.exit(main())
