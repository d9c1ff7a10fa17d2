# SPDX-License-Identifier: Apache-2.0
"""HA driven by a real third-party client: Debian's python3-stomp (stomp.py 8).

Each test starts a primary and a backup (real actormq-node processes, tests/process/
actormq_node.py), with every port chosen by the OS and read from the ports files: a shared-store
pair on one journal directory, or a replicating pair with a journal each (docs/replication.md). Clients know both servers (stomp.py's host list) and reconnect with
stomp.py's own reconnect loop after the live is killed (docs/ha.md, "What clients do"):

    ACTORMQ_NODE=build/actormq-node /usr/bin/python3 tests/process/ha_py_test.py -v

Nothing waits by sleeping: every wait is a condition with a deadline, fed by the stomp.py
listener (threading.Condition) or polled by wait_until. Messages carry a sequence number in
their `seq` header and `_AMQ_DUPL_ID:ha-<seq>`, and the tests assert exact sets.
"""

import collections
import logging
import os
import sys
import tempfile
import threading
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stomp  # noqa: E402

from actormq_node import DEFAULT_TIMEOUT, Node, run_within, wait_until  # noqa: E402

# stomp.py warns on every refused address of a host list; during a failover that is expected.
logging.getLogger("stomp.py").setLevel(logging.ERROR)

WAIT = DEFAULT_TIMEOUT
# A failover is a kill, the backup's next lock poll and a journal load: well under this.
FAILOVER_WAIT = 30.0


def node_config(name, role, journal, members=(), kind="shared-store", **policy):
    """The TOML of one node of the pair; `policy` adds keys to its [ha-policy.KIND] table."""
    keys = dict({"lock-poll-interval-ms": 10} if kind == "shared-store" else {}, **policy)
    lines = "\n".join(f"{k} = {str(v).lower() if isinstance(v, bool) else v}"
                      for k, v in keys.items())
    return f"""\
name = "{name}"
journal-directory = "{journal}"
cluster-user = "actormq-cluster"
cluster-password = "ha-test"

persistence-enabled = true

[ha-policy.{kind}.{role}]
{lines}

[cluster]
host = "127.0.0.1"
port = 0
members = [{", ".join(f'"127.0.0.1:{p}"' for p in members)}]

[acceptors.stomp]
port = 0

[security]
allow-anonymous = false

[security.users.guest]
password = "guest"
"""




class Recorder(stomp.ConnectionListener):
    """Records everything one stomp.py connection receives, across its reconnects."""

    def __init__(self):
        self._cv = threading.Condition()
        self.connected_frames = []
        self.disconnects = 0
        self.messages = []
        self.receipts = []
        self.errors = []

    def _record(self, change):
        with self._cv:
            change()
            self._cv.notify_all()

    def on_connected(self, frame):
        self._record(lambda: self.connected_frames.append(frame))

    def on_disconnected(self):
        def count():
            self.disconnects += 1
        self._record(count)

    def on_message(self, frame):
        self._record(lambda: self.messages.append(frame))

    def on_receipt(self, frame):
        self._record(lambda: self.receipts.append(frame.headers.get("receipt-id")))

    def on_error(self, frame):
        self._record(lambda: self.errors.append(frame))

    def wait_for(self, predicate, what, timeout=WAIT):
        with self._cv:
            if not self._cv.wait_for(lambda: predicate(self), timeout):
                raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}; "
                                     f"{self._summary()}")

    def wait_receipts(self, ids, what="receipts"):
        ids = set(ids)
        self.wait_for(lambda r: ids <= set(r.receipts), f"{len(ids)} {what}")

    def confirmed(self, ids):
        with self._cv:
            return set(ids) & set(self.receipts)

    def snapshot(self):
        with self._cv:
            return list(self.messages)

    def _summary(self):
        errors = [(dict(e.headers), e.body) for e in self.errors]
        return (f"state: {len(self.connected_frames)} CONNECTED, {self.disconnects} "
                f"disconnects, {len(self.messages)} MESSAGE, {len(self.receipts)} RECEIPT, "
                f"ERROR frames: {errors}")


