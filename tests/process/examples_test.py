#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The examples a newcomer runs from the README work against a real node."""
import os
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from actormq_node import Node  # noqa: E402

SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class ExamplesTest(unittest.TestCase):
    def test_first_message_example_sends_and_receives_against_the_single_node_config(self):
        with open(os.path.join(SOURCE, "examples", "single-node.toml"), encoding="utf-8") as f:
            config = f.read()
        node = Node(config, extra_args=["--set", "acceptors.stomp.port=0"])
        node.start()
        try:
            out = subprocess.run(
                ["/usr/bin/python3", os.path.join(SOURCE, "examples", "first_message.py"),
                 str(node.port)],
                capture_output=True, text=True, timeout=30)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn("received: hello from ActorMQ", out.stdout)
        finally:
            node.stop()


if __name__ == "__main__":
    unittest.main()
