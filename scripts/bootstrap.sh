#!/usr/bin/env bash
# Installs what the build needs from the system when it is missing: a Rust
# toolchain must be there already; cmake, a C++ compiler and libclang (for
# HiGHS, which good_lp builds from source) are installed with apt-get when
# running as root, and named otherwise.
set -euo pipefail

missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v c++ >/dev/null 2>&1 || command -v g++ >/dev/null 2>&1 || missing+=(g++)
has_libclang() {
  [ -n "${LIBCLANG_PATH:-}" ] && return 0
  compgen -G "/usr/lib/llvm-*/lib/libclang*.so*" >/dev/null && return 0
  compgen -G "/usr/lib/*/libclang*.so*" >/dev/null && return 0
  ldconfig -p 2>/dev/null | grep -q 'libclang[-.0-9]*\.so'
}
has_libclang || missing+=(libclang-dev)

if ! command -v cargo >/dev/null 2>&1; then
  echo "bootstrap: cargo is missing: install Rust (https://rustup.rs), then run make again" >&2
  exit 1
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "bootstrap: installing ${missing[*]} (needed to build HiGHS)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" clang >/dev/null
else
  echo "bootstrap: the build needs ${missing[*]} (to build HiGHS for the scheduler)." >&2
  echo "  Debian/Ubuntu: sudo apt-get install cmake g++ clang libclang-dev" >&2
  echo "  Fedora:        sudo dnf install cmake gcc-c++ clang-devel" >&2
  echo "  macOS:         brew install cmake llvm" >&2
  exit 1
fi