class PairFixture(unittest.TestCase):
    """A primary and a backup on one journal directory; the primary is live at the start."""

    failover_on_shutdown = False
    kind = "shared-store"
    # The log lines of a backup that waits, and of one that took over.
    backup_ready_log = "ha_waiting_for_live"
    took_over_log = "ha_live"

    def policy(self, role):
        """The keys of the role's [ha-policy] table."""
        if role == "primary":
            return {"failover-on-shutdown": self.failover_on_shutdown}
        return {"allow-failback": True, "restart-backup": True}

    def journal_of(self, role):
        return self.journal

    def setUp(self):
        self._journal = tempfile.TemporaryDirectory(prefix="actormq-ha-journal-")
        self.addCleanup(self._journal.cleanup)
        self.journal = os.path.join(self._journal.name, "journal")
        self.clients = []
        self.primary = Node(node_config("primary", "primary", self.journal_of("primary"),
                                        kind=self.kind, **self.policy("primary")))
        self.addCleanup(self.primary.cleanup)
        self.primary.start()
        # The primary must hold the lock before the backup starts, or the backup would find no
        # live server and become live itself.
        wait_until(self.primary.accepts_connections, WAIT,
                   lambda: f"the primary to serve\n{self.primary.describe()}")
        self.backup = Node(node_config("backup", "backup", self.journal_of("backup"),
                                       members=self.cluster_ports(self.primary), kind=self.kind,
                                       **self.policy("backup")))
        self.addCleanup(self.backup.cleanup)
        self.backup.start()
        self.backup.wait_for_log(self.backup_ready_log)
        self.assertFalse(self.backup.accepts_connections(), "a passive backup accepted a client")

    def tearDown(self):
        for conn, _ in self.clients:
            conn.transport.disconnect_socket()
        failed = self._failed()
        if failed:
            for role, node in (("primary", self.primary), ("backup", self.backup)):
                print(f"\n{self.id()} failed; {role}: {node.describe()}", file=sys.stderr,
                      flush=True)
        problems = []
        for node in (self.backup, self.primary):
            if not node.running():
                continue  # killed by the test, or stopped and checked already
            try:
                node.stop()
            except AssertionError as e:
                problems.append(str(e))
        if problems and not failed:
            self.fail("clean shutdown failed:\n" + "\n".join(problems))

    def _failed(self):
        result = getattr(getattr(self, "_outcome", None), "result", None)
        if result is None:
            return False
        return any(t is self or getattr(t, "test_case", None) is self
                   for t, _ in result.failures + result.errors)

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def cluster_ports(node):
        """The node's cluster port (from its ports file) as a members list."""
        return [node.cluster_port]

    def hosts(self):
        return [("127.0.0.1", self.primary.port), ("127.0.0.1", self.backup.port)]

    def client(self):
        """A stomp.py connection over the pair's host list, connected to whichever serves.

        stomp.py tries the addresses in order and starts over with a growing pause (here
        50 ms to 200 ms); 300 refused attempts make connect() fail.
        """
        conn = stomp.Connection12(self.hosts(), reconnect_sleep_initial=0.05,
                                  reconnect_sleep_increase=0.5, reconnect_sleep_max=0.2,
                                  reconnect_attempts_max=300)
        rec = Recorder()
        conn.set_listener("recorder", rec)
        self.clients.append((conn, rec))
        self.connect(conn, rec)
        return conn, rec

    def connect(self, conn, rec, timeout=WAIT):
        """(Re)connects with stomp.py's reconnect loop; returns the CONNECTED headers."""
        before = len(rec.connected_frames)
        run_within(lambda: conn.connect("guest", "guest", wait=True), "CONNECTED", timeout)
        rec.wait_for(lambda r: len(r.connected_frames) > before, "the listener's on_connected")
        return rec.connected_frames[-1].headers

    def on(self, conn):
        """The port the connection is connected to."""
        return conn.transport.current_host_and_port[1]

    def send(self, conn, seqs, tag="send"):
        """Persistent SENDs with a receipt `<tag>-<seq>` and _AMQ_DUPL_ID `ha-<seq>` each."""
        for s in seqs:
            conn.send(destination="/queue/ha", body=f"m{s}", receipt=f"{tag}-{s}",
                      headers={"persistent": "true", "_AMQ_DUPL_ID": f"ha-{s}", "seq": str(s)})
        return [f"{tag}-{s}" for s in seqs]

    def consume_all(self, expected):
        """Subscribes a new client and checks that it gets each of `expected` exactly once.

        A non-persistent marker sent after every confirmed message is the barrier: whatever
        the queue holds arrives before it.
        """
        conn, rec = self.client()
        conn.subscribe(destination="/queue/ha", id="drain", ack="auto",
                       headers={"receipt": "drain-sub"})
        rec.wait_receipts(["drain-sub"], "subscription receipt")
        conn.send(destination="/queue/ha", body="marker", headers={"seq": "-1"})
        rec.wait_for(lambda r: any(m.headers.get("seq") == "-1" for m in r.messages),
                     "the marker")
        got = collections.Counter(int(m.headers["seq"]) for m in rec.snapshot())
        del got[-1]
        twice = sorted(s for s, n in got.items() if n > 1)
        self.assertEqual(twice, [], "messages delivered more than once")
        self.assertEqual(sorted(set(expected) - set(got)), [], "confirmed messages lost")
        self.assertEqual(sorted(set(got) - set(expected)), [], "messages nobody sent")
        self.assertEqual(rec.errors, [], rec._summary())
        return conn, rec

    def kill_primary_and_reconnect(self, conn, rec):
        """SIGKILLs the live primary, waits for the client to notice and reconnects it."""
        lost = rec.disconnects
        self.primary.kill()
        rec.wait_for(lambda r: r.disconnects > lost, "the client to lose the primary")
        headers = self.connect(conn, rec, FAILOVER_WAIT)
        self.assertEqual(self.on(conn), self.backup.port, "reconnected, but not to the backup")
        return headers


