#!/usr/bin/env bash
# `reelfarm model run` on ONNX's own node tests (Debian's libonnx-testdata): outputs written as
# TensorProto files that match the test's expected outputs (compared with python3-onnx's numpy
# reader when it is installed, independently of reelfarm's code), one summary line per output,
# and refusals with one clear error line and the documented exit code.
source "$(dirname "$0")/lib.bash"
NODE=${RF_ONNX_NODE_TESTS:-/usr/share/libonnx-testdata/data/node}
[ -d "$NODE" ] || { echo "skip: $NODE missing (install libonnx-testdata)"; exit 77; }
RF="$RF_BIN/reelfarm"
PY=""
for p in /usr/bin/python3 python3; do
  if "$p" -c 'import onnx, numpy' 2>/dev/null; then PY=$p; break; fi
done

run_case() { # name: runs the case's test_data_set_0 through the CLI into $WORK/<name>
  local name=$1 d=$NODE/$1 args=() f
  for f in "$d"/test_data_set_0/input_*.pb; do args+=(--input "$f"); done
  "$RF" model run "$d/model.onnx" "${args[@]}" --output "$WORK/$name" > "$WORK/$name.out" 2> "$WORK/$name.err" \
    || fail "$name: exit $? ($(cat "$WORK/$name.err"))"
  for f in "$d"/test_data_set_0/output_*.pb; do
    local b; b=$(basename "$f")
    [ -s "$WORK/$name/$b" ] || fail "$name: $b not written"
    grep -q "^$b  " "$WORK/$name.out" || fail "$name: no summary line for $b: $(cat "$WORK/$name.out")"
    if [ -n "$PY" ]; then
      "$PY" - "$WORK/$name/$b" "$f" <<'PYEOF' || fail "$name: $b differs from ONNX's expected output"
import sys, numpy as np, onnx
from onnx import numpy_helper as h
got = h.to_array(onnx.load_tensor(sys.argv[1])); want = h.to_array(onnx.load_tensor(sys.argv[2]))
assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, want.shape)
np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-7)
PYEOF
    fi
  done
  ok "$name"
}

run_case test_conv_with_strides_padding
run_case test_convtranspose_output_shape
run_case test_depthtospace_crd_mode
run_case test_resize_upsample_sizes_nearest_ceil_half_pixel
run_case test_reflect_pad
run_case test_mul_bcast
grep -qE '^output_0\.pb  y  float  \[1,1,4,3\]  min ' "$WORK/test_conv_with_strides_padding.out" \
  || fail "summary line: $(cat "$WORK/test_conv_with_strides_padding.out")"

# refusals: exit code, exactly one line on stderr, naming the problem
refuse() { # name want-exit want-text args...
  local name=$1 want=$2 text=$3; shift 3
  set +e; "$RF" model run "$@" > "$WORK/$name.out" 2> "$WORK/$name.err"; local rc=$?; set -e
  [ "$rc" = "$want" ] || fail "$name: exit $rc, expected $want ($(cat "$WORK/$name.err"))"
  grep -q -- "$text" "$WORK/$name.err" || fail "$name: stderr lacks '$text': $(cat "$WORK/$name.err")"
  [ "$(grep -c . "$WORK/$name.err")" -le 2 ] || fail "$name: too much on stderr: $(cat "$WORK/$name.err")"
  ok "refused: $name"
}
R=$NODE/test_relu
# --device gpu: runs where the build has CUDA and the machine a device (same result as the CPU
# within fp16-free fp32 tolerance), else exit 3 naming the missing device.
set +e; "$RF" model run "$R/model.onnx" --input "$R/test_data_set_0/input_0.pb" --output "$WORK/g" \
  --device gpu > "$WORK/g.out" 2> "$WORK/g.err"; grc=$?; set -e
if [ "$grc" = 0 ]; then
  [ -s "$WORK/g/output_0.pb" ] || fail "gpu: output_0.pb not written"
  ok "gpu: ran on the device"
else
  refuse gpu 3 "device gpu: device 0: " "$R/model.onnx" --input "$R/test_data_set_0/input_0.pb" --output "$WORK/g" --device gpu
fi
refuse unknown_op 2 "op 'Atanh' is not supported" "$NODE/test_atanh/model.onnx" --input "$R/test_data_set_0/input_0.pb" --output "$WORK/u"
refuse input_count 2 "the model has 1 input ('x'), 0 --input given" "$R/model.onnx" --output "$WORK/c"
refuse not_tensor 2 "not an ONNX TensorProto" "$R/model.onnx" --input "$R/model.onnx" --output "$WORK/t"
refuse missing_model 2 "No such file" "$WORK/none.onnx" --input "$R/test_data_set_0/input_0.pb" --output "$WORK/m"
refuse training 2 "training-mode BatchNormalization is not supported" "$NODE/test_batchnorm_example_training_mode/model.onnx" --output "$WORK/b"
refuse bad_device 2 "expected cpu or gpu" "$R/model.onnx" --input "$R/test_data_set_0/input_0.pb" --output "$WORK/d" --device tpu
printf 'garbage' > "$WORK/trunc.onnx"
head -c 100 "$NODE/test_conv_with_strides_padding/model.onnx" > "$WORK/trunc.onnx"
refuse truncated 2 "protobuf parse failed" "$WORK/trunc.onnx" --input "$R/test_data_set_0/input_0.pb" --output "$WORK/tr"
# wrong shape for the input: named
refuse wrong_shape 2 "input 'x'" "$NODE/test_conv_with_strides_padding/model.onnx" --input "$R/test_data_set_0/input_0.pb" --input "$R/test_data_set_0/input_0.pb" --output "$WORK/s"
[ ! -e "$WORK/g" ] || fail "a refused run created its output folder"
ok "model run"
