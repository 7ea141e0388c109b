#!/usr/bin/env bash
# Rebuilds the WebAssembly SIMD kernels in src/core/model/kernels (the .wasm files are committed, so neither
# `npm install` nor CI needs a compiler): attention.wasm from attention.c, and fused.wasm (parallel.kernels
# fused: matmuls, layer norm, activations, cross-entropy, embedding) from gemm.c, norm.c, act.c and xent.c.
# Needs clang and wasm-ld: apt-get install clang-14 lld-14.
set -euo pipefail
cd "$(dirname "$0")/../src/core/model/kernels"
CLANG=$(command -v clang-14 || command -v clang)
LLD=$(command -v wasm-ld-14 || command -v wasm-ld)
FLAGS=(--target=wasm32 -O3 -msimd128 -nostdlib -ffreestanding -fno-builtin-memset -fuse-ld="$LLD" -Wl,--no-entry -Wl,--import-memory -Wl,--strip-all)
"$CLANG" "${FLAGS[@]}" -Wl,--export=attention_forward -Wl,--export=attention_backward -Wl,--export=__heap_base -o attention.wasm attention.c
# fused.wasm's entry points are marked EXPORT(...) in the sources (simd-math.h)
"$CLANG" "${FLAGS[@]}" -Wl,--export=__heap_base -o fused.wasm gemm.c norm.c act.c xent.c
ls -l attention.wasm fused.wasm
