#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The examples a newcomer runs from the README work against real nodes."""
import os
import signal
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from actormq_node import DEFAULT_TIMEOUT, Lines, Node, wait_until  # noqa: E402

SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(SOURCE, "examples")


def example_config(*path):
    with open(os.path.join(EXAMPLES, *path), encoding="utf-8") as f:
        return f.read()


def run_first_message(port):
    return subprocess.run(["/usr/bin/python3", os.path.join(EXAMPLES, "first_message.py"),
                           str(port)], capture_output=True, text=True, timeout=30)


class ExamplesTest(unittest.TestCase):
    def test_first_message_example_sends_and_receives_against_the_single_node_config(self):
        node = Node(example_config("single-node.toml"),
                    extra_args=["--set", "acceptors.stomp.port=0"])
        self.addCleanup(node.cleanup)
        node.start()
        try:
            out = run_first_message(node.port)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn("received: hello from ActorMQ", out.stdout)
        finally:
            node.stop()


    def test_shared_store_pair_fails_over_and_the_failover_client_loses_nothing(self):
        # The example pair with every port chosen by the OS and one journal directory for both.
        journal = tempfile.TemporaryDirectory(prefix="actormq-example-journal-")
        self.addCleanup(journal.cleanup)
        common = ["--set", "acceptors.stomp.port=0", "--set", "acceptors.native.port=0",
                  "--set", "cluster.port=0",
                  "--set", f"journal-directory={journal.name}"]
        primary = Node(example_config("shared-store", "primary.toml"),
                       extra_args=common + ["--set", "cluster.members=[]"])
        self.addCleanup(primary.cleanup)
        primary.start()
        wait_until(primary.accepts_connections, what=lambda: f"the primary to serve\n"
                                                             f"{primary.describe()}")
        backup = Node(example_config("shared-store", "backup.toml"),
                      extra_args=common + ["--set", f'cluster.members=["127.0.0.1:'
                                                    f'{primary.cluster_port}"]'])
        self.addCleanup(backup.cleanup)
        backup.start()
        backup.wait_for_log("ha_waiting_for_live")
        out = run_first_message(primary.port)
        self.assertEqual(out.returncode, 0, out.stderr)

        # The failover client keeps sending across the kill; Ctrl-C (SIGINT) once the backup
        # has confirmed messages makes it drain and print its summary.
        client = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(EXAMPLES, "shared-store", "failover_client.py"),
             "--ports", f"{primary.port},{backup.port}", "--interval-ms", "10"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.addCleanup(client.stdout.close)
        self.addCleanup(lambda: client.poll() is None and client.kill())
        lines = Lines(client)
        lines.wait_for(lambda l: l.startswith("confirmed 5 via"), "5 confirmed messages")
        primary.kill()
        lines.wait_for(lambda l: l.startswith("confirmed ")
                       and l.split(" via ")[1].startswith(f"127.0.0.1:{backup.port}"),
                       "a message confirmed by the backup")
        client.send_signal(signal.SIGINT)
        lines.wait_for(lambda l: l.startswith("all ") and "confirmed messages received" in l,
                       "the summary saying every confirmed message came back")
        self.assertEqual(client.wait(timeout=DEFAULT_TIMEOUT), 0, "\n".join(lines.seen))
        self.assertTrue(any(l.startswith(f"connected to 127.0.0.1:{backup.port}")
                            for l in lines.seen), "\n".join(lines.seen))

        # The backup serves the first example as well, then stops cleanly.
        out = run_first_message(backup.port)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("received: hello from ActorMQ", out.stdout)
        backup.stop()


if __name__ == "__main__":
    unittest.main()
