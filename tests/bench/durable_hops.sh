#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The hand-offs of the durable path, counted (docs/benchmarks.md, "Fewer hand-offs"): records the
# scheduler's switches and wake-ups (perf sched) while stompload runs one scenario against a node,
# then prints, per message, who woke whom, and for each thread how often it was switched in, how
# long it waited from its wake-up until it ran (the wake-up cost) and how much CPU it used.
#   tests/bench/durable_hops.sh PORT D|B|C [COUNT]   (run as root; perf from linux-perf)
#   STOMPLOAD_ARGS="--login guest --passcode guest" adds stompload options (as for compare.sh).
# Thread names: the node's Asio threads carry the binary's name, CAF's scheduler workers
# "caf.multiplexer" (sic, CAF 0.17.6), detached actors (the journal) "caf.actor", CAF's timer
# thread "caf.clock"; stompload is the client.
set -euo pipefail
PORT=$1; SCEN=$2
KIT=${KIT:-/tmp/actormq-bench}
[ -x "$KIT/stompload" ] || { echo "build the kit first: ../shared/bench/compare.sh builds $KIT/stompload" >&2; exit 2; }
case $SCEN in
  D) N=${3:-5000}; ARGS="--producers 1 --consumers 0 --count $N --persistent 1 --receipt 1";;
  B) N=${3:-20000}; ARGS="--producers 1 --consumers 1 --count $N --persistent 1 --receipt 1 --ack client-individual --prefetch 1000";;
  C) N=${3:-20000}; ARGS="--producers 4 --consumers 4 --count $N --persistent 1 --receipt 1 --ack client-individual --prefetch 1000";;
  *) echo "scenario D, B or C" >&2; exit 2;;
esac
# Only the node's threads (other nodes on the machine have threads of the same names) and
# stompload's are counted; everything else is "other".
NODE_PID=$(ss -ltnp | grep "127.0.0.1:$PORT " | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
[ -n "$NODE_PID" ] || { echo "nothing listens on 127.0.0.1:$PORT" >&2; exit 2; }
OUT=$(mktemp -d /tmp/durable-hops-XXXXXX)
perf sched record -o "$OUT/sched.data" -- "$KIT/stompload" --port "$PORT" --dest "/queue/hops.$SCEN.$$" \
  --size 1024 --idle 30 $ARGS ${STOMPLOAD_ARGS:-} > "$OUT/stompload.json" 2> "$OUT/perf.log" \
  || { echo "stompload failed:" >&2; tail -3 "$OUT/perf.log" >&2; rm -rf "$OUT"; exit 1; }
grep -o '"msgs_per_s":[0-9.]*\|"receipt_rtt_us":{[^}]*}' "$OUT/stompload.json"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
perf sched timehist -i "$OUT/sched.data" -w 2> /dev/null > "$OUT/timehist.txt"
python3 - "$OUT/timehist.txt" "$N" "$NODE_PID" <<'PY'
import re, sys, collections
path, n, node = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def kind(task):
    name = re.sub(r'\[[0-9/]+\]$', '', task)
    if name.startswith('kworker'): return 'kworker'
    if name in ('swapper', '<idle>'): return 'idle/irq'
    if name.startswith('stompload'): return 'stompload'
    ids = re.search(r'\[(\d+)(?:/(\d+))?\]$', task)
    if not ids or (ids.group(2) or ids.group(1)) != node: return 'other'
    if name.startswith('caf.actor'): return 'caf.actor[' + re.search(r'\[(\d+)', task).group(1) + ']'
    return name
wakes = collections.Counter(); ins = collections.Counter(); delay = collections.defaultdict(float); run = collections.defaultdict(float)
for line in open(path):
    f = line.split()
    if len(f) < 4 or not re.match(r'^\d+\.\d+$', f[0]): continue
    if 'awakened:' in f:
        wakes[(kind(f[2]), kind(f[f.index('awakened:') + 1]))] += 1
    elif len(f) >= 6:
        try: wait, sch, rt = float(f[3]), float(f[4]), float(f[5])
        except ValueError: continue
        k = kind(f[2]); ins[k] += 1; delay[k] += sch; run[k] += rt
print(f"per message (n={n}): wake-ups waker -> wakee")
for (a, b), c in wakes.most_common():
    if c >= n / 10 and 'other' not in (a, b): print(f"  {c / n:5.2f}  {a} -> {b}")
print("per thread kind: switched in per message, mean wake-to-run delay us, CPU us per message")
for k, c in ins.most_common():
    if c >= n / 10 and k not in ('idle/irq', 'other'): print(f"  {k:28s} {c / n:5.2f}  {1000 * delay[k] / c:6.1f}  {1000 * run[k] / n:7.1f}")
PY
rm -rf "$OUT"
