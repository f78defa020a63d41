#!/usr/bin/env bash
# End-to-end test of the real dfrp-wallet binary: bash tests/wallet/cli_test.sh PATH/TO/dfrp-wallet
# Uses DFRP_KDF_PROFILE=test (tiny Argon2id parameters, for tests only) with the allowance
# --insecure-test-kdf ("$W" passes it; "$BIN" is the bare binary), and DFRP_PASSPHRASE.
set -euo pipefail
BIN=$(realpath "$1")
SRC=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
W="$T/dfrp-wallet-test"
printf '#!/bin/sh\nexec "%s" --insecure-test-kdf "$@"\n' "$BIN" >"$W"
chmod +x "$W"
export DFRP_KDF_PROFILE=test DFRP_PASSPHRASE=pw
unset DFRP_CONFIG DFRP_NEW_PASSPHRASE
fail() { echo "FAIL: $*" >&2; exit 1; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
expect_rc() {  # expect_rc CODE command...
  local want=$1; shift
  set +e; "$@" >"$T/out" 2>"$T/err"; local rc=$?; set -e
  [ "$rc" = "$want" ] || fail "'$*' exited $rc, expected $want: $(cat "$T/err")"
}

echo "-- --version"
VERSION=$(sed -n 's/^project(dfrp VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")
[ "$("$BIN" --version)" = "dfrp-wallet $VERSION" ] || fail "--version: $("$BIN" --version)"

echo "-- the test KDF profile needs --insecure-test-kdf"
expect_rc 2 "$BIN" --wallet refused.json new
grep -q 'unset DFRP_KDF_PROFILE, or add --insecure-test-kdf' "$T/err" || fail "$(cat "$T/err")"
[ ! -e refused.json ] || fail "a refused weak keystore was written"

echo "-- new, show --json"
"$W" --wallet a.json new --quiet >/dev/null
[ "$(stat -c %a a.json)" = 600 ] || fail "keystore mode is not 0600"
"$W" --wallet a.json show --json >show.json
for k in address public_key proof_of_possession vector; do
  python3 -c "import json; d=json.load(open('show.json')); assert '$k' in d" || fail "no $k"
done
[ "$(field weak_kdf <show.json)" = True ] || fail "a test-profile keystore is not flagged weak"
"$BIN" --wallet a.json show --quiet >/dev/null 2>err.txt
grep -q '^dfrp-wallet: warning: wallet a.json is sealed with weak KDF' err.txt || fail "no warning"
PK=$(field public_key <show.json)
ADDR=$(field address <show.json)
case "$ADDR" in dfrp1*) ;; *) fail "address $ADDR";; esac

echo "-- sign / verify roundtrip"
SIG=$("$W" --wallet a.json sign --message-hex 48656c6c6f)
"$W" verify --public-key "$PK" --message-hex 48656c6c6f --signature "$SIG" >/dev/null
printf 'Hello' >msg.bin
"$W" verify --public-key "$ADDR" --file msg.bin --signature "$SIG" >/dev/null
SIG_FILE=$("$W" --wallet a.json sign --file msg.bin)
[ "$SIG_FILE" = "$SIG" ] || fail "signing the same bytes from a file differs"

echo "-- a ledger order's bytes are refused (exit 2): sign must never make an order or a vote"
ORDER_HEX="0d$(printf 'DFRP-ORDER-V1' | od -An -tx1 | tr -d ' \n')0001"
expect_rc 2 "$W" --wallet a.json sign --message-hex "$ORDER_HEX"
grep -q 'dfrp protocol message' "$T/err" || fail "message: $(cat "$T/err")"

echo "-- tampered signature exits 3"
BAD=$("$W" --wallet a.json sign --message-hex 00)
expect_rc 3 "$W" verify --public-key "$PK" --message-hex 48656c6c6f --signature "$BAD"
grep -q '^dfrp-wallet: signature does not verify' "$T/err" || fail "message: $(cat "$T/err")"
expect_rc 2 "$W" verify --public-key "$PK" --message-hex 00 --signature "${SIG:0:100}"
echo "-- a signature of the right length that is no curve point exits 3 too"
INF="c0$(printf '0%.0s' $(seq 190))"
expect_rc 3 "$W" verify --public-key "$PK" --message-hex 48656c6c6f --signature "$INF"
grep -q '^dfrp-wallet: signature does not verify' "$T/err" || fail "message: $(cat "$T/err")"

