#!/usr/bin/env bash
# The fault suite: a real binary, killed, starved, raced and fed files that
# change under it, with the output set checked after every case.
#
#   bash tests/faults/run.sh target/release/faultline [KILLS]
#
# What it checks, case by case (docs/dashboards.md says what a reader of
# --out may rely on):
#   kill -9      at a random moment of a run into a directory holding an
#                earlier run's set (and into an empty one): --out holds one
#                whole set, the earlier or the new, never a mix.
#   write fail   `ulimit -f` part-way: exit 2 and the earlier set untouched
#                (or, with room enough, exit 0 and the new set).
#   concurrent   two runs into one --out at once: each ends 0 or refused
#                (2, naming the other); --out holds one whole set.
#   truncation   an idle (memory-mapped) input cut to 0 bytes mid-run, as
#                logrotate's copytruncate does: no exit by signal; a
#                reported change or a whole read.
#   rotation     an input renamed away and replaced mid-run: it is read
#                whole, exit 0.
#   sparse       a 16 GiB file of zeros with no newline: one bad line, and
#                the peak RSS (printed; over 600 MB fails).
#   cardinality  300k lines naming 100k distinct models: peak RSS (printed;
#                over 600 MB fails).
# Each violation is printed; the script exits 1 if there was any.
set -uo pipefail

bin=$(realpath "$1")
kills=${2:-30}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
violations=0
violation() {
  echo "VIOLATION: $*"
  violations=$((violations + 1))
}

# Two different days, and each one's output set as a single run writes it.
"$bin" sample -q --out "$work/dayA" --size 48MiB --seed 1 >/dev/null
"$bin" sample -q --out "$work/dayB" --size 48MiB --seed 2 >/dev/null
"$bin" analyze -q --out "$work/refA" "$work/dayA/logs"
"$bin" analyze -q --out "$work/refB" "$work/dayB/logs"

# The fingerprint of a set: the hash of every output that is the same from
# run to run (summary.json holds the run's time; its inputs name the day).
fingerprint() {
  local dir=$1 name
  [[ -d $dir ]] || { echo "absent"; return; }
  for name in records.parquet quarantine.jsonl rollups.parquet incidents.parquet incidents.json report.md; do
    if [[ -f $dir/$name ]]; then sha256sum <"$dir/$name" | cut -c1-16; else echo "-"; fi
  done | tr '\n' ' '
  if [[ -f $dir/summary.json ]]; then
    grep -o '"name": "[^"]*day[AB]' "$dir/summary.json" | head -1 | grep -o 'day[AB]'
  else
    echo "-"
  fi
}
setA=$(fingerprint "$work/refA")
setB=$(fingerprint "$work/refB")
[[ $setA == *dayA && $setB == *dayB ]] || { echo "reference sets are not as expected: $setA / $setB"; exit 1; }
is_empty_set() { [[ -z $(ls -A "$1" 2>/dev/null) ]]; }

# How long one run of day B takes, to spread the kills over it.
start=$(date +%s%N)
"$bin" analyze -q --out "$work/timing" "$work/dayB/logs"
run_ms=$((($(date +%s%N) - start) / 1000000))
echo "one run of a 48 MiB day: ${run_ms} ms"

echo "--- kill -9 at random moments ($kills kills)"
mixed=0
outcomes=""
for ((i = 0; i < kills; i++)); do
  out=$work/out-kill
  rm -rf "$out"
  fresh=$((i % 4 == 3)) # every fourth kill lands in an empty --out
  if ((!fresh)); then cp -r "$work/refA" "$out"; fi
  "$bin" analyze -q --out "$out" "$work/dayB/logs" 2>/dev/null &
  pid=$!
  sleep "$(awk -v ms="$run_ms" -v r="$RANDOM" 'BEGIN { printf "%.3f", ms * (r / 32767) * 1.1 / 1000 }')"
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  got=$(fingerprint "$out")
  if [[ $got == "$setB" ]]; then
    outcomes+="B"
  elif ((!fresh)) && [[ $got == "$setA" ]]; then
    outcomes+="A"
  elif ((fresh)) && is_empty_set "$out"; then
    outcomes+="0"
  else
    mixed=$((mixed + 1))
    violation "kill $i (fresh=$fresh): --out holds $got"
  fi
  # The next run into it completes and leaves no staging behind.
  if ((i % 5 == 0)); then
    "$bin" analyze -q --out "$out" "$work/dayB/logs" || violation "kill $i: the next run failed"
    [[ $(fingerprint "$out") == "$setB" ]] || violation "kill $i: the next run's set is not B"
    ls -A "$work" | grep -q '^\.out-kill\.faultline-' && violation "kill $i: staging left after the next run"
  fi
done
echo "kills: $kills (old set kept/new set/empty: $(grep -o A <<<"$outcomes" | wc -l)/$(grep -o B <<<"$outcomes" | wc -l)/$(grep -o 0 <<<"$outcomes" | wc -l)), mixed or wiped sets: $mixed"

echo "--- a write failure part-way (ulimit -f)"
failed_writes=0
for limit in 64 512 1024 2048 4096; do
  out=$work/out-full
  rm -rf "$out"
  cp -r "$work/refA" "$out"
  (trap '' XFSZ; ulimit -f "$limit"; exec "$bin" analyze -q --out "$out" "$work/dayB/logs") 2>"$work/full.err"
  code=$?
  got=$(fingerprint "$out")
  # Cut short: exit 2 and the earlier set; room enough: exit 0 and the new.
  if [[ $code == 2 && $got == "$setA" ]]; then
    failed_writes=$((failed_writes + 1))
  elif [[ $code != 0 || $got != "$setB" ]]; then
    violation "ulimit -f $limit KiB: exit $code, --out holds $got"
  fi
