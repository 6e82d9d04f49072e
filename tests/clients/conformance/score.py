"""Scores faultline's analysis of a client's log against the driver's truth,
call by call.

    python score.py TRUTH FL_DIR [TRUTH FL_DIR ...] [--mismatches FILE] [--json FILE]
    python score.py --root target/conformance          # every ROOT/*/truth.jsonl with ROOT/*/fl/

FL_DIR is faultline's --out directory (records.parquet, quarantine.jsonl).

Matching: each record goes to the call whose [t_start_ms - 5, t_end_ms + 5]
window holds its `ts`; the calls are sequential with 25 ms between them, so
windows never overlap. A record in no window is `stray`.

Per call:

* one record: exactly one record in its window (none missing, none doubled);
* provider: the record's `provider` is the expected one;
* status: the record's `http_status` equals what the mock sent, counted only
  for calls whose log line states it (the number appears in the line: as a
  JSON integer, or inside a string not touching other digits, letters, `_`
  or `.`, and not as a traceback's `line N`); timeouts (no status sent) are not counted;
* class+cause: `status_class` in the label's classes and `cause` as the
  label requires (table LABELS); counted over calls whose line holds the
  evidence (the truth's `evidence` substring, compared with backslashes and
  quotes removed on both sides, or no evidence needed), and over all calls.

"The line" is the raw input line at the record's source_file/source_line;
for an OTLP line holding several calls, only the spans that started in the
call's window (and their descendants) are searched. With several records
for one call (which fails "one record"), every one of them must pass the
provider, status and class checks, and the call's line states the status or
holds the evidence when the line of any of them does (so the verdict does
not depend on the order of spans in a batch). A call with no record fails
every check and counts in every denominator.

False alarms: no client line holds a real key (the drivers use a made-up
key no library writes out, and provider messages only hold placeholders and
masked keys), so `lines_with_plaintext_secrets` in summary.json must be 0
and no `secret_in_log` incident may be reported; and no
`bad_request_spike` (the calls send few 400s, spread over the run).

Exit status 1 when any client is below: one record 100 %, provider 100 %,
status 99 %, class+cause (evidence) 98 %, or has a quarantined line or a
false alarm.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import sys

import pyarrow as pa
import pyarrow.parquet as pq

SLACK_MS = 5

# label -> (allowed status_class values, cause rule)
# cause rule: None = any, ("eq", x) = must equal, ("prefix", x) = must start with
LABELS = {
    "rate_limit": (["rate_limit"], ("prefix", "rate_limit")),
    "quota_exhausted": (["quota"], ("eq", "quota_exhausted")),
    "insufficient_balance": (["quota"], ("eq", "insufficient_balance")),
    "auth_invalid_key": (["auth"], ("eq", "invalid_api_key")),
    "auth_missing_key": (["auth"], ("eq", "missing_api_key")),
    "overloaded": (["overloaded"], None),
    "context_length_exceeded": (["bad_request", "payload_too_large"], ("eq", "context_length_exceeded")),
    "max_tokens_exceeded": (["bad_request"], ("eq", "max_tokens_exceeded")),
    "invalid_request": (["bad_request", "unprocessable", "payload_too_large"], None),
    "server_error": (["server_error", "bad_gateway"], None),
    "service_unavailable": (["unavailable", "bad_gateway"], None),
    "not_found_model": (["not_found"], None),
    "region_blocked": (["permission"], ("eq", "region_blocked")),
    "permission_denied": (["permission"], None),
    "content_filter": (["content_filter"], None),
    "timeout": (["timeout"], None),
    "empty_response": (["empty_response"], None),
    "ok": (["ok"], ("eq", "none")),
}

THRESHOLDS = {"one": 100.0, "provider": 100.0, "status": 99.0, "class_ev": 98.0}


def strip_qb(s: str) -> str:
    return s.replace("\\", "").replace('"', "").replace("'", "")


def class_ok(label: str, status_class, cause) -> bool:
    classes, rule = LABELS[label]
    if status_class not in classes:
        return False
    if rule is None:
        return True
    kind, want = rule
    if cause is None:
        return False
    return cause == want if kind == "eq" else str(cause).startswith(want)


def expected_desc(label: str) -> str:
    classes, rule = LABELS[label]
    s = "|".join(classes)
    if rule:
        s += f" / cause {'=' if rule[0] == 'eq' else 'starts with '}{rule[1]}"
    return s


# ------------------------------------------------------------------ raw lines


class LineCache:
    def __init__(self):
        self.files: dict[str, list[bytes]] = {}

    def get(self, path: str, line: int) -> bytes | None:
        if path not in self.files:
            try:
                self.files[path] = pathlib.Path(path).read_bytes().split(b"\n")
            except OSError:
                self.files[path] = []
        lines = self.files[path]
        if 1 <= line <= len(lines):
            return lines[line - 1]
        return None


def _otlp_spans(doc):
    for rs in doc.get("resourceSpans") or []:
        for ss in rs.get("scopeSpans") or []:
            for sp in ss.get("spans") or []:
                yield sp


def call_scope(raw: bytes, t0: int, t1: int):
    """(text, parsed values) of the part of a raw line that belongs to the call
    whose window is [t0, t1] (ms)."""
    text = raw.decode("utf-8", "replace")
    try:
        doc = json.loads(text)
    except ValueError:
        return text, None
    if isinstance(doc, dict) and "resourceSpans" in doc:
        spans = list(_otlp_spans(doc))
        keep = {}
        for sp in spans:
            try:
                st = int(sp.get("startTimeUnixNano", 0)) // 1_000_000
            except (TypeError, ValueError):
                continue
            if t0 - SLACK_MS <= st <= t1 + SLACK_MS:
                keep[sp.get("spanId")] = sp
        grew = True
        while grew:  # descendants
            grew = False
            for sp in spans:
                if sp.get("spanId") not in keep and sp.get("parentSpanId") in keep:
                    keep[sp.get("spanId")] = sp
                    grew = True
        if keep:
            part = list(keep.values())
            return json.dumps(part, ensure_ascii=False), part
    return text, doc


def _iso_ms(text: str):
    import datetime

    try:
        return int(datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


def line_starts(raw: bytes) -> list[int]:
    """The start times (ms) of the calls or spans a log line holds: OTLP
    spans' `startTimeUnixNano`, a span's `start_time` as the Python SDK
    writes it, LiteLLM's `startTime` (seconds)."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return []
    if not isinstance(doc, dict):
        return []
    if "resourceSpans" in doc:
        out = []
        for sp in _otlp_spans(doc):
            try:
                out.append(int(sp.get("startTimeUnixNano", 0)) // 1_000_000)
            except (TypeError, ValueError):
                pass
        return out
    if isinstance(doc.get("start_time"), str):
        ms = _iso_ms(doc["start_time"])
        return [ms] if ms is not None else []
    if isinstance(doc.get("startTime"), (int, float)):
        return [int(doc["startTime"] * 1000)]
    return []


class CallLines:
    """The lines of a log that hold a span or call started in a window: a
    call's spans are written one per line, and its record names one line."""

    def __init__(self, log: pathlib.Path):
        self.lines = []
        if log.exists():
            for raw in log.read_bytes().split(b"\n"):
                if raw.strip():
                    self.lines.append((line_starts(raw), raw))

    def within(self, t0: int, t1: int):
        for starts, raw in self.lines:
            if any(t0 - SLACK_MS <= st <= t1 + SLACK_MS for st in starts):
                yield raw


def _walk(v):
    if isinstance(v, dict):
        for x in v.values():
            yield from _walk(x)
    elif isinstance(v, list):
        for x in v:
            yield from _walk(x)
    else:
        yield v


def states_status(text: str, doc, status: int) -> bool:
    # not next to other digits, letters, `_` or `.`, and not a traceback's `line 529`
    pat = re.compile(r"(?<![\w.])(?<!line )" + str(status) + r"(?![\w.])")
    if doc is None:
        return bool(pat.search(text))
    for v in _walk(doc):
        if isinstance(v, bool):
            continue
        if isinstance(v, int) and v == status:
            return True
        if isinstance(v, str) and pat.search(v):
            return True
    return False


# ------------------------------------------------------------------ scoring


def read_records(fl_dir: pathlib.Path):
    t = pq.read_table(fl_dir / "records.parquet")
    ts = t.column("ts").cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64()).to_pylist()
    cols = {}
    for name in ("source_file", "source_line", "provider", "http_status", "status_class", "cause", "format", "error_message"):
        if name in t.column_names:
            col = t.column(name)
            if pa.types.is_dictionary(col.type):
                col = col.cast(col.type.value_type)
            cols[name] = col.to_pylist()
        else:
            cols[name] = [None] * t.num_rows
    recs = []
    for i in range(t.num_rows):
        r = {k: v[i] for k, v in cols.items()}
        r["ts"] = ts[i]
        r["row"] = i
        recs.append(r)
    return recs


