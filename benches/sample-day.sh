# Sourced by e2e.sh and compare.sh: builds the release binary, generates a
# sample day of SIZE under a temporary directory (removed on exit), dates
# its logs back and warms the page cache. Sets bin, work and bytes.
cargo build --release --locked --quiet
bin=target/release/faultline
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$bin" sample --size "$size" --out "$work/day" >/dev/null
# Settled logs, as after rotation: files modified in the last 30 s count as
# live and are read without a memory map.
touch -d "1 hour ago" "$work"/day/logs/*
bytes=$(cat "$work"/day/logs/* | wc -c)
cat "$work"/day/logs/* >/dev/null   # warm the page cache

# The median of its arguments.
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
