#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Starts the single-node demo from a built tree and tells you how to talk to it.
# Usage: examples/demo.sh [BUILD_DIR]   (default: build). Stop it with Ctrl-C.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
node=$build/actormq-node
config=$here/single-node.toml
[ -x "$node" ] || { echo "demo: $node not found; build first (see README.md)" >&2; exit 1; }
"$node" --check-config "$config" >/dev/null
cat <<TXT

  ActorMQ demo node
  -----------------
  STOMP 1.2 on 127.0.0.1:61613    user guest, passcode guest    config: examples/single-node.toml

  Send a first message from a second terminal with the stomp.py command line client:
      stomp -H 127.0.0.1 -P 61613 -U guest -W guest -S 1.2
      > subscribe /queue/demo
      > send /queue/demo hello from ActorMQ
  (the message comes straight back to the subscription; type 'help' for more commands)

  Or run the scripted example:  /usr/bin/python3 examples/first_message.py
  Persistent messages (SEND with persistent:true) are journaled in $build/demo-data/journal
  and survive a restart, even kill -9.
  Logs follow below, one line per event. Ctrl-C stops the node cleanly.

TXT
# The demo's journal lives in the build tree, not wherever the command was typed.
exec "$node" --config "$config" --set "journal-directory=$build/demo-data/journal"
