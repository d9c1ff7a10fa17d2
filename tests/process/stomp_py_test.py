# SPDX-License-Identifier: Apache-2.0
"""ActorMQ driven by a real third-party STOMP client: Debian's python3-stomp (stomp.py 8).

Each test starts its own actormq-node (tests/process/actormq_node.py) and checks that it stops
with exit code 0 on SIGTERM. python3-stomp is installed for the system interpreter only:

    ACTORMQ_NODE=build/actormq-node /usr/bin/python3 tests/process/stomp_py_test.py -v

Nothing waits by sleeping: every wait is a condition with a deadline, fed by the stomp.py
listener (threading.Condition) or polled by wait_until. Every message carries a sequence number
in its `seq` header, and the tests assert exact sets and orders.
"""

import collections
import os
import socket
import sys
import threading
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stomp  # noqa: E402
from stomp.exception import ConnectFailedException  # noqa: E402

from actormq_node import DEFAULT_TIMEOUT, Node, run_within, wait_until  # noqa: E402

CONFIG = """\
name = "pytest"
[acceptors.stomp]
port = 0
[security]
allow-anonymous = false
[security.users.guest]
password = "guest"
"""

WAIT = DEFAULT_TIMEOUT




def seq(frame):
    """The sequence number a test put in the message's `seq` header."""
    return int(frame.headers["seq"])


class Recorder(stomp.ConnectionListener):
    """Records everything one connection receives; tests wait on it with deadlines.

    `on_message(frame)`, when given, runs before the frame is recorded, so once a test sees a
    message recorded, whatever the hook sent for it (an ACK) is already on the socket.
    """

    def __init__(self, on_message=None):
        self._cv = threading.Condition()
        self._on_message = on_message
        self.connected_frame = None
        self.messages = []
        self.receipts = []
        self.errors = []
        self.hook_errors = []
        self.disconnected = False

    def _record(self, change):
        with self._cv:
            change()
            self._cv.notify_all()

    def on_connected(self, frame):
        self._record(lambda: setattr(self, "connected_frame", frame))

    def on_message(self, frame):
        if self._on_message is not None:
            try:
                self._on_message(frame)
            except Exception as e:  # recorded; a raise would end stomp.py's receiver thread
                self._record(lambda: self.hook_errors.append(repr(e)))
        self._record(lambda: self.messages.append(frame))

    def on_receipt(self, frame):
        self._record(lambda: self.receipts.append(frame.headers.get("receipt-id")))

    def on_error(self, frame):
        self._record(lambda: self.errors.append(frame))

    def on_disconnected(self):
        self._record(lambda: setattr(self, "disconnected", True))

    # -- waiting ---------------------------------------------------------------------------

    def wait_for(self, predicate, what, timeout=WAIT):
        """Waits until predicate(self) holds; fails naming `what` and the state reached."""
        with self._cv:
            if not self._cv.wait_for(lambda: predicate(self), timeout):
                raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}; "
                                     f"{self._summary()}")

    def wait_messages(self, n, what="messages"):
        self.wait_for(lambda r: len(r.messages) >= n, f"{n} {what}")

    def wait_receipt(self, receipt_id):
        self.wait_for(lambda r: receipt_id in r.receipts, f"RECEIPT {receipt_id!r}")

    def wait_marker(self):
        self.wait_for(lambda r: any(m.headers.get("kind") == "marker" for m in r.messages),
                      "the marker message")

    def snapshot(self):
        with self._cv:
            return list(self.messages)

    def _summary(self):
        last = [dict(m.headers) for m in self.messages[-3:]]
        errors = [(dict(e.headers), e.body) for e in self.errors]
        return (f"state: {len(self.messages)} MESSAGE (last: {last}), "
                f"{len(self.receipts)} RECEIPT, ERROR frames: {errors}, "
                f"disconnected: {self.disconnected}, hook errors: {self.hook_errors}")

    def summary(self):
        with self._cv:
            return self._summary()


