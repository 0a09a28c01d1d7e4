#!/usr/bin/env bash
# The biopsy loop end to end (docs/biopsy-loop.md): simulated procedures on three patients ->
# `sonomap replay --cases` captures each needle fire -> pending cases listed -> the lab's slides
# and annotations (simulated along each captured core's true tract) -> registration -> the
# concordance of the live prediction with pathology -> the registered cores as a training dataset
# -> a short training run on it.
# Usage: configs/biopsy-loop.sh OUT_DIR   (env: LOOP_EPOCHS, default 1)
set -euo pipefail
OUT=${1:-outputs/biopsy-loop}
HERE=$(cd "$(dirname "$0")/.." && pwd)
IMAGES="$HERE/tests/data/busi/images"
EPOCHS=${LOOP_EPOCHS:-1}
# The simulated scanner screen: its ROI and scale (printed by simulate-procedure).
ROI=240,100,800,560
MM_PER_PIXEL=0.07142857143
# patient (pseudonymous, as the lab records it) : BUSI image scanned
PATIENTS="pat-a:malignant_002 pat-b:malignant_039 pat-c:benign_041"

step() { printf '\n== [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
mkdir -p "$OUT"
# `sonomap train` refuses a folder that holds a run. The run folder this script made on an earlier
# run (marked) is cleared first; one it did not make is never deleted (train names it instead).
RUN_MARK=.made-by-this-script
fresh_run() {
  if [ -f "$1/$RUN_MARK" ]; then rm -rf "$1"; fi
  if [ ! -e "$1" ]; then mkdir -p "$1" && touch "$1/$RUN_MARK"; fi
}

for p in $PATIENTS; do
  id=${p%%:*} image=${p##*:}
  step "procedure on $id ($image): two needle fires, replayed with the shipped default model"
  sonomap simulate-procedure "$OUT/clips/$id.mp4" --image "$IMAGES/$image.png"
  sonomap replay "$OUT/clips/$id.mp4" --roi "$ROI" --mm-per-pixel "$MM_PER_PIXEL" --cases "$OUT/cases/$id"
done

step "captured cases, waiting for pathology"
sonomap cases "$OUT/cases"
sonomap register-batch "$OUT/cases" --out "$OUT/dataset" --no-progress

for p in $PATIENTS; do
  id=${p%%:*}
  step "pathology comes back for $id (slide + annotation simulated along each captured tract)"
  sonomap simulate-pathology "$OUT/cases/$id" --truth "$OUT/clips/$id.truth.json" --patient-id "$id"
done

step "register the complete cases into a dataset"
sonomap cases "$OUT/cases"
sonomap register-batch "$OUT/cases" --out "$OUT/dataset" --no-progress
sonomap cases "$OUT/cases" --dataset "$OUT/dataset"

step "concordance: live prediction at each fire vs registered pathology"
sonomap concordance "$OUT/cases" --dataset "$OUT/dataset" --out "$OUT/concordance"

step "train on the registered cores ($EPOCHS epoch(s))"
fresh_run "$OUT/run"
sonomap train --config "$HERE/configs/cpu-fast.yaml" --data "$OUT/dataset" --out "$OUT/run" \
  --stop-after-epochs "$EPOCHS" --no-progress
step "done: $OUT/concordance/report.md, $OUT/dataset, $OUT/run/best.pt"
