# shellcheck shell=bash
# The mesh part of scripts/quickstart.sh (sourced by it: uses $D $S $W $L $MC $CC, say and
# PIDS).
# A committee of one authority, three storage nodes with wallets that join through each
# other, and a client wallet "alice" with genesis funds, all on loopback under
# ./dfrp-data/mesh, made afresh each run. Alice stores a file as two paid copies through the
# market, reads it back verified, and proof periods pay the providers and the owner's margin.
# Then alice sends an MPI job (matmul on 2 ranks) to the compute node nearest its vector, paid
# through a compute escrow; the node runs it under mpirun and signs the result; alice checks
# every rank against the claim, has n2 run the same job to verify it, and the escrow settles:
# the provider is paid its quote, the owner the margin, alice gets the rest of her max_fee.
M=dfrp-data/mesh
rm -rf "$M"
mkdir -p "$M"
M=$(cd "$M" && pwd)
head -c 24 /dev/urandom | base64 > "$M/passphrase"
chmod 600 "$M/passphrase"
DFRP_PASSPHRASE=$(cat "$M/passphrase")
export DFRP_PASSPHRASE

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
json_get() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {}, {"d": d}))' "$1"; }
url_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$1/state/dfrpd.json"; }
wait_info() { for _ in $(seq 200); do [[ -s $1/state/dfrpd.json ]] && return 0; sleep 0.1; done; echo "dfrpd under $1 did not start; see $1/dfrpd.log" >&2; return 1; }

say "dfrp-wallet new (alice the client, owner who takes the margin, n1 n2 n3 the providers)"
declare -A ADDR
# n1 and n2 share an identity vector (so n2 can check n1's jobs), n3 has another.
zeros15=$(printf ',0%.0s' $(seq 15))
declare -A WVEC=([n1]="1$zeros15" [n2]="1$zeros15" [n3]="0,1${zeros15:2}")
for w in alice owner n1 n2 n3; do
  ADDR[$w]=$("$W" --wallet "$M/$w.json" --json new ${WVEC[$w]:+--vector "${WVEC[$w]}"} |
    json_get 'd["address"]')
  printf '  %-6s %s\n' "$w" "${ADDR[$w]}"
done

say "dfrp-ledger init-committee --authorities 1 --dir $M/committee --genesis alice=1000"
"$L" init-committee --authorities 1 --dir "$M/committee" --base-port "$(free_port)" \
  --genesis "${ADDR[alice]}=1000" --order-fee 0.001 >/dev/null
POLICY=$M/committee/economic.toml
# The [policy] table is the file's last: the owner and its 5% margin join it. Then short proof
# periods, fast gossip and short price epochs, so that the demo shows them within a minute.
cat >> "$POLICY" <<EOF
owner = "${ADDR[owner]}"
margin_bps = 500

[storage]
period_seconds = 8
answer_window_seconds = 4
grace_seconds = 3
max_skew_ms = 500
beacon_slot_seconds = 1

[gossip]
interval_ms = 500
suspect_timeout_ms = 5000

[pricing]
epoch_seconds = 2

# The clock runs fast here (8 s periods), so storage is priced as if a minute were a month.
[pricing.floor]
storage_gib_month = "1000"

[pricing.ceiling]
storage_gib_month = "10000"
EOF
echo "  $POLICY: the genesis, the committee, the owner's margin, 8 s proof periods"
A=$M/committee/authority-0
# The authority joins the mesh too, as an authority only (it offers no storage), trusting
# alice: the proofs its committee verifies for her become its evidence of the providers, which
# it publishes in its record (docs/PROTOCOL.md, "Trust").
env -u API_ADDR ROLES=authority TRUSTED_PEERS="${ADDR[alice]}" "$D" --config "$A/dfrp.toml" \
  >"$A/dfrpd.log" 2>&1 &
PIDS+=($!)
wait_info "$A"

PEERS=$(url_of "$A")
for n in n1 n2 n3; do
  mkdir -p "$M/$n"
  cat > "$M/$n/dfrp.toml" <<EOF
# provider $n of the quickstart mesh: one 14 MiB drive, a wallet, the committee's policy
DRIVE_0 = "data/d0"
QUOTA_0 = "14M"
STATE_DIR = "state"
API_ADDR = "127.0.0.1:0"
WALLET = "../$n.json"
WALLET_PASSPHRASE_FILE = "../passphrase"
ECONOMIC_POLICY = "../committee/economic.toml"
ROLES = "storage,compute"
EOF
  "$S" --config "$M/$n/dfrp.toml" init-storage --create -q
  API_ADDR=127.0.0.1:0 PEERS=$PEERS "$D" --config "$M/$n/dfrp.toml" >"$M/$n/dfrpd.log" 2>&1 &
  PIDS+=($!)
  wait_info "$M/$n"
  PEERS=$(url_of "$M/$n")
done
N1=$(url_of "$M/n1")
echo "  providers at $(url_of "$M/n1") $(url_of "$M/n2") $(url_of "$M/n3"), each knowing only the one before (n1 the authority)"
mesh() { "$MC" --node "$N1" --policy "$POLICY" --puts-dir "$M/puts" "$@"; }
for _ in $(seq 120); do
  [[ $(mesh --json node | json_get 'd["peers"]["alive"]') == 3 ]] && break
  sleep 0.25
