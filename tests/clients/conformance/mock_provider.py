"""A local mock of the OpenAI, DeepSeek, Anthropic and Gemini HTTP APIs.

Binds 127.0.0.1 on an ephemeral port. The answer to each request is chosen by
a marker `[[fl:OUTCOME_ID]]` anywhere in the raw request body (see
outcomes.py); a request without a marker gets a success.

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
        if kind == "slow":
            time.sleep(outcomes.SLOW_SLEEP_S)
            rec["status"] = 200
            rec["slow"] = True
            self._send(200, _success_body(fam, model, prompt_text), headers, fam=fam)
            return
        if kind == "success":
            rec["status"] = 200
            self._send(200, _success_body(fam, model, prompt_text), headers, fam=fam)
            return
        if kind in ("empty", "empty_noparts"):
            rec["status"] = 200
            self._send(200, _success_body(fam, model, prompt_text, empty=kind), headers, fam=fam)
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
