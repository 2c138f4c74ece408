#!/usr/bin/env bash
# `reelfarm submit --openjd`: an Open Job Description template (2023-09, TASK_CHUNKING) within the
# subset renders on a real coordinator (name, parameters with defaults and --param overrides,
# CHUNK[INT] defaultTaskCount -> chunk length, the embedded job spec); every kind of template
# outside the subset is refused before anything is sent, with one line naming the key and its
# file:line, and exit 2.
source "$(dirname "$0")/lib.bash"
R=$RF_BIN/reelfarm
export XDG_CONFIG_HOME=$WORK/cfg HOME=$WORK/home
src=$(fixture h264-aac-300)   # 300 frames, 25 fps
cp "$src" "$WORK/in.mp4"

# The valid template. Variants below are made from it with sed.
cat > "$WORK/base.yaml" <<'YAML'
specificationVersion: 'jobtemplate-2023-09'
extensions: [TASK_CHUNKING]
name: 'Render {{Param.Shot}}'
description: a reelfarm job as an OpenJD template
parameterDefinitions:
  - name: Shot
    type: STRING
    default: sh010
  - name: Input
    type: PATH
    default: in.mp4
  - name: Codec
    type: STRING
    allowedValues: [ffv1, libx264]
    default: ffv1
  - name: ChunkFrames
    type: INT
    default: 300
    minValue: 1
  - name: Gain
    type: FLOAT
    default: 0.5
steps:
  - name: render
    parameterSpace:
      taskParameterDefinitions:
        - name: Frame
          type: CHUNK[INT]
          range: "1-300"
          chunks:
            defaultTaskCount: "{{Param.ChunkFrames}}"
            rangeConstraint: CONTIGUOUS
    hostRequirements:
      amounts:
        - name: amount.worker.gpu
          min: 0
      attributes:
        - name: attr.worker.os.family
          anyOf: [linux, windows]
    script:
      actions:
        onRun:
          command: reelfarm
          args: [render, "{{Task.File.job}}"]
      embeddedFiles:
        - name: job
          type: TEXT
          data: |
            version: 1
            input: {{Param.Input}}
            output: out-{{Param.Shot}}.mkv
            encode: {codec: {{Param.Codec}}}
YAML

