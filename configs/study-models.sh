#!/usr/bin/env bash
# The study's own comparison on a GPU: FCN-101 vs DeepLabV3 on the leak-free BUSI split.
#   1 the leak-free dataset: `sonomap prepare-busi` on a BUSI folder (near-duplicates grouped into
#     one case, conflicting labels left out), or a dataset it already made (a folder with cases.csv)
#   2 train configs/fcn101.yaml and configs/deeplabv3.yaml from scratch (no ImageNet weights: none
#     are reachable on an offline cart or lab machine), each for STUDY_MINUTES with the lr annealed
#     to zero at the budget; one GPU, so the lr is scaled to the batch as the configs say
#   3 `evaluate --compare` on the test split: each model's own report (compare/A, compare/B), then the
#     paired Wilcoxon, paired t-test and case-bootstrap intervals, as the study compared FCN-101 with DeepLabV3
# Usage: configs/study-models.sh BUSI_OR_DATASET OUT_DIR
#   env: STUDY_MINUTES (per model, default 20), STUDY_DEVICE (default cuda), STUDY_BATCH (default 8),
#        STUDY_SIZE (input side, default the configs' 480)
set -euo pipefail
SRC=${1:?usage: configs/study-models.sh BUSI_OR_DATASET OUT_DIR}
OUT=${2:?usage: configs/study-models.sh BUSI_OR_DATASET OUT_DIR}
HERE=$(cd "$(dirname "$0")/.." && pwd)
# sonomap and the python3 with torch are the venv's: `make install`, then `. .venv/bin/activate`
command -v sonomap >/dev/null || { echo "$(basename "$0"): sonomap is not on PATH; activate its venv first (. .venv/bin/activate)" >&2; exit 2; }
MINUTES=${STUDY_MINUTES:-20}
DEVICE=${STUDY_DEVICE:-cuda}
BATCH=${STUDY_BATCH:-8}
SIZE=${STUDY_SIZE:-}
REFERENCE_BATCH=32 # configs' lr is torchvision's for 8 GPUs x batch 4
step() { printf '\n== [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
mkdir -p "$OUT"
. "$HERE/configs/run_folders.sh" # fresh_run DIR: a run folder for `sonomap train`

step "0 machine"
if [ "$DEVICE" = cuda ]; then nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true; fi
python3 -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, torch.cuda.is_available())'

step "1 leak-free dataset"
if [ -f "$SRC/cases.csv" ]; then
  DATA=$SRC
else
  DATA=$OUT/ds
  sonomap prepare-busi --busi "$SRC" --out "$DATA" --seed 0
fi

for MODEL in fcn101 deeplabv3; do
  step "2 train $MODEL for $MINUTES min on $DEVICE (batch $BATCH)"
  python3 - "$HERE/configs/$MODEL.yaml" "$OUT/$MODEL.yaml" "$BATCH" "$REFERENCE_BATCH" "$SIZE" <<'PY'
import sys, yaml
src, dst, batch, reference, size = sys.argv[1:]
cfg = yaml.safe_load(open(src))
cfg["train"]["lr"] = cfg["train"]["lr"] * int(batch) / int(reference)  # linear scaling rule
cfg["train"]["batch_size"] = int(batch)
if size:
    cfg["data"].update(input_height=int(size), input_width=int(size))
yaml.safe_dump(cfg, open(dst, "w"), sort_keys=False)
PY
  fresh_run "$OUT/$MODEL"
  sonomap train --config "$OUT/$MODEL.yaml" --data "$DATA" --out "$OUT/$MODEL" --device "$DEVICE" \
    --max-minutes "$MINUTES" --no-progress
done

# --compare evaluates each model into compare/A and compare/B (the report of one model each) before
# the paired statistics: each model is evaluated once
step "3 evaluate FCN-101 (A) and DeepLabV3 (B) on the test split, and compare them, paired"
sonomap evaluate --compare "$OUT/fcn101/best.pt" "$OUT/deeplabv3/best.pt" --data "$DATA" --split test \
  --out "$OUT/compare" --device "$DEVICE"
printf '\nReports: %s/compare/A/report.md (FCN-101), %s/compare/B/report.md (DeepLabV3), %s/compare/report.md\n' \
  "$OUT" "$OUT" "$OUT"
