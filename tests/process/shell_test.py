# SPDX-License-Identifier: Apache-2.0
"""actormq-shell against real nodes (docs/shell.md): usage lines, FILE:LINE syntax errors,
failed checks, cluster credentials, child processes, and the interactive readline shell.

    ACTORMQ_NODE=build/actormq-node ACTORMQ_SHELL=build/actormq-shell \\
        /usr/bin/python3 tests/process/shell_test.py -v

Every wait has a deadline: the shell's own (--timeout), subprocess timeouts, and select() on
the pseudo-terminal. The scenario scripts in examples/scenarios/ run as their own ctest
entries (scenario.*).
"""

import os
import pty
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from actormq_node import DEFAULT_TIMEOUT, Node, node_binary, wait_until  # noqa: E402

# A live-only node without a journal; with CLUSTER it also has a cluster port (management).
NODE_CONFIG = """\
name = "shelltest"
persistence-enabled = false
cluster-user = "actormq-cluster"
cluster-password = "secret"
[acceptors.stomp]
port = 0
[acceptors.native]
protocol = "native"
port = 0
[security]
allow-anonymous = false
[security.users.guest]
password = "guest"
[web]
port = 0
"""
CLUSTER = """\
[cluster]
port = 0
"""
RUN_TIMEOUT = 120  # seconds one shell run may take


def shell_binary():
    """The shell to test: $ACTORMQ_SHELL, else actormq-shell next to $ACTORMQ_NODE."""
    path = os.environ.get("ACTORMQ_SHELL") or os.path.join(
        os.path.dirname(node_binary()), "actormq-shell")
    if not os.access(path, os.X_OK):
        raise AssertionError(f"no actormq-shell at {path}; set ACTORMQ_SHELL")
    return os.path.abspath(path)  # the tests run the shell in their own directories


def pid_gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


class ShellTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="actormq-shell-test-")
        self.dir = self.tmp.name
        with open(os.path.join(self.dir, "node.toml"), "w") as f:
            f.write(NODE_CONFIG)
        with open(os.path.join(self.dir, "cluster.toml"), "w") as f:
            f.write(NODE_CONFIG + CLUSTER)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ACTORMQ_CLUSTER")}
        self.env["ACTORMQ_NODE"] = node_binary()

    def tearDown(self):
        self.tmp.cleanup()

    def write_script(self, text, name="test.amqsh"):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def run_shell(self, args, stdin=None):
        return subprocess.run([shell_binary(), *args], input=stdin, capture_output=True,
                              text=True, timeout=RUN_TIMEOUT, env=self.env, cwd=self.dir)

    def run_script(self, text):
        path = self.write_script(text)
        return path, self.run_shell(["--script", path])

    # -- command line and syntax -----------------------------------------------------------

    def test_bad_command_line_argument_prints_the_usage_line(self):
        r = self.run_shell(["--frobnicate"])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("unknown or incomplete argument '--frobnicate'", r.stderr)
        self.assertIn("usage: actormq-shell [--script FILE]", r.stderr)
        r = self.run_shell(["--script"])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("usage: actormq-shell", r.stderr)

    def test_unreadable_script_prints_the_usage_line(self):
        r = self.run_shell(["--script", os.path.join(self.dir, "missing.amqsh")])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("cannot read", r.stderr)
        self.assertIn("usage: actormq-shell", r.stderr)

    def test_command_with_bad_arguments_names_file_and_line_and_prints_usage(self):
        path, r = self.run_script("echo first line ran\n\n# a comment\nsend a orders\n")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(f"{path}:4: syntax error: send: wrong number of arguments", r.stderr)
        self.assertIn("usage: send NODE DESTINATION COUNT", r.stderr)
        self.assertNotIn("first line ran", r.stdout, "a script with a syntax error must not run")

    def test_unknown_command_unknown_option_and_open_quote_name_file_and_line(self):
        cases = [
            ("echo x\nfrobnicate now\n", 2, "unknown command 'frobnicate'"),
            ("stop a --force\n", 1, "stop: unknown option '--force'"),
            ('echo x\necho x\necho "open\n', 3, "unterminated quote"),
            ("wait role a\n", 1, "condition 'role' takes role NODE ROLE"),
            ("assert colour a red\n", 1, "unknown condition 'colour'"),
            ("start a cfg.toml --timeout\n", 1, "option '--timeout' needs a value"),
        ]
        for text, line, message in cases:
            with self.subTest(text=text):
                path, r = self.run_script(text)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(f"{path}:{line}: syntax error: ", r.stderr)
                self.assertIn(message, r.stderr)

    def test_bad_value_found_while_running_names_file_and_line_and_usage(self):
        path, r = self.run_script("echo ok\nwait gone a --timeout soon\n")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(f"{path}:2: error: bad --timeout 'soon'", r.stderr)
        self.assertIn("usage: wait CONDITION", r.stderr)
        path, r = self.run_script("echo ${NO_SUCH_VARIABLE_HERE}\n")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(f"{path}:1: error: unknown variable ${{NO_SUCH_VARIABLE_HERE}}", r.stderr)

    # -- checks ----------------------------------------------------------------------------

    def test_failing_assert_exits_1_and_the_node_is_killed(self):
        path, r = self.run_script(
            "start a node.toml\n"
            "echo pid=${a.pid}\n"
            "assert gone a\n"
            "echo not reached\n")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(f"{path}:3: error: assert failed: a still runs", r.stderr)
        self.assertNotIn("not reached", r.stdout)
        pid = int(re.search(r"pid=(\d+)", r.stdout).group(1))
        self.assertTrue(pid_gone(pid), "the shell left its node running")

    def test_wait_that_times_out_exits_1_with_file_and_line(self):
        path, r = self.run_script("start a node.toml\nwait gone a --timeout 300ms\n")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertRegex(r.stderr, re.escape(f"{path}:2: error: wait timed out after ") + r"\d+ ms")

    def test_assert_on_an_unknown_node_fails(self):
        path, r = self.run_script("assert role nobody live\n")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(f"{path}:1: error: assert failed: no node called 'nobody'", r.stderr)

    def test_send_receive_stop_and_gone_against_a_node(self):
        _, r = self.run_script(
            "stomp-login guest guest\n"
            "start a node.toml\n"
            "send a /queue/work 50 --receipts --dup-ids w\n"
            "receive a /queue/work 50 --unique --timeout 10s\n"
            "stop a\n"
            "assert gone a\n")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("sent 50 message(s) to /queue/work on a", r.stdout)
        self.assertIn("received 50 message(s) from /queue/work on a (50 distinct)", r.stdout)
        self.assertIn("stopped a (exit code 0)", r.stdout)

    def test_native_send_and_receive_meet_stomp_on_the_same_queues(self):
        _, r = self.run_script(
            "stomp-login guest guest\n"
            "start a node.toml\n"
            "send a /queue/n2s 30 --receipts --dup-ids n --native\n"
            "send a /queue/s2n 20 --receipts\n"
            "receive a /queue/n2s all --unique --timeout 10s\n"
            "receive a /queue/s2n 20 --unique --native --timeout 10s\n"
            "send a /topic/t 1 --native\n")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("sent 30 message(s) to /queue/n2s on a (native)", r.stdout)
        self.assertIn("received 30 message(s) from /queue/n2s on a (30 distinct)", r.stdout)
        self.assertIn("received 20 message(s) from /queue/s2n on a (20 distinct)", r.stdout)
        self.assertIn("--native sends to queues only (/topic/t is a topic)", r.stderr)

    def test_receive_that_misses_its_deadline_fails(self):
        path, r = self.run_script(
            "stomp-login guest guest\nstart a node.toml\nreceive a empty 1 --timeout 200ms\n")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(f"{path}:3: error: receive from a: received 0 of 1: timed out", r.stderr)

    def test_wrong_stomp_login_is_reported(self):
        _, r = self.run_script("stomp-login guest nope\nstart a node.toml\nsend a q 1\n")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("login refused: authentication failed", r.stderr)

    # -- management credentials --------------------------------------------------------------

    def test_management_is_refused_without_credentials(self):
        path, r = self.run_script("start a cluster.toml\nassert up a\n")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("note: a not managed: no cluster credentials", r.stdout)
        self.assertIn(f"{path}:2: error: assert failed: no cluster credentials", r.stderr)

    def test_management_is_refused_with_wrong_credentials(self):
        path, r = self.run_script("login actormq-cluster wrong\nstart a cluster.toml\n")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(f"{path}:2: error: management of a: refused: bad cluster credentials",
                      r.stderr)

    def test_management_with_credentials_from_the_environment_shows_the_role(self):
        self.env["ACTORMQ_CLUSTER_USER"] = "actormq-cluster"
        self.env["ACTORMQ_CLUSTER_PASSWORD"] = "secret"
        _, r = self.run_script(
            "stomp-login guest guest\n"
            "start a cluster.toml\n"
            "wait role a live --timeout 10s\n"
            "send a orders 7 --receipts\n"
            "wait depth a orders 7 --timeout 10s\n"
            "nodes\n"
            "queues a\n"
            "events a\n"
            "stop a --timeout 10s\n"
            "assert gone a\n")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("stopped a (exit code 0)", r.stdout)
        self.assertRegex(r.stdout, r"\n +1 \S+ started ")
        self.assertRegex(r.stdout, r"\na +\d+ +running .* live ")
        self.assertRegex(r.stdout, r"\na +shelltest +orders +anycast +7 ")

    def test_connect_manages_a_node_the_shell_did_not_start(self):
        with Node(NODE_CONFIG + CLUSTER) as node:
            address = f"127.0.0.1:{node.cluster_port}"
            _, r = self.run_script(
                "login actormq-cluster secret\n"
                "stomp-login guest guest\n"
                f"connect far {address} --stomp {node.port}\n"
                "wait role far live --timeout 10s\n"
                "send far /queue/remote 3 --receipts\n"
                "wait depth far remote 3 --timeout 10s\n"
                "receive far /queue/remote 3\n"
                "wait depth far remote 0 --timeout 10s\n"
                "assert up far\n")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn(f"connected to far at {address}", r.stdout)
            self.assertTrue(node.running(), "the shell must leave a node it did not start alone")
            path, r = self.run_script(f"login actormq-cluster wrong\nconnect far {address}\n")
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn(f"{path}:2: error: management of far: refused: bad cluster credentials",
                          r.stderr)
            self.assertIn("management_refused", node.log_text())

    # -- faults and the verdict ---------------------------------------------------------------

    def test_freeze_stops_a_node_until_thaw(self):
        path, r = self.run_script(
            "stomp-login guest guest\n"
            "start a node.toml\n"
            "freeze a\n"
            "nodes\n"
            "send a q 1 --receipts --timeout 1s\n")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("froze a (pid", r.stdout)
        self.assertRegex(r.stdout, r"\na +\d+ +frozen \(SIGSTOP\)")
        self.assertIn(f"{path}:5: error: send to a: 0 of 1 sent", r.stderr)
        _, r = self.run_script(
            "stomp-login guest guest\n"
            "start a node.toml\n"
            "freeze a\n"
            "thaw a\n"
            "send a q 1 --receipts --timeout 10s\n"
            "freeze a\n"
            "stop a --timeout 10s\n")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("thawed a", r.stdout)
        self.assertIn("stopped a (exit code 0)", r.stdout)
        path, r = self.run_script("start a node.toml\nthaw a\n")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(f"{path}:2: error: a is not frozen", r.stderr)

    def test_partition_cuts_a_cluster_link_and_heal_restores_it(self):
        path, r = self.run_script(
            "login actormq-cluster secret\n"
            "start a cluster.toml --set name=a\n"
            "start b cluster.toml --set name=b --set cluster.members=['127.0.0.1:${a.cluster}']\n"
            "wait log a \"cluster_member_joined name=b\" --timeout 10s\n"
            "links\n"
            "partition a b\n"
            "wait log a \"cluster_member_left name=b\" --timeout 10s\n"
            "wait log b \"cluster_member_left name=a\" --timeout 10s\n"
            "assert up a\n"
            "heal\n"
            "wait log a \"cluster_member_joined name=b\" --count 2 --timeout 10s\n"
            "partition a a\n")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"cluster link b -> a \(127\.0\.0\.1:\d+\) through proxy")
        self.assertRegex(r.stdout, r"\nb +a +\d+ +\d+ +open +1\n")
        self.assertIn("cut 1 link(s) between a and b", r.stdout)
        self.assertIn("healed 1 link(s)", r.stdout)
        self.assertIn(f"{path}:12: error: partition needs two different nodes", r.stderr)
        # Without a member list, there is no link to cut; --no-proxy leaves a node's links alone.
        path, r = self.run_script(
            "start a cluster.toml --set name=a\n"
            "start b cluster.toml --set name=b --set cluster.members=['127.0.0.1:${a.cluster}'] "
            "--no-proxy\n"
            "links\n"
            "partition a b\n")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("no proxied cluster links", r.stdout)
        self.assertIn(f"{path}:4: error: b was started with --no-proxy", r.stderr)

    def test_wait_log_counts_lines_and_stops_at_once_when_the_node_exited(self):
        path, r = self.run_script(
            "start a node.toml\n"
            "wait log a node_started --timeout 10s\n"
            "assert log a node_started --count 1\n"
            "kill a\n"
            "wait log a node_started --count 2 --timeout 60s\n")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertRegex(r.stderr, re.escape(f"{path}:5: error: wait failed: the log of a has 1 "
                                             "line(s) with 'node_started', expected at least 2"))
        path, r = self.run_script("start a node.toml\nwait depth a q 0 --count 2\n")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn(f"{path}:2: syntax error: wait: --count belongs to the condition 'log'",
                      r.stderr)

    def test_verdict_counts_confirmed_messages_that_were_lost(self):
        # node.toml keeps no journal: what it confirmed is gone after a kill.
        path, r = self.run_script(
            "stomp-login guest guest\n"
            "start a node.toml\n"
            "send a q 5 --receipts --dup-ids q\n"
            "kill a\n"
            "restart a\n"
            "receive a q all --timeout 10s\n"
            "verdict\n")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("received 0 message(s) from q on a", r.stdout)
        self.assertRegex(r.stdout, r"\nq +5 +5 +0 +5 +0 +0\n")
        self.assertIn(f"{path}:7: error: verdict failed: q: 5 lost (e.g. 'message 1')", r.stderr)

    def test_verdict_counts_messages_no_send_of_this_shell_wrote(self):
        journal = os.path.join(self.dir, "journal")
        start = (f"start a node.toml --set persistence-enabled=true "
                 f"--set journal-directory={journal}\n")
        _, r = self.run_script("stomp-login guest guest\n" + start
                               + "send a /queue/q 2 --persistent --receipts\n")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        path, r = self.run_script("stomp-login guest guest\n" + start
                                  + "receive a q all --timeout 10s\nverdict q\n")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(f"{path}:4: error: verdict failed: q: 2 unexpected (e.g. 'message 1')",
                      r.stderr)
        path, r = self.run_script("verdict\n")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(f"{path}:1: error: nothing to judge", r.stderr)

    # -- process handling and interactive use ----------------------------------------------

    def test_sigterm_to_the_shell_kills_its_nodes(self):
        path = self.write_script("start a node.toml\necho pid=${a.pid}\nwait gone a --timeout 2m\n")
        proc = subprocess.Popen([shell_binary(), "--script", path], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=self.env, cwd=self.dir)
        try:
            pid = None
            deadline = time.monotonic() + DEFAULT_TIMEOUT
            while pid is None and time.monotonic() < deadline:
                line = proc.stdout.readline()
                m = re.match(r"pid=(\d+)", line)
                pid = int(m.group(1)) if m else None
                self.assertTrue(line, "the shell ended before starting its node")
            self.assertIsNotNone(pid)
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=DEFAULT_TIMEOUT), 128 + signal.SIGTERM)
            wait_until(lambda: pid_gone(pid), what=f"node pid {pid} to be gone")
        finally:
            proc.kill()
            proc.wait()
            proc.stdout.close()
            proc.stderr.close()

    def test_commands_from_a_pipe_run_as_a_script(self):
        r = self.run_shell([], stdin="echo piped\nassert gone nobody\n")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("piped", r.stdout)
        self.assertIn("<stdin>:2: error: assert failed", r.stderr)

    def test_interactive_shell_edits_lines_and_keeps_going_after_an_error(self):
        env = dict(self.env, HOME=self.dir, TERM="dumb")
        binary = shell_binary()
        pid, fd = pty.fork()
        if pid == 0:
            try:
                os.chdir(self.dir)
                os.execve(binary, [binary], env)
            finally:
                os._exit(127)  # never run the rest of the suite in the child
        try:
            out = self._pty_expect(fd, "actormq> ", b"")
            # Ctrl-A and Ctrl-K are readline editing: the typed "junk" is cut before running.
            os.write(fd, b"junk\x01\x0becho hello there\r")
            out = self._pty_expect(fd, "hello there", out)
            os.write(fd, b"frobnicate\r")
            out = self._pty_expect(fd, "unknown command 'frobnicate'", out)
            os.write(fd, b"send\r")
            out = self._pty_expect(fd, "usage: send NODE DESTINATION COUNT", out)
            os.write(fd, b"quit\r")
            _, status = os.waitpid(pid, 0)
            pid = 0
            self.assertTrue(os.WIFEXITED(status))
            with open(os.path.join(self.dir, ".actormq_shell_history")) as f:
                self.assertIn("echo hello there", f.read())
        finally:
            if pid:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            os.close(fd)

    def test_management_answers_after_a_quiet_spell_longer_than_the_connection_timeout(self):
        # The node drops a cluster connection silent for connection-timeout-ms; the shell's
        # heart-beats keep its management link up. A failed command does not end an interactive
        # session, so a `wait` that runs out makes the quiet spell (no sleep in the test).
        with open(os.path.join(self.dir, "quick.toml"), "w") as f:
            f.write(NODE_CONFIG + CLUSTER + "heartbeat-interval-ms = 50\n"
                    "connection-timeout-ms = 150\n")
        env = dict(self.env, HOME=self.dir, TERM="dumb", ACTORMQ_CLUSTER_USER="actormq-cluster",
                   ACTORMQ_CLUSTER_PASSWORD="secret")
        binary = shell_binary()
        pid, fd = pty.fork()
        if pid == 0:
            try:
                os.chdir(self.dir)
                os.execve(binary, [binary], env)
            finally:
                os._exit(127)  # never run the rest of the suite in the child
        try:
            out = self._pty_expect(fd, "actormq> ", b"")
            os.write(fd, b"start a quick.toml\r")
            out = self._pty_expect(fd, "started a", out)
            os.write(fd, b"assert up a\r")
            out = self._pty_expect(fd, "ok: a answers", out)
            # A child's `gone` is a process check: 800 ms without a word to its management.
            os.write(fd, b"wait gone a --timeout 800ms\r")
            out = self._pty_expect(fd, "wait timed out", out)
            os.write(fd, b"assert up a\r")
            os.write(fd, b"echo ${a.host}-done\r")
            # The typed line shows ${a.host}; only the echo's output has the address, and all
            # the assert printed comes before it.
            self._pty_expect(fd, "127.0.0.1-done", out)
            self.assertNotIn(b"assert failed", self._pty_before)
            self.assertIn(b"ok: a answers", self._pty_before)
            os.write(fd, b"quit\r")
            os.waitpid(pid, 0)
            pid = 0
        finally:
            if pid:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            os.close(fd)

    def _pty_expect(self, fd, text, seen):
        """Reads until `text` arrived; returns what followed it, and keeps what came before it
        (from `seen` on) in self._pty_before."""
        deadline = time.monotonic() + DEFAULT_TIMEOUT
        while text.encode() not in seen:
            left = deadline - time.monotonic()
            self.assertGreater(left, 0, f"no '{text}' from the shell; got {seen!r}")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    chunk = b""
                self.assertTrue(chunk, f"the shell closed its terminal; got {seen!r}")
                seen += chunk
        self._pty_before = seen[:seen.index(text.encode())]
        return seen[seen.index(text.encode()) + len(text):]


if __name__ == "__main__":
    unittest.main()
