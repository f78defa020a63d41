#!/usr/bin/env bash
# Certified transfers per second through four real dfrpd authorities on this machine, against
# the bound the machine sets, measured in the same run (issue 13):
#   bound = BLS verifications per second (batched, all cores) / verifications one transfer
#           needs here (9: the order's signature and the certificate's aggregate at each of
#           the 4 authorities, and the quorum's votes at the client, checked as one aggregate).
# Then: the peak (closed loop, CONCURRENCY workers, each transfer signed, certified through
# the committee and applied by a quorum) and the latency at half the peak rate (open loop).
# Goal: peak >= bound / 2, p99 < 50 ms at half the peak.
#   ACCOUNTS=64 SECONDS=15 CONCURRENCY="4 8 16" bench/ledger_throughput.sh
source "$(dirname "$0")/lib.sh"
ACCOUNTS=${ACCOUNTS:-64}
SECONDS_EACH=${SECONDS:-15}
CONCURRENCY=${CONCURRENCY:-"4 8 16"}
L=$BUILD/apps/dfrp-ledger/dfrp-ledger
LOAD=$BUILD/bench/dfrp-ledger-load
[ -x "$LOAD" ] && [ -x "$L" ] && [ -x "$D" ] || { echo "build first: cmake --build $BUILD" >&2; exit 2; }
machine

genesis=()
while read -r a; do genesis+=(--genesis "$a=1000000"); done < <("$LOAD" addresses --accounts "$ACCOUNTS")
base=$(python3 - <<'PY'
import random, socket
for _ in range(200):
    base = random.randint(20000, 32000)  # below the ephemeral ports others bind to
    socks = []
    try:
        for i in range(4):
            s = socket.socket(); s.bind(("127.0.0.1", base + i)); socks.append(s)
        print(base); break
    except OSError:
        pass
    finally:
        for s in socks: s.close()
PY
)
"$L" init-committee --authorities 4 --dir "$WORK/committee" --base-port "$base" "${genesis[@]}" \
  --order-fee 0.001 > /dev/null
POLICY=$WORK/committee/economic.toml
for i in 0 1 2 3; do
  adir=$WORK/committee/authority-$i
  # No scrubber: the authorities' stores are empty, and the machine is the bottleneck.
  echo 'SCRUB_RATE = 0' >> "$adir/dfrp.toml"
  (cd "$adir" && exec "$D" --config dfrp.toml > dfrpd.log 2>&1) &
  BG_PIDS+=($!)
done
for i in 0 1 2 3; do
  for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$((base + i))/healthz" > /dev/null && break
    sleep 0.05
  done
done

echo "== the bound"
"$LOAD" bound --seconds 5 --committee 4 | tee "$WORK/bound.json"
peak=0
for c in $CONCURRENCY; do
  echo "== closed loop, $c workers, ${SECONDS_EACH} s"
  "$LOAD" run --policy "$POLICY" --accounts "$ACCOUNTS" --seconds "$SECONDS_EACH" --concurrency "$c" \
    | tee "$WORK/closed-$c.json"
  peak=$(python3 -c "import json,sys; print(max($peak, json.load(open(sys.argv[1]))['transfers_per_s']))" "$WORK/closed-$c.json")
done
half=$(python3 -c "print(round($peak / 2, 1))")
echo "== open loop at half the peak: $half transfers/s, ${SECONDS_EACH} s"
"$LOAD" run --policy "$POLICY" --accounts "$ACCOUNTS" --seconds "$SECONDS_EACH" --rate "$half" \
  --concurrency 16 | tee "$WORK/open.json"
echo "== supply and signature batches at every authority"
for i in 0 1 2 3; do
  curl -sf "http://127.0.0.1:$((base + i))/v1/ledger/supply"; echo
  curl -sf "http://127.0.0.1:$((base + i))/metrics" | awk '
    /^dfrp_ledger_verify_batches_total/ {b = $2} /^dfrp_ledger_verify_signatures_total/ {s = $2}
    END {printf "authority: %d signatures in %d batches (%.2f a batch)\n", s, b, b ? s / b : 0}'
done
python3 - "$WORK" "$peak" <<'PY'
import json, sys
work, peak = sys.argv[1], float(sys.argv[2])
bound = json.load(open(f"{work}/bound.json"))
op = json.load(open(f"{work}/open.json"))
b = bound["bound_transfers_per_s"]
print(f"summary: bound {b:.0f} transfers/s ({bound['batched_verifications_per_s']:.0f} "
      f"batched verifications/s / {bound['verifications_per_transfer']}); peak {peak:.1f} "
      f"transfers/s = {peak / b:.2f} of the bound (goal >= 0.5); at {op['rate_asked']} "
      f"transfers/s: p50 {op['p50_ms']:.1f} ms, p99 {op['p99_ms']:.1f} ms (goal < 50 ms), "
      f"{op['failed']} failed")
PY
