"""Driver: an official provider SDK instrumented with OpenTelemetry, spans
written to DIR/log.jsonl.

    python sdk_otel.py --base-url http://127.0.0.1:PORT --out DIR \
        --provider openai|anthropic|gemini|deepseek --export otlp|console [--httpx]
        [--stream] [--openai-instrumentation v2|openllmetry] [--client NAME]

* openai, deepseek: the `openai` SDK (DeepSeek through base_url
  `{mock}/deepseek`, model `deepseek-chat`), instrumented with
  `opentelemetry-instrumentation-openai-v2`;
* anthropic: the `anthropic` SDK, instrumented with OpenLLMetry's
  `opentelemetry-instrumentation-anthropic` (the SDK's own tracing, on by
  default in anthropic 2.x, emits its spans too: kept, as in production);
* gemini: `google-genai`, instrumented with
  `opentelemetry-instrumentation-google-genai`;
* `--httpx`: also `opentelemetry-instrumentation-httpx` (both its httpx and
  httpx2 instrumentors: openai, anthropic and google-genai use httpx2), which
  adds a child HTTP span per request.

`--export otlp`: BatchSpanProcessor -> OTLP/JSON lines as the Collector's file
exporter writes them (several spans per line); `--export console`:
SimpleSpanProcessor -> ConsoleSpanExporter, one span per line.

OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true is set, as many teams do.
Every client has max_retries 0 (one call = one HTTP attempt) and a 1 s timeout.

Options used only by the held-out configs (README.md; without them the driver
does what it always did):

* `--openai-instrumentation openllmetry`: openai/deepseek instrumented with
  OpenLLMetry's `opentelemetry-instrumentation-openai` (traceloop) instead of
  `opentelemetry-instrumentation-openai-v2` (its defaults: content traced,
  `gen_ai.input.messages` / `gen_ai.output.messages` attributes);
* `--stream` (openai, deepseek, anthropic): streaming calls, each stream
  consumed to its end. openai/deepseek: `stream=True`, and
  `stream_options={"include_usage": True}` on every second call (calls 0, 2,
  4, ... of the plan); anthropic: `client.messages.stream(...)` +
  `get_final_message()` on even calls, `messages.create(stream=True)` iterated
  on odd calls. Errors come before the stream starts (the mock answers them
  with the usual JSON body), so they are raised by the call itself;
* `--client NAME`: the client tag (truth.jsonl `client`, the mock's split),
  by default `sdk_otel-{provider}-{export}[-httpx]`.
"""

from __future__ import annotations

import os
import pathlib
import sys

os.environ.setdefault("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402
import outcomes  # noqa: E402


def main():
    ap = common.base_args(__doc__)
    ap.add_argument("--provider", required=True, choices=outcomes.FAMILIES)
    ap.add_argument("--export", required=True, choices=("otlp", "console"))
    ap.add_argument("--httpx", action="store_true")
    ap.add_argument("--batch-delay-ms", type=float, default=200.0)
    ap.add_argument("--stream", action="store_true", help="streaming calls (openai, deepseek, anthropic)")
    ap.add_argument("--openai-instrumentation", choices=("v2", "openllmetry"), default="v2")
    ap.add_argument("--client", help="client tag (default sdk_otel-PROVIDER-EXPORT[-httpx])")
    a = ap.parse_args()
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "log.jsonl"
    log_path.write_text("")

    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(
        resource=Resource.create({"service.name": f"conformance-{a.provider}", "deployment.environment": "test"})
    )
    if a.export == "otlp":
        exporter = common.make_otlp_exporter(log_path)
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=a.batch_delay_ms))
    else:
        exporter = common.console_exporter(log_path)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)

    if a.httpx:
        from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor, HTTPXClientInstrumentor

        HTTPXClientInstrumentor().instrument(tracer_provider=provider)
        HTTPX2ClientInstrumentor().instrument(tracer_provider=provider)

    timeout = outcomes.CLIENT_TIMEOUT_S
    fam = a.provider
    if a.stream and fam == "gemini":
        ap.error("--stream: openai, deepseek or anthropic")
    n_call = [0]  # the call's index in the plan (--stream alternates on it)
    if fam in ("openai", "deepseek"):
        if a.openai_instrumentation == "openllmetry":
            from opentelemetry.instrumentation.openai import OpenAIInstrumentor
        else:
            from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=provider)
        import openai

        base = f"{a.base_url}/v1" if fam == "openai" else f"{a.base_url}/deepseek"
        client = openai.OpenAI(api_key=common.FAKE_KEY, base_url=base, max_retries=0, timeout=timeout)

        def call(fam, model, o, prompt):
            if not a.stream:
                client.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": prompt}], max_tokens=64
                )
                return
            i = n_call[0]
            n_call[0] += 1
            kw = {"stream_options": {"include_usage": True}} if i % 2 == 0 else {}
            stream = client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": prompt}], max_tokens=64, stream=True, **kw
            )
            for _ in stream:
                pass

        lib = f"openai {openai.__version__}"
        if a.openai_instrumentation == "openllmetry":
            from importlib.metadata import version

            lib += f", opentelemetry-instrumentation-openai {version('opentelemetry-instrumentation-openai')}"
    elif fam == "anthropic":
        from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor

        AnthropicInstrumentor().instrument(tracer_provider=provider)
        import anthropic

        client = anthropic.Anthropic(api_key=common.FAKE_KEY, base_url=a.base_url, max_retries=0, timeout=timeout)

        def call(fam, model, o, prompt):
            if not a.stream:
                client.messages.create(model=model, max_tokens=64, messages=[{"role": "user", "content": prompt}])
                return
            i = n_call[0]
            n_call[0] += 1
            msgs = [{"role": "user", "content": prompt}]
            if i % 2 == 0:
                with client.messages.stream(model=model, max_tokens=64, messages=msgs) as stream:
                    stream.get_final_message()
            else:
                for _ in client.messages.create(model=model, max_tokens=64, messages=msgs, stream=True):
                    pass

        lib = f"anthropic {anthropic.__version__}"
    else:
        from opentelemetry.instrumentation.google_genai import GoogleGenAiSdkInstrumentor

        # The instrumentation declares google-genai < 3; without skip_dep_check
        # it would not instrument google-genai 3.x at all (and log a warning).
        GoogleGenAiSdkInstrumentor().instrument(tracer_provider=provider, skip_dep_check=True)
        from google import genai
        from google.genai import types

        client = genai.Client(
            api_key=common.FAKE_KEY,
            http_options=types.HttpOptions(
                base_url=a.base_url,
                timeout=int(timeout * 1000),
                retry_options=types.HttpRetryOptions(attempts=1),
            ),
        )

        def call(fam, model, o, prompt):
            client.models.generate_content(model=model, contents=prompt)

        lib = f"google-genai {genai.__version__}"

    client_name = a.client or f"sdk_otel-{fam}-{a.export}" + ("-httpx" if a.httpx else "")
    rows = common.run_calls(client_name, [fam], call, out)
    provider.force_flush()
    provider.shutdown()
    print(f"{client_name}: {len(rows)} calls with {lib}", file=sys.stderr)


if __name__ == "__main__":
    main()