class SharedStorePairTest(PairFixture):
    def test_sigkill_of_live_fails_over_to_backup_with_every_confirmed_message_once(self):
        producer, prec = self.client()
        self.assertEqual(self.on(producer), self.primary.port)
        node_id = prec.connected_frames[-1].headers.get("node-id")
        self.assertTrue(node_id, f"CONNECTED has no node-id: {prec.connected_frames[-1].headers}")

        # 0-99 confirmed before the kill; 100-199 in flight while the live dies.
        prec.wait_receipts(self.send(producer, range(100)))
        in_flight = self.send(producer, range(100, 200))
        headers = self.kill_primary_and_reconnect(producer, prec)
        self.assertEqual(headers.get("node-id"), node_id, "the backup serves another node id")
        self.assertIn(f"node_id={node_id}", self.backup.wait_for_log(self.took_over_log))

        # Resend what has no receipt, and the last ten that do, with their original ids: the
        # backup knows every id the live journaled, so none of them is stored twice.
        confirmed = prec.confirmed(in_flight)
        again = [s for s in range(100, 200) if f"send-{s}" not in confirmed]
        again += sorted(int(r.split("-")[1]) for r in confirmed)[-10:]
        prec.wait_receipts(self.send(producer, again, tag="again"), "receipts of resends")
        # New messages on the backup.
        prec.wait_receipts(self.send(producer, range(200, 250)))
        self.assertEqual(prec.errors, [], prec._summary())
        self.consume_all(range(250))

    def test_connected_names_the_node_id_and_the_backup_connector(self):
        expected = f"127.0.0.1:{self.backup.port}"
        seen = []

        def backup_connector():
            # The backup joins the cluster in its own time: connect again until CONNECTED
            # names it.
            conn, rec = self.client()
            headers = rec.connected_frames[-1].headers
            seen.append(dict(headers))
            conn.disconnect(receipt="bye")
            rec.wait_for(lambda r: r.disconnects > 0, "the connection to close")
            return headers.get("backup-connector") == expected and headers

        headers = wait_until(backup_connector, WAIT,
                             lambda: f"backup-connector:{expected} in CONNECTED, last {seen[-1:]}")
        self.assertTrue(headers.get("node-id"), headers)
        lines = self.primary.log_text() + self.backup.log_text()
        self.assertIn(headers["node-id"], lines, "the node id is not in either node's log")

    def test_restarted_primary_fails_back_and_backup_waits_again(self):
        conn, rec = self.client()
        node_id = rec.connected_frames[-1].headers.get("node-id")
        rec.wait_receipts(self.send(conn, range(50)))
        self.kill_primary_and_reconnect(conn, rec)
        rec.wait_receipts(self.send(conn, range(50, 100)))

        # The primary comes back: the backup gives way and the client follows the lock.
        mark = self.backup.log_mark()
        lost = rec.disconnects
        self.primary.config_toml = node_config("primary", "primary", self.journal,
                                               members=self.cluster_ports(self.backup))
        # The same port as before: it is the address in the clients' host lists.
        self.primary.extra_args = ["--set", f"acceptors.stomp.port={self.primary.port}"]
        self.primary.start()
        self.backup.wait_for_log("ha_giving_way", since=mark)
        rec.wait_for(lambda r: r.disconnects > lost, "the backup to close the client")
        headers = self.connect(conn, rec, FAILOVER_WAIT)
        self.assertEqual(self.on(conn), self.primary.port, "did not fail back to the primary")
        self.assertEqual(headers.get("node-id"), node_id)
        self.backup.wait_for_log("ha_backup_restarted", since=mark)
        self.assertTrue(self.backup.running(), "restart-backup = true, yet the backup exited")
        rec.wait_receipts(self.send(conn, range(100, 150)))

        # The restarted backup takes over again when the primary dies a second time.
        self.kill_primary_and_reconnect(conn, rec)
        self.assertEqual(rec.errors, [], rec._summary())
        self.consume_all(range(150))