# ---- refusals (no coordinator needed: nothing is sent) ----------------------------------------
# refuse NAME SED-SCRIPT EXPECTED-TEXT [KEY-FOR-LINE] [extra submit args...]: the variant is
# refused with exit 2, one line "reelfarm: FILE:LINE: ..." containing EXPECTED-TEXT, where LINE is
# the line of the first occurrence of KEY-FOR-LINE in the variant (when given).
refuse() {
  local name=$1 script=$2 want=$3 key=${4:-}; shift 4 || shift $#
  local t=$WORK/$name.yaml
  sed -e "$script" "$WORK/base.yaml" > "$t"
  set +e; "$R" submit --openjd "$t" --coordinator tcp://127.0.0.1:1 "$@" > /dev/null 2> "$WORK/$name.err"; local rc=$?; set -e
  [ $rc = 2 ] || fail "$name: exit $rc, expected 2 ($(cat "$WORK/$name.err"))"
  [ "$(wc -l < "$WORK/$name.err")" = 1 ] || fail "$name: expected one line: $(cat "$WORK/$name.err")"
  grep -qF -- "$want" "$WORK/$name.err" || fail "$name: message lacks '$want': $(cat "$WORK/$name.err")"
  if [ -n "$key" ]; then
    local line; line=$(grep -n -m1 -F -- "$key" "$t" | cut -d: -f1)
    grep -qF "reelfarm: $t:$line: " "$WORK/$name.err" || fail "$name: expected $t:$line: $(cat "$WORK/$name.err")"
  fi
}
refuse two-steps '$a\  - name: encode\n    script: {}' "a second step ('encode') is outside the subset" "name: encode"
refuse job-env '/^description:/a jobEnvironments:\n  - name: env1' "key 'jobEnvironments' is outside the subset reelfarm imports: job environments are not supported" jobEnvironments
refuse step-env '/^    hostRequirements:/i\    stepEnvironments: []' "key 'stepEnvironments' is outside the subset" stepEnvironments
refuse unknown-top '1a frobnicate: 1' "key 'frobnicate' is outside the subset reelfarm imports (unknown key)" frobnicate
refuse unknown-step '/^    parameterSpace:/i\    colour: blue' "key 'colour' is outside the subset" colour
refuse int-param 's/type: CHUNK\[INT\]/type: INT/' "task parameter type 'INT' is outside the subset reelfarm imports (only CHUNK[INT])" "          type: INT"
refuse two-task-params '/^        - name: Frame/i\        - name: Eye\n          type: STRING\n          range: [left, right]' "exactly one task parameter" taskParameterDefinitions
refuse sparse-range 's/range: "1-300"/range: "1,3,7-20:2"/' "range '1,3,7-20:2' is outside the subset" "range:"
refuse short-range 's/range: "1-300"/range: "1-100"/' "range 1-100: reelfarm renders whole inputs, and the input has 300 frames: use 1-300 (or 0-299)" "range:"
refuse noncontiguous 's/CONTIGUOUS/NONCONTIGUOUS/' "rangeConstraint 'NONCONTIGUOUS' is outside the subset" rangeConstraint
refuse runtime '/rangeConstraint/a\            targetRuntimeSeconds: 60' "key 'targetRuntimeSeconds' is outside the subset reelfarm imports: reelfarm sizes chunks by defaultTaskCount" targetRuntimeSeconds
refuse vcpu '/^      attributes:/i\        - name: amount.worker.vcpu\n          min: 8' "amount 'amount.worker.vcpu' is outside the subset" "amount.worker.vcpu"
refuse gpu-max 's/          min: 0/          max: 2/' "amount 'amount.worker.gpu': 'max' is outside the subset" "max: 2"
refuse windows-only 's/anyOf: \[linux, windows\]/anyOf: [windows]/' "does not admit linux" "attr.worker.os.family"
refuse other-attr 's/attr.worker.os.family/attr.worker.cpu.arch/' "attribute 'attr.worker.cpu.arch' is outside the subset" "attr.worker.cpu.arch"
refuse version 's/jobtemplate-2023-09/jobtemplate-2099-01/' "specificationVersion 'jobtemplate-2099-01' is outside the subset" specificationVersion
refuse no-extension '/^extensions:/d' "extensions: TASK_CHUNKING is required" ""
refuse other-extension 's/\[TASK_CHUNKING\]/[TASK_CHUNKING, EXPR]/' "extension 'EXPR' is outside the subset" extensions
refuse bash-command 's/command: reelfarm/command: bash/' "onRun command 'bash' is outside the subset" "command: bash"
refuse on-exit '/^          args:/a\        onExit:\n          command: rm' "key 'onExit' is outside the subset reelfarm imports: only onRun is supported" onExit
refuse task-expr 's/output: out-{{Param.Shot}}.mkv/output: out-{{Task.Param.Frame}}.mkv/' "expression '{{Task.Param.Frame}}' is outside the subset" "{{Task.Param.Frame}}"
refuse undefined-param 's/output: out-{{Param.Shot}}.mkv/output: {{Param.Nope}}.mkv/' "'{{Param.Nope}}' names no parameter" "{{Param.Nope}}"
refuse no-default '/    default: sh010/d' "parameter 'Shot' has no default: give --param Shot=VALUE" "name: Shot"
refuse enum-value '' "parameter 'Codec': 'prores' is not one of its allowedValues" "name: Codec" --param Codec=prores
refuse int-value '' "parameter 'ChunkFrames' (INT): 'many' is not an integer" "name: ChunkFrames" --param ChunkFrames=many
refuse below-min '' "parameter 'ChunkFrames': 0 is below minValue 1" "name: ChunkFrames" --param ChunkFrames=0
refuse newline-value '' "parameter 'Shot': control characters (such as a line break) in its value" "name: Shot" --param "Shot=$(printf 'a\nprovenance: {watermark: false}')"
refuse path-type 's/type: PATH/type: LIST[STRING]/' "type 'LIST[STRING]' is outside the subset" "LIST[STRING]"
refuse bad-yaml 's/^name: .*/name: [unclosed/' "invalid YAML" ""
refuse bad-job 's/encode: {codec: {{Param.Codec}}}/encode: {codec: {{Param.Codec}}, crf: 99}/' "embedded job spec: key 'encode.crf'" "crf: 99"
set +e; "$R" submit --openjd "$WORK/base.yaml" --param Nope=1 > /dev/null 2> "$WORK/np.err"; rc=$?; set -e
[ $rc = 2 ] && grep -qF -- "--param 'Nope': $WORK/base.yaml defines no such parameter" "$WORK/np.err" || fail "unknown --param: exit $rc $(cat "$WORK/np.err")"
set +e; "$R" submit "$WORK/base.yaml" --param Shot=x > /dev/null 2> "$WORK/np2.err"; rc=$?; set -e
[ $rc = 2 ] && grep -qF -- "flag '--param' is only for --openjd" "$WORK/np2.err" || fail "--param without --openjd: exit $rc $(cat "$WORK/np2.err")"
ok "every template outside the subset is refused with one file:line message naming what (exit 2)"

