#!/usr/bin/env bash
# VNN-COMP protocol: prepare_instance.sh <version> <category> <onnx> <vnnlib>
# Builds convex-outer once (release), then checks that the network and the property load
# (an error here is reported to the competition harness as a failed preparation).
set -euo pipefail
if [ "$#" -ne 4 ]; then
  echo "usage: $0 v1 <category> <onnx> <vnnlib>" >&2
  exit 1
fi
version=$1 category=$2 onnx=$3 vnnlib=$4
[ "$version" = "v1" ] || { echo "unsupported protocol version $version (v1 expected)" >&2; exit 1; }
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${CONVEX_OUTER:-}"
if [ -z "$bin" ]; then
  (cd "$root" && cargo build --release -q -p convex-outer)
  bin="${CARGO_TARGET_DIR:-$root/target}/release/convex-outer"
fi
echo "preparing $category: $onnx $vnnlib"
# Both files load and fit each other: a short run without splitting (any verdict will
# do; exit code 1 means an error, printed on stderr).
set +e
"$bin" verify --model "$onnx" --property "$vnnlib" --timeout 1 --no-split --restarts 0 > /dev/null
rc=$?
set -e
case $rc in
  0|10|20|21) exit 0 ;;
  *) exit 1 ;;
esac