echo "-- wrong passphrase: says so, file unchanged"
BEFORE=$(sha256sum a.json)
DFRP_PASSPHRASE=wrong expect_rc 3 "$W" --wallet a.json sign --message-hex 00
grep -q 'wrong passphrase for keystore a.json' "$T/err" || fail "message: $(cat "$T/err")"
DFRP_PASSPHRASE=wrong DFRP_NEW_PASSPHRASE=x expect_rc 3 "$W" --wallet a.json change-passphrase
[ "$(sha256sum a.json)" = "$BEFORE" ] || fail "wrong passphrase changed the keystore"

echo "-- never overwrite"
expect_rc 2 "$W" --wallet a.json new
[ "$(sha256sum a.json)" = "$BEFORE" ] || fail "new overwrote the keystore"

echo "-- tampered keystore exits 3"
python3 - <<'PY'
import json
d = json.load(open('a.json')); v = d['cipher']['ciphertext']
d['cipher']['ciphertext'] = ('1' if v[0] != '1' else '2') + v[1:]
json.dump(d, open('t1.json', 'w'))
d = json.load(open('a.json')); d['vector'][0] += 0.5
json.dump(d, open('t2.json', 'w'))
PY
expect_rc 3 "$W" --wallet t1.json sign --message-hex 00
expect_rc 3 "$W" --wallet t2.json show
head -c 200 a.json >t3.json
expect_rc 3 "$W" --wallet t3.json show

echo "-- aggregate + verify-aggregate"
"$W" --wallet b.json --json new >b.json.out
PK_B=$(field public_key <b.json.out); POP_B=$(field proof_of_possession <b.json.out)
POP_A=$(field proof_of_possession <show.json)
SA=$("$W" --wallet a.json sign --message-hex aa)
SB=$("$W" --wallet b.json sign --message-hex aa)
AGG=$("$W" aggregate --signature "$SA" --signature "$SB")
"$W" verify-aggregate --message-hex aa --signature "$AGG" --public-key "$PK" --public-key "$PK_B" \
  --proof-of-possession "$POP_A" --proof-of-possession "$POP_B" >/dev/null
expect_rc 2 "$W" verify-aggregate --message-hex aa --signature "$AGG" --public-key "$PK" \
  --public-key "$PK_B"
SB2=$("$W" --wallet b.json sign --message-hex bb)
AGG2=$("$W" aggregate --signature "$SA" --signature "$SB2")
"$W" verify-aggregate --signature "$AGG2" --public-key "$PK" --public-key "$PK_B" \
  --message-hex aa --message-hex bb >/dev/null
expect_rc 3 "$W" verify-aggregate --signature "$AGG2" --public-key "$PK" --public-key "$PK_B" \
  --message-hex aa --message-hex bc

echo "-- import of the shared test vector secret"
VEC="$SRC/../shared/testdata/bls_sign_vectors.json"
SK=$(python3 -c "import json; print(json.load(open('$VEC'))['cases'][0]['secret_key'])")
WANT=$(python3 -c "import json; print(json.load(open('$VEC'))['cases'][0]['public_key'])")
echo "$SK" | "$W" --wallet v.json --json import >v.out
[ "$(field public_key <v.out)" = "$WANT" ] || fail "imported key gives another public key"
MSG=$(python3 -c "import json; print(json.load(open('$VEC'))['cases'][0]['message'])")
WANT_SIG=$(python3 -c "import json; print(json.load(open('$VEC'))['cases'][0]['signature'])")
[ "$("$W" --wallet v.json sign --message-hex "$MSG")" = "$WANT_SIG" ] || fail "vector signature"

echo "-- config STATE_DIR"
printf 'STATE_DIR = "st"\nDRIVE_0 = "d0"\nQUOTA_0 = "1G"\n' >dfrp.toml
"$W" --config dfrp.toml new --quiet >/dev/null
[ -f st/wallet.json ] || fail "no wallet in STATE_DIR"
expect_rc 4 "$W" --wallet missing.json show

echo "-- a config that names no drives (a client: a wallet, no storage)"
printf 'STATE_DIR = "client"\n' >client.toml
"$W" --config client.toml new --quiet >/dev/null
[ -f client/wallet.json ] || fail "no wallet in the client's STATE_DIR"
"$W" --config client.toml show --json >client.out
[ "$(field wallet <client.out)" = "$T/client/wallet.json" ] || fail "$(cat client.out)"

echo "cli_test: all passed"
