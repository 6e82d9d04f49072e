#!/usr/bin/env bash
# End-to-end benchmark: `faultline analyze` on a generated sample day, on
# one core and on two, alternating, warm cache, median of N runs; prints
# seconds, MB/s, user and system CPU, max RSS and the scaling from one core
# to two. System time is printed because it moves with the machine's state
# (fresh pages cost the kernel, and on a virtual machine often the host, a
# fault).
#
# `-j 1` sets one parser thread, but the parquet writer runs beside it, so
# the one-core run is pinned with taskset: it measures what one core does,
# not one parser thread plus a writer on the other core.
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

# The two thread counts alternate, run by run: this machine's speed drifts
# within minutes, and blocks of runs would put the drift into the scaling.
pin=(taskset -c "$(taskset -pc $$ | sed 's/.*: //; s/[,-].*//')")
declare -A times users systems rss medians
for _ in $(seq "$runs"); do
    for threads in 1 2; do
        prefix=()
        [[ $threads == 1 ]] && prefix=("${pin[@]}")
        # An empty output directory each run, as a first run has.
        rm -rf "$work/out"
        /usr/bin/time -f "%e %U %S %M" -o "$work/time" \
            "${prefix[@]}" "$bin" analyze -q -j "$threads" --out "$work/out" "$work/day/logs"
        read -r seconds user system kb <"$work/time"
        times[$threads]+="$seconds " users[$threads]+="$user " systems[$threads]+="$system "
        (( kb > ${rss[$threads]:-0} )) && rss[$threads]=$kb
    done
done
for threads in 1 2; do
    # shellcheck disable=SC2086 # the lists are split into their values
    median=$(median ${times[$threads]})
    mbps=$(awk -v b="$bytes" -v s="$median" 'BEGIN {printf "%.0f", b / s / 1e6}')
    medians[$threads]=$median
    where=""
    [[ $threads == 1 ]] && where=" (pinned to one core)"
    # shellcheck disable=SC2086
    echo "threads $threads$where: median ${median} s over $runs runs, ${mbps} MB/s, CPU $(median ${users[$threads]}) s user + $(median ${systems[$threads]}) s system, max RSS $((rss[$threads] / 1024)) MiB"
done
awk -v a="${medians[1]}" -v b="${medians[2]}" 'BEGIN {printf "scaling, one core to two: %.2fx\n", a / b}'

injected=$(grep -c '"pattern"' "$work/day/ground-truth.json")
reported=$(grep -c '"pattern"' "$work/out/incidents.json")
echo "incidents: $injected injected, $reported reported"
test "$injected" -eq "$reported"
