#!/usr/bin/env bash
# The one-shot GPU check (issue #8): build, check the CUDA engine against the CPU reference, train,
# benchmark against PyTorch, report memory; one compact table, well under 8 minutes. Needs no Bun and
# no network. Uses a prebuilt native/build/libnanorag_cuda.so when there is one (or nvcc is absent).
# Usage: native/gpu-check.sh [OUT_DIR]   (the table is also written to OUT_DIR/gpu-check.md)
set -uo pipefail
cd "$(dirname "$0")"
out=${1:-${OUT:-build/gpu-check}}
mkdir -p "$out"
log="$out/gpu-check.md"
: >"$log"
start=$(date +%s)
say() { echo "$@" | tee -a "$log"; }
# phase NAME SECONDS CMD...: run with a time budget, keep going on failure, note the status
status=0
phase() {
  local name=$1 budget=$2 t0 rc
  shift 2
  t0=$(date +%s)
  timeout --kill-after=10 "$budget" "$@" 2>&1 | tee -a "$log"
  rc=${PIPESTATUS[0]}
  [ "$rc" -eq 0 ] || status=1
  say "phase $name: rc $rc, $(($(date +%s) - t0)) s of $budget s budget"
}

say "# nanorag GPU check, $(date -u +%FT%TZ)"
say "machine: $(nproc) cores; $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)"
say "torch: $(python3 -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available())' 2>&1 | tail -1)"

# A library built before the run (carried with native/build) is used as is: nvcc for sm_80 + sm_90 takes
# minutes of this budget. GPU_CHECK_REBUILD=1 rebuilds it here (when nvcc is installed).
if [ -f build/libnanorag_cuda.so ] && [ -z "${GPU_CHECK_REBUILD:-}" ]; then cuda=true; else cuda='make -j"$(nproc)" cuda'; fi
phase build 60 bash -c "make -j\"\$(nproc)\" >/dev/null && $cuda && test -f build/libnanorag_cuda.so &&
  gcc -O2 -Iinclude -o build/gpu_check tests/gpu_check.c -ldl -lm"
[ -x build/gpu_check ] && [ -f build/libnanorag_cuda.so ] || { say "build failed: stopping"; exit 1; }
libs=(build/libnanorag.so build/libnanorag_cuda.so)
# one process per phase: a kernel fault poisons its CUDA context, not the next phase's
phase parity 60 ./build/gpu_check "${libs[@]}" parity
phase train 20 ./build/gpu_check "${libs[@]}" train
phase scan 15 ./build/gpu_check "${libs[@]}" scan
phase nccl 20 ./build/gpu_check "${libs[@]}" nccl
phase speed+memory 200 env GPU_CHECK_SPEED_BUDGET_S=150 ./build/gpu_check "${libs[@]}" speed memory
phase torch 100 python3 ../bench/gpu/torch_peer.py --budget 85
say "total: $(($(date +%s) - start)) s, status $status"
exit "$status"
