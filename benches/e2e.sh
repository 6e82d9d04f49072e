#!/usr/bin/env bash
# End-to-end benchmark: `faultline analyze` on a generated sample day, 1 and
# 2 threads, warm cache, median of N runs; prints seconds, MB/s and max RSS.
#
#   bash benches/e2e.sh [SIZE] [RUNS]      (defaults: 1GiB, 5)
#
# The day also has a ground truth; the script checks that the run reported
# exactly as many incidents as were injected.
set -euo pipefail
size="${1:-1GiB}"
runs="${2:-5}"
cd "$(dirname "$0")/.."
source benches/sample-day.sh
echo "sample day: $size requested, $bytes bytes"

for threads in 1 2; do
    times=()
    rss=0
    for _ in $(seq "$runs"); do
        /usr/bin/time -f "%e %M" -o "$work/time" \
            "$bin" analyze -q -j "$threads" --out "$work/out" "$work/day/logs"
        read -r seconds kb <"$work/time"
        times+=("$seconds")
        (( kb > rss )) && rss=$kb
    done
    median=$(median "${times[@]}")
    mbps=$(awk -v b="$bytes" -v s="$median" 'BEGIN {printf "%.0f", b / s / 1e6}')
    echo "threads $threads: median ${median} s over $runs runs, ${mbps} MB/s, max RSS $((rss / 1024)) MiB"
done

injected=$(grep -c '"pattern"' "$work/day/ground-truth.json")
reported=$(grep -c '"pattern"' "$work/out/incidents.json")
echo "incidents: $injected injected, $reported reported"
test "$injected" -eq "$reported"
