"""Drivers and scorer: operations (a request and its retries and
fallbacks) as real clients log them, and as faultline groups them.

    python operations.py --base-url http://127.0.0.1:PORT --out DIR [--client openai_sdk_retries]
    python operations.py --score DIR        (after faultline analyze wrote DIR/fl)

`litellm_router` (the default):
The Router has two model groups on the mock, `gpt` (openai/gpt-4o-mini) and
`claude` (anthropic/claude-sonnet-4-20250514), `num_retries=2`, no wait
between retries, and `gpt` falls back to `claude`. Each request's prompt
holds a scripted marker (outcomes.operation_attempt): the mock fails its
first attempts, or every attempt on openai (a fallback), or every attempt.
A CustomLogger writes each attempt's `standard_logging_object` as a line:
LiteLLM 1.110 logs one per attempt, with the request's `trace_id` on all of
them and a `litellm_call_id` of each attempt's own (seen in this suite's
own runs).

`openai_sdk_retries`: the openai SDK with `max_retries=2` (its own
backoff), instrumented with openai-v2 and the httpx instrumentations
(httpx and httpx2), spans one per line (console exporter). The SDK makes one
GenAI span per call and one HTTP span per request under it: the requests
are the attempts.

truth.jsonl has one line per request: its marker, start and end, and the
attempts, providers, fallback and outcome the script implies. The score
matches each request to the operation of operations.parquet that starts
within the request's span, and checks its attempts, success, fallback,
providers, grouping, and that every record of the log belongs to one of them.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
import threading
import time

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no fetch of the cost map
os.environ.setdefault("LITELLM_TELEMETRY", "False")

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402
import outcomes  # noqa: E402

CLIENT = "litellm_router"
SDK_CLIENT = "openai_sdk_retries"
CLIENTS = (CLIENT, SDK_CLIENT)

# (marker kind, first group, attempts, providers tried, fallback, succeeded)
# with num_retries=2: a group is tried 3 times before its fallback.
SCENARIOS = [
    ("retry0-500", "gpt", 1, ["openai"], False, True),
    ("retry1-429", "gpt", 2, ["openai"], False, True),
    ("retry2-500", "gpt", 3, ["openai"], False, True),
    ("retry1-529", "claude", 2, ["anthropic"], False, True),
    ("fallback", "gpt", 4, ["openai", "anthropic"], True, True),
    ("fail-500", "gpt", 6, ["openai", "anthropic"], True, False),
]
ROUNDS = 2
# The SDK's: (marker kind, attempts, succeeded); max_retries=2 makes at
# most 3 requests.
SDK_SCENARIOS = [
    ("retry0-500", 1, True),
    ("retry1-429", 2, True),
    ("retry2-500", 3, True),
    ("fail-500", 3, False),
]


def drive(base_url: str, out: pathlib.Path):
    import litellm
    from litellm import Router
    from litellm.integrations.custom_logger import CustomLogger

    class Lines(CustomLogger):
        def __init__(self, path):
            super().__init__()
            self.f = open(path, "w", encoding="utf-8")
            self.lock = threading.Lock()
            self.count = 0

        def write(self, kwargs):
            slo = kwargs.get("standard_logging_object")
            if slo is None:
                return
            with self.lock:
                self.f.write(json.dumps(slo, default=str) + "\n")
                self.f.flush()
                self.count += 1

        # LiteLLM passes these by keyword: the names are its own.
        def log_success_event(self, kwargs, response_obj, start_time, end_time):
            self.write(kwargs)

        def log_failure_event(self, kwargs, response_obj, start_time, end_time):
            self.write(kwargs)

    out.mkdir(parents=True, exist_ok=True)
    logger = Lines(out / "log.jsonl")
    litellm.callbacks = [logger]
    litellm.suppress_debug_info = True
    params = {"api_key": common.FAKE_KEY, "max_retries": 0, "timeout": outcomes.CLIENT_TIMEOUT_S}
    router = Router(
        model_list=[
            {"model_name": "gpt", "litellm_params": {"model": "openai/gpt-4o-mini",
                                                      "api_base": common.litellm_api_base(base_url, "openai"), **params}},
            {"model_name": "claude", "litellm_params": {"model": "anthropic/claude-sonnet-4-20250514",
                                                         "api_base": common.litellm_api_base(base_url, "anthropic"), **params}},
        ],
        num_retries=2,
        retry_after=0,
        fallbacks=[{"gpt": ["claude"]}],
    )
    truth = []
    attempts = 0
    for round_ in range(ROUNDS):
        for kind, group, n, providers, fallback, ok in SCENARIOS:
            oid = f"op-{kind}-{round_}"
            prompt = f"Say hello. {outcomes.marker(oid)} [[flc:{CLIENT}]]"
            t0 = time.time()
            try:
                router.completion(model=group, messages=[{"role": "user", "content": prompt}], max_tokens=16)
                raised = None
            except Exception as e:  # noqa: BLE001 - failures are the point
                raised = type(e).__name__
            t1 = time.time()
            attempts += n
            truth.append({"operation": oid, "t_start_ms": int(t0 * 1000), "t_end_ms": int(t1 * 1000) + 1,
                          "attempts": n, "providers": providers, "fallback": fallback, "succeeded": ok,
                          "grouped_by": "litellm_call", "records": n, "client_exception": raised})
            time.sleep(common.GAP_S)
    deadline = time.time() + 15
    while logger.count < attempts and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    with open(out / "truth.jsonl", "w", encoding="utf-8") as f:
        for row in truth:
            f.write(json.dumps(row) + "\n")
    version = getattr(litellm, "__version__", "")
    print(f"{CLIENT}: {len(truth)} requests, {attempts} attempts planned, {logger.count} lines, litellm {version}",
          file=sys.stderr)


def drive_sdk(base_url: str, out: pathlib.Path):
    os.environ.setdefault("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    from opentelemetry import trace
    from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor, HTTPXClientInstrumentor
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    import openai

    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "log.jsonl"
    log_path.write_text("")
    provider = TracerProvider(resource=Resource.create({"service.name": f"conformance-{SDK_CLIENT}"}))
    provider.add_span_processor(SimpleSpanProcessor(common.console_exporter(log_path)))
    trace.set_tracer_provider(provider)
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    HTTPX2ClientInstrumentor().instrument(tracer_provider=provider)
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    client = openai.OpenAI(api_key=common.FAKE_KEY, base_url=f"{base_url}/v1", max_retries=2,
                           timeout=outcomes.CLIENT_TIMEOUT_S)
    truth = []
    for round_ in range(ROUNDS):
        for kind, n, ok in SDK_SCENARIOS:
            oid = f"op-{kind}-sdk{round_}"
            prompt = f"Say hello. {outcomes.marker(oid)} [[flc:{SDK_CLIENT}]]"
            t0 = time.time()
            try:
                client.chat.completions.create(model="gpt-4o-mini", max_tokens=16,
                                               messages=[{"role": "user", "content": prompt}])
                raised = None
            except Exception as e:  # noqa: BLE001 - failures are the point
                raised = type(e).__name__
            t1 = time.time()
            truth.append({"operation": oid, "t_start_ms": int(t0 * 1000), "t_end_ms": int(t1 * 1000) + 1,
                          "attempts": n, "providers": ["openai"], "fallback": False, "succeeded": ok,
                          # One span per call: the SDK's requests are inside it.
                          "grouped_by": "trace", "records": 1, "client_exception": raised})
            time.sleep(common.GAP_S)
    provider.shutdown()
    with open(out / "truth.jsonl", "w", encoding="utf-8") as f:
        for row in truth:
            f.write(json.dumps(row) + "\n")
    print(f"{SDK_CLIENT}: {len(truth)} requests, openai {openai.__version__}", file=sys.stderr)


def score(d: pathlib.Path) -> tuple[dict, list[str]]:
    """The config's result row (run.py's results.json) and its mismatches."""
    import pyarrow.parquet as pq

    client = d.name
    truth = [json.loads(line) for line in open(d / "truth.jsonl", encoding="utf-8")]
    ops = pq.read_table(d / "fl" / "operations.parquet").to_pylist()
    records = pq.read_table(d / "fl" / "records.parquet", columns=["operation_id"]).to_pylist()
    mism = []
    right = 0
    used = set()
    for t in truth:
        found = [o for o in ops
                 if t["t_start_ms"] <= int(o["start"].timestamp() * 1000) <= t["t_end_ms"]]
        if len(found) != 1:
            mism.append(f"{client}: {t['operation']}: {len(found)} operations start within the request")
            continue
        o = found[0]
        used.add(o["operation_id"])
        got = (o["attempts"], o["providers"], o["fallback"], o["succeeded"], o["grouped_by"])
        want = (t["attempts"], t["providers"], t["fallback"], t["succeeded"], t["grouped_by"])
        if got == want:
            right += 1
        else:
            mism.append(f"{client}: {t['operation']}: (attempts, providers, fallback, succeeded, grouped_by) "
                        f"{got}, expected {want}")
    stray = [o["operation_id"] for o in ops if o["operation_id"] not in used]
    for op_id in stray:
        mism.append(f"{client}: operation {op_id} matches no request")
    known = {o["operation_id"] for o in ops}
    orphans = sum(1 for r in records if r["operation_id"] not in known)
    if orphans:
        mism.append(f"{client}: {orphans} records name no operation of operations.parquet")
    attempts = sum(t["attempts"] for t in truth)
    expected_records = sum(t["records"] for t in truth)
    if len(records) != expected_records:
        mism.append(f"{client}: {len(records)} records, {expected_records} expected")
    res = {"client": client, "requests": len(truth), "operations": len(ops), "right": right,
           "attempts": attempts, "records": len(records), "expected_records": expected_records,
           "stray": len(stray),
           "pass": right == len(truth) and not stray and not orphans and len(records) == expected_records}
    return res, mism


def table(results) -> str:
    out = ["| client | requests/operations | right (attempts, providers, fallback, outcome, grouping) "
           "| attempts | records/expected | stray operations | pass |",
           "|---|---|---|---|---|---|---|"]
    for r in results:
        out.append(f"| {r['client']} | {r['requests']}/{r['operations']} | {r['right']}/{r['requests']} | "
                   f"{r['attempts']} | {r['records']}/{r.get('expected_records', '-')} | {r['stray']} | "
                   f"{'yes' if r['pass'] else 'NO'} |")
    return "\n".join(out)


def main():
    ap = common.base_args(__doc__)
    ap.add_argument("--client", choices=CLIENTS, default=CLIENT)
    a = ap.parse_args()
    if a.client == SDK_CLIENT:
        drive_sdk(a.base_url, pathlib.Path(a.out))
    else:
        drive(a.base_url, pathlib.Path(a.out))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--score":
        res, mism = score(pathlib.Path(sys.argv[2]))
        print("\n".join(mism))
        print(table([res]))
        sys.exit(0 if res["pass"] else 1)
    main()
