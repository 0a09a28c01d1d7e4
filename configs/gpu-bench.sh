#!/usr/bin/env bash
# The GPU benchmark of the runtime: torch-CUDA FP16 FCN-101 at 512, end-to-end vs backend-only.
#   1 train FCN-101 (input 512) for TRAIN_EPOCHS (default 30) epochs on the vendored BUSI sample, on CUDA with AMP: the
#     weights only need to be real, not good; the timing does not depend on them
#   2 export it to TorchScript (checked against eager torch on real frames)
#   3 `sonomap bench` on a generated 1080p scanner-screen clip, torch backend on CUDA, FP16 autocast,
#     eager, with CUDA graphs, and eager fed a 512x512 ROI resized on the CPU (inference.input_size)
# Usage: configs/gpu-bench.sh OUT_DIR   (env: TRAIN_EPOCHS, BENCH_FRAMES, BENCH_ROUNDS)
set -euo pipefail
OUT=${1:-outputs/gpu-bench}
HERE=$(cd "$(dirname "$0")/.." && pwd)
# sonomap and the python3 with torch are the venv's: `make install`, then `. .venv/bin/activate`
command -v sonomap >/dev/null || { echo "$(basename "$0"): sonomap is not on PATH; activate its venv first (. .venv/bin/activate)" >&2; exit 2; }
FRAMES=${BENCH_FRAMES:-300}
ROUNDS=${BENCH_ROUNDS:-3}
step() { printf '\n== [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
mkdir -p "$OUT"
. "$HERE/configs/run_folders.sh" # fresh_run DIR: a run folder for `sonomap train`

step "0 machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
python3 -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, torch.cuda.get_device_name(0))'

step "1 train FCN-101 at 512 on CUDA (AMP, channels_last)"
sonomap prepare-busi --busi "$HERE/tests/data/busi" --out "$OUT/ds"
python3 - "$HERE/configs/fcn101.yaml" "$OUT/fcn101-512.yaml" "${TRAIN_EPOCHS:-30}" <<'EOF'
import sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
cfg["data"].update(input_height=512, input_width=512)
cfg["train"].update(epochs=int(sys.argv[3]))
yaml.safe_dump(cfg, open(sys.argv[2], "w"))
EOF
fresh_run "$OUT/run"
sonomap train --config "$OUT/fcn101-512.yaml" --data "$OUT/ds" --out "$OUT/run" --device cuda --no-progress

step "2 export TorchScript"
sonomap export torchscript --checkpoint "$OUT/run/best.pt" --out "$OUT/fcn101.ts" --frames "$HERE/tests/data/busi/images"

step "3a bench: torch CUDA FP16, eager"
sonomap bench --model "$OUT/fcn101.ts" --backend torch --device cuda --frames "$FRAMES" --rounds "$ROUNDS" \
    --json "$OUT/bench-eager.json"

step "3b bench: torch CUDA FP16, CUDA graphs"
printf 'inference:\n  cuda_graphs: true\n' > "$OUT/graphs.yaml"
sonomap bench --config "$OUT/graphs.yaml" --model "$OUT/fcn101.ts" --backend torch --device cuda \
    --frames "$FRAMES" --rounds "$ROUNDS" --json "$OUT/bench-graphs.json"

step "3c bench: torch CUDA FP16, eager, ROI resized to 512x512 on the CPU (small upload and download)"
printf 'inference:\n  input_size: [512, 512]\n' > "$OUT/input512.yaml"
sonomap bench --config "$OUT/input512.yaml" --model "$OUT/fcn101.ts" --backend torch --device cuda \
    --frames "$FRAMES" --rounds "$ROUNDS" --json "$OUT/bench-eager-input512.json"