class FailoverOnShutdownTest(PairFixture):
    """The same pair with failover-on-shutdown = true on the primary."""

    failover_on_shutdown = True

    def test_sigterm_of_live_hands_over_to_backup(self):
        conn, rec = self.client()
        node_id = rec.connected_frames[-1].headers.get("node-id")
        rec.wait_receipts(self.send(conn, range(50)))
        lost = rec.disconnects
        self.primary.stop()  # SIGTERM; exit code 0 is checked
        rec.wait_for(lambda r: r.disconnects > lost, "the client to lose the primary")
        headers = self.connect(conn, rec, FAILOVER_WAIT)
        self.assertEqual(self.on(conn), self.backup.port)
        self.assertEqual(headers.get("node-id"), node_id)
        self.consume_all(range(50))


class ReplicatedPairTest(PairFixture):
    """The same client-side checks against a replicating pair: each node has its own journal,
    the backup is in sync before the tests start, and takes over after its vote (a lone pair:
    its own vote is the quorum, docs/replication.md)."""

    kind = "replication"
    backup_ready_log = "replication_in_sync"
    took_over_log = "replication_live "

    def policy(self, role):
        return {"vote-retry-wait": 100, "retry-replication-wait": 100}

    def journal_of(self, role):
        return os.path.join(self._journal.name, role)

    test_sigkill_of_live_fails_over_to_backup_with_every_confirmed_message_once = (
        SharedStorePairTest.test_sigkill_of_live_fails_over_to_backup_with_every_confirmed_message_once)
    test_connected_names_the_node_id_and_the_backup_connector = (
        SharedStorePairTest.test_connected_names_the_node_id_and_the_backup_connector)


if __name__ == "__main__":
    unittest.main()
