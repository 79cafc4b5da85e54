#!/usr/bin/env bash
# Every CUDA row of benchmarks/RESULTS.md in one command, in under 8 minutes on one GPU:
#   (1) batching: GraphBatcher against the per-graph PyG path and against a plain copy of the
#       batch's bytes on the device;
#   (2) the metanetwork step (GMN 4x64 and 3x32, the step of 368d2a0 beside today's);
#   (3) zoo training: digits_cnn runs trained together against one after another;
#   (4) batched_forward against a loop over weight sets, 8 to 1,024 inputs.
# Without a GPU the same benchmarks run on the CPU; --quick shrinks every size (the tests run
# it that way, so the script cannot rot while no GPU is lent).
#   scripts/bench_gpu.sh [--quick] [--device cuda|cpu]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
quick=0
device=$($PY -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --device) device=$2; shift ;;
    *) echo "usage: scripts/bench_gpu.sh [--quick] [--device cuda|cpu]" >&2; exit 2 ;;
  esac
  shift
done
if [ "$quick" = 1 ]; then
  batching="--models 32 --batch 8 --repeats 1"
  step="--steps 1 --step-batch 4 --zoos mnist1d_mlp"
  zoo="--runs 2 --epochs 1 --alone-runs 1"
  hyper="--inputs 8 --repeats 1 --weight-sets 4"
else
  batching="--models 512 --batch 64 --repeats 7"
  step="--steps 5"
  zoo="--runs 64 --epochs 2 --alone-runs 4"
  hyper="--inputs 8 64 256 1024 --repeats 10"
fi
start=$(date +%s)
echo "# scripts/bench_gpu.sh on $device ($(date -u +%Y-%m-%d))"
echo "## (1) batching"
# shellcheck disable=SC2086
$PY -m scripts.bench_batching --devices "$device" $batching
echo "## (2) metanetwork step"
# shellcheck disable=SC2086
$PY -m scripts.bench_metanet --table step --devices "$device" $step
echo "## (3) zoo training"
# shellcheck disable=SC2086
$PY -m scripts.bench_zoo --parts cnn --device "$device" $zoo
echo "## (4) batched_forward"
# shellcheck disable=SC2086
$PY scripts/bench_hyper.py --only batched --device "$device" $hyper
echo "# done in $(( $(date +%s) - start )) s"
