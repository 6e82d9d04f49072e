"""Copies a small real sample of each client config's log into fixtures/clients/.

    python capture_fixtures.py OUT_DIR [CONFIG ...]     # OUT_DIR of a run.py run

For each config: `fixtures/clients/<config>.jsonl` holds whole lines of
OUT_DIR/<config>/log.jsonl, byte for byte and in their original order, chosen
to cover a success, a 429, a 401, a timeout, an empty 200 and then other
errors, as long as the file stays under 30 KB (lines are never cut, so a
config whose lines are large gets fewer); `<config>.truth.jsonl` holds the
truth.jsonl lines of every call whose every span or entry is in those lines.
`fixtures/clients/README.md` is rewritten with a table of the files.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import score  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[3]
DEST = ROOT / "fixtures" / "clients"
MAX_BYTES = 30_000
MAX_LINES = 15
SLACK_MS = 5


def calls_of(raw: bytes, truth: list[dict]) -> set[int]:
    out = set()
    for ms in score.line_starts(raw):
        for t in truth:
            if t["t_start_ms"] - SLACK_MS <= ms <= t["t_end_ms"] + SLACK_MS:
                out.add(t["call"])
                break
    return out


def wanted(truth: list[dict]) -> list[int]:
    """Call indices in the order they are wanted in a sample."""
    def first(pred):
        return [t["call"] for t in truth if pred(t)][:1]

    order = []
    order += first(lambda t: t["expected_class"] == "ok")
    order += first(lambda t: t["http_status"] == 429 and t["expected_class"] == "rate_limit") or first(
        lambda t: t["http_status"] == 429
    )
    order += first(lambda t: t["http_status"] == 401)
    order += first(lambda t: t["outcome"].endswith("-timeout"))
    order += first(lambda t: t["expected_class"] == "empty_response")
    order += first(lambda t: t["http_status"] == 529) or first(lambda t: t["expected_class"] == "overloaded")
    order += first(lambda t: t["expected_class"] == "quota_exhausted")
    order += first(lambda t: t["expected_class"] == "context_length_exceeded")
    order += first(lambda t: t["expected_class"] == "server_error")
    order += [t["call"] for t in truth]  # then anything, in order
    seen, out = set(), []
    for c in order:
        if c not in seen:
            seen.add(c)
            out.append(c)
    return out


def sample(cfg_dir: pathlib.Path):
    raw_lines = [ln for ln in (cfg_dir / "log.jsonl").read_bytes().split(b"\n")]
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    truth_text = [ln for ln in (cfg_dir / "truth.jsonl").read_text().splitlines() if ln.strip()]
    truth = [json.loads(ln) for ln in truth_text]
    line_calls = [calls_of(ln, truth) for ln in raw_lines]
    chosen: set[int] = set()
    size = 0
    for call in wanted(truth):
        if len(chosen) >= MAX_LINES:
            break
        idxs = [i for i, cs in enumerate(line_calls) if call in cs and i not in chosen]
        add = sum(len(raw_lines[i]) + 1 for i in idxs)
        if not idxs or size + add > MAX_BYTES or len(chosen) + len(idxs) > MAX_LINES:
            # take at least the first line holding the call, if it fits
            if idxs and size + len(raw_lines[idxs[0]]) + 1 <= MAX_BYTES and len(chosen) < MAX_LINES:
                chosen.add(idxs[0])
                size += len(raw_lines[idxs[0]]) + 1
            continue
        chosen.update(idxs)
        size += add
    lines = sorted(chosen)
    # A call counts only when every line holding one of its spans is in the
    # sample (a call whose GenAI span was left out has no record in it).
    held = set().union(*(line_calls[i] for i in lines)) if lines else set()
    calls = sorted(c for c in held if all(i in chosen for i, cs in enumerate(line_calls) if c in cs))
    return [raw_lines[i] for i in lines], [truth_text[c] for c in calls], [truth[c] for c in calls], lines


def describe(truth_rows) -> str:
    counts: dict[str, int] = {}
    for t in truth_rows:
        st = "no response" if t["http_status"] is None else str(t["http_status"])
        k = f"{st} {t['expected_class']}"
        counts[k] = counts.get(k, 0) + 1
    return f"{len(truth_rows)}: " + ", ".join(k + (f" x{n}" if n > 1 else "") for k, n in counts.items())


def versions():
    names = [
        "litellm",
        "openai",
        "anthropic",
        "google-genai",
        "opentelemetry-sdk",
        "opentelemetry-instrumentation-openai-v2",
        "opentelemetry-instrumentation-anthropic",
        "opentelemetry-instrumentation-google-genai",
        "opentelemetry-instrumentation-httpx",
        "opentelemetry-util-genai",
        "opentelemetry-exporter-otlp-proto-common",
        "protobuf",
    ]
    out = {}
    for n in names:
        try:
            out[n] = md.version(n)
        except md.PackageNotFoundError:
            out[n] = "?"
    return out


def library_of(cfg: str, v: dict) -> tuple[str, str]:
    if cfg == "litellm_sdk":
        return (
            f"litellm {v['litellm']} (`litellm.completion`)",
            "a CustomLogger writing `standard_logging_object` (as LiteLLM's bucket loggers store it)",
        )
    if cfg == "litellm_otel":
        return (
            f"litellm {v['litellm']} with its `otel` callback, opentelemetry-sdk {v['opentelemetry-sdk']}",
            "OTLP/JSON file lines (Collector file-exporter shape), LiteLLM's SimpleSpanProcessor: one span per line",
        )
    _, fam, exp, *rest = cfg.split("-")
    httpx = f" + opentelemetry-instrumentation-httpx {v['opentelemetry-instrumentation-httpx']} (httpx and httpx2)" if rest else ""
    if fam in ("openai", "deepseek"):
        lib = f"openai {v['openai']} + opentelemetry-instrumentation-openai-v2 {v['opentelemetry-instrumentation-openai-v2']} (util-genai {v['opentelemetry-util-genai']})"
        if fam == "deepseek":
            lib += ", DeepSeek through base_url"
    elif fam == "anthropic":
        lib = f"anthropic {v['anthropic']} (its own tracing on, the default) + opentelemetry-instrumentation-anthropic {v['opentelemetry-instrumentation-anthropic']} (OpenLLMetry)"
    else:
        lib = f"google-genai {v['google-genai']} + opentelemetry-instrumentation-google-genai {v['opentelemetry-instrumentation-google-genai']}"
    lib += httpx
    if exp == "otlp":
        ex = "OTLP/JSON file lines (Collector file-exporter shape) from a BatchSpanProcessor (200 ms): several spans per line"
    else:
        ex = "ConsoleSpanExporter, `span.to_json(indent=None)`: one span per line"
    return lib, ex


def capture(out_root: pathlib.Path, cfgs: list[str]):
    import run  # the held-out configs are never captured: faultline is not to be tuned on them

    held = [c for c in cfgs if c in run.HELD_OUT]
    if held:
        print(f"not captured (held-out): {', '.join(held)}")
    cfgs = [c for c in cfgs if c not in run.HELD_OUT]
    if not cfgs:
        return
    DEST.mkdir(parents=True, exist_ok=True)
    v = versions()
    rows = []
    for cfg in cfgs:
        d = out_root / cfg
        if not (d / "log.jsonl").exists():
            continue
        lines, truth_lines, truth_rows, idx = sample(d)
        (DEST / f"{cfg}.jsonl").write_bytes(b"".join(ln + b"\n" for ln in lines))
        annotated = [json.dumps(annotate(t, lines)) for t in truth_rows]
        (DEST / f"{cfg}.truth.jsonl").write_text("".join(t + "\n" for t in annotated))
        size = (DEST / f"{cfg}.jsonl").stat().st_size
        lib, ex = library_of(cfg, v)
        rows.append((cfg, lib, ex, len(lines), size, describe(truth_rows)))
        print(f"fixtures/clients/{cfg}.jsonl: {len(lines)} lines, {size} bytes, {len(truth_rows)} calls")
    write_readme(rows, v)


def annotate(t: dict, lines: list[bytes]) -> dict:
    """The truth line with what the sampled lines of its call show, judged
    as score.py judges it: `status_stated` (the status the mock sent is
    written there) and `evidence_in_log` (so is the message the cause needs).
    The Rust tests that read the sample hold faultline to those alone."""
    stated = has_ev = False
    ev = t.get("evidence")
    for raw in lines:
        if not any(t["t_start_ms"] - SLACK_MS <= st <= t["t_end_ms"] + SLACK_MS for st in score.line_starts(raw)):
            continue
        text, doc = score.call_scope(raw, t["t_start_ms"], t["t_end_ms"])
        if t["http_status"] is not None and score.states_status(text, doc, t["http_status"]):
            stated = True
        if ev is None or score.strip_qb(ev) in score.strip_qb(text):
            has_ev = True
    return {**t, "status_stated": stated, "evidence_in_log": has_ev}


def write_readme(rows, v):
    out = [
        "# Client log samples",
        "",
        "Real lines written by LLM client libraries in production configuration,",
        "captured by the conformance suite (`tests/clients/conformance/`): the",
        "library called a local mock provider whose answers (success, the error",
        "bodies of `fixtures/ground-truth/provider-errors.jsonl`, a timeout, an empty",
        "200) are chosen per call, and wrote its log exactly as it does in",
        "production. Each line is whole and unchanged; a file holds a sample of",
        "a run (under 30 KB, so configs with large lines hold fewer).",
        "",
        "`<config>.truth.jsonl` has one line per call that appears in `<config>.jsonl`:",
        "`call`, `client`, `provider`, `model`, `outcome` (the mock's outcome id),",
        "`http_status` the mock sent (null for a client timeout), `expected_class`",
        "(the corpus vocabulary, or `ok`), `t_start_ms`/`t_end_ms` around the call,",
        "`evidence` (a substring of the error message the body carried),",
        "`client_exception` (what the client raised), and what the sampled lines",
        "of the call show: `status_stated` (the status is written there) and",
        "`evidence_in_log` (so is the message the cause needs). A record belongs",
        "to the call whose [t_start_ms - 5, t_end_ms + 5] window holds its start",
        "time. `crates/faultline-classify/tests/clients.rs` reads them: one record",
        "per call, the provider, the status where stated, the class and cause",
        "where the evidence is in the log.",
        "",
        "Regenerate with `tests/clients/conformance/run.py FAULTLINE --capture-fixtures`",
        "(times, ids and request ids change on every run).",
        "",
        "| file | library and version that wrote it | exporter / sink | lines | bytes | calls in it (HTTP status, expected class) |",
        "|---|---|---|---|---|---|",
    ]
    for cfg, lib, ex, n, size, desc in rows:
        out.append(f"| `{cfg}.jsonl` | {lib} | {ex} | {n} | {size} | {desc} |")
    out += [
        "",
        "Library versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        "",
    ]
    (DEST / "README.md").write_text("\n".join(out))


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out_root = pathlib.Path(sys.argv[1])
    cfgs = sys.argv[2:] or sorted(p.name for p in out_root.iterdir() if (p / "log.jsonl").exists())
    capture(out_root, cfgs)


if __name__ == "__main__":
    main()