# ---- a real coordinator ------------------------------------------------------------------------
farm_ports
start_coordinator
start_worker ow --slots 2
for _ in $(seq 1 100); do "$R" jobs > /dev/null 2>&1 && break; sleep 0.1; done
id=$("$R" submit --openjd "$WORK/base.yaml" --param Shot=sh020 --wait --quiet) || fail "submit --openjd --wait failed"
"$R" status "$id" --json > "$WORK/one.json"
jq -e '.name == "Render sh020" and .state == "done" and .chunks_total == 1 and .frames_total == 300' "$WORK/one.json" > /dev/null ||
  fail "status of the imported job: $(cat "$WORK/one.json")"
[ "$(jq -r .output "$WORK/one.json")" = "$WORK/out-sh020.mkv" ] || fail "output: $(jq -r .output "$WORK/one.json")"
[ "$(decoded_frame_count "$WORK/out-sh020.mkv")" = 300 ] || fail "the imported job's output does not have 300 frames"
ok "template with defaults and --param Shot=sh020: job 'Render sh020', one 300-frame chunk (defaultTaskCount 300), output has 300 frames"
# defaultTaskCount 75 frames at 25 fps -> target_seconds 3: several chunks instead of one (the
# planner cuts at keyframes near the target, so chunks are close to, not exactly, 75 frames).
id2=$("$R" submit --openjd "$WORK/base.yaml" --param Shot=sh030 --param ChunkFrames=75 --wait --quiet) || fail "submit with ChunkFrames=75 failed"
"$R" status "$id2" --json > "$WORK/two.json"
jq -e '.state == "done" and .chunks_total >= 2 and ([.chunks[] | .frame_end - .frame_start] | add) == 300' "$WORK/two.json" > /dev/null ||
  fail "ChunkFrames=75: $(jq -c '{state, chunks_total, chunks: [.chunks[] | .frame_end - .frame_start]}' "$WORK/two.json")"
ok "--param ChunkFrames=75: $(jq -c '[.chunks[] | .frame_end - .frame_start]' "$WORK/two.json") frames per chunk instead of one chunk"
# hostRequirements: amount.worker.gpu min 1 and amount.worker.gpu.memory min 16384 become the job's
# requirements; this farm's worker has no GPU, so the job waits and says what it needs.
sed -e 's/          min: 0/          min: 1/' \
    -e '/^      attributes:/i\        - name: amount.worker.gpu.memory\n          min: 16384' "$WORK/base.yaml" > "$WORK/gpu.yaml"
gid=$("$R" submit --openjd "$WORK/gpu.yaml" --param Shot=sh040) || fail "submit of the GPU template failed"
for _ in $(seq 1 100); do "$R" logs "$gid" 2>/dev/null | grep -q "waiting: no live worker" && break; sleep 0.1; done
"$R" logs "$gid" | grep -q "a GPU with free VRAM >= 16384 MiB" || fail "the GPU template's job does not wait for a GPU: $("$R" logs "$gid")"
"$R" status "$gid" --json | jq -e '.state == "running" and .chunks_done == 0' > /dev/null || fail "the GPU job ran on a CPU worker"
"$R" cancel "$gid" > /dev/null
ok "amount.worker.gpu and amount.worker.gpu.memory: the job waits for a worker with a GPU and 16384 MiB free"
