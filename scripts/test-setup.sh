#!/usr/bin/env bash
# What the test suite needs beside npm's packages, checked before every `npm test` (npm runs this as
# `pretest`): Debian's chromium for the HTML pages (driven by playwright-core, never a browser
# download), Mesa's EGL/GLES and Vulkan drivers for WebGPU (Dawn) on the software GPU, and
# redis-server for the queue tests (each starts its own on a free loopback port).
# On Debian or Ubuntu as root it installs what is missing; anywhere else it stops at once, naming it.
set -u
packages=(chromium libegl1 libegl-mesa0 libgles2 mesa-vulkan-drivers redis-server)
chromium_bin=${SWITCH_SIM_CHROMIUM:-/usr/bin/chromium}

os_release=${SWITCH_SIM_OS_RELEASE:-/etc/os-release} # another file only in this script's own test

debian_like() {
  [ -r "$os_release" ] || return 1
  # shellcheck disable=SC1090
  . "$os_release"
  case " ${ID:-} ${ID_LIKE:-} " in *" debian "*|*" ubuntu "*) return 0 ;; esac
  return 1
}

missing=()
if command -v dpkg >/dev/null 2>&1 && debian_like; then
  for p in "${packages[@]}"; do
    if [ "$p" = chromium ] && [ -x "$chromium_bin" ]; then continue; fi
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
else
  [ -x "$chromium_bin" ] || missing+=("chromium (or SWITCH_SIM_CHROMIUM=/path/to/chromium)")
  command -v redis-server >/dev/null 2>&1 || missing+=("redis-server")
  libs=$(ldconfig -p 2>/dev/null || true)
  for lib in libEGL_mesa.so.0 libGLESv2.so.2; do
    grep -q "$lib" <<<"$libs" || missing+=("Mesa ($lib)")
  done
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if debian_like && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "test setup: installing ${missing[*]} (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  if apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; then exit 0; fi
  echo "test setup: apt-get could not install ${missing[*]}; install them and run npm test again" >&2
  exit 1
fi
echo "test setup: missing ${missing[*]}: install them (on Debian or Ubuntu: apt-get install -y ${packages[*]}; npm test does it itself when run as root there), then run npm test again" >&2
exit 1