def resolve_source(src, base_dir):
    """The input file of a record: as written (absolute, or relative to the
    current directory), else relative to the client's directory, else its
    name in the client's directory."""
    if not src:
        return None
    p = pathlib.Path(src)
    cands = [p]
    if base_dir is not None and not p.is_absolute():
        cands += [base_dir / p, base_dir / p.name]
    for c in cands:
        if c.is_file():
            return str(c)
    return None


def count_lines(p: pathlib.Path) -> int:
    if not p.exists():
        return 0
    return sum(1 for ln in p.read_bytes().split(b"\n") if ln.strip())


def score_client(truth_path: pathlib.Path, fl_dir: pathlib.Path, base_dir: pathlib.Path | None = None):
    truth = [json.loads(ln) for ln in truth_path.read_text().splitlines() if ln.strip()]
    client = truth[0]["client"] if truth else truth_path.parent.name
    recs = read_records(fl_dir)
    quarantined = count_lines(fl_dir / "quarantine.jsonl")
    lines = LineCache()
    call_lines = CallLines((base_dir or truth_path.parent) / "log.jsonl")
    by_call = {t["call"]: [] for t in truth}
    stray = []
    for r in recs:
        hit = None
        for t in truth:
            if t["t_start_ms"] - SLACK_MS <= r["ts"] <= t["t_end_ms"] + SLACK_MS:
                hit = t
                break
        if hit is None:
            stray.append(r)
        else:
            by_call[hit["call"]].append(r)

    mism = []
    n = len(truth)
    c = dict(one=0, provider=0, status=0, status_n=0, class_ev=0, class_ev_n=0, class_all=0)
    for t in truth:
        rs = sorted(by_call[t["call"]], key=lambda r: r["row"])
        tag = f"{client} call {t['call']} {t['outcome']}"
        if len(rs) == 1:
            c["one"] += 1
        else:
            where = ", ".join(f"line {r['source_line']} {r['status_class']}/{r['cause']}" for r in rs)
            mism.append(f"{tag}: one record: got {len(rs)} ({where})")
        if not rs:
            c["status_n"] += 1 if t["http_status"] is not None else 0
            c["class_ev_n"] += 1
            mism.append(f"{tag}: provider/status/class: no record")
            continue
        ev = t.get("evidence")
        stated = has_ev = False
        bad_provider, bad_status, bad_class = [], [], []
        for r in rs:
            src = resolve_source(r["source_file"], base_dir)
            raw = lines.get(src, r["source_line"]) if src else None
            if raw is None:
                mism.append(f"{tag}: raw line not found: {r['source_file']}:{r['source_line']} (scored as no evidence)")
            text, doc = call_scope(raw, t["t_start_ms"], t["t_end_ms"]) if raw is not None else ("", None)
            if t["http_status"] is not None and states_status(text, doc, t["http_status"]):
                stated = True
            if ev is None or strip_qb(ev) in strip_qb(text):
                has_ev = True
            loc = f"(line {r['source_line']})"
            if r["provider"] != t["provider"]:
                bad_provider.append(f"{r['provider']} {loc}")
            if r["http_status"] != t["http_status"]:
                bad_status.append(f"{r['http_status']} {loc}")
            if not class_ok(t["expected_class"], r["status_class"], r["cause"]):
                bad_class.append(f"{r['status_class']}/{r['cause']} {loc}")
        # The other lines of the call's spans (one span per line) state what
        # the record's line may not.
        for raw in call_lines.within(t["t_start_ms"], t["t_end_ms"]):
            text, doc = call_scope(raw, t["t_start_ms"], t["t_end_ms"])
            if t["http_status"] is not None and states_status(text, doc, t["http_status"]):
                stated = True
            if ev is None or strip_qb(ev) in strip_qb(text):
                has_ev = True
        # provider
        if not bad_provider:
            c["provider"] += 1
        else:
            mism.append(f"{tag}: provider: expected {t['provider']} got {', '.join(bad_provider)}")
        # status
        if stated:
            c["status_n"] += 1
            if not bad_status:
                c["status"] += 1
            else:
                mism.append(f"{tag}: http_status: expected {t['http_status']} got {', '.join(bad_status)}")
        # class + cause
        ok = not bad_class
        if ok:
            c["class_all"] += 1
        if has_ev:
            c["class_ev_n"] += 1
            if ok:
                c["class_ev"] += 1
        if not ok:
            mism.append(
                f"{tag}: class: expected {t['expected_class']} ({expected_desc(t['expected_class'])}) "
                f"got {', '.join(bad_class)}" + ("" if has_ev else " [line lacks evidence]")
            )
    for r in stray:
        mism.append(f"{client} stray record: line {r['source_line']} ts {r['ts']} {r['status_class']}/{r['cause']}")

    def pct(a, b):
        return 100.0 * a / b if b else 100.0

    res = {
        "client": client,
        "calls": n,
        "records": len(recs),
        "stray": len(stray),
        "one": pct(c["one"], n),
        "provider": pct(c["provider"], n),
        "status": pct(c["status"], c["status_n"]),
        "status_n": c["status_n"],
        "class_ev": pct(c["class_ev"], c["class_ev_n"]),
        "class_ev_n": c["class_ev_n"],
        "class_all": pct(c["class_all"], n),
        "quarantined": quarantined,
    }
    alarms = []
    summary_path, incidents_path = fl_dir / "summary.json", fl_dir / "incidents.json"
    if summary_path.exists():
        leaked = json.loads(summary_path.read_text())["totals"].get("lines_with_plaintext_secrets", 0)
        if leaked:
            alarms.append(f"{leaked} lines with plaintext keys")
    if incidents_path.exists():
        for inc in json.loads(incidents_path.read_text()):
            if inc["pattern"] in ("secret_in_log", "bad_request_spike"):
                alarms.append(f"{inc['pattern']}: {inc['summary']}")
    for alarm in alarms:
        mism.append(f"{client} false alarm: {alarm}")
    res["false_alarms"] = len(alarms)
    attempts = (base_dir or truth_path.parent) / "mock_requests.jsonl"
    if attempts.exists():
        res["http_attempts"] = count_lines(attempts)
    res["pass"] = (
        res["one"] >= THRESHOLDS["one"]
        and res["provider"] >= THRESHOLDS["provider"]
        and res["status"] >= THRESHOLDS["status"]
        and res["class_ev"] >= THRESHOLDS["class_ev"]
        and quarantined == 0
        and not alarms
    )
    return res, mism


