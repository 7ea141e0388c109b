#!/usr/bin/env bash
# Rebuilds the WebAssembly SIMD kernels in src/core/model/kernels (the .wasm files are committed, so neither
# `npm install` nor CI needs a compiler): attention.wasm from attention.c (parallel.kernels tfjs), and, from
# gemm.c, norm.c, act.c, xent.c, attn.c, combine.c and router.c (parallel.kernels fused: matmuls, layer norm, activations,
# cross-entropy, embedding, attention, the Switch combine, router scores), fused-fma.wasm (relaxed SIMD's fused multiply-add)
# and fused.wasm (multiply and add, for a WebAssembly without relaxed SIMD).
# Needs clang and wasm-ld 16 or later (relaxed SIMD): apt-get install clang-16 lld-16 (and wabt, for the check).
set -euo pipefail
cd "$(dirname "$0")/../src/core/model/kernels"
CLANG=$(command -v clang-16 || command -v clang)
LLD=$(command -v wasm-ld-16 || command -v wasm-ld)
FLAGS=(--target=wasm32 -O3 -msimd128 -nostdlib -ffreestanding -fno-builtin-memset -fuse-ld="$LLD" -Wl,--no-entry -Wl,--import-memory -Wl,--strip-all)
"$CLANG" "${FLAGS[@]}" -Wl,--export=attention_forward -Wl,--export=attention_backward -Wl,--export=__heap_base -o attention.wasm attention.c
# fused*.wasm run on the tfjs wasm backend's memory: their entry points are marked EXPORT(...) in the sources
# (simd-math.h), and they must have no data segments and no shadow stack (no arrays on the stack): checked below
SOURCES=(gemm.c norm.c act.c xent.c attn.c combine.c router.c)
"$CLANG" "${FLAGS[@]}" -o fused.wasm "${SOURCES[@]}"
"$CLANG" "${FLAGS[@]}" -mrelaxed-simd -DRELAXED -o fused-fma.wasm "${SOURCES[@]}"
for f in fused.wasm fused-fma.wasm; do
  if ! command -v wasm2wat >/dev/null; then echo "wasm2wat (apt-get install wabt) not found: $f not checked" >&2; continue; fi
  if wasm2wat --enable-all "$f" | grep -qE '\(data|global\.(get|set) 0'; then echo "$f has data or uses the stack" >&2; exit 1; fi
done
ls -l attention.wasm fused.wasm fused-fma.wasm
