#!/usr/bin/env bash
# Roles over CURVE (docs/SECURITY.md), with real processes: a worker with a worker key renders
# client alice's job (worker and blob sockets under CURVE) and alice fetches the output (blob
# socket, client key); bob asking the blob socket for that output by its hash is refused. Client bob cannot see, read the events of, cancel or fetch alice's job,
# and `jobs` shows him none of it; the admin key sees and controls everything. A worker key
# cannot submit (refused at the handshake: exit 4), and a worker started with a client key is
# refused on the worker socket and never joins. Each job records its owner in the store. The
# output's C2PA sidecar comes with alice's fetch and is granted to her alone too; the watermark
# lookup (`jobs --watermark-tag`) finds her job for her and the admin, never for bob.
source "$(dirname "$0")/lib.bash"
src=$(fixture h264-aac-300)
cp "$src" "$WORK/in.mp4"
farm_ports
K=$WORK/keys; A=$WORK/allow
for n in coordinator w1 alice bob root; do
  "$RF_BIN/reelfarm" keygen --out "$K" --name "$n" > /dev/null 2>&1 || fail "keygen $n"
done
mkdir -p "$A/workers" "$A/clients" "$A/admins"
cp "$K/w1.pub" "$A/workers/"; cp "$K/alice.pub" "$K/bob.pub" "$A/clients/"; cp "$K/root.pub" "$A/admins/"
for n in alice bob root w1; do
  mkdir -p "$WORK/cli-$n"; cp "$K/coordinator.pub" "$WORK/cli-$n/"; cp "$K/$n.key" "$WORK/cli-$n/client.key"
done
as() { local who=$1; shift; REELFARM_KEYS=$WORK/cli-$who "$RF_BIN/reelfarm" "$@"; }

start_coordinator --key "$K/coordinator.key" --authorized-keys "$A"
start_worker w1 --key "$K/w1.key" --coordinator-key "$K/coordinator.pub"
start_worker intruder --key "$K/alice.key" --coordinator-key "$K/coordinator.pub"

write_job "$WORK/job.yaml" in.mp4 out.mkv ffv1
job=$(as alice submit "$WORK/job.yaml" --wait --quiet 2> "$WORK/submit.err") ||
  fail "alice's job did not finish: $(cat "$WORK/submit.err"); $(tail -5 "$WORK/coordinator.log")"
job=$(echo "$job" | head -1)
[ -s "$WORK/out.mkv" ] || fail "no output"
[ "$(decoded_frame_count "$WORK/out.mkv")" = 300 ] || fail "output has $(decoded_frame_count "$WORK/out.mkv") frames"
ok "alice's job $job rendered by w1 over CURVE (300 frames)"

as alice fetch "$job" -o "$WORK/fetched.mkv" > /dev/null 2> "$WORK/fetch.err" || fail "alice's fetch: $(cat "$WORK/fetch.err")"
cmp -s "$WORK/fetched.mkv" "$WORK/out.mkv" || fail "alice fetched different bytes"
cmp -s "$WORK/fetched.c2pa" "$WORK/out.c2pa" || fail "alice's fetch did not bring the output's sidecar"
ok "alice fetched her output and its sidecar over the CURVE blob socket"

# The output's blob is granted to alice alone: bob asking the blob socket for it by hash is refused.
sha=$(sha256sum "$WORK/out.mkv" | cut -d' ' -f1)
got=$(/usr/bin/python3 "$(dirname "$0")/zprobe.py" blobget "$B" "$K/coordinator.pub" "$K/bob.key" "$sha")
case "$got" in "refused:"*"may download only its own jobs' outputs"*) ;; *) fail "bob's BlobGet of alice's output: $got" ;; esac
got=$(/usr/bin/python3 "$(dirname "$0")/zprobe.py" blobget "$B" "$K/coordinator.pub" "$K/alice.key" "$sha")
[ "$got" = served ] || fail "alice's BlobGet of her output: $got"
ssha=$(sha256sum "$WORK/out.c2pa" | cut -d' ' -f1)
got=$(/usr/bin/python3 "$(dirname "$0")/zprobe.py" blobget "$B" "$K/coordinator.pub" "$K/bob.key" "$ssha")
case "$got" in "refused:"*) ;; *) fail "bob's BlobGet of alice's sidecar: $got" ;; esac
ok "the blob socket serves alice's output (and its sidecar) to alice only"

