"""A local mock of the OpenAI, DeepSeek, Anthropic and Gemini HTTP APIs.

Binds 127.0.0.1 on an ephemeral port. The answer to each request is chosen by
a marker `[[fl:OUTCOME_ID]]` anywhere in the raw request body (see
outcomes.py); a request without a marker gets a success.

Streaming: an OpenAI, DeepSeek or Anthropic request whose JSON body has
`"stream": true` gets its success and empty outcomes as server-sent events in
the provider's format (chunked transfer encoding, one event per chunk; see
`_openai_sse`, `_anthropic_sse`); its error outcomes get the same JSON error
body and status as a non-streaming request (a provider that fails a request
before streaming starts answers it like any other), and its timeout outcome
the same delay. Gemini's `:streamGenerateContent` is answered as before (one
JSON body). Non-streaming requests are answered exactly as they were.

Routes (any prefix before them is accepted):

* `POST .../chat/completions`          OpenAI; DeepSeek when the path starts with `/deepseek`
* `POST .../messages`                  Anthropic
* `POST .../models/{model}:generateContent` (and `:streamGenerateContent`) Gemini

In-process use:

    server, base = start()          # base = "http://127.0.0.1:PORT"
    ...
    stop(server)
    server.requests                 # one dict per request served

Standalone: `python mock_provider.py [--port N] [--seconds S]` serves until
interrupted or for S seconds (default 600), printing the base URL.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import string
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, __import__("os").path.dirname(__file__))
import outcomes  # noqa: E402

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
REPLY = "Hello! How can I help you today?"


def _oai_request_id():
    return "req_" + secrets.token_hex(16)


def _anthropic_request_id():
    return "req_011C" + "".join(random.choice(B58) for _ in range(20))


def _family_of(path: str) -> str | None:
    p = path.split("?", 1)[0]
    if p.endswith("/chat/completions"):
        return "deepseek" if p.startswith("/deepseek") else "openai"
    if p.endswith("/messages"):
        return "anthropic"
    if ":generateContent" in p or ":streamGenerateContent" in p:
        return "gemini"
    return None


def _usage(prompt_text: str):
    p = max(8, len(prompt_text) // 4)
    return p, 9


def _success_body(fam: str, model: str, prompt_text: str, empty: str | None = None):
    pt, ct = _usage(prompt_text)
    now = int(time.time())
    if fam in ("openai", "deepseek"):
        choices = [
            {
                "index": 0,
                "message": {"role": "assistant", "content": REPLY, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ]
        if fam == "deepseek":
            choices[0]["message"] = {"role": "assistant", "content": REPLY}
        if empty:
            choices, ct = [], 0
        body = {
            "id": "chatcmpl-" + "".join(random.choice(string.ascii_letters + string.digits) for _ in range(29)),
            "object": "chat.completion",
            "created": now,
            "model": model,
            "choices": choices,
            "usage": {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct},
            "system_fingerprint": "fp_" + secrets.token_hex(5),
        }
        if fam == "openai":
            body["usage"]["prompt_tokens_details"] = {"cached_tokens": 0, "audio_tokens": 0}
            body["usage"]["completion_tokens_details"] = {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            }
            body["service_tier"] = "default"
        else:
            body["id"] = str(uuid.uuid4())
            body["usage"]["prompt_tokens_details"] = {"cached_tokens": 0}
            body["usage"]["prompt_cache_hit_tokens"] = 0
            body["usage"]["prompt_cache_miss_tokens"] = pt
        return body
    if fam == "anthropic":
        content = [] if empty else [{"type": "text", "text": REPLY}]
        return {
            "id": "msg_01" + "".join(random.choice(B58) for _ in range(22)),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": pt,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 3 if empty else ct,
                "service_tier": "standard",
            },
        }
    if fam == "gemini":
        usage = {
            "promptTokenCount": pt,
            "candidatesTokenCount": ct,
            "totalTokenCount": pt + ct,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": pt}],
        }
        cand = {
            "content": {"parts": [{"text": REPLY}], "role": "model"},
            "finishReason": "STOP",
            "avgLogprobs": -0.0123,
        }
        if empty == "empty":
            cands = []
            usage = {"promptTokenCount": pt, "totalTokenCount": pt}
        elif empty == "empty_noparts":
            cands = [{"content": {"role": "model"}, "finishReason": "STOP", "index": 0}]
            usage = {"promptTokenCount": pt, "totalTokenCount": pt}
        else:
            cands = [cand]
        return {
            "candidates": cands,
            "usageMetadata": usage,
            "modelVersion": model,
            "responseId": "".join(random.choice(string.ascii_letters + string.digits) for _ in range(22)),
        }
    raise ValueError(fam)


def _chunk_id():
    return "chatcmpl-" + "".join(random.choice(string.ascii_letters + string.digits) for _ in range(29))


def _openai_sse(fam: str, model: str, prompt_text: str, include_usage: bool, empty: bool) -> list[bytes]:
    """The events of a streamed chat completion as OpenAI (and DeepSeek, same
    shape) send them: `data: {chat.completion.chunk}` per event, a first
    chunk with the role, content deltas, a chunk with `finish_reason`, with
    `stream_options.include_usage` a last chunk with empty `choices` and the
    usage (and `"usage": null` on every other chunk), then `data: [DONE]`.
    An empty completion streams the role chunk with `content: ""` and the
    finish chunk, no content delta, 0 completion tokens."""
    pt, ct = _usage(prompt_text)
    base = {
        "id": _chunk_id() if fam == "openai" else str(uuid.uuid4()),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }
    if fam == "openai":
        base["service_tier"] = "default"
    base["system_fingerprint"] = "fp_" + secrets.token_hex(5)

    def chunk(delta, finish=None):
        c = dict(base)
        c["choices"] = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        if include_usage:
            c["usage"] = None
        return c

    first = {"role": "assistant", "content": ""}
    if fam == "openai":
        first["refusal"] = None
    chunks = [chunk(first)]
    if not empty:
        words = REPLY.split(" ")
        for i, w in enumerate(words):
            chunks.append(chunk({"content": w if i == 0 else " " + w}))
    else:
        ct = 0
    chunks.append(chunk({}, "stop"))
    if include_usage:
        c = dict(base)
        c["choices"] = []
        u = {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}
        if fam == "openai":
            u["prompt_tokens_details"] = {"cached_tokens": 0, "audio_tokens": 0}
            u["completion_tokens_details"] = {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            }
        else:
            u["prompt_tokens_details"] = {"cached_tokens": 0}
            u["prompt_cache_hit_tokens"] = 0
            u["prompt_cache_miss_tokens"] = pt
        c["usage"] = u
        chunks.append(c)
    out = [b"data: " + json.dumps(c, separators=(",", ":")).encode() + b"\n\n" for c in chunks]
    out.append(b"data: [DONE]\n\n")
    return out


def _anthropic_sse(model: str, prompt_text: str, empty: bool) -> list[bytes]:
    """The events of a streamed Messages response as Anthropic sends them:
    `event: message_start` (the message with empty content, stop_reason null),
    `content_block_start`, `ping`, `content_block_delta` per text delta,
    `content_block_stop`, `message_delta` (stop_reason, output tokens),
    `message_stop`. An empty response has no content block (as the
    non-streaming empty answer has `content: []`)."""
    pt, ct = _usage(prompt_text)
    msg = {
        "id": "msg_01" + "".join(random.choice(B58) for _ in range(22)),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": pt,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 1,
            "service_tier": "standard",
        },
    }
    ev = [("message_start", {"type": "message_start", "message": msg})]
    if not empty:
        ev.append(("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}))
        ev.append(("ping", {"type": "ping"}))
        words = REPLY.split(" ")
        for i, w in enumerate(words):
            ev.append(
                (
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w if i == 0 else " " + w}},
                )
            )
        ev.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
    else:
        ev.append(("ping", {"type": "ping"}))
    ev.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 3 if empty else ct},
            },
        )
    )
    ev.append(("message_stop", {"type": "message_stop"}))
    return [f"event: {name}\ndata: {json.dumps(d, separators=(',', ':'))}\n\n".encode() for name, d in ev]


def _model_of(fam: str, path: str, req: dict) -> str:
    if fam == "gemini":
        seg = path.split("?", 1)[0].rsplit("/models/", 1)[-1]
        return seg.split(":", 1)[0]
    return str(req.get("model") or outcomes.MODELS[fam])


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock-llm/1.0"

    def log_message(self, fmt, *args):  # quiet
        pass

    def _send(self, status, body, headers, content_type="application/json", fam=None):
        if isinstance(body, (dict, list)):
            if fam == "anthropic":
                data = json.dumps(body, separators=(",", ":")).encode()
            else:
                data = json.dumps(body, indent=2).encode()
        else:
            data = body.encode() if isinstance(body, str) else body
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

    def _send_sse(self, events: list[bytes], headers):
        """200 text/event-stream, chunked, one event per chunk."""
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Cache-Control", "no-cache")
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            for e in events:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(e), e))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

    def _success(self, fam, model, prompt_text, headers, req, empty=None):
        stream = fam in ("openai", "deepseek", "anthropic") and isinstance(req, dict) and req.get("stream") is True
        if not stream:
            self._send(200, _success_body(fam, model, prompt_text, empty=empty), headers, fam=fam)
            return
        if fam == "anthropic":
            events = _anthropic_sse(model, prompt_text, bool(empty))
        else:
            so = req.get("stream_options")
            include_usage = isinstance(so, dict) and so.get("include_usage") is True
            events = _openai_sse(fam, model, prompt_text, include_usage, bool(empty))
        self._send_sse(events, headers)

    def do_GET(self):
        self._send(404, {"error": {"message": "not found", "type": "invalid_request_error"}}, {})

    def do_POST(self):
        t0 = time.time()
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        fam = _family_of(self.path)
        m = outcomes.MARKER_RE.search(raw)
        oid = m.group(1).decode() if m else None
        cm = outcomes.CLIENT_RE.search(raw)
        rec = {
            "t_ms": int(t0 * 1000),
            "client": cm.group(1).decode() if cm else None,
            "path": self.path,
            "family": fam,
            "outcome": oid,
        }
        self.server.requests.append(rec)
        if fam is None:
            rec["status"] = 404
            self._send(404, {"error": {"message": f"no route for {self.path}", "type": "invalid_request_error"}}, {})
            return
        try:
            req = json.loads(raw or b"{}")
        except ValueError:
            req = {}
        if oid and oid.startswith("op-"):
            # A scripted operation (outcomes.operation): its earlier attempts
            # fail, the later ones succeed.
            with self.server.lock:
                seen = self.server.attempts.get(oid, 0)
                self.server.attempts[oid] = seen + 1
            failure = outcomes.operation_attempt(oid, fam, seen)
            model = _model_of(fam, self.path, req)
            if failure is None:
                rec["status"] = 200
                self._success(fam, model, raw.decode("utf-8", "replace"), {}, req)
            else:
                status, body = failure
                rec["status"] = status
                self._send(status, body, {}, fam=fam)
            return
        o = outcomes.catalog().get(oid) if oid else None
        if oid and o is None:
            rec["status"] = 400
            self._send(400, {"error": {"message": f"unknown outcome {oid}", "type": "invalid_request_error"}}, {})
            return
        if o is not None and o["family"] != fam:
            rec["warning"] = f"outcome family {o['family']} served on a {fam} route"
        kind = o["kind"] if o else "success"
        headers = {}
        if fam in ("openai", "deepseek"):
            headers["x-request-id"] = _oai_request_id()
            if fam == "openai":
                headers["openai-processing-ms"] = str(random.randint(180, 900))
        elif fam == "anthropic":
            headers["request-id"] = (o or {}).get("request_id") or _anthropic_request_id()
        model = _model_of(fam, self.path, req)
        prompt_text = raw.decode("utf-8", "replace")
        if isinstance(req, dict) and req.get("stream") is True and fam != "gemini":
            rec["stream"] = True
        if kind == "slow":
            time.sleep(outcomes.SLOW_SLEEP_S)
            rec["status"] = 200
            rec["slow"] = True
            self._success(fam, model, prompt_text, headers, req)
            return
        if kind == "success":
            rec["status"] = 200
            self._success(fam, model, prompt_text, headers, req)
            return
        if kind in ("empty", "empty_noparts"):
            rec["status"] = 200
            self._success(fam, model, prompt_text, headers, req, empty=kind)
            return
        headers.update(o["headers"])
        rec["status"] = o["status"]
        self._send(o["status"], o["body"], headers, content_type=o["content_type"], fam=fam)


class MockServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr):
        super().__init__(addr, Handler)
        self.requests: list[dict] = []
        # Attempts seen per scripted operation marker.
        self.attempts: dict[str, int] = {}
        self.lock = threading.Lock()

    def handle_error(self, request, client_address):
        # A client that resets an idle keep-alive connection (the LiteLLM
        # proxy does when it stops) is not an error of the mock's.
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


def start(port: int = 0):
    """Start the mock on 127.0.0.1:port (0 = ephemeral) in a background thread.
    Returns (server, base_url)."""
    server = MockServer(("127.0.0.1", port))
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    t.start()
    server._thread = t
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def stop(server):
    server.shutdown()
    server.server_close()
    server._thread.join(timeout=5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=600.0)
    a = ap.parse_args()
    server, base = start(a.port)
    print(base, flush=True)
    try:
        time.sleep(a.seconds)
    except KeyboardInterrupt:
        pass
    stop(server)


if __name__ == "__main__":
    main()
