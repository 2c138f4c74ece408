# Shared helpers for the end-to-end tests: real binaries, real processes, real sockets, and
# verification with FFmpeg's own command-line tools (independent of reelfarm's code).
set -euo pipefail

: "${RF_BIN:?RF_BIN must point at build/bin (ctest sets it)}"
: "${RF_FIXTURES:?}"
: "${RF_FIXTURE_DIR:?}"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rf-e2e-XXXXXX")
PIDS=()

cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ $rc -eq 0 ] && [ -z "${RF_KEEP:-}" ]; then rm -rf "$WORK"; else echo "e2e: work kept in $WORK" >&2; fi
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

fixture() { "$RF_FIXTURES/make-media" "$1"; }

# Three consecutive TCP ports for this script's daemons: from the script's name (so scripts that
# ctest runs side by side rarely share them) and the PID (so reruns do not wait for TIME_WAIT),
# all below the kernel's ephemeral range (ip_local_port_range): a port in that range can be taken
# at any moment by another test's outgoing connection or `:0` listener, and the bind then fails
# with "Address already in use".
port_base() {
  local name h low slots
  name=${RF_E2E_NAME:-$(basename "$0")}
  h=$(printf '%s' "$name" | cksum | cut -d' ' -f1)
  low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  slots=$(( (low - 20000) / 24 - 1 ))
  [ "$slots" -ge 16 ] || slots=16
  echo $(( 20000 + (h % slots) * 24 + ($$ % 8) * 3 ))
}

# Sets W, C and B (worker, client and blob endpoints on this script's ports) and points the CLI at
# the client socket.
farm_ports() {
  local base; base=$(port_base)
  W=tcp://127.0.0.1:$base; C=tcp://127.0.0.1:$((base + 1)); B=tcp://127.0.0.1:$((base + 2))
  export REELFARM_COORDINATOR=$C
}

# Starts reelfarm-coordinator on the farm_ports with its state in $WORK/state, HTTP on a free
# loopback port (its URL is logged: http_url); extra arguments are passed on. Sets COORD (no subshell: PIDS must see it for the cleanup trap). Log:
# $WORK/coordinator.log (appended, so a restarted coordinator's lines follow the first one's).
start_coordinator() {
  "$RF_BIN/reelfarm-coordinator" --state "$WORK/state" --listen-workers "$W" --listen-clients "$C" \
    --listen-blobs "$B" --listen-http 127.0.0.1:0 "$@" > "$WORK/coordinator.out" 2>> "$WORK/coordinator.log" &
  COORD=$!; PIDS+=("$COORD")
  wait_coordinator
}