for cmd in status logs cancel fetch; do
  rc=0; as bob "$cmd" "$job" > "$WORK/bob.out" 2> "$WORK/bob.err" || rc=$?
  [ $rc = 2 ] && grep -q "no job '$job' among the jobs of client key 'bob'" "$WORK/bob.err" ||
    fail "bob's '$cmd $job': exit $rc, $(cat "$WORK/bob.err")"
done
ok "bob cannot status, logs, cancel or fetch alice's job (exit 2, 'no job ... among the jobs of client key 'bob'')"
as bob jobs --json > "$WORK/bob-jobs.json" || fail "bob's jobs failed"
! grep -q "$job" "$WORK/bob-jobs.json" || fail "bob's job list shows alice's job: $(cat "$WORK/bob-jobs.json")"
as alice jobs --json | grep -q "$job" || fail "alice's job list lacks her job"
as root jobs --json | grep -q "$job" || fail "the admin's job list lacks alice's job"
as root status "$job" > /dev/null || fail "the admin cannot read alice's job"
rc=0; as bob workers > /dev/null 2> "$WORK/bobw.err" || rc=$?
[ $rc = 4 ] && grep -q "needs an admin key" "$WORK/bobw.err" || fail "bob's workers: exit $rc, $(cat "$WORK/bobw.err")"
ok "job lists: bob sees none of alice's, alice and the admin see it; workers needs an admin key"

tag=$(/usr/bin/python3 -c "import sqlite3, sys; print(sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True).execute('SELECT wm_tag FROM jobs WHERE id = ?', (sys.argv[2],)).fetchone()[0])" "$WORK/state/state.db" "$job")
[[ $tag =~ ^[0-9a-f]{16}$ ]] || fail "the store has no watermark tag for alice's job: '$tag'"
for who in alice root; do
  as $who jobs --watermark-tag "$tag" > "$WORK/wm-$who.txt" 2>&1 || fail "$who's watermark lookup: exit $?: $(cat "$WORK/wm-$who.txt")"
  head -1 "$WORK/wm-$who.txt" | grep -qx "watermark: job $job ('job')" || fail "$who's watermark lookup: $(cat "$WORK/wm-$who.txt")"
  grep -qx "  owner: client:alice" "$WORK/wm-$who.txt" || fail "$who's watermark lookup: no owner: $(cat "$WORK/wm-$who.txt")"
done
rc=0; as bob jobs --watermark-tag "$tag" > "$WORK/wm-bob.txt" 2> "$WORK/wm-bob.err" || rc=$?
[ $rc = 1 ] && [ ! -s "$WORK/wm-bob.txt" ] && ! grep -q "$job" "$WORK/wm-bob.err" || fail "bob's watermark lookup: exit $rc: $(cat "$WORK/wm-bob.txt" "$WORK/wm-bob.err")"
ok "watermark lookup: alice and the admin find alice's job by its tag, bob finds nothing (exit 1)"

rc=0; as w1 submit "$WORK/job.yaml" > /dev/null 2> "$WORK/w1.err" || rc=$?
[ $rc = 4 ] || fail "a worker key submitted (exit $rc): $(cat "$WORK/w1.err")"
ok "a worker key cannot submit (exit 4: $(cut -c1-70 "$WORK/w1.err")...)"

grep -q "refused client key 'alice' from [0-9.]* on the workers socket" "$WORK/coordinator.log" ||
  fail "the client key's worker was not refused: $(grep -i refused "$WORK/coordinator.log" | head -3)"
as root workers --json > "$WORK/workers.json" || fail "admin workers failed"
grep -q '"w1"' "$WORK/workers.json" && ! grep -q intruder "$WORK/workers.json" ||
  fail "worker list: $(cat "$WORK/workers.json")"
ok "a worker with a client key is refused on the worker socket and never joins"

owner=$(/usr/bin/python3 -c "import sqlite3, sys; print(sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True).execute('SELECT owner FROM jobs WHERE id = ?', (sys.argv[2],)).fetchone()[0])" "$WORK/state/state.db" "$job")
[ "$owner" = "client:alice" ] || fail "the job's owner in the store is '$owner'"
ok "the store records the owner: $owner"

as root cancel "$job" > /dev/null || fail "the admin cannot cancel alice's job"
ok "the admin can act on alice's job"
