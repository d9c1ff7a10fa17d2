# SPDX-License-Identifier: Apache-2.0
"""Starts and stops one real actormq-node for Python process tests.

The node runs in its own temporary directory: its config is DIR/node.toml, it writes the ports
it bound to DIR/ports.json (`{"stomp": PORT}`, written atomically once it listens) and its
output goes to DIR/node.log. Every wait polls a condition against a deadline.

    with Node(CONFIG) as node:
        connect_to(("127.0.0.1", node.port))
"""

import json
import queue
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time

DEFAULT_TIMEOUT = 10.0  # seconds any one wait may take before it counts as a failure
POLL_INTERVAL = 0.01


class NodeError(AssertionError):
    """The node did not start, did not stop, or stopped with a non-zero exit code."""


def wait_until(condition, timeout=DEFAULT_TIMEOUT, what="condition"):
    """Polls `condition()` until it returns a true value, which is returned.

    Raises AssertionError naming `what` when `timeout` seconds pass first; `what` may be a
    callable, evaluated then, so the message can show the state that was reached.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {text}")
        time.sleep(POLL_INTERVAL)


def node_binary():
    """The actormq-node to test, from $ACTORMQ_NODE."""
    path = os.environ.get("ACTORMQ_NODE", "")
    if not path:
        raise NodeError("ACTORMQ_NODE is not set; point it at the actormq-node binary")
    if not os.access(path, os.X_OK):
        raise NodeError(f"ACTORMQ_NODE={path} is not an executable file")
    return os.path.abspath(path)  # nodes run in their own directories


class Node:
    """One actormq-node process with its own directory, config, ports file and log."""

    def __init__(self, config_toml, binary=None, extra_args=()):
        self.config_toml = config_toml
        self.binary = binary or node_binary()
        self.extra_args = list(extra_args)
        self._tmp = None
        self.dir = None
        self.proc = None
        self.ports = None
        self._log_file = None

    # -- paths -----------------------------------------------------------------------------

    @property
    def config_path(self):
        return os.path.join(self.dir, "node.toml")

    @property
    def ports_path(self):
        return os.path.join(self.dir, "ports.json")

    @property
    def log_path(self):
        return os.path.join(self.dir, "node.log")

    @property
    def port(self):
        """The port of the acceptor named "stomp"."""
        return self.ports["stomp"]

    @property
    def cluster_port(self):
        """The cluster port from the ports file (nodes with a [cluster] table only)."""
        return self.ports["cluster"]

    @property
    def pid(self):
        return None if self.proc is None else self.proc.pid

    def running(self):
        """Whether the process is still alive."""
        return self.proc is not None and self.proc.poll() is None

    def accepts_connections(self, port=None):
        """Whether a TCP connect to the STOMP port (or `port`) succeeds right now.

        A passive HA backup binds its port without listening, so this is False until it serves.
        """
        try:
            with socket.create_connection(("127.0.0.1", port or self.port), timeout=1.0):
                return True
        except OSError:
            return False

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, timeout=DEFAULT_TIMEOUT):
        """Starts the node and waits until it has written its ports file. Returns self."""
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="actormq-node-")
            self.dir = self._tmp.name
        with open(self.config_path, "w", encoding="utf-8") as f:
            f.write(self.config_toml)
        if os.path.exists(self.ports_path):
            os.remove(self.ports_path)  # a restart must not read the previous run's ports
        self._log_file = open(self.log_path, "ab")
        args = [self.binary, "--config", self.config_path,
                "--set", f"ports-file={self.ports_path}", "--set", "web.port=0",
                *self.extra_args]
        self.proc = subprocess.Popen(args, cwd=self.dir, stdin=subprocess.DEVNULL,
                                     stdout=self._log_file, stderr=subprocess.STDOUT)
        try:
            self.ports = wait_until(self._read_ports, timeout, "the node's ports file")
        except NodeError:
            self.kill()
            raise
        except AssertionError as e:
            self.kill()
            raise NodeError(f"node did not start: {e}\n{self.describe()}") from None
        return self

    def _read_ports(self):
        if self.proc.poll() is not None:
            raise NodeError(f"node exited with code {self.proc.returncode} before it "
                            f"listened\n{self.describe()}")
        try:
            with open(self.ports_path, encoding="utf-8") as f:
                return json.load(f)
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def stop(self, timeout=DEFAULT_TIMEOUT):
        """Sends SIGTERM and waits for the node to exit with code 0."""
        if self.proc is None or self.proc.poll() is not None:
            return self._finish(expect_zero=self.proc is not None)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise NodeError(f"node did not exit within {timeout:.1f}s of SIGTERM "
                            f"(killed it)\n{self.describe()}") from None
        self._finish(expect_zero=True)

    def kill(self, timeout=DEFAULT_TIMEOUT):
        """Sends SIGKILL and reaps the process."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=timeout)
        self._finish(expect_zero=False)

    def _finish(self, expect_zero):
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if expect_zero and self.proc.returncode != 0:
            raise NodeError(f"node exited with code {self.proc.returncode}, expected 0\n"
                            f"{self.describe()}")

    def cleanup(self):
        """Kills the node if it still runs and removes its directory."""
        if self.proc is not None and self.proc.poll() is None:
            self.kill()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.stop()
            else:
                print(self.describe(), flush=True)
        finally:
            self.cleanup()
        return False

    # -- diagnostics -----------------------------------------------------------------------

    def log_tail(self, lines=40):
        """The last `lines` lines of the node's output."""
        if self.dir is None or not os.path.exists(self.log_path):
            return "(no log)"
        with open(self.log_path, "rb") as f:
            text = f.read().decode("utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def log_text(self):
        """Everything the node has written so far (all its runs in this directory)."""
        if self.dir is None or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", errors="replace")

    def log_mark(self):
        """A position in the log; pass it to wait_for_log to look only at later lines."""
        return len(self.log_text())

    def wait_for_log(self, text, since=0, timeout=DEFAULT_TIMEOUT):
        """Waits until `text` appears in the log after position `since`; returns the line."""
        def find():
            log = self.log_text()[since:]
            at = log.find(text)
            if at < 0:
                return None
            start = log.rfind("\n", 0, at) + 1
            end = log.find("\n", at)
            return log[start:end if end >= 0 else len(log)]
        return wait_until(find, timeout,
                          lambda: f"{text!r} in the log\n{self.describe()}")

    def describe(self, lines=40):
        rc = None if self.proc is None else self.proc.poll()
        state = "running" if self.proc is not None and rc is None else f"exit code {rc}"
        return (f"--- actormq-node ({state}), last {lines} lines of {self.log_path} ---\n"
                f"{self.log_tail(lines)}\n--- end of node log ---")


def run_within(fn, what, timeout=DEFAULT_TIMEOUT):
    """Runs fn() in a helper thread and returns its result, or re-raises what it raised.

    stomp.py's blocking calls (connect with wait=True) have no deadline of their own.
    """
    outcome = {}

    def target():
        try:
            outcome["value"] = fn()
        except BaseException as e:  # handed to the caller
            outcome["error"] = e

    t = threading.Thread(target=target, name=f"run_within:{what}", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


class Lines:
    """The output of a child process, line by line, read with deadlines; `echo` prints each
    line as it is read."""

    def __init__(self, proc, echo=False):
        self.proc = proc
        self.echo = echo
        self.seen = []
        self._queue = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, predicate, what, timeout=DEFAULT_TIMEOUT * 3):
        """Returns the first new line for which predicate(line) holds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                line = None
            if line is None:  # the deadline passed or the process closed its output
                raise AssertionError(f"no line with {what}; output so far:\n"
                                     + "\n".join(self.seen))
            self.seen.append(line)
            if self.echo:
                print(line, flush=True)
            if predicate(line):
                return line
