"""Driver: the LiteLLM SDK with LiteLLM's own OpenTelemetry callback
(`litellm.integrations.opentelemetry.OpenTelemetry`, what `callbacks=["otel"]`
builds), its exporter set to an OTLP/JSON file exporter (common.py).

    python litellm_otel.py --base-url http://127.0.0.1:PORT --out DIR

LiteLLM wraps an exporter instance it is given in a SimpleSpanProcessor
(`_get_span_processor`), so each export, and so each line, holds one span.
Same calls as litellm_sdk.py (same models, api_base, timeout, no retries).
"""

from __future__ import annotations

import os
import pathlib
import sys
import time

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_TELEMETRY", "False")

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402
import litellm_sdk  # noqa: E402  (api_base, make_call)

import litellm  # noqa: E402
from litellm.integrations.opentelemetry import OpenTelemetry, OpenTelemetryConfig  # noqa: E402


def main():
    ap = common.base_args(__doc__)
    a = ap.parse_args()
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "log.jsonl"
    log_path.write_text("")
    exporter = common.make_otlp_exporter(log_path)
    otel = OpenTelemetry(config=OpenTelemetryConfig(exporter=exporter, service_name="conformance-litellm"))
    litellm.callbacks = [otel]
    litellm.suppress_debug_info = True
    fams = [f for f in a.families.split(",") if f]
    rows = common.run_calls("litellm_otel", fams, litellm_sdk.make_call(a.base_url), out)
    # success logging runs on LiteLLM's thread pool: wait for the spans to stop coming
    last, stable_since = -1, time.time()
    deadline = time.time() + 15
    while time.time() < deadline:
        if exporter.spans != last:
            last, stable_since = exporter.spans, time.time()
        elif time.time() - stable_since > 1.0:
            break
        time.sleep(0.05)
    try:
        otel._tracer_provider.force_flush()
        otel._tracer_provider.shutdown()
    except Exception as e:  # noqa: BLE001
        print(f"warning: flushing the tracer provider: {e}", file=sys.stderr)
    exporter.shutdown()
    print(f"litellm_otel: {len(rows)} calls, {exporter.spans} spans in {exporter.exports} lines", file=sys.stderr)


if __name__ == "__main__":
    main()
