#!/usr/bin/env bash
# End-to-end tests of proofs of storage and verified range reads (issue 4): prove-shard,
# audit, verify-proof and read-shard --range on the real binary. Proofs are also checked by
# an independent verifier written here in python (RFC 9162 from the leaf and path), and audit
# indices are recomputed from the documented rule.
#
#   bash tests/cli/proof_cli_test.sh path/to/dfrp-storage
set -u
set -o pipefail

if [[ $# -lt 1 || ! -x $1 ]]; then
  echo "usage: $0 path/to/dfrp-storage" >&2
  exit 2
fi
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/dfrp-proof-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
# shellcheck source=lib.sh
source "$HERE/lib.sh"
isolate_from_caller "$1"

# dsb ARGS... : like ds, for binary output (stdout stays in $T/out only).
dsb() {
  "$BIN" --config "$C" "$@" >"$T/out" 2>"$T/err"
  RC=$?
  OUT=""
  ERR=$(cat "$T/err")
}

# pyproof FILE : independent check of a JSON proof or audit; prints the root it computes for
# each leaf proof (one a line), or "bad" when a leaf proof does not fold to one root.
pyproof() {
  $PY - "$1" <<'EOF'
import hashlib, json, struct, sys, uuid
H = lambda b: hashlib.sha256(b).digest()
j = json.load(open(sys.argv[1]))
n = j["tree_size"]
def root_of(index, leaf, path):
    # RFC 9162 section 2.1.3.2
    fn, sn, r = index, n - 1, H(b"\x00" + leaf)
    for p in path:
        if sn == 0: return None
        if fn & 1 or fn == sn:
            r = H(b"\x01" + p + r)
            while not fn & 1 and fn != 0:
                fn >>= 1; sn >>= 1
        else:
            r = H(b"\x01" + r + p)
        fn >>= 1; sn >>= 1
    return r if sn == 0 else None
proofs = j["proofs"] if j["format"] == "dfrp-audit" else [j]
for p in proofs:
    r = root_of(p["leaf_index"], bytes.fromhex(p["leaf"]), [bytes.fromhex(x) for x in p["path"]])
    print(r.hex() if r else "bad")
EOF
}

# pyindices SEED_HEX SHARD_ID TREE_SIZE K : the documented audit rule, one index a line.
pyindices() {
  $PY - "$@" <<'EOF'
import hashlib, struct, sys, uuid
seed, sid, n, k = bytes.fromhex(sys.argv[1]), uuid.UUID(sys.argv[2]).bytes, int(sys.argv[3]), int(sys.argv[4])
for j in range(k):
    print(struct.unpack("<Q", hashlib.sha256(seed + sid + struct.pack("<I", j)).digest()[:8])[0] % n)
EOF
}

F=$T/files
mkdir -p "$F"
mkfile "$F/multi" 300007 11  # 74 leaves at 4 KiB, the last short
mkfile "$F/one" 1000 12      # one leaf: no tree section
: >"$F/empty"
new_store s 8M 8M
ds -q write-shard "$F/multi" "$F/one" "$F/empty"
expect_rc "write-shard of three files" 0
mapfile -t IDS <<<"$OUT"
MULTI=${IDS[0]} ONE=${IDS[1]} EMPTY=${IDS[2]}
ROOT=$(merkle_ref 4096 "$F/multi")
ROOT_ONE=$(merkle_ref 4096 "$F/one")

###############################################################################
# prove-shard and verify-proof
###############################################################################
for leaf in 0 1 37 72 73; do
  ds --json prove-shard "$MULTI" --leaf "$leaf"
  expect_rc "prove-shard --leaf $leaf exits 0" 0
  cp "$T/out" "$T/p$leaf.json"
  check "proof of leaf $leaf names shard, root, sizes and index" jtrue \
    "j['shard_id']=='$MULTI' and j['merkle_root']=='$ROOT' and j['tree_size']==74 and j['leaf_size']==4096 and j['leaf_index']==$leaf"
  want=$(tail -c +$((leaf * 4096 + 1)) "$F/multi" | head -c 4096 | xxd -p | tr -d '\n')
  check "proof of leaf $leaf carries the leaf's bytes" test "$(jget "j['leaf']")" = "$want"
  check "an independent verifier folds leaf $leaf's path to the root" \
    test "$(pyproof "$T/p$leaf.json")" = "$ROOT"
  "$BIN" verify-proof "$T/p$leaf.json" --root "$ROOT" >"$T/out" 2>"$T/err"
  RC=$?
  expect_rc "verify-proof accepts the proof of leaf $leaf" 0
done

# verify-proof needs no store and no config at all (even a broken one in the environment).
(cd "$T" && DFRP_CONFIG=/nonexistent/dfrp.toml "$BIN" verify-proof "$T/p1.json" --root "$ROOT") \
  >"$T/out" 2>"$T/err"
RC=$?
expect_rc "verify-proof runs with no config (DFRP_CONFIG pointing nowhere)" 0
check "verify-proof says ok" grep -q "^ok: leaf 1 of shard $MULTI" "$T/out"

ds --json prove-shard "$ONE" --leaf 0
cp "$T/out" "$T/one.json"
check "a one-leaf shard (no stored tree) proves with an empty path" \
  jtrue "j['tree_size']==1 and j['path']==[] and j['merkle_root']=='$ROOT_ONE'"
"$BIN" verify-proof "$T/one.json" --root "$ROOT_ONE" >/dev/null 2>"$T/err"
RC=$?
expect_rc "verify-proof accepts the one-leaf proof" 0

ds prove-shard "$MULTI" --leaf 74
expect_err "prove-shard past the last leaf exits 2" 2 "leaf 74 is beyond" "74 leaves"
ds prove-shard "$EMPTY" --leaf 0
expect_err "prove-shard of an empty shard exits 2" 2 "empty"
ds prove-shard 01932c07-a35c-7a9b-8f1e-5c1d2b3a4f60 --leaf 0
expect_err "prove-shard of an unknown shard exits 4" 4 "not in this store"

# Binary form.
ds prove-shard "$MULTI" --leaf 37 -o "$T/p37.bin"
expect_rc "prove-shard -o writes a binary proof" 0
check "the binary proof starts with its magic" test "$(head -c 8 "$T/p37.bin")" = DFRPPROF
vp() { "$BIN" verify-proof "$@" >"$T/out" 2>"$T/err"; RC=$?; OUT=$(cat "$T/out"); ERR=$(cat "$T/err"); }
vp "$T/p37.bin" --root "$ROOT"
expect_rc "verify-proof accepts the binary proof" 0
vp - --root "$ROOT" <"$T/p37.bin"
expect_rc "verify-proof reads a proof from standard input" 0

###############################################################################
# Bad proofs: exit 3 (or 2 for a bad --root), one line naming what failed, never a crash
###############################################################################
vp "$T/p37.json" --root "${ROOT:0:62}"
expect_err "a root of the wrong length exits 2" 2 "64 hex digits"
vp "$T/p37.json" --root "$ROOT_ONE"
expect_err "the wrong root exits 3" 3 "not for the given root"
head -c 200 "$T/p37.bin" >"$T/trunc.bin"
vp "$T/trunc.bin" --root "$ROOT"
expect_err "a truncated binary proof exits 3" 3 "truncated"
cp "$T/p37.bin" "$T/long.bin" && printf 'x' >>"$T/long.bin"
vp "$T/long.bin" --root "$ROOT"
expect_err "a binary proof with a trailing byte exits 3" 3 "too long"
head -c 300 "$T/p37.json" >"$T/trunc.json"
vp "$T/trunc.json" --root "$ROOT"
expect_err "a truncated JSON proof exits 3" 3 "malformed"
edit() { # edit IN OUT PYTHON-STATEMENT-OVER-j
  $PY -c "import json,sys; j=json.load(open(sys.argv[1])); $3; json.dump(j, open(sys.argv[2],'w'))" "$1" "$2"
}
edit "$T/p37.json" "$T/e.json" "j['path'].pop()"
vp "$T/e.json" --root "$ROOT"
expect_err "a path one node short exits 3" 3 "path of 6 nodes" "needs 7"
edit "$T/p37.json" "$T/e.json" "j['path'].append(j['path'][0])"
vp "$T/e.json" --root "$ROOT"
expect_err "a path one node long exits 3" 3 "path of 8 nodes"
edit "$T/p37.json" "$T/e.json" "j['leaf_index']=74"
vp "$T/e.json" --root "$ROOT"
expect_err "a leaf index beyond the tree exits 3" 3 "beyond the tree"
edit "$T/p37.json" "$T/e.json" "j['leaf']=('00' if j['leaf'][:2]!='00' else '01')+j['leaf'][2:]"
vp "$T/e.json" --root "$ROOT"
expect_err "a changed leaf byte exits 3" 3 "leaf 37 does not verify"
edit "$T/p37.json" "$T/e.json" "j['path'][3]='ab'*32"
vp "$T/e.json" --root "$ROOT"
expect_err "a changed path node exits 3" 3 "does not verify"
edit "$T/p37.json" "$T/e.json" "j['merkle_root']=j['merkle_root'][:10]"
vp "$T/e.json" --root "$ROOT"
expect_err "a proof whose root field has the wrong length exits 3" 3 "merkle_root"
edit "$T/p37.json" "$T/e.json" "j['tree_size']=-1"
vp "$T/e.json" --root "$ROOT"
expect_err "a negative tree size exits 3" 3 "tree_size"
vp "$T/nonexistent" --root "$ROOT"
expect_err "a missing proof file exits 4" 4 "does not exist"

###############################################################################
# Audits
###############################################################################
SEED=5eed00c0ffee
ds --json audit "$MULTI" --challenges 16 --seed $SEED
expect_rc "audit exits 0" 0
cp "$T/out" "$T/audit.json"
check "the audit answers 16 challenges with the seed" \
  jtrue "j['format']=='dfrp-audit' and j['seed']=='$SEED' and j['challenges']==16 and len(j['proofs'])==16"
check "the audit's indices follow the documented rule (SHA-256(seed || id || j) mod leaves)" \
  test "$(jget "'\n'.join(str(p['leaf_index']) for p in j['proofs'])" "$T/audit.json")" = \
  "$(pyindices $SEED "$MULTI" 74 16)"
check "every audit proof folds to the root (independent verifier)" \
  test "$(pyproof "$T/audit.json" | sort -u)" = "$ROOT"
ds --json audit "$MULTI" --challenges 16 --seed $SEED
check "the same seed gives the same answer" cmp -s "$T/out" "$T/audit.json"
ds --json audit "$MULTI" --challenges 16 --seed 5eed00c0ffef
check "another seed picks other leaves" test "$(jget "[p['leaf_index'] for p in j['proofs']]")" != \
  "$(jget "[p['leaf_index'] for p in j['proofs']]" "$T/audit.json")"
# What the verifier knows of the shard (from write-shard) and of the audit it issued.
KNOW="--shard $MULTI --size 300007 --leaf-size 4096 --challenges 16"
vp "$T/audit.json" --root "$ROOT" --seed $SEED $KNOW
expect_rc "verify-proof accepts the audit answer with the issued seed" 0
vp "$T/audit.json" --root "$ROOT" --seed $SEED
expect_err "an audit checked without the shard's facts is a usage error (exit 2) naming them" 2 \
  "--shard" "--size" "--leaf-size" "--challenges"
vp "$T/audit.json" --root "$ROOT" --seed 5eed00c0ffef $KNOW
expect_err "verify-proof refuses an answer to another seed" 3 "seed"
# Another challenge's answer in place of the fourth: one for a different leaf (two challenges
# of a seed may pick the same leaf, about 1 run in 70 for this shard).
edit "$T/audit.json" "$T/e.json" \
  "j['proofs'][3]=next(p for p in j['proofs'] if p['leaf_index']!=j['proofs'][3]['leaf_index'])"
vp "$T/e.json" --root "$ROOT" --seed $SEED $KNOW
expect_err "an audit answering a leaf the seed did not pick exits 3" 3 "seed asks for leaf"
edit "$T/audit.json" "$T/e.json" "j['seed']='5eed00c0ffef'"
vp "$T/e.json" --root "$ROOT" --seed 5eed00c0ffef $KNOW
expect_err "an audit whose seed was swapped exits 3" 3 "seed asks for leaf"
edit "$T/audit.json" "$T/e.json" "j['challenges']=15"
vp "$T/e.json" --root "$ROOT" --seed $SEED $KNOW
expect_err "an audit whose count disagrees with its proofs exits 3" 3 "challenges"
# A prover holding part of the shard: it claims a smaller tree (whose leaves fold like the
# first ones of the real tree), grinds another shard id, or answers fewer challenges.
edit "$T/audit.json" "$T/e.json" "j['tree_size']=64"
vp "$T/e.json" --root "$ROOT" --seed $SEED $KNOW
expect_err "an audit claiming a smaller tree than the shard has exits 3" 3 "claims a tree of 64"
edit "$T/audit.json" "$T/e.json" "j['shard_id']='$ONE'"
vp "$T/e.json" --root "$ROOT" --seed $SEED $KNOW
expect_err "an audit for another shard id exits 3" 3 "not for shard $MULTI"
ds --json audit "$MULTI" --challenges 1 --seed $SEED
cp "$T/out" "$T/audit1.json"
vp "$T/audit1.json" --root "$ROOT" --seed $SEED $KNOW
expect_err "an answer with fewer proofs than the challenges asked exits 3" 3 "asked for 16"
vp "$T/p37.json" --root "$ROOT"
check "a single proof checked with the root only says its position is not proven" \
  grep -q "give --size and --leaf-size" "$T/out"
vp "$T/p37.json" --root "$ROOT" --size 300007 --leaf-size 4096
expect_rc "a single proof with the shard's size proves the leaf's position" 0
vp "$T/p37.json" --root "$ROOT" --size 200000 --leaf-size 4096
expect_err "a single proof against the wrong size exits 3" 3 "claims a tree of 74"
ds audit "$MULTI" --challenges 16 --seed $SEED -o "$T/audit.bin"
vp "$T/audit.bin" --root "$ROOT" --seed $SEED $KNOW
expect_rc "the binary audit answer verifies" 0
ds audit "$MULTI" --challenges 4 --seed xyz
expect_err "audit with a non-hex seed exits 2" 2 "seed"
ds audit "$MULTI" --challenges 0 --seed $SEED
expect_err "audit with 0 challenges exits 2" 2 "challenges"
ds audit "$EMPTY" --challenges 1 --seed $SEED
expect_err "audit of an empty shard exits 2" 2 "empty"

###############################################################################
# read-shard --range
###############################################################################
for r in 0:1 0:4096 4095:2 8192:4096 100:200000 300006:1 299000:1007 0:300007 5:0; do
  off=${r%:*} len=${r#*:}
  dsb read-shard "$MULTI" --range "$r"
  tail -c +$((off + 1)) "$F/multi" | head -c "$len" >"$T/want"
  check "read-shard --range $r gives exactly those bytes" cmp -s "$T/out" "$T/want"
done
dsb read-shard "$ONE" --range 10:20
check "read-shard --range of a one-leaf shard" cmp -s "$T/out" <(tail -c +11 "$F/one" | head -c 20)
dsb read-shard "$MULTI" --range 100:200 -o "$T/range.out"
check "read-shard --range -o writes the range to the file" \
  cmp -s "$T/range.out" <(tail -c +101 "$F/multi" | head -c 200)
dsb read-shard "$MULTI" --range 300000:8
expect_err "a range past the end exits 2" 2 "runs past the end" "300007 bytes"
dsb read-shard "$MULTI" --range 12
expect_err "a malformed range exits 2" 2 "OFFSET:LENGTH"

# Damage leaf 40 of the shard: ranges touching it fail with nothing on stdout; others read.
ds --json stat-shard "$MULTI"
SEG=$(jget "j['segment']")
OFF=$(jget "j['offset']")
MLEN=$(u32le "$SEG" $((OFF + 12)))
flip "$SEG" $((OFF + 96 + MLEN + 40 * 4096 + 77))
dsb read-shard "$MULTI" --range $((40 * 4096 + 100)):10
expect_err "a range inside the damaged leaf exits 3" 3 "leaf 40"
check "nothing of the damaged range reached stdout" test ! -s "$T/out"
dsb read-shard "$MULTI" --range 0:$((40 * 4096))
check "the leaves before the damaged one still read" \
  cmp -s "$T/out" <(head -c $((40 * 4096)) "$F/multi")
expect_rc "reading the leaves before the damage exits 0" 0
dsb read-shard "$MULTI" --range $((41 * 4096)):4096
expect_rc "a leaf after the damaged one still reads" 0
ds prove-shard "$MULTI" --leaf 40
expect_err "prove-shard of the damaged leaf exits 3" 3 "leaf 40"
ds prove-shard "$MULTI" --leaf 41
expect_rc "prove-shard of a good leaf still works" 0

###############################################################################
# scrub
###############################################################################
new_store sc 1M 16M
mkfile "$F/s1" 300000 21
mkfile "$F/s2" 800000 22
mkfile "$F/s3" 5000 23
ds -q write-shard "$F/s1" "$F/s2" "$F/s3"
mapfile -t SIDS <<<"$OUT"
ds --json scrub
expect_rc "scrub of a clean store exits 0" 0
check "scrub verified all three shards, none corrupt" \
  jtrue "j['shards_verified']==3 and j['corrupt']==0 and j['bytes_verified']==1105000 and not j['stopped']"
check "scrub keeps its state in STATE_DIR/scrub.sqlite" test -s "$S/state/scrub.sqlite"
ds --json stat-shard "${SIDS[1]}"
SEG=$(jget "j['segment']")
OFF=$(jget "j['offset']")
VOL=$(jget "j['volume']")
MLEN=$(u32le "$SEG" $((OFF + 12)))
flip "$SEG" $((OFF + 96 + MLEN + 123456))
ds scrub
expect_rc "scrub exits 3 when it finds a corrupt shard" 3
check "scrub names the corrupt shard with volume, segment and offset" \
  grep -q "^CORRUPT  ${SIDS[1]}  volume $VOL, segment 1 ($SEG) at offset $OFF:" "$T/out"
check "scrub reports only that shard" test "$(grep -c CORRUPT "$T/out")" = 1
check "scrub's last line on stderr says what to do" grep -q "corrupt shard(s) found" "$T/err"
ds --json list-volumes
V0=$(jget "j[0]['shards']")
ds --json scrub --volume 0
check "scrub --volume 0 verifies only volume 0's $V0 shard(s)" \
  jtrue "[v['volume'] for v in j['volumes']]==[0] and j['shards_verified']==$V0 and $V0 < 3"
ds scrub --volume 9
expect_err "scrub of an unknown volume exits 4" 4 "volume 9"
ds scrub --rate -1
expect_err "a negative --rate exits 2" 2 "rate"

# Stop with SIGINT, then resume: the second run verifies only what the first did not reach.
new_store sr 64M 1M
for i in 1 2 3 4 5 6; do mkfile "$F/r$i" 1048576 $((30 + i)); done
ds -q write-shard "$F"/r[1-6]
(cd "$T/cwd" && exec "$BIN" --config "$C" --json scrub --rate 1 >"$T/scrub1" 2>"$T/scrub1.err") &
SPID=$!
sleep 2
kill -INT $SPID
wait $SPID
RC=$?
expect_rc "a scrub stopped by SIGINT exits 0" 0
check "the stopped scrub says it stopped, having verified some but not all" \
  jtrue "j['stopped'] and j['shards_verified'] < 6" "$T/scrub1"
FIRST=$(jget "j['shards_verified']" "$T/scrub1")
ds --json scrub
check "the next scrub resumes: it verifies only the $((6 - FIRST)) shard(s) left" \
  jtrue "j['shards_verified']==$((6 - FIRST)) and j['volumes'][0]['resumed'] and not j['stopped']"
ds --json scrub
check "after a finished pass the next scrub starts over" jtrue "j['shards_verified']==6"

echo "$PASS passed, $FAIL failed"
[[ $FAIL -eq 0 ]]