# Waits (up to 15 s) until the coordinator started last accepts TCP connections on its client port,
# or has exited. A CLI command reports a coordinator it cannot connect to within 2 s as unreachable
# (exit 3, docs/CLI.md), and on a loaded machine starting one can take longer than that.
wait_coordinator() {
  local port=${C##*:} _
  for _ in $(seq 1 150); do
    kill -0 "$COORD" 2> /dev/null || return 0
    (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null && return 0
    sleep 0.1
  done
}

# Prints the coordinator's HTTP base URL (http://127.0.0.1:PORT) once it is logged (10 s at most).
http_url() {
  local url="" i
  for i in $(seq 1 100); do
    url=$(grep -o 'on http://[0-9.:]*/' "$WORK/coordinator.log" 2>/dev/null | tail -1 | sed 's/^on //; s#/$##') || true
    [ -n "$url" ] && break
    sleep 0.1
  done
  [ -n "$url" ] || fail "the coordinator never logged its http address: $(tail -5 "$WORK/coordinator.log")"
  echo "$url"
}

# Starts reelfarm-worker NAME (1 slot unless the extra arguments say otherwise) with its cache in
# $WORK/cache-NAME and its log in $WORK/NAME.log. Sets LAST_PID.
start_worker() {
  local name=$1; shift
  "$RF_BIN/reelfarm-worker" --coordinator "$W" --blobs "$B" --name "$name" --cache "$WORK/cache-$name" \
    --slots 1 "$@" > "$WORK/$name.out" 2> "$WORK/$name.log" &
  LAST_PID=$!; PIDS+=("$LAST_PID")
}

# Per-frame SHA-256 of the decoded video, one per line (hash column only).
# Every farm output carries the invisible watermark in its luma (docs/PROVENANCE.md), so frames
# are compared by their chroma, with luma zeroed: the mark never touches chroma, and the chunking
# checks (order, count, seams) still see every frame. verify_lossless checks the luma separately.
frame_hashes() { ffmpeg -v error -i "$1" -map 0:v:0 -vf lutyuv=y=0 -f framehash -hash sha256 - | grep -v '^#' | awk -F', *' '{print $NF}'; }

# Luma PSNR of $1 against $2 (ffmpeg's psnr filter, whole clip): prints "y=.. u=.. v=..".
psnr_planes() {
  ffmpeg -v info -nostdin -i "$1" -i "$2" -lavfi "[0:v:0][1:v:0]psnr" -f null - 2>&1 |
    grep -o 'PSNR y:[^ ]* u:[^ ]* v:[^ ]*' | tail -1 | sed 's/PSNR //; s/:/=/g'
}

# SHA-256 of every audio packet's data, in order.
audio_hashes() { ffprobe -v error -select_streams a:0 -show_packets -show_data_hash sha256 -show_entries packet=data_hash -of csv=p=0 "$1" | grep -o "SHA256:[0-9a-f]*"; }

video_packet_count() { ffprobe -v error -select_streams v:0 -count_packets -show_entries stream=nb_read_packets -of csv=p=0 "$1"; }
decoded_frame_count() { ffprobe -v error -select_streams v:0 -count_frames -show_entries stream=nb_read_frames -of csv=p=0 "$1"; }
pix_fmt() { ffprobe -v error -select_streams v:0 -show_entries stream=pix_fmt -of csv=p=0 "$1"; }

# Video duration from packets: last pts + duration - first pts (seconds).
video_duration() {
  ffprobe -v error -select_streams v:0 -show_entries packet=pts_time,duration_time -of csv=p=0 "$1" |
    awk -F, 'NR==1{min=$1} {if($1<min)min=$1; if($1+$2>max)max=$1+$2} END{printf "%.6f\n", max-min}'
}

# Fails unless video PTS (sorted) and DTS (file order) strictly increase. Matroska stores no DTS
# (ffprobe guesses some and prints N/A for others): only stored values are compared.
check_timestamps() {
  local f=$1
  ffprobe -v error -select_streams v:0 -show_entries packet=dts -of csv=p=0 "$f" | grep -v '^N/A' |
    awk 'NR>1 && $1<=prev {print "dts not increasing at packet " NR ": " prev " -> " $1; bad=1} {prev=$1} END{exit bad}' ||
    fail "$f: DTS not strictly increasing"
  ffprobe -v error -select_streams v:0 -show_entries packet=pts -of csv=p=0 "$f" | sort -n |
    awk 'NR>1 && $1<=prev {print "duplicate pts " $1; bad=1} {prev=$1} END{exit bad}' ||
    fail "$f: PTS not strictly increasing"
}

# Writes a job spec. Usage: write_job FILE INPUT OUTPUT CODEC [extra YAML lines...]
write_job() {
  local file=$1 input=$2 output=$3 codec=$4; shift 4
  {
    echo "version: 1"
    echo "name: $(basename "$file" .yaml)"
    echo "input: $input"
    echo "output: $output"
    echo "chunking: {target_seconds: 6, max_seconds: 10}"
    echo "encode: {codec: $codec}"
    for line in "$@"; do echo "$line"; done
  } > "$file"
}

# Verifies a lossless empty-pipeline render against its source, frame by frame and packet by packet.
verify_lossless() {
  local src=$1 out=$2
  local n_src n_out
  n_src=$(video_packet_count "$src"); n_out=$(video_packet_count "$out")
  [ "$n_src" = "$n_out" ] || fail "frame count: source $n_src, output $n_out"
  ok "frame count $n_out"
  [ "$(pix_fmt "$src")" = "$(pix_fmt "$out")" ] || fail "pixel format changed: $(pix_fmt "$src") -> $(pix_fmt "$out")"
  ok "pixel format $(pix_fmt "$out") kept"
  frame_hashes "$src" > "$WORK/src.hash"; frame_hashes "$out" > "$WORK/out.hash"
  [ "$(wc -l < "$WORK/src.hash")" = "$n_src" ] || fail "could not hash source frames"
  cmp -s "$WORK/src.hash" "$WORK/out.hash" || fail "decoded frames differ (first difference: line $(cmp "$WORK/src.hash" "$WORK/out.hash" | awk '{print $NF}'))"
  ok "all $n_out decoded frames' chroma bit-identical (SHA-256)"
  local planes; planes=$(psnr_planes "$out" "$src")
  # luma = source + the watermark (about 40.5 dB); chroma untouched (inf)
  echo "$planes" | awk '{split($1,y,"="); split($2,u,"="); split($3,v,"=");
    exit !(y[2] != "inf" && y[2] >= 39.5 && y[2] <= 46 && u[2] == "inf" && v[2] == "inf")}' ||
    fail "luma should differ from the source by the watermark only (PSNR-Y 39.5..46 dB), chroma not at all: $planes"
  ok "luma = source + watermark ($planes)"
  audio_hashes "$src" > "$WORK/src.audio"; audio_hashes "$out" > "$WORK/out.audio"
  [ -s "$WORK/src.audio" ] || fail "source has no audio packets"
  cmp -s "$WORK/src.audio" "$WORK/out.audio" || fail "audio packets differ"
  ok "$(wc -l < "$WORK/out.audio") audio packets identical"
  check_timestamps "$out"
  ok "timestamps strictly increasing"
}
