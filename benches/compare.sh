#!/usr/bin/env bash
# faultline analyze against the equivalent DuckDB job (benches/duckdb_job.sql)
# on the same generated sample day, both on 2 threads, warm page cache,
# alternating runs; prints median seconds, MB/s, max RSS and the ratio.
#
#   bash benches/compare.sh [SIZE] [RUNS]      (defaults: 1GiB, 3)
#
# Installs duckdb (PyPI) in a venv under target/. The DuckDB job writes a
# per-record parquet file and per-minute rollups; faultline also detects
# incidents and writes every report.
set -euo pipefail
size="${1:-1GiB}"
runs="${2:-3}"
cd "$(dirname "$0")/.."
venv=target/compare-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check duckdb
source benches/sample-day.sh
sed -e "s|LOGS|$work/day/logs|g" -e "s|OUT|$work/duck|g" benches/duckdb_job.sql >"$work/job.sql"
cat >"$work/job.py" <<PY
import duckdb, sys
duckdb.connect().execute(open(sys.argv[1]).read())
PY
echo "sample day: $size requested, $bytes bytes; $runs runs each, alternating"

declare -a ft dt fs ds
fr=0 dr=0
for _ in $(seq "$runs"); do
    rm -rf "$work/duck" && mkdir -p "$work/duck"
    /usr/bin/time -f "%e %S %M" -o "$work/t" "$venv/bin/python" "$work/job.py" "$work/job.sql"
    read -r s sys kb <"$work/t"; dt+=("$s"); ds+=("$sys"); (( kb > dr )) && dr=$kb
    # Each tool starts from an empty output directory: replacing the last
    # run's files would add the kernel's freeing of them to the timed run.
    rm -rf "$work/fl"
    /usr/bin/time -f "%e %S %M" -o "$work/t" "$bin" analyze -q -j 2 --out "$work/fl" "$work/day/logs"
    read -r s sys kb <"$work/t"; ft+=("$s"); fs+=("$sys"); (( kb > fr )) && fr=$kb
done
fm=$(median "${ft[@]}"); dm=$(median "${dt[@]}")
fsm=$(median "${fs[@]}"); dsm=$(median "${ds[@]}")
awk -v b="$bytes" -v f="$fm" -v d="$dm" -v fr="$fr" -v dr="$dr" -v fs="$fsm" -v ds="$dsm" 'BEGIN {
    printf "faultline analyze: median %.2f s, %.0f MB/s, system %.2f s, max RSS %.0f MiB\n", f, b / f / 1e6, fs, fr / 1024
    printf "duckdb job:        median %.2f s, %.0f MB/s, system %.2f s, max RSS %.0f MiB\n", d, b / d / 1e6, ds, dr / 1024
    printf "ratio (duckdb time / faultline time): %.2fx\n", d / f
}'
echo "duckdb rows: $("$venv/bin/python" -c "import duckdb; print(duckdb.sql(\"select count(*) from '$work/duck/records.parquet'\").fetchall()[0][0])")"