def table(results) -> str:
    out = [
        "| client | records/calls | one record per call | provider | status (stated) | class+cause (evidence) | class+cause (all) | quarantined | stray | false alarms | HTTP attempts | pass |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        out.append(
            f"| {r['client']} | {r['records']}/{r['calls']} | {r['one']:.1f}% | {r['provider']:.1f}% | "
            f"{r['status']:.1f}% (n={r['status_n']}) | {r['class_ev']:.1f}% (n={r['class_ev_n']}) | "
            f"{r['class_all']:.1f}% | {r['quarantined']} | {r['stray']} | {r.get('false_alarms', '-')} | "
            f"{r.get('http_attempts', '-')} | "
            f"{'yes' if r['pass'] else 'NO'} |"
        )
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pairs", nargs="*", help="TRUTH FL_DIR [TRUTH FL_DIR ...]")
    ap.add_argument("--root", help="score every ROOT/*/truth.jsonl against ROOT/*/fl")
    ap.add_argument("--mismatches", help="where to write every mismatch (default: mismatches.txt beside the outputs)")
    ap.add_argument("--json", help="write the results as JSON here")
    a = ap.parse_args()
    jobs = []
    if a.root:
        root = pathlib.Path(a.root)
        for d in sorted(p for p in root.iterdir() if (p / "truth.jsonl").exists() and (p / "fl").is_dir()):
            jobs.append((d / "truth.jsonl", d / "fl", d))
    if len(a.pairs) % 2:
        ap.error("TRUTH and FL_DIR come in pairs")
    for i in range(0, len(a.pairs), 2):
        tp = pathlib.Path(a.pairs[i])
        jobs.append((tp, pathlib.Path(a.pairs[i + 1]), tp.parent))
    if not jobs:
        ap.error("nothing to score")
    results, allm = [], []
    for tp, fl, base in jobs:
        try:
            res, mism = score_client(tp, fl, base)
        except (OSError, pa.ArrowException) as e:
            print(f"error scoring {tp} against {fl}: {e}", file=sys.stderr)
            res = {"client": tp.parent.name, "calls": 0, "records": 0, "stray": 0, "one": 0.0, "provider": 0.0,
                   "status": 0.0, "status_n": 0, "class_ev": 0.0, "class_ev_n": 0, "class_all": 0.0,
                   "quarantined": -1, "pass": False}
            mism = [f"{tp.parent.name}: not scored: {e}"]
        results.append(res)
        allm.extend(mism)
    mpath = pathlib.Path(a.mismatches) if a.mismatches else (
        pathlib.Path(a.root) / "mismatches.txt" if a.root else jobs[0][1] / "mismatches.txt"
    )
    mpath.write_text("".join(m + "\n" for m in allm))
    print(f"{len(allm)} mismatches (all in {mpath}); the first 15:")
    for m in allm[:15]:
        print("  " + m)
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(table(results))
    sys.exit(0 if all(r["pass"] for r in results) else 1)


if __name__ == "__main__":
    main()
