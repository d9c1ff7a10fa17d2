#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# compare_native.sh - one scenario of the shared bench kit (../shared/bench/compare.sh), run over
# STOMP with the kit's stompload and over the native protocol with actormq-nativeload, against
# the same node, alternating, --reps times; prints medians and the native / STOMP ratio
# (docs/benchmarks.md, "Native protocol against STOMP").
#
#   apps/bench/compare_native.sh [--reps 3] [--dir /tmp/actormq-bench] SCENARIO STOMP_PORT NATIVE_PORT
#   e.g. apps/bench/compare_native.sh --reps 3 A 61613 61617
#
# Scenarios are the kit's, option for option (1 KiB bodies):
#   A  1 producer / 1 consumer, non-persistent, fire and forget, auto ack, 200k; --ack auto
#      makes actormq-nativeload's consumer a pre-acknowledge one (preAcknowledge=true): the server
#      acknowledges each message as it delivers it and no ack travels, which is what STOMP's
#      ack:auto does, so the two sides do the same work (docs/benchmarks.md, issue 12's sixth
#      session). A nativeload older than that acknowledged every message instead.
#   B  1P/1C, persistent, a confirmation per send (synchronous), client-individual, 20k
#   C  4P/4C, persistent, a confirmation per send, client-individual, 20k in total
#   D  1P/0C, persistent, synchronous send, no consumer, 5k (drained and counted afterwards)
# Environment: BENCH_KIT (default ../shared/bench from the repository root), NATIVELOAD (default
# build/actormq-nativeload), LOAD_ARGS for both generators (e.g. "--login guest --passcode guest"),
# NATIVE_ARGS for actormq-nativeload only (e.g. "--url-params producerWindowSize=-1").
set -euo pipefail
REPS=3; DIR=/tmp/actormq-bench
while [ $# -gt 0 ]; do case $1 in --reps) REPS=$2; shift 2;; --dir) DIR=$2; shift 2;; *) break;; esac; done
[ $# -eq 3 ] || { sed -n 3,22p "$0"; exit 2; }
SCEN=$1; SPORT=$2; NPORT=$3
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
KIT=${BENCH_KIT:-$ROOT/../shared/bench}
NATIVELOAD=${NATIVELOAD:-$ROOT/build/actormq-nativeload}
[ -x "$NATIVELOAD" ] || { echo "compare_native.sh: build actormq-nativeload first ($NATIVELOAD)" >&2; exit 2; }
mkdir -p "$DIR"
if [ ! -x "$DIR/stompload" ] || [ "$KIT/stompload.cpp" -nt "$DIR/stompload" ]; then
  g++ -O2 -std=c++17 -pthread -o "$DIR/stompload" "$KIT/stompload.cpp"
fi
case $SCEN in
  A) ARGS="--producers 1 --consumers 1 --size 1024 --count 200000 --persistent 0 --receipt 0 --ack auto";;
  B) ARGS="--producers 1 --consumers 1 --size 1024 --count 20000 --persistent 1 --receipt 1 --ack client-individual --prefetch 1000";;
  C) ARGS="--producers 4 --consumers 4 --size 1024 --count 20000 --persistent 1 --receipt 1 --ack client-individual --prefetch 1000";;
  D) ARGS="--producers 1 --consumers 0 --size 1024 --count 5000 --persistent 1 --receipt 1";;
  *) echo "compare_native.sh: unknown scenario $SCEN (A-D)" >&2; exit 2;;
esac
OUT=$DIR/native-$SCEN-$(date +%s).jsonl
echo "# scenario $SCEN, $REPS reps, raw lines in $OUT" >&2
for rep in $(seq 1 "$REPS"); do
  for target in stomp native; do
    if [ $target = stomp ]; then gen="$DIR/stompload"; port=$SPORT; extra=""; else gen=$NATIVELOAD; port=$NPORT; extra=${NATIVE_ARGS:-}; fi
    dest="/queue/native-compare.$SCEN.$rep.$target.$$"
    load0=$(cut -d' ' -f1 /proc/loadavg)
    line=$("$gen" --port "$port" --dest "$dest" --label $target --idle 30 $ARGS ${LOAD_ARGS:-} $extra 2>>"$DIR/stderr.log" || true)
    [ -n "$line" ] || line='{"ok":false,"msgs_per_s":0}'
    if [ "$SCEN" = D ]; then
      got=$("$gen" --port "$port" --dest "$dest" --drain 1 --idle 3 --ack client-individual --prefetch 1000 ${LOAD_ARGS:-} 2>>"$DIR/stderr.log" | grep -o '"received":[0-9]*' | cut -d: -f2 || echo 0)
      line="${line%\}},\"drained\":${got:-0}}"
    fi
    echo "${line%\}},\"target\":\"$target\",\"rep\":$rep,\"load1\":$load0}" >> "$OUT"
  done
done
python3 - "$OUT" "$SCEN" <<'PY'
import json, sys, statistics as st
out, scen = sys.argv[1], sys.argv[2]
rows = [json.loads(l) for l in open(out) if l.strip()]
def med(rs, key, sub):
    v = [x[key][sub] for x in rs]
    return st.median(v) if v else 0.0
print("| target | ok runs | msgs/s median | each run | receipt p50 us | receipt p99 us | e2e p50 us | load1 at start | ratio to stomp |")
print("|---|---|---|---|---|---|---|---|---|")
base = None
for t in ("stomp", "native"):
    rs = [x for x in rows if x["target"] == t]
    ok = [x for x in rs if x.get("ok") and (scen != "D" or x.get("drained") == x.get("count"))]
    m = st.median([x["msgs_per_s"] for x in ok]) if ok else 0.0
    if base is None: base = m
    each = " / ".join(("%.0f" % x["msgs_per_s"]) + ("" if x in ok else " FAILED") for x in rs)
    r50 = med(ok, "receipt_rtt_us", "p50") if scen in "BCD" else 0
    r99 = med(ok, "receipt_rtt_us", "p99") if scen in "BCD" else 0
    e2e = med(ok, "e2e_us", "p50") if scen != "D" else 0
    loads = " / ".join("%.1f" % x.get("load1", 0) for x in rs)
    print(f"| {t} | {len(ok)}/{len(rs)} | {m:.0f} | {each} | {r50:.0f} | {r99:.0f} | {e2e:.0f} | {loads} | {(m / base) if base else 0:.2f} |")
PY
