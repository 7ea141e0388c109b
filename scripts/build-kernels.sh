#!/usr/bin/env bash
# Rebuilds src/core/model/kernels/attention.wasm from attention.c (the .wasm is committed, so neither
# `npm install` nor CI needs a compiler). Needs clang and wasm-ld: apt-get install clang-14 lld-14.
set -euo pipefail
cd "$(dirname "$0")/../src/core/model/kernels"
CLANG=$(command -v clang-14 || command -v clang)
LLD=$(command -v wasm-ld-14 || command -v wasm-ld)
"$CLANG" --target=wasm32 -O3 -msimd128 -nostdlib -ffreestanding -fno-builtin-memset \
  -fuse-ld="$LLD" -Wl,--no-entry -Wl,--import-memory -Wl,--export=attention_forward -Wl,--export=attention_backward -Wl,--export=__heap_base \
  -Wl,--strip-all -o attention.wasm attention.c
ls -l attention.wasm
