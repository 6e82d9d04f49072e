"""Reads faultline's parquet outputs the way dashboards do: pyarrow for the
documented columns and types, DuckDB for the queries in docs/dashboards.md.

    python3 tests/clients/check_parquet.py OUT_DIR [PARTITIONED_OUT_DIR]

The second directory, if given, holds the same single-day run written with
`--partition-by date`.

Exits non-zero, naming the file and column, on any difference.
"""

import json
import pathlib
import re
import sys

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = pathlib.Path(__file__).resolve().parents[2]


def is_text(t):
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def utc_ms(t):
    return pa.types.is_timestamp(t) and t.unit == "ms" and t.tz == "UTC"


TEXT, U64, U32, U16, F64, BOOL, TS = (
    is_text,
    pa.types.is_uint64,
    pa.types.is_uint32,
    pa.types.is_uint16,
    pa.types.is_float64,
    pa.types.is_boolean,
    utc_ms,
)

RECORDS = {
    "ts": TS, "source_file": TEXT, "source_line": U64, "byte_offset": U64, "format": TEXT,
    "request_id": TEXT, "service": TEXT, "provider": TEXT, "provider_source": TEXT,
    "model": TEXT, "host": TEXT, "key_fp": TEXT, "http_status": U16, "error_type": TEXT,
    "error_code": TEXT, "error_message": TEXT, "latency_ms": F64, "prompt_tokens": U32,
    "completion_tokens": U32, "max_tokens": U32, "attempt": U16, "stream": BOOL,
    "timeout_ms": U32, "empty_response": BOOL, "retry_after_s": F64, "status_class": TEXT,
    "cause": TEXT, "retryable": BOOL, "action": TEXT, "escalation": TEXT, "rule": TEXT,
    "secrets_found": U16, "operation_id": TEXT,
}
TEXT_LIST = lambda t: (pa.types.is_list(t) or pa.types.is_large_list(t)) and is_text(t.value_type)
OPERATIONS = {
    "operation_id": TEXT, "grouped_by": TEXT, "service": TEXT, "key_fp": TEXT, "start": TS,
    "end": TS, "attempts": U32, "providers": TEXT_LIST, "models": TEXT_LIST, "fallback": BOOL,
    "final_status_class": TEXT, "succeeded": BOOL, "first_error_class": TEXT,
    "time_lost_ms": pa.types.is_int64, "wasted_prompt_tokens": U64,
    "wasted_completion_tokens": U64, "wasted_cost_usd": F64,
}
ROLLUPS = {
    "window_start": TS, "provider": TEXT, "model": TEXT, "service": TEXT, "status_class": TEXT,
    "requests": U64, "errors": U64, "error_rate": F64, "latency_p50_ms": F64,
    "latency_p95_ms": F64, "latency_p99_ms": F64, "prompt_tokens": U64,
    "completion_tokens": U64,
}
INCIDENTS = {
    "id": TEXT, "pattern": TEXT, "severity": TEXT, "provider": TEXT, "model": TEXT,
    "service": TEXT, "key_fp": TEXT, "cause": TEXT, "start": TS, "end": TS, "duration_s": F64,
    "requests": U64, "errors": U64, "error_rate": F64, "peak_rate": U64, "summary": TEXT,
    "action": TEXT, "escalation": TEXT,
    "evidence": lambda t: (pa.types.is_list(t) or pa.types.is_large_list(t)) and is_text(t.value_type),
    "models": lambda t: (pa.types.is_list(t) or pa.types.is_large_list(t)) and is_text(t.value_type),
    "services": lambda t: (pa.types.is_list(t) or pa.types.is_large_list(t)) and is_text(t.value_type),
    "keys": lambda t: (pa.types.is_list(t) or pa.types.is_large_list(t)) and is_text(t.value_type),
}


def check_columns(path, expected):
    schema = pq.read_schema(path)
    if schema.names != list(expected):
        sys.exit(f"{path}: columns {schema.names}, documented {list(expected)}")
    for name, ok in expected.items():
        if not ok(schema.field(name).type):
            sys.exit(f"{path}: column {name} has type {schema.field(name).type}")