class StompPyTest(unittest.TestCase):
    """One fresh node per test; clients are stomp.py connections."""

    def setUp(self):
        self.node = Node(CONFIG)
        self.addCleanup(self.node.cleanup)
        self.node.start()
        self.clients = []

    def tearDown(self):
        failed = self._failed()
        problems = []
        for conn, rec in self.clients:
            if conn.is_connected():
                try:
                    self.disconnect(conn, rec)
                except AssertionError as e:
                    problems.append(str(e))
        try:
            self.node.stop()
        except AssertionError as e:
            problems.append(str(e))
        if failed:
            print(f"\n{self.id()} failed; {self.node.describe()}", file=sys.stderr, flush=True)
        if problems and not failed:
            self.fail("clean shutdown failed:\n" + "\n".join(problems))

    def _failed(self):
        """Whether this test (or one of its subtests) has failed so far.

        unittest (3.11) reports a failure to the result as it happens, before tearDown.
        """
        result = getattr(getattr(self, "_outcome", None), "result", None)
        if result is None:
            return False
        return any(t is self or getattr(t, "test_case", None) is self
                   for t, _ in result.failures + result.errors)

    # -- client helpers --------------------------------------------------------------------

    def open(self, cls=stomp.Connection12, hosts=None, on_message=None, **kwargs):
        """A stomp.py connection to the node with a Recorder, not yet connected."""
        conn = cls(hosts or [("127.0.0.1", self.node.port)], **kwargs)
        hook = None if on_message is None else (lambda frame: on_message(conn, frame))
        rec = Recorder(hook)
        conn.set_listener("recorder", rec)
        self.clients.append((conn, rec))
        return conn, rec

    def client(self, cls=stomp.Connection12, hosts=None, on_message=None, login="guest",
               passcode="guest", **kwargs):
        """A connected stomp.py connection (CONNECT with wait=True, within a deadline)."""
        conn, rec = self.open(cls, hosts, on_message, **kwargs)
        run_within(lambda: conn.connect(login, passcode, wait=True), "CONNECTED")
        rec.wait_for(lambda r: r.connected_frame is not None, "the listener's on_connected")
        return conn, rec

    def subscribe(self, conn, rec, destination, sub_id, ack="auto", **headers):
        """SUBSCRIBE and wait for its RECEIPT, so the subscription exists before sends."""
        receipt = f"sub-{sub_id}"
        conn.subscribe(destination=destination, id=sub_id, ack=ack,
                       headers=dict(headers, receipt=receipt))
        rec.wait_receipt(receipt)

    def disconnect(self, conn, rec):
        """DISCONNECT (stomp.py adds a receipt and closes on it) and wait until closed."""
        conn.disconnect()
        rec.wait_for(lambda r: r.disconnected, "the connection to close after DISCONNECT")

    def send_marker(self, conn, destination):
        conn.send(destination=destination, body="marker", headers={"kind": "marker", "seq": "-1"})

    def assertNoErrors(self, *recs):
        for rec in recs:
            self.assertEqual(rec.errors, [], rec.summary())
            self.assertEqual(rec.hook_errors, [], rec.summary())

    # -- tests -----------------------------------------------------------------------------

    def test_connect_negotiates_each_protocol_version_and_reports_server_and_session(self):
        sessions = []
        for cls, version in ((stomp.Connection12, "1.2"), (stomp.Connection11, "1.1"),
                             (stomp.Connection10, "1.0")):
            with self.subTest(version=version):
                conn, rec = self.client(cls)
                headers = rec.connected_frame.headers
                self.assertEqual(headers.get("version"), version, headers)
                self.assertTrue(headers.get("server", "").startswith("ActorMQ/"), headers)
                self.assertIn("pytest", headers.get("server", ""), headers)
                self.assertTrue(headers.get("session"), headers)
                sessions.append(headers["session"])
                # The session works in this version: a message goes round.
                dest = f"/queue/version-{version}"
                self.subscribe(conn, rec, dest, f"v{version}")
                conn.send(destination=dest, body=f"hello {version}", headers={"seq": "0"})
                rec.wait_messages(1)
                self.assertEqual([m.body for m in rec.messages], [f"hello {version}"])
                self.assertNoErrors(rec)
                self.disconnect(conn, rec)
        self.assertEqual(len(set(sessions)), len(sessions), f"session ids repeat: {sessions}")

    def test_queue_delivers_each_message_once_to_competing_consumers(self):
        dest, n = "/queue/competing", 1000

        def ack_each(conn, frame):
            conn.ack(frame.headers["ack"])

        consumers = [self.client(on_message=ack_each) for _ in range(2)]
        for i, (conn, rec) in enumerate(consumers):
            self.subscribe(conn, rec, dest, f"c{i}", ack="client-individual",
                           **{"prefetch-count": "50"})
        producer, prec = self.client()
        for i in range(n):
            producer.send(destination=dest, body=f"m{i}", headers={"seq": str(i)})

        def received():
            return sum(len(rec.snapshot()) for _, rec in consumers)

        wait_until(lambda: received() >= n, what=lambda: f"{n} messages, got {received()}")
        # Unsubscribing (after every ACK on the same connection) ends the consumers; anything
        # left unacknowledged would go back to the queue.
        for i, (conn, rec) in enumerate(consumers):
            conn.unsubscribe(id=f"c{i}", receipt=f"unsub-c{i}")
            rec.wait_receipt(f"unsub-c{i}")

        per_consumer = [[seq(m) for m in rec.snapshot()] for _, rec in consumers]
        counts = collections.Counter(s for seqs in per_consumer for s in seqs)
        self.assertEqual(sorted(s for s, c in counts.items() if c > 1), [], "duplicates")
        self.assertEqual(set(counts), set(range(n)))
        for i, seqs in enumerate(per_consumer):
            self.assertTrue(seqs, f"consumer c{i} got nothing: no competition happened")
            self.assertEqual(seqs, sorted(seqs), f"consumer c{i} out of order")
        for _, rec in consumers:
            for m in rec.snapshot():
                self.assertNotIn("redelivered", m.headers, m.headers)

        # The queue is empty now: a new consumer gets only a marker sent after it subscribed.
        last, lrec = self.client()
        self.subscribe(last, lrec, dest, "last")
        self.send_marker(producer, dest)
        lrec.wait_marker()
        self.assertEqual([m.headers.get("kind") for m in lrec.snapshot()], ["marker"])
        self.assertNoErrors(prec, lrec, *(rec for _, rec in consumers))

    def test_topic_delivers_every_message_in_order_to_each_subscriber(self):
        dest, n = "/topic/fanout", 200
        subscribers = [self.client() for _ in range(2)]
        for i, (conn, rec) in enumerate(subscribers):
            self.subscribe(conn, rec, dest, f"s{i}")
        producer, prec = self.client()
        for i in range(n):
            producer.send(destination=dest, body=f"t{i}", headers={"seq": str(i)})
        self.send_marker(producer, dest)
        for i, (_, rec) in enumerate(subscribers):
            rec.wait_marker()
            got = rec.snapshot()
            self.assertEqual([seq(m) for m in got], list(range(n)) + [-1], f"subscriber s{i}")
            self.assertEqual([m.body for m in got[:n]], [f"t{i}" for i in range(n)])
            self.assertEqual({m.headers.get("subscription") for m in got}, {f"s{i}"})
        self.assertNoErrors(prec, *(rec for _, rec in subscribers))

    def test_every_send_with_a_receipt_gets_its_receipt_and_is_delivered(self):
        dest, n = "/queue/receipts", 100
        producer, prec = self.client()
        for i in range(n):
            producer.send(destination=dest, body=f"r{i}", headers={"seq": str(i)},
                          receipt=f"send-{i}")
        expected = [f"send-{i}" for i in range(n)]
        prec.wait_for(lambda r: set(expected) <= set(r.receipts), f"{n} receipts")
        self.assertEqual(collections.Counter(prec.receipts), collections.Counter(expected))
        # A RECEIPT means the broker has the message: a consumer that comes later gets them all.
        consumer, crec = self.client()
        self.subscribe(consumer, crec, dest, "late")
        crec.wait_messages(n)
        self.send_marker(producer, dest)
        crec.wait_marker()
        self.assertEqual([seq(m) for m in crec.snapshot()], list(range(n)) + [-1])
        self.assertNoErrors(prec, crec)

    def test_nacked_message_is_redelivered_flagged_and_can_then_be_acked(self):
        dest, n, nacked = "/queue/nack", 5, 2
        consumer, crec = self.client()
        self.subscribe(consumer, crec, dest, "n", ack="client-individual")
        producer, prec = self.client()
        for i in range(n):
            producer.send(destination=dest, body=f"n{i}", headers={"seq": str(i)})
        crec.wait_messages(n)
        first = crec.snapshot()
        self.assertEqual([seq(m) for m in first], list(range(n)))
        for m in first:
            self.assertNotIn("redelivered", m.headers, m.headers)
            self.assertIn("ack", m.headers, m.headers)
        for m in first:
            if seq(m) == nacked:
                consumer.nack(m.headers["ack"])
            else:
                consumer.ack(m.headers["ack"])
        crec.wait_messages(n + 1, "messages (the redelivery)")
        again = crec.snapshot()[n]
        self.assertEqual(seq(again), nacked, again.headers)
        self.assertEqual(again.headers.get("redelivered"), "true", again.headers)
        self.assertEqual(again.body, f"n{nacked}")
        consumer.ack(again.headers["ack"], receipt="ack-redelivered")
        crec.wait_receipt("ack-redelivered")
        # Nothing else comes back: the next thing the consumer sees is a later marker.
        self.send_marker(producer, dest)
        crec.wait_marker()
        got = crec.snapshot()
        self.assertEqual([seq(m) for m in got], list(range(n)) + [nacked, -1])
        self.assertEqual([m.headers.get("redelivered") for m in got],
                         [None] * n + ["true", None])
        self.assertNoErrors(prec, crec)

    def test_transaction_delivers_sends_on_commit_and_never_after_abort(self):
        dest, n = "/queue/tx", 10
        consumer, crec = self.client()
        self.subscribe(consumer, crec, dest, "tx")
        producer, prec = self.client()

        aborted = producer.begin()
        for i in range(n):
            producer.send(destination=dest, body=f"a{i}", transaction=aborted,
                          headers={"kind": "aborted", "seq": str(i)})
        producer.abort(aborted)

        committed = producer.begin()
        for i in range(n):
            producer.send(destination=dest, body=f"c{i}", transaction=committed,
                          headers={"kind": "committed", "seq": str(i)})
        # A send outside the transaction, after the transactional ones, arrives alone: the
        # open transaction's sends are held and the aborted ones are gone.
        producer.send(destination=dest, body="probe", headers={"kind": "probe", "seq": "0"})
        crec.wait_for(lambda r: any(m.headers.get("kind") == "probe" for m in r.messages),
                      "the probe message")
        self.assertEqual([m.headers.get("kind") for m in crec.snapshot()], ["probe"])

        producer.commit(committed, receipt="commit")
        prec.wait_receipt("commit")
        self.send_marker(producer, dest)
        crec.wait_marker()
        got = [(m.headers.get("kind"), seq(m)) for m in crec.snapshot()]
        self.assertEqual(got, [("probe", 0)] + [("committed", i) for i in range(n)]
                         + [("marker", -1)])
        self.assertNoErrors(prec, crec)

    def test_wrong_passcode_fails_connect_with_authentication_error_and_closes(self):
        conn, rec = self.open()
        with self.assertRaises(ConnectFailedException):
            run_within(lambda: conn.connect("guest", "wrong", wait=True), "connect to fail")
        rec.wait_for(lambda r: r.errors, "an ERROR frame")
        message = rec.errors[0].headers.get("message", "")
        self.assertTrue(message.startswith("authentication failed"), rec.summary())
        rec.wait_for(lambda r: r.disconnected, "the broker to close the connection")
        self.assertIsNone(rec.connected_frame)
        self.assertEqual(len(rec.errors), 1, rec.summary())
        self.assertFalse(conn.is_connected())

    def _unacked_messages_go_to_the_next_consumer(self, close, confirm_acks):
        dest, n, acked = "/queue/unacked", 100, 30
        first, frec = self.client()
        self.subscribe(first, frec, dest, "first", ack="client-individual")
        producer, prec = self.client()
        for i in range(n):
            producer.send(destination=dest, body=f"u{i}", headers={"seq": str(i)})
        frec.wait_messages(n)
        got = frec.snapshot()
        self.assertEqual([seq(m) for m in got], list(range(n)))
        for m in got[:acked - 1]:
            first.ack(m.headers["ack"])
        if confirm_acks:
            first.ack(got[acked - 1].headers["ack"], receipt="acks-done")
            frec.wait_receipt("acks-done")
        else:
            first.ack(got[acked - 1].headers["ack"])
        close(first, frec)

        second, srec = self.client()
        self.subscribe(second, srec, dest, "second", ack="client-individual")
        srec.wait_messages(n - acked, "redelivered messages")
        self.send_marker(producer, dest)
        srec.wait_marker()
        got = [m for m in srec.snapshot() if m.headers.get("kind") != "marker"]
        counts = collections.Counter(seq(m) for m in got)
        self.assertEqual(sorted(s for s, c in counts.items() if c > 1), [], "duplicates")
        self.assertEqual(set(counts), set(range(acked, n)), "lost or acked messages came back")
        self.assertEqual([seq(m) for m in got], sorted(seq(m) for m in got), "out of order")
        for m in got:
            self.assertEqual(m.headers.get("redelivered"), "true", m.headers)
        self.assertNoErrors(prec, frec, srec)

    def test_consumer_disconnecting_without_ack_gets_its_messages_redelivered_to_next(self):
        # DISCONNECT right after some ACKs (frames are handled in order, so the ACKs count):
        # the rest goes to the next consumer.
        self._unacked_messages_go_to_the_next_consumer(self.disconnect, confirm_acks=False)

    def test_consumer_dropping_its_socket_without_ack_gets_its_messages_redelivered_to_next(self):
        def drop(conn, rec):
            # A crash: the TCP connection ends without DISCONNECT.
            conn.transport.disconnect_socket()
            rec.wait_for(lambda r: r.disconnected, "the socket to close")

        # The ACKs are confirmed by a RECEIPT first, so only the crash itself is tested.
        self._unacked_messages_go_to_the_next_consumer(drop, confirm_acks=True)

    def test_binary_body_with_nul_and_non_utf8_bytes_round_trips_exactly(self):
        dest = "/queue/binary"
        bodies = [
            b"\x00",
            b"\x00\x00\x00",
            b"head\x00tail",
            b"ends with nul\x00",
            bytes(range(256)),
            b"\xff\xfe\xfd\xc3\x28\xa0\xa1\xe2\x28\xa1\x80",  # not UTF-8
            b"\r\n\r\n\x00\n\n",  # looks like the end of headers and of a frame
            bytes(range(256)) * 64,  # 16 KiB with a NUL every 256 bytes
        ]
        consumer, crec = self.client(auto_decode=False)
        self.subscribe(consumer, crec, dest, "bin")
        producer, prec = self.client(auto_content_length=True)
        for i, body in enumerate(bodies):
            producer.send(destination=dest, body=body, headers={"seq": str(i)})
        crec.wait_messages(len(bodies))
        got = crec.snapshot()
        self.assertEqual([seq(m) for m in got], list(range(len(bodies))))
        for m, body in zip(got, bodies):
            self.assertEqual(m.body, body, f"seq {seq(m)}")
            self.assertEqual(m.headers.get("content-length"), str(len(body)), m.headers)
        self.assertNoErrors(prec, crec)

    def test_host_list_skips_a_dead_address_and_connects_to_the_live_node(self):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            dead_port = s.getsockname()[1]
        live = ("127.0.0.1", self.node.port)
        with self.assertLogs("stomp.py", level="WARNING") as logs:
            conn, rec = self.client(hosts=[("127.0.0.1", dead_port), live])
        self.assertTrue(any(f"port {dead_port}" in line for line in logs.output),
                        f"stomp.py did not try the dead port first: {logs.output}")
        self.assertEqual(tuple(conn.transport.current_host_and_port), live)
        self.assertEqual(rec.connected_frame.headers.get("version"), "1.2")
        dest = "/queue/hostlist"
        self.subscribe(conn, rec, dest, "h")
        conn.send(destination=dest, body="via host list", headers={"seq": "0"})
        rec.wait_messages(1)
        self.assertEqual([m.body for m in rec.snapshot()], ["via host list"])
        self.assertNoErrors(rec)


if __name__ == "__main__":
    unittest.main()
