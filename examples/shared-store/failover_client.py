#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A client that keeps going when the live server dies (stomp.py, Debian's python3-stomp).

It knows both servers of the pair (a host list), sends numbered persistent messages one at a
time and consumes them on the same connection. Each SEND carries a receipt and an
`_AMQ_DUPL_ID`, so when the connection drops before the RECEIPT came, the client reconnects to
whichever server now serves, subscribes again and resends the message with the same id: if the
dead live had stored it already, the new live knows the id (it is in the shared journal) and
stores it only once. docs/ha.md, "What clients do", explains each step.

Usage: /usr/bin/python3 examples/shared-store/failover_client.py [--ports 61613,61614]
           [--count N] [--interval-ms MS] [--queue NAME]

Ctrl-C (SIGINT) stops sending; the client then waits until every confirmed message came back,
prints a summary and exits 0 when none is missing.
"""
import argparse
import collections
import signal
import sys
import threading
import time
import uuid

import stomp
from stomp.exception import ConnectFailedException, NotConnectedException

RECEIPT_TIMEOUT = 10.0  # seconds without a RECEIPT before the connection counts as lost
DRAIN_TIMEOUT = 10.0    # seconds the client waits at the end for the confirmed messages


def say(text):
    print(text, flush=True)


class Listener(stomp.ConnectionListener):
    """What the current connection has seen; the main thread waits on `cv`."""

    def __init__(self, conn, run_id):
        self.cv = threading.Condition()
        self.conn = conn
        self.run_id = run_id
        self.connected_frame = None
        # stomp.py runs one receiver thread per connection; it ends when the connection does.
        self.loops_ended = 0
        self.receipts = set()
        self.received = collections.Counter()  # seq -> deliveries of this run's messages
        self.redelivered = 0
        self.older = 0  # messages left on the queue by earlier runs

    def _change(self, fn):
        with self.cv:
            fn()
            self.cv.notify_all()

    def on_connected(self, frame):
        self._change(lambda: setattr(self, "connected_frame", frame))

    def on_receiver_loop_completed(self, frame):
        self._change(lambda: setattr(self, "loops_ended", self.loops_ended + 1))

    def on_receipt(self, frame):
        self._change(lambda: self.receipts.add(frame.headers.get("receipt-id")))

    def on_error(self, frame):
        say(f"ERROR from the server: {frame.headers.get('message')}")

    def on_message(self, frame):
        headers = frame.headers
        try:
            self.conn.ack(headers["ack"])
        except (NotConnectedException, OSError):
            pass  # the connection is gone; the message will be delivered again
        with self.cv:
            if headers.get("demo-run") != self.run_id:
                self.older += 1
            else:
                self.received[int(headers["seq"])] += 1
                self.redelivered += headers.get("redelivered") == "true"
            self.cv.notify_all()


class FailoverClient:
    def __init__(self, ports, queue_name):
        self.hosts = [("127.0.0.1", p) for p in ports]
        self.destination = f"/queue/{queue_name}"
        self.run_id = uuid.uuid4().hex[:8]
        # Attempts count per address; with two addresses this gives up after about 30 s.
        self.conn = stomp.Connection12(self.hosts, reconnect_sleep_initial=0.1,
                                       reconnect_sleep_increase=0.5, reconnect_sleep_max=0.5,
                                       reconnect_attempts_max=120)
        self.listener = Listener(self.conn, self.run_id)
        self.conn.set_listener("failover-demo", self.listener)
        self.node_ids = []
        self.reconnects = 0
        self.generation = 0  # loops_ended while the current connection is up

    def lost(self):
        return self.listener.loops_ended > self.generation

    def connect(self):
        """Connects to the first address of the host list that accepts, and subscribes."""
        with self.listener.cv:
            self.generation = self.listener.loops_ended
            self.listener.connected_frame = None
        self.conn.connect("guest", "guest", wait=True)
        headers = self.listener.connected_frame.headers
        host, port = self.conn.transport.current_host_and_port
        node_id = headers.get("node-id", "(none)")
        self.node_ids.append(node_id)
        say(f"connected to {host}:{port}  node-id={node_id}  "
            f"backup-connector={headers.get('backup-connector', '(none)')}")
        # A subscription belongs to its connection: after a failover it must be made again.
        receipt = f"sub-{self.run_id}-{len(self.node_ids)}"
        self.conn.subscribe(destination=self.destination, id="demo", ack="client-individual",
                            headers={"receipt": receipt})
        self.wait_receipt(receipt)

    def reconnect(self):
        """Closes what is left of the connection and connects again over the host list."""
        self.reconnects += 1
        say(f"connection lost; reconnecting over {[p for _, p in self.hosts]}")
        with self.listener.cv:
            if not self.lost():
                self.conn.transport.disconnect_socket()
            # The old receiver thread must be gone before stomp.py starts a new one.
            self.listener.cv.wait_for(self.lost, RECEIPT_TIMEOUT)
        self.connect()

    def wait_receipt(self, receipt):
        """True once `receipt` arrived; False when the connection was lost or timed out."""
        with self.listener.cv:
            self.listener.cv.wait_for(
                lambda: receipt in self.listener.receipts or self.lost(), RECEIPT_TIMEOUT)
            return receipt in self.listener.receipts

    def send(self, seq):
        """Sends message `seq` until a server confirms it; resends keep its duplicate id."""
        receipt = f"{self.run_id}-{seq}"
        attempt = 0
        while True:
            attempt += 1
            try:
                self.conn.send(destination=self.destination, body=f"message {seq}",
                               headers={"persistent": "true", "_AMQ_DUPL_ID": receipt,
                                        "seq": str(seq), "demo-run": self.run_id},
                               receipt=receipt)
                confirmed = self.wait_receipt(receipt)
                host, port = self.conn.transport.current_host_and_port or ("?", "?")
            except (NotConnectedException, OSError):
                confirmed = False  # the socket failed under the SEND
            if confirmed:
                again = f" (resent {attempt - 1}x, same _AMQ_DUPL_ID)" if attempt > 1 else ""
                say(f"confirmed {seq} via {host}:{port}{again}")
                return
            self.reconnect()

    def drain(self, confirmed):
        """Waits until every confirmed message has come back at least once."""
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while True:
            with self.listener.cv:
                self.listener.cv.wait_for(
                    lambda: self.lost() or confirmed <= set(self.listener.received),
                    max(0.0, deadline - time.monotonic()))
                if confirmed <= set(self.listener.received) or time.monotonic() >= deadline:
                    return
            self.reconnect()

    def summary(self, confirmed):
        received = self.listener.received
        missing = sorted(confirmed - set(received))
        twice = sorted(s for s, n in received.items() if n > 1)
        say(f"summary: {len(confirmed)} confirmed, {len(received)} received, "
            f"missing {missing}, received more than once {twice} "
            f"({self.listener.redelivered} flagged redelivered), "
            f"{self.reconnects} reconnects, node ids seen {sorted(set(self.node_ids))}, "
            f"{self.listener.older} older messages acked")
        if not missing:
            say(f"all {len(confirmed)} confirmed messages received")
        return not missing


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ports", default="61613,61614",
                        help="the pair's STOMP ports on 127.0.0.1, in the order to try them")
    parser.add_argument("--count", type=int, default=0, help="messages to send; 0: until Ctrl-C")
    parser.add_argument("--interval-ms", type=int, default=500, help="pause between sends")
    parser.add_argument("--queue", default="failover-demo")
    args = parser.parse_args()

    # The handler only sets a flag: it runs in the main thread between two bytecodes, and
    # threading.Event.set() there can deadlock on the lock Event.wait() holds at that moment.
    stop = {"requested": False}
    signal.signal(signal.SIGINT, lambda *_: stop.update(requested=True))
    client = FailoverClient([int(p) for p in args.ports.split(",")], args.queue)
    say("Ctrl-C stops sending, waits for the confirmed messages and prints a summary")
    confirmed = set()
    try:
        client.connect()
        seq = 0
        while not stop["requested"] and (args.count == 0 or seq < args.count):
            client.send(seq)
            confirmed.add(seq)
            seq += 1
            time.sleep(args.interval_ms / 1000.0)
        client.drain(confirmed)
    except ConnectFailedException:
        say(f"no server of {args.ports} accepted a connection; giving up")
        client.summary(confirmed)
        return 1
    ok = client.summary(confirmed)
    client.conn.disconnect(receipt="bye")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
