#!/usr/bin/env bash
# Rebuilds the WebAssembly SIMD kernels in src/core/model/kernels (the .wasm files are committed, so neither
# `npm install` nor CI needs a compiler): attention.wasm from attention.c, and fused.wasm (parallel.kernels
# fused: matmuls, layer norm, activations, cross-entropy, embedding, attention, the Switch combine) from gemm.c, norm.c, act.c, xent.c, attn.c and combine.c.
# Needs clang and wasm-ld: apt-get install clang-14 lld-14.
set -euo pipefail
cd "$(dirname "$0")/../src/core/model/kernels"
CLANG=$(command -v clang-14 || command -v clang)
LLD=$(command -v wasm-ld-14 || command -v wasm-ld)
FLAGS=(--target=wasm32 -O3 -msimd128 -nostdlib -ffreestanding -fno-builtin-memset -fuse-ld="$LLD" -Wl,--no-entry -Wl,--import-memory -Wl,--strip-all)
"$CLANG" "${FLAGS[@]}" -Wl,--export=attention_forward -Wl,--export=attention_backward -Wl,--export=__heap_base -o attention.wasm attention.c
# fused.wasm runs on the tfjs wasm backend's memory: its entry points are marked EXPORT(...) in the sources
# (simd-math.h), and it must have no data segments and no shadow stack (no arrays on the stack): checked here
"$CLANG" "${FLAGS[@]}" -o fused.wasm gemm.c norm.c act.c xent.c attn.c combine.c
if command -v wasm2wat >/dev/null; then # apt-get install wabt
  if wasm2wat fused.wasm | grep -qE '\(data|global\.(get|set) 0'; then echo 'fused.wasm has data or uses the stack' >&2; exit 1; fi
else echo 'wasm2wat (apt-get install wabt) not found: fused.wasm not checked for data segments and stack use' >&2; fi
ls -l attention.wasm fused.wasm