done
say "dfrp-mesh --node $N1 peers"
mesh peers

storage_prices() {
  for n in n1 n2 n3; do
    printf '  %s storage %s/GiB-month\n' "$n" \
      "$(curl -sS "$(url_of "$M/$n")/v1/market/prices" | json_get 'd["prices"]["storage_gib_month"]')"
  done
}
say "storage prices before (each node's /v1/market/prices)"
storage_prices

head -c 12000000 /dev/urandom > "$M/photo.bin"
say "dfrp-mesh put photo.bin --wallet alice.json --replicas 2 --max-fee 0.01 --periods 3"
mesh put "$M/photo.bin" --wallet "$M/alice.json" --replicas 2 --max-fee 0.01 --periods 3 |
  tee "$M/put.txt"
PUT=$(awk 'NR==1 {print $2}' "$M/put.txt" | tr -d :)
say "dfrp-mesh get $PUT -o photo.back"
mesh get "$PUT" -o "$M/photo.back"
cmp "$M/photo.bin" "$M/photo.back" && echo "  identical bytes, verified against the root"

say "three proof periods of 8 s pass: each provider's node answers its audits by itself"
for _ in $(seq 60); do
  released=$(mesh --json status "$PUT" |
    json_get 'sum(c["health"]["released_periods"] for c in d["copies"] if c["state"] == "active")')
  [[ $released -ge 6 ]] && break
  sleep 1
done
say "dfrp-mesh status $PUT"
mesh status "$PUT"
say "dfrp-ledger balance (alice paid; the providers and the owner were paid)"
for w in alice n1 n2 n3 owner; do
  printf '  %-6s %s\n' "$w" "$("$L" --policy "$POLICY" balance "${ADDR[$w]}" 2>&1 | head -1)"
done
say "dfrp-mesh peers (trust: the authority saw alice, whom it trusts, pay the two holders for verified proofs; its record says so, and n1 trusts the committee)"
for _ in $(seq 40); do
  [[ $(mesh --json peers | json_get 'sum(1 for p in d["peers"] if p["trust"]["score"] > 0 and "storage" in p["roles"])') -ge 1 ]] && break
  sleep 0.5
done
mesh peers
say "storage prices after (the two holders are 80% full, over the 50% target: their price rises each epoch; the third follows them a little, blending toward its neighbours)"
storage_prices
printf '\nThe mesh is serving: authority %s, providers %s %s %s (dashboards at each URL)\n' \
  "$(url_of "$A")" "$(url_of "$M/n1")" "$(url_of "$M/n2")" "$(url_of "$M/n3")"

# A compute job: the providers also have ROLES compute. As root, jobs run as the user
# dfrp-job, which must be able to enter the folders down to each node's STATE_DIR.
if [[ $EUID == 0 ]] && ! setpriv --reuid=dfrp-job --regid=dfrp-job --clear-groups test -x "$M/n1" 2>/dev/null; then
  echo "  (the compute job is skipped: the job user dfrp-job cannot enter $M; run the quickstart from a folder others may enter)"
else
  V=$(curl -sS "$N1/v1/compute/node" | json_get '",".join(str(x) for x in d["vector"])')
  N2=$(url_of "$M/n2")
  say "dfrp-compute submit-job matmul 256 7 --ranks 2 --cpu-seconds 60 --wall-seconds 10 --max-fee 0.01 --vector (n1's) --node n3 --node n1 --pay --settle-after 25 --verifier n2 --wallet alice.json --wait"
  "$CC" --policy "$POLICY" submit-job matmul 256 7 --ranks 2 --cpu-seconds 60 --wall-seconds 10 \
    --max-fee 0.01 --vector "$V" --node "$(url_of "$M/n3")" --node "$N1" \
    --pay --settle-after 25 --verifier "$N2" \
    --wallet "$M/alice.json" --wait --json > "$M/job.json"
  JOB=$(json_get 'd["job_id"]' < "$M/job.json")
  printf '  job %s ran on %s (state %s), result root %s\n  paid through compute escrow %s: price %s, %s escrowed until it settles\n' \
    "${JOB:0:16}" "$(json_get 'd["node"]' < "$M/job.json")" \
    "$(json_get 'd["state"]' < "$M/job.json")" "$(json_get 'd["result_root"]' < "$M/job.json")" \
    "$(json_get 'd["escrow"]["escrow_id"][:16]' < "$M/job.json")" \
    "$(json_get 'd["escrow"]["price"]' < "$M/job.json")" "$(json_get 'd["max_fee"]' < "$M/job.json")"
  say "dfrp-compute result ${JOB:0:16}... -o job-out (every rank checked against the signed claim)"
  "$CC" --policy "$POLICY" result "$JOB" -o "$M/job-out"
  say "dfrp-compute verify-job ${JOB:0:16}... --verifier n2 (n2 runs the same signed job: same root?)"
  "$CC" --policy "$POLICY" verify-job "$JOB" --verifier "$N2"
  say "dfrp-compute settle-job ${JOB:0:16}... --wait (after the dispute window: the provider is paid its quote)"
  "$CC" --policy "$POLICY" settle-job "$JOB" --wait
  for w in alice n1 owner; do
    printf '  %-6s %s\n' "$w" "$("$L" --policy "$POLICY" balance "${ADDR[$w]}" 2>&1 | head -1)"
  done
fi
