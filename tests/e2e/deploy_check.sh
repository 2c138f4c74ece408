#!/usr/bin/env bash
# deploy/: every kustomize overlay renders with `kubectl kustomize` and passes yamllint and the
# structural schema check; every shell script under deploy/ and scripts/ passes shellcheck; the
# systemd units pass systemd-analyze verify; the Dockerfiles are multi-stage, non-root, with
# health checks and every runtime library the built binaries load; the daemon configs in the
# ConfigMaps and images load in the real daemons. What is and is not checked: deploy/check.
source "$(dirname "$0")/lib.bash"
RF_BIN=$RF_BIN TMPDIR=$WORK "$RF_SOURCE_DIR/deploy/check" || fail "deploy/check found problems (above)"
ok "deploy/check passed"
