#!/usr/bin/env bash
# The tour of mproc's examples, run by `make demo`: each program in order,
# with what it shows. Usage: examples/tour.sh BUILD_DIR
set -euo pipefail
build=${1:-build}
run() {
  local name=$1 what=$2
  printf '\n\033[1m== %s: %s\033[0m\n' "$name" "$what"
  "$build/examples/$name"
}
run codec_tour "values cross as bytes, structs need no code, bad input is an error"
run function_tour "functions cross by reference: plain, lambda, partial"
