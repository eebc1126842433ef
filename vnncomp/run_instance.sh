#!/usr/bin/env bash
# VNN-COMP protocol: run_instance.sh <version> <category> <onnx> <vnnlib> <result_file> <timeout>
# Writes the result file: the verdict (sat, unsat, unknown, timeout, or error) on the
# first line and, for sat, the witness ((X_0 v) ... (Y_0 v) ...). Exits 0 once the file is
# written (the harness reads the verdict from it), 1 if it cannot be written.
set -uo pipefail
if [ "$#" -ne 6 ]; then
  echo "usage: $0 v1 <category> <onnx> <vnnlib> <result_file> <timeout>" >&2
  exit 1
fi
version=$1 category=$2 onnx=$3 vnnlib=$4 result=$5 timeout=$6
[ "$version" = "v1" ] || { echo "unsupported protocol version $version (v1 expected)" >&2; exit 1; }
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${CONVEX_OUTER:-${CARGO_TARGET_DIR:-$root/target}/release/convex-outer}"
# Leave a margin for loading and writing: 95% of the budget, at least 1 s less.
budget=$(awk -v t="$timeout" 'BEGIN { b = t * 0.95; if (t - b < 1) b = t - 1; if (b < 0.1) b = 0.1; print b }')
echo "running $category: $onnx $vnnlib (timeout $timeout s, verify budget $budget s)"
"$bin" verify --model "$onnx" --property "$vnnlib" --timeout "$budget" --result-file "$result"
rc=$?
case $rc in
  0|10|20|21) ;;
  *) echo "error" > "$result" || exit 1 ;;
esac
head -n 1 "$result" || exit 1
exit 0
