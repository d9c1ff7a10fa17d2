#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Sends one message to the demo node and receives it back (stomp.py, Debian's python3-stomp).

Usage: /usr/bin/python3 examples/first_message.py [PORT]
"""
import queue
import sys

import stomp

port = int(sys.argv[1]) if len(sys.argv) > 1 else 61613
received = queue.Queue()


class Listener(stomp.ConnectionListener):
    def on_message(self, frame):
        received.put(frame)

    def on_error(self, frame):
        print("ERROR from the broker:", frame.headers.get("message"), file=sys.stderr)


conn = stomp.Connection12([("127.0.0.1", port)])
conn.set_listener("", Listener())
conn.connect("guest", "guest", wait=True)
print("connected to 127.0.0.1:%d" % port)
conn.subscribe(destination="/queue/demo", id="1", ack="client-individual")
conn.send(destination="/queue/demo", body="hello from ActorMQ", receipt="sent-1")
frame = received.get(timeout=10)
print("received:", frame.body, "headers:", dict(frame.headers))
conn.ack(frame.headers["ack"])
conn.disconnect(receipt="bye")
