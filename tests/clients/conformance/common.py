"""Shared by the client drivers: argument parsing, the call loop that writes
truth.jsonl, and the OTLP/JSON file exporter."""

from __future__ import annotations

import argparse
import base64
import json
import os
import pathlib
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import outcomes  # noqa: E402

FAKE_KEY = "sk-conformance-test-0000"


def litellm_api_base(base_url: str, fam: str) -> str:
    """The `api_base` LiteLLM is given for each provider family on the mock."""
    return {
        "openai": f"{base_url}/v1",
        "anthropic": base_url,
        "gemini": f"{base_url}/v1beta",
        "deepseek": f"{base_url}/deepseek",
    }[fam]
GAP_S = 0.025


def base_args(description: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--base-url", required=True, help="the mock, e.g. http://127.0.0.1:PORT")
    ap.add_argument("--out", required=True, help="output dir: log.jsonl, truth.jsonl")
    ap.add_argument(
        "--families",
        default=",".join(outcomes.FAMILIES),
        help="comma-separated provider families to drive (default: all the client supports)",
    )
    return ap


def prompt_for(oid: str, client: str) -> str:
    """The prompt: the outcome marker, and a client tag the mock records (so
    that its request log can be split per client when clients run at once)."""
    return f"Say hello in one short sentence. {outcomes.marker(oid)} [[flc:{client}]]"


def run_calls(client: str, families, call, out_dir: pathlib.Path) -> list[dict]:
    """Call `call(family, model, outcome, prompt)` once per planned outcome,
    sequentially, writing truth.jsonl. Exceptions are caught (they are the
    point); their type is noted in the truth line as `client_exception`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    idx = 0
    with open(out_dir / "truth.jsonl", "w", encoding="utf-8") as tf:
        for fam in families:
            model = outcomes.MODELS[fam]
            for o in outcomes.plan(fam):
                prompt = prompt_for(o["id"], client)
                exc = None
                t0 = time.time()
                try:
                    call(fam, model, o, prompt)
                except Exception as e:  # noqa: BLE001 - errors are the point
                    exc = type(e).__module__ + "." + type(e).__qualname__
                t1 = time.time()
                row = {
                    "call": idx,
                    "client": client,
                    "provider": fam,
                    "model": model,
                    "outcome": o["id"],
                    "http_status": o["status"] if o["kind"] != "slow" else None,
                    "expected_class": o["expected_class"],
                    "t_start_ms": int(t0 * 1000),
                    "t_end_ms": int(t1 * 1000) + 1,
                    "evidence": o["evidence"],
                    "client_exception": exc,
                }
                tf.write(json.dumps(row) + "\n")
                tf.flush()
                rows.append(row)
                idx += 1
                time.sleep(GAP_S)
    return rows


# ---------------------------------------------------------------- OTLP JSON


def _b64_to_hex(v: str) -> str:
    return base64.b64decode(v).hex()


def _fix_ids(d: dict) -> dict:
    """OTLP/JSON: trace and span ids are hex strings, not base64 (protobuf's
    JSON mapping of bytes)."""
    for rs in d.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for sp in ss.get("spans", []):
                for k in ("traceId", "spanId", "parentSpanId"):
                    if sp.get(k):
                        sp[k] = _b64_to_hex(sp[k])
                for ln in sp.get("links", []):
                    for k in ("traceId", "spanId"):
                        if ln.get(k):
                            ln[k] = _b64_to_hex(ln[k])
    return d


class OtlpJsonFileExporter:
    """A SpanExporter writing what the OpenTelemetry Collector's file exporter
    writes: one `{"resourceSpans": [...]}` JSON object per export, per line.

    The spans are encoded by the SDK's own OTLP encoder (`encode_spans`, the
    protobuf the OTLP exporters send) and rendered by protobuf's JSON mapping
    (`MessageToDict`: camelCase names, 64-bit integers as strings, enums as
    integers as OTLP/JSON requires), with ids turned to hex."""

    def __init__(self, path):
        from opentelemetry.sdk.trace.export import SpanExportResult

        self._ok = SpanExportResult.SUCCESS
        self._f = open(path, "a", encoding="utf-8")
        self._lock = threading.Lock()
        self.exports = 0
        self.spans = 0

    def export(self, spans):
        from google.protobuf.json_format import MessageToDict
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

        msg = encode_spans(spans)
        d = _fix_ids(MessageToDict(msg, use_integers_for_enums=True))
        line = json.dumps(d, separators=(",", ":"))
        with self._lock:
            self._f.write(line + "\n")
            self._f.flush()
            self.exports += 1
            self.spans += len(spans)
        return self._ok

    def shutdown(self):
        with self._lock:
            if not self._f.closed:
                self._f.flush()
                self._f.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        with self._lock:
            if not self._f.closed:
                self._f.flush()
        return True


def make_otlp_exporter(path):
    """OtlpJsonFileExporter as a real SpanExporter subclass (so `isinstance`
    checks in libraries see one)."""
    from opentelemetry.sdk.trace.export import SpanExporter

    class _Exp(OtlpJsonFileExporter, SpanExporter):
        pass

    return _Exp(path)


def console_exporter(path):
    """ConsoleSpanExporter writing one span per line to a file."""
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    f = open(path, "a", encoding="utf-8")
    return ConsoleSpanExporter(formatter=lambda s: s.to_json(indent=None) + "\n", out=f)
