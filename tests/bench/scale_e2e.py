#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""How one node scales (docs/benchmarks.md, "Scale on one node"; issue 14 item 5).

Starts a live-only actormq-node with a durable journal in a temporary directory and measures,
one part after the other on the same node:
  idle         RSS of the node just started.
  connections  N idle STOMP connections (CONNECT, heart-beat 0,0), opened 200 at a time:
               RSS per connection, and the round trip of a fresh client's durable SEND with
               RECEIPT while they are open (the node still serves); then all closed and the
               RSS after.
  queues       Q anycast queues created by one client's SENDs (one 16-byte non-persistent
               message each, pipelined, a RECEIPT on the last): rate and RSS per queue; then
               one queue's message read back.
  consumers    C consumers (one connection each) on one queue and M persistent messages from
               one producer, with the shared kit's stompload: rate, exactly-once.
  sizes        one synchronous persistent SEND and its delivery for bodies of 1 B to 10 MiB
               (stompload, 1P/1C): rate in msg/s and MiB/s, and the node's peak RSS.
Every part prints one JSON line; --parts picks some. RSS is VmRSS from /proc (KiB -> bytes).

usage: scale_e2e.py NODE [--parts idle,connections,queues,consumers,sizes]
                    [--connections 10000] [--queues 100000] [--consumers 1000]
                    [--consumer-messages 20000] [--stompload PATH]
A benchmark, not a test: it reads /proc while the node works, which is a measurement.
"""
import argparse
import json
import os
import resource
import selectors
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "process"))
from actormq_node import Node  # noqa: E402

STOMPLOAD_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                             "shared", "bench", "stompload.cpp")


def rss(pid):
    """The process's resident set in bytes (VmRSS) and its peak (VmHWM)."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":")
                out[key] = int(value.split()[0]) * 1024
    return out["VmRSS"], out["VmHWM"]


