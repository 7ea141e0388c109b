#!/usr/bin/env bash
# On a machine with a real GPU: probe every device backend and train the tiny-shakespeare config on each,
# then write the same table as BENCHMARKS.md's "Device backends" section to bench-gpu-<host>.txt.
#   scripts/bench-gpu.sh /path/to/tinyshakespeare.txt [steps]
# Needs Node 20 and the GPU's Vulkan driver (Dawn uses Vulkan when /dev/nvidia0 or a DRM render node
# exists). Optional: `npm install @tensorflow/tfjs-node-gpu` first to add the tensorflow backend (CUDA).
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:?give the path of tinyshakespeare.txt}
steps=${2:-20}
out="bench-gpu-$(hostname).txt"
npm ci --no-audit --no-fund >/dev/null
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || true; node --version; } | tee "$out"
npx tsx bench/backends.ts --data "$data" --steps "$steps" --out "${out%.txt}.json" 2>&1 | grep -v '^Warning:' | tee -a "$out"
echo "wrote $out and ${out%.txt}.json"
