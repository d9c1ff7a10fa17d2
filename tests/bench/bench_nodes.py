# SPDX-License-Identifier: Apache-2.0
"""Node processes for the end-to-end benchmark scripts in this folder (sync_e2e.py,
colocated_e2e.py): start a node from a config text in its own directory, wait for a line in
its log, and read a log line's time."""
import os
import re
import subprocess
import time


def start(node, directory, text, wrap=()):
    """Writes `text` to DIRECTORY/node.toml and starts NODE there (optionally under `wrap`, a
    command prefix such as perf record), its output in DIRECTORY/node.log."""
    with open(os.path.join(directory, "node.toml"), "w") as f:
        f.write(text)
    log = open(os.path.join(directory, "node.log"), "w")
    return subprocess.Popen([*wrap, node, "--config", "node.toml"], cwd=directory, stdout=log,
                            stderr=subprocess.STDOUT)


def wait_log(directory, text, deadline_s=60, poll_s=0.002):
    """The first line of DIRECTORY/node.log holding `text`, once there is one."""
    path = os.path.join(directory, "node.log")
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        with open(path) as f:
            for line in f:
                if text in line:
                    return line
        time.sleep(poll_s)
    raise RuntimeError(f"{text} not in {path}")


def stamp(line):
    """Seconds of the day of a log line (2026-12-04T23:36:39.881 ...)."""
    m = re.match(r"\S+T(\d+):(\d+):(\d+)\.(\d+)", line)
    h, mi, s, ms = (int(x) for x in m.groups())
    return h * 3600 + mi * 60 + s + ms / 1000.0
