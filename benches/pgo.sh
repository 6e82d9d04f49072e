#!/usr/bin/env bash
# Makes pgo/faultline.profdata: the profile that optimized builds of
# faultline's crates are guided by (.cargo/pgo-rustc). Builds faultline
# instrumented, runs it on a generated sample day (every format, every
# injected incident), over the records it wrote and on OpenTelemetry lines
# made from the fixtures, merges the counts, and
# builds the release binary again with the new profile.
#
#   bash benches/pgo.sh [SIZE]        (default 256MiB)
#
# Run it after changing the parser, normalizer, classifier or writers: a
# function whose code changed since the profile was made is optimized
# without it (the build still succeeds, only slower code).
#
# Needs llvm-profdata able to read the raw counts of rustc's LLVM; Debian's
# llvm-19 package is (installed here when missing).
set -euo pipefail
size="${1:-256MiB}"
cd "$(dirname "$0")/.."
profdata=/usr/lib/llvm-19/bin/llvm-profdata
if [[ ! -x $profdata ]]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends llvm-19 >/dev/null \
        || { apt-get update -qq && apt-get install -y -qq --no-install-recommends llvm-19 >/dev/null; }
fi
work="$PWD/target/pgo"
rm -rf "$work"
mkdir -p "$work/raw"
rebuild() {
    touch crates/*/src/lib.rs crates/faultline-cli/src/main.rs
    FAULTLINE_PGO="$1" cargo build --release --locked --quiet
}
rebuild "generate:$work/raw"
bin=target/release/faultline
"$bin" sample --size "$size" --out "$work/day" >/dev/null
"$bin" analyze -q -j 2 --out "$work/out" "$work/day/logs"
"$bin" report -q --out "$work/report" "$work/out/records.parquet"
"$bin" analyze -q --out "$work/embedded"
# The sample day has no OpenTelemetry lines; without counts their path
# would be optimized as cold code. The lines real clients wrote
# (fixtures/clients: LiteLLM, the SDKs' OpenTelemetry spans) train it too.
clients=$(ls fixtures/clients/*.jsonl | grep -v '\.truth\.jsonl$')
{
    for _ in $(seq 4000); do
        cat fixtures/formats/otel_flat.jsonl fixtures/formats/otel_otlp.jsonl
    done
    for _ in $(seq 25); do
        cat $clients
    done
} > "$work/otel.jsonl"
"$bin" analyze -q -j 2 --out "$work/otel" "$work/otel.jsonl"
"$profdata" merge -o pgo/faultline.profdata "$work"/raw/*.profraw
rebuild use
echo "pgo/faultline.profdata: $(du -h pgo/faultline.profdata | cut -f1), from a $size sample day"