done
((failed_writes > 0)) || violation "no write limit made a run fail"
echo "write limits: 5 (runs cut short: $failed_writes, each leaving the earlier set)"

echo "--- two runs into one --out at once"
pairs=10
both_ok=0
for ((i = 0; i < pairs; i++)); do
  out=$work/out-pair
  rm -rf "$out"
  cp -r "$work/refA" "$out"
  "$bin" analyze -q --out "$out" "$work/dayB/logs" 2>"$work/p1.err" &
  p1=$!
  sleep "0.0$((RANDOM % 10))"
  "$bin" analyze -q --out "$out" "$work/dayB/logs" 2>"$work/p2.err" &
  p2=$!
  wait "$p1"; c1=$?
  wait "$p2"; c2=$?
  for pair in "1 $c1" "2 $c2"; do
    set -- $pair
    case $2 in
      0) ;;
      2) grep -q "another faultline run (pid" "$work/p$1.err" || violation "pair $i: run $1 exit 2 without naming the holder: $(cat "$work/p$1.err")" ;;
      *) violation "pair $i: run $1 exit $2" ;;
    esac
  done
  ((c1 == 0 && c2 == 0)) && both_ok=$((both_ok + 1))
  [[ $(fingerprint "$out") == "$setB" ]] || violation "pair $i: --out holds $(fingerprint "$out")"
done
echo "concurrent pairs: $pairs (both completed, one after the other: $both_ok)"

echo "--- an idle input truncated mid-run (copytruncate)"
truncations=10
signalled=0
for ((i = 0; i < truncations; i++)); do
  in=$work/trunc.jsonl
  cat "$work"/dayB/logs/*.jsonl >"$in"
  touch -d '1 hour ago' "$in" # idle: memory-mapped
  "$bin" analyze -q --threads 1 --out "$work/out-trunc" "$in" 2>"$work/trunc.err" &
  pid=$!
  sleep "$(awk -v ms="$run_ms" -v r="$RANDOM" 'BEGIN { printf "%.3f", ms * (r / 32767) / 1000 }')"
  : >"$in"
  wait "$pid"
  code=$?
  if ((code > 128)); then
    signalled=$((signalled + 1))
    violation "truncation $i: exit $code (a signal)"
  elif ((code == 2)); then
    grep -q "changed size while being read" "$work/trunc.err" || violation "truncation $i: exit 2: $(cat "$work/trunc.err")"
  elif ((code != 0)); then
    violation "truncation $i: exit $code: $(tail -c 2000 "$work/trunc.err")"
  fi
done
echo "truncations: $truncations, exits by signal: $signalled"

echo "--- an input rotated by rename mid-run"
rotations=5
for ((i = 0; i < rotations; i++)); do
  in=$work/rot.jsonl
  cat "$work"/dayB/logs/*.jsonl >"$in"
  touch -d '1 hour ago' "$in"
  lines=$(wc -l <"$in")
  "$bin" analyze -q --threads 1 --out "$work/out-rot" "$in" 2>"$work/rot.err" &
  pid=$!
  # After the run has opened it (a rename before that is a missing input).
  sleep "0.$((1 + RANDOM % 3))"
  mv "$in" "$in.1" && : >"$in"
  wait "$pid" || violation "rotation $i: exit $? $(cat "$work/rot.err")"
  read_lines=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["totals"]["lines"])' "$work/out-rot/summary.json")
  [[ $read_lines == "$lines" ]] || violation "rotation $i: read $read_lines of $lines lines"
done
echo "rotations: $rotations"

# Analyzes INPUT into out-LABEL under /usr/bin/time; checks exit 0 and a
# peak RSS under 600 MB, and prints both as "DESCRIPTION: exit N, peak RSS M MB".
bounded_run() {
  local label=$1 description=$2 input=$3 code rss
  /usr/bin/time -v "$bin" analyze -q --out "$work/out-$label" "$input" 2>"$work/$label.time"
  code=$?
  rss=$(awk '/Maximum resident set size/ { printf "%d", $NF / 1024 }' "$work/$label.time")
  echo "$description: exit $code, peak RSS ${rss} MB"
  [[ $code == 0 ]] || violation "$label: exit $code"
  ((rss < 600)) || violation "$label: peak RSS ${rss} MB"
}

echo "--- a 16 GiB file of zeros with no newline"
truncate -s 16G "$work/sparse.jsonl"
touch -d '1 hour ago' "$work/sparse.jsonl"
bounded_run sparse "sparse 16 GiB" "$work/sparse.jsonl"
grep -q '"line_too_long": 1' "$work/out-sparse/summary.json" || violation "sparse: not one over-long line"
rm -f "$work/sparse.jsonl"

echo "--- 100k distinct models in 300k lines"
python3 - "$work/models.jsonl" <<'EOF'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(300_000):
        f.write('{"ts":"2025-03-04T%02d:%02d:%02dZ","provider":"openai","model":"gpt-4o-%d",'
                '"service":"svc-%d","status_code":%d,"latency_ms":%d}\n'
                % (i // 3600 % 24, i // 60 % 60, i % 60, i % 100_000, i % 50_000,
                   500 if i % 7 == 0 else 200, 100 + i % 900))
EOF
bounded_run models "cardinality (100k models, 50k services)" "$work/models.jsonl"

echo "faults: $violations violations"
((violations == 0))
