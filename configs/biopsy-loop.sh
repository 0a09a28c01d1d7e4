#!/usr/bin/env bash
# The biopsy loop end to end (docs/biopsy-loop.md): simulated procedures on three patients ->
# `sonomap replay --cases` captures each needle fire -> pending cases listed -> the lab's slides
# and annotations (simulated along each captured core's true tract) -> registration -> the
# concordance of the live prediction with pathology -> the registered cores as a training dataset
# -> a short training run on it.
# Usage: configs/biopsy-loop.sh OUT_DIR   (env: LOOP_EPOCHS, default 1)
# OUT_DIR must be new, empty, or made by an earlier run of this script (whose outputs are replaced).
set -euo pipefail
OUT=${1:-outputs/biopsy-loop}
HERE=$(cd "$(dirname "$0")/.." && pwd)
IMAGES="$HERE/tests/data/busi/images"
EPOCHS=${LOOP_EPOCHS:-1}
# The simulated scanner screen: its ROI and scale (printed by simulate-procedure).
ROI=240,100,800,560
MM_PER_PIXEL=0.07142857143
# patient (pseudonymous, as the lab records it) : BUSI image scanned
PATIENTS="pat-1:malignant_002 pat-2:malignant_039 pat-3:benign_041"

step() { printf '\n== [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf 'configs/biopsy-loop.sh: %s\n' "$*" >&2; exit 2; }

# A second run on the same OUT must give the same figures, not add a second set of biopsies to the
# first (replay names each capture by its time, so old and new cases would sit side by side). So the
# script clears what it made itself on an earlier run: OUT carries a mark from its first run, and
# only the folders below are deleted, only in a marked OUT that holds nothing else. An OUT it did
# not make, or one a person has added files to, is refused and left as it is.
OUT_MARK=.made-by-biopsy-loop
MADE="clips cases dataset concordance run"
made_here() {  # is $1 exactly one of the names this script writes in OUT?
  local ours
  for ours in $OUT_MARK $MADE; do [ "$1" = "$ours" ] && return 0; done
  return 1
}
prepare_out() {
  if [ -e "$OUT" ] && [ ! -d "$OUT" ]; then die "$OUT: is a file, not a folder"; fi
  mkdir -p "$OUT"
  local entries name
  entries=$(shopt -s nullglob dotglob; for e in "$OUT"/*; do printf '%s\n' "${e##*/}"; done)
  if [ -z "$entries" ]; then touch "$OUT/$OUT_MARK"; return; fi
  if [ ! -f "$OUT/$OUT_MARK" ]; then
    die "$OUT: not empty and not made by this script (no $OUT_MARK); give a new or empty OUT_DIR"
  fi
  while IFS= read -r name; do
    made_here "$name" || die "$OUT: holds $name, which this script did not make; nothing was deleted" \
      "(move it, or give a new OUT_DIR)"
  done <<<"$entries"
  for name in $MADE; do rm -rf "${OUT:?}/$name"; done
}
prepare_out

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
sonomap train --config "$HERE/configs/cpu-fast.yaml" --data "$OUT/dataset" --out "$OUT/run" \
  --stop-after-epochs "$EPOCHS" --no-progress
step "done: $OUT/concordance/report.md, $OUT/dataset, $OUT/run/best.pt"