def main():
    out = pathlib.Path(sys.argv[1])
    check_columns(out / "records.parquet", RECORDS)
    check_columns(out / "rollups.parquet", ROLLUPS)
    check_columns(out / "incidents.parquet", INCIDENTS)
    check_columns(out / "operations.parquet", OPERATIONS)

    summary = json.loads((out / "summary.json").read_text())
    records = pq.read_table(out / "records.parquet")
    if records.num_rows != summary["totals"]["records"]:
        sys.exit(f"records.parquet has {records.num_rows} rows, summary.json says {summary['totals']['records']}")
    # Times, line numbers and offsets are stored as deltas (docs/schema.md):
    # pyarrow and DuckDB must decode them to the same values.
    meta = pq.ParquetFile(out / "records.parquet").metadata
    for name in ("ts", "source_line", "byte_offset"):
        column = meta.row_group(0).column(records.schema.get_field_index(name))
        if "DELTA_BINARY_PACKED" not in column.encodings:
            sys.exit(f"records.parquet: {name} is stored as {column.encodings}, documented as deltas")
    # Readers skip row groups by the least and greatest value of a column
    # (time ranges, services); ids have them too (see the lookup below).
    for name in ("ts", "service", "http_status", "request_id", "operation_id"):
        stats = meta.row_group(0).column(records.schema.get_field_index(name)).statistics
        if stats is None or not stats.has_min_max:
            sys.exit(f"records.parquet: {name} lacks min/max statistics")
    # A lookup by id finds its call: DuckDB pushes the filter into the scan.
    rid = next(r for r in records["request_id"].to_pylist() if r)
    found = duckdb.sql(f"select count(*) from '{out / 'records.parquet'}' where request_id = $1",
                       params=[rid]).fetchall()[0][0]
    expected = records["request_id"].to_pylist().count(rid)
    if found != expected:
        sys.exit(f"duckdb finds {found} records of request id {rid}, pyarrow {expected}")
    # Every record's operation is a row of operations.parquet, whose attempts
    # add up to the records.
    operations = pq.read_table(out / "operations.parquet")
    attempts = sum(operations["attempts"].to_pylist())
    joined = duckdb.sql(f"select count(*) from '{out / 'records.parquet'}' r "
                        f"join '{out / 'operations.parquet'}' o using (operation_id)").fetchall()[0][0]
    if not (attempts == joined == records.num_rows == summary["operations"]["attempts"]):
        sys.exit(f"records {records.num_rows}, attempts in operations.parquet {attempts}, "
                 f"joined {joined}, summary.json {summary['operations']['attempts']}")
    if operations.num_rows != summary["operations"]["operations"]:
        sys.exit("operations.parquet and summary.json disagree on the operations")
    sums = (sum(records["source_line"].to_pylist()), sum(records["byte_offset"].to_pylist()),
            max(records["ts"].cast(pa.int64()).to_pylist()))
    duck = duckdb.sql(f"select sum(source_line), sum(byte_offset), epoch_ms(max(ts)) "
                      f"from '{out / 'records.parquet'}'").fetchall()[0]
    if tuple(int(v) for v in duck) != sums:
        sys.exit(f"pyarrow reads (lines, offsets, last ts) {sums}, duckdb {duck}")
    incidents = json.loads((out / "incidents.json").read_text())
    if pq.read_table(out / "incidents.parquet").num_rows != len(incidents):
        sys.exit("incidents.parquet and incidents.json disagree")

    doc = (ROOT / "docs" / "dashboards.md").read_text()
    queries = re.findall(r"```sql\n(.*?)```", doc, re.S)
    if len(queries) != 4:
        sys.exit(f"docs/dashboards.md holds {len(queries)} queries, expected 4")
    con = duckdb.connect()
    results = [con.sql(q.replace("faultline-out/", f"{out}/")).fetchall() for q in queries[:3]]
    hourly, open_incidents, causes = results
    calls = sum(row[2] for row in hourly)
    if calls != summary["totals"]["records"]:
        sys.exit(f"rollups add up to {calls} calls, summary.json says {summary['totals']['records']}")
    if len(open_incidents) != len(incidents) or (incidents and open_incidents[0][1] != incidents[0]["pattern"]):
        sys.exit("the incidents query disagrees with incidents.json")
    if not causes:
        sys.exit("the causes query returned nothing")
    checked = 3
    if len(sys.argv) > 2:
        # The same day written with --partition-by date: the partition query
        # sees every call of that day.
        part = pathlib.Path(sys.argv[2])
        day = sorted(p.name for p in (part / "records").iterdir())[0].removeprefix("date=")
        query = queries[3].replace("faultline-out/", f"{part}/").replace("2026-03-10", day)
        rows = con.sql(query).fetchall()
        in_day = sum(row[2] for row in rows)
        if in_day != summary["totals"]["records"]:
            sys.exit(f"the partition query counts {in_day} calls on {day}, summary.json says {summary['totals']['records']}")
        checked += 1
    print(f"parquet clients: pyarrow {pa.__version__}, duckdb {duckdb.__version__}: "
          f"{records.num_rows} records, {operations.num_rows} operations, {calls} calls in rollups, "
          f"{len(incidents)} incidents, {checked} queries ok")


if __name__ == "__main__":
    main()
