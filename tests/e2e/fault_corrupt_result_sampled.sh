#!/usr/bin/env bash
# fault_corrupt_result.sh with the coordinator's sampled verification (`--verify sample`: every
# packet counted, the worker's per-frame checksum list checked against its digest, the first, last
# and one random GOP decoded): the same corrupt results (a flipped digest, a missing frame) must be
# rejected, the bad worker named, and the outputs still lossless.
RF_E2E_VERIFY=sample RF_E2E_NAME=$(basename "$0") exec bash "$(dirname "$0")/fault_corrupt_result.sh"
