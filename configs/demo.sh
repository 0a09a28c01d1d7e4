#!/usr/bin/env bash
# `make demo`: the whole sonomap flow on the vendored BUSI sample, on CPU, in a few minutes.
#   1 simulate biopsy cases  2 register them  3 train the CPU profile briefly  4 evaluate
#   5 export ONNX  6 build a replay clip with simulated probe motion  7 replay it with the
#   shipped default model (a 3-minute model is not useful; the default is trained on full BUSI).
# Usage: configs/demo.sh OUT_DIR   (env: DEMO_TRAIN_MINUTES, DEMO_CASES, DEMO_FRAMES)
set -euo pipefail
OUT=${1:-outputs/demo}
HERE=$(cd "$(dirname "$0")/.." && pwd)
SAMPLE="$HERE/tests/data/busi"
DEFAULT_MODEL="$HERE/edge_runtime/models/default/model.onnx"
TRAIN_MINUTES=${DEMO_TRAIN_MINUTES:-3}
N_CASES=${DEMO_CASES:-16}
FRAMES=${DEMO_FRAMES:-90}
CLIP_IMAGE=${DEMO_CLIP_IMAGE:-$(ls "$SAMPLE"/images/malignant_*.png | head -n 1)}

step() { printf '\n== [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
mkdir -p "$OUT"
. "$HERE/configs/run_folders.sh" # fresh_run DIR: a run folder for `sonomap train`

step "1/7 simulate $N_CASES biopsy cases from real BUSI images"
sonomap simulate-biopsy --images "$SAMPLE/images" --masks "$SAMPLE/masks" --out "$OUT/cases" --n "$N_CASES" --seed 0 --wsi-mpp 8

step "2/7 register WSI annotations onto the needle tracts"
sonomap register-batch "$OUT/cases" --out "$OUT/dataset"

step "3/7 train the CPU profile for $TRAIN_MINUTES min"
fresh_run "$OUT/run"
sonomap train --config "$HERE/configs/cpu-fast.yaml" --data "$OUT/dataset" --out "$OUT/run" --max-minutes "$TRAIN_MINUTES"

step "4/7 evaluate on the test split"
sonomap evaluate --checkpoint "$OUT/run/best.pt" --data "$OUT/dataset" --split test --out "$OUT/eval"

step "5/7 export ONNX (with parity check against torch)"
sonomap export onnx --checkpoint "$OUT/run/best.pt" --out "$OUT/model.onnx"

step "6/7 build a replay clip from $(basename "$CLIP_IMAGE") with simulated probe motion"
sonomap make-clip --image "$CLIP_IMAGE" --out "$OUT/clip.mp4" --frames "$FRAMES"

step "7/7 replay the clip with the shipped default model"
sonomap replay "$OUT/clip.mp4" --model "$DEFAULT_MODEL" --out "$OUT/overlay.mp4" --summary "$OUT/summary.json"

cat <<EOM

sonomap demo finished. Outputs in $OUT:
  overlay video     $OUT/overlay.mp4
  replay summary    $OUT/summary.json
  registration QA   $OUT/dataset/registration/<id>/qa.png (+ label.png, report.json), $OUT/dataset/batch_report.json
  training run      $OUT/run/ (best.pt + manifest, metrics)
  evaluation        $OUT/eval/ (report.md, metrics.csv, plots)
  exported model    $OUT/model.onnx (+ model.onnx.yaml, model.onnx.parity.json)
EOM