def threads(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def config(journal_max_frame, log_level):
    return f"""name = "scale"
log-level = "{log_level}"
persistence-enabled = true
journal-directory = "journal"
max-auto-created-queues = 1000000
max-auto-created-addresses = 1000000
[acceptors.stomp]
protocol = "stomp"
port = 0
max-connections = 20000
max-frame-bytes = {journal_max_frame}
max-pending-output-bytes = 268435456
[web]
enabled = false
[security]
allow-anonymous = true
"""


def read_frame(sock, buf):
    """Reads until one whole frame (up to its NUL) is in `buf`; returns (frame, rest)."""
    while b"\0" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit(f"connection closed: {buf[:200]!r}")
        buf += chunk
    i = buf.index(b"\0")
    return buf[:i], buf[i + 1:].lstrip(b"\n")


def login(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"CONNECT\naccept-version:1.2\nhost:/\nheart-beat:0,0\n\n\0")
    frame, _ = read_frame(s, b"")
    if not frame.startswith(b"CONNECTED"):
        raise SystemExit(f"no CONNECTED: {frame[:200]!r}")
    return s


def durable_round_trip(port):
    """Seconds for a new client: connect, one persistent SEND with RECEIPT."""
    t0 = time.monotonic()
    s = login(port)
    s.sendall(b"SEND\ndestination:/queue/probe\npersistent:true\nreceipt:1\n\nprobe\0")
    frame, _ = read_frame(s, b"")
    if not frame.startswith(b"RECEIPT"):
        raise SystemExit(f"no RECEIPT: {frame[:200]!r}")
    s.close()
    return time.monotonic() - t0


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def part_connections(node, n):
    base, _ = rss(node.pid)
    base_fds = open_fds(node.pid)
    conns = []
    sel = selectors.DefaultSelector()
    t0 = time.monotonic()
    pending = {}
    batch = 200
    while len(conns) < n or pending:
        while len(conns) + len(pending) < n and len(pending) < batch:
            s = socket.create_connection(("127.0.0.1", node.port))
            s.sendall(b"CONNECT\naccept-version:1.2\nhost:/\nheart-beat:0,0\n\n\0")
            s.setblocking(False)
            pending[s] = b""
            sel.register(s, selectors.EVENT_READ)
        for key, _ in sel.select(timeout=30):
            s = key.fileobj
            data = s.recv(4096)
            if not data:
                raise SystemExit("a connection was closed during CONNECT")
            pending[s] += data
            if b"\0" in pending[s]:
                if not pending[s].startswith(b"CONNECTED"):
                    raise SystemExit(f"no CONNECTED: {pending[s][:200]!r}")
                sel.unregister(s)
                del pending[s]
                conns.append(s)
    opened = time.monotonic() - t0
    # Let the node settle its per-connection allocations before reading RSS.
    time.sleep(1.0)
    with_conns, _ = rss(node.pid)
    rtt = sorted(durable_round_trip(node.port) for _ in range(20))
    for s in conns:
        s.close()
    t1 = time.monotonic()
    # The node closes its side when it reads EOF: done once its descriptors are back to what
    # they were (a few may come and go: the journal, the probe's connection). RSS after that
    # shows what the allocator keeps.
    deadline = t1 + 60
    while open_fds(node.pid) > base_fds + 8:
        if time.monotonic() > deadline:
            raise SystemExit(f"the node still holds {open_fds(node.pid)} descriptors 60 s "
                             f"after the clients closed (had {base_fds})")
        time.sleep(0.01)  # the poll interval of this wait, not a synchronisation
    after, _ = rss(node.pid)
    return {"part": "connections", "connections": n, "open_seconds": round(opened, 2),
            "open_rate_per_s": round(n / opened), "rss_base": base, "rss_with": with_conns,
            "bytes_per_connection": round((with_conns - base) / n),
            "new_client_send_p50_ms": round(rtt[len(rtt) // 2] * 1000, 2),
            "new_client_send_max_ms": round(rtt[-1] * 1000, 2),
            "rss_after_close": after, "close_seconds": round(time.monotonic() - t1, 2),
            "threads": threads(node.pid)}


def part_queues(node, q):
    base, _ = rss(node.pid)
    s = login(node.port)
    t0 = time.monotonic()
    chunk = []
    for i in range(q):
        receipt = "receipt:last\n" if i == q - 1 else ""
        chunk.append(f"SEND\ndestination:/queue/scale-{i}\n{receipt}\nmessage-{i:08d}\0".encode())
        if len(chunk) == 500:
            s.sendall(b"".join(chunk))
            chunk = []
    s.sendall(b"".join(chunk))
    buf = b""
    while True:
        frame, buf = read_frame(s, buf)
        if frame.startswith(b"RECEIPT"):
            break
        if frame.startswith(b"ERROR"):
            raise SystemExit(f"ERROR while creating queues: {frame[:300]!r}")
    created = time.monotonic() - t0
    time.sleep(1.0)
    with_queues, _ = rss(node.pid)
    # One of them, read back: the queue exists and holds its message.
    s.sendall(f"SUBSCRIBE\nid:1\ndestination:/queue/scale-{q // 2}\n\n\0".encode())
    frame, buf = read_frame(s, buf)
    ok = frame.startswith(b"MESSAGE") and frame.endswith(f"message-{q // 2:08d}".encode())
    s.close()
    return {"part": "queues", "queues": q, "create_seconds": round(created, 2),
            "create_rate_per_s": round(q / created), "rss_base": base, "rss_with": with_queues,
            "bytes_per_queue": round((with_queues - base) / q), "read_back_ok": ok,
            "read_back": "" if ok else frame[:200].decode(errors="replace"),
            "threads": threads(node.pid)}


def stompload(path, port, **opts):
    args = [path, "--port", str(port)]
    for k, v in opts.items():
        args += ["--" + k, str(v)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=1800)
    line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else "{}"
    result = json.loads(line)
    result["exit_code"] = out.returncode
    return result


def part_consumers(node, c, m, tool):
    base, _ = rss(node.pid)
    r = stompload(tool, node.port, producers=1, consumers=c, size=1024, count=m, persistent=1,
                  receipt=1, inflight=64, ack="client-individual", prefetch=10,
                  dest="/queue/fan", idle=60)
    _, peak = rss(node.pid)
    return {"part": "consumers", "consumers": c, "messages": m, "rate": r.get("msgs_per_s"),
            "e2e_p50_us": (r.get("e2e_us") or {}).get("p50"),
            "lost": r.get("lost"), "duplicates": r.get("duplicates"),
            "errors": r.get("errors"), "exit_code": r["exit_code"], "rss_base": base,
            "rss_peak": peak, "threads": threads(node.pid)}


def part_sizes(node, tool):
    rows = []
    for size, count in ((1, 5000), (1024, 5000), (65536, 2000), (1 << 20, 200),
                        (10 << 20, 20)):
        r = stompload(tool, node.port, producers=1, consumers=1, size=size, count=count,
                      persistent=1, receipt=1, ack="client-individual", prefetch=4,
                      dest=f"/queue/size-{size}", idle=60)
        _, peak = rss(node.pid)
        rate = r.get("msgs_per_s") or 0
        rows.append({"size": size, "count": count, "rate": rate,
                     "mib_per_s": round(rate * size / (1 << 20), 1),
                     "receipt_p50_us": (r.get("receipt_rtt_us") or {}).get("p50"),
                     "e2e_p50_us": (r.get("e2e_us") or {}).get("p50"), "lost": r.get("lost"),
                     "duplicates": r.get("duplicates"), "exit_code": r["exit_code"],
                     "rss_peak": peak})
    return {"part": "sizes", "rows": rows}


def build_stompload(path):
    if os.path.exists(path):
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    subprocess.run(["g++", "-O2", "-std=c++17", "-pthread", "-o", path, STOMPLOAD_SRC],
                   check=True)
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("node")
    ap.add_argument("--parts", default="idle,connections,queues,consumers,sizes")
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--queues", type=int, default=100000)
    ap.add_argument("--consumers", type=int, default=1000)
    ap.add_argument("--consumer-messages", type=int, default=20000)
    ap.add_argument("--stompload", default="/tmp/actormq-bench/stompload")
    ap.add_argument("--log-level", default="warn")
    ap.add_argument("--keep-log", help="copy the node's log here at the end")
    a = ap.parse_args()
    parts = a.parts.split(",")
    # The client side needs a descriptor per connection too.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.connections + a.consumers + 1024
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    node = Node(config(11 << 20, a.log_level), binary=a.node)
    node.start()
    try:
        if "idle" in parts:
            time.sleep(1.0)
            now, peak = rss(node.pid)
            print(json.dumps({"part": "idle", "rss": now, "rss_peak": peak,
                              "threads": threads(node.pid)}), flush=True)
        if "connections" in parts:
            print(json.dumps(part_connections(node, a.connections)), flush=True)
        if "queues" in parts:
            print(json.dumps(part_queues(node, a.queues)), flush=True)
        tool = None
        if "consumers" in parts or "sizes" in parts:
            tool = build_stompload(a.stompload)
        if "consumers" in parts:
            print(json.dumps(part_consumers(node, a.consumers, a.consumer_messages, tool)),
                  flush=True)
        if "sizes" in parts:
            print(json.dumps(part_sizes(node, tool)), flush=True)
    finally:
        if not node.running():
            print(node.describe(), file=sys.stderr)
        t0 = time.monotonic()
        try:
            node.stop(timeout=120)
            stuck = [line for line in node.log_text().splitlines()
                     if "node_stop_stuck" in line or "io_threads_busy" in line]
            print(json.dumps({"part": "stop", "seconds": round(time.monotonic() - t0, 2),
                              "stuck": stuck}), flush=True)
        except AssertionError as e:
            print(f"stop: {e}", file=sys.stderr)
        if a.keep_log:
            with open(a.keep_log, "w") as f:
                f.write(node.log_text())


if __name__ == "__main__":
    main()
