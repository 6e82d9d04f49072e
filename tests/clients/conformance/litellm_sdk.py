"""Driver: the LiteLLM SDK (`litellm.completion`) with a CustomLogger that
writes each call's `standard_logging_object` as one JSON line, as LiteLLM's
bucket/file loggers (s3, gcs, ...) store it.

    python litellm_sdk.py --base-url http://127.0.0.1:PORT --out DIR

Models: openai/gpt-4o-mini (api_base {mock}/v1), anthropic/claude-sonnet-4-20250514
(api_base {mock}), gemini/gemini-2.0-flash (api_base {mock}/v1beta),
deepseek/deepseek-chat (api_base {mock}/deepseek). num_retries=0 and
max_retries=0: one call is one HTTP attempt; timeout 1 s.

LiteLLM runs success callbacks on a thread pool and failure callbacks inline
(litellm/utils.py, `executor.submit(... success_handler ...)` and
`logging_obj.failure_handler(...)`); both set `standard_logging_object`
(`_failure_handler_helper_fn` builds it with status="failure" and
`error_str`). The driver waits until one line per call is written.
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

import litellm  # noqa: E402
from litellm.integrations.custom_logger import CustomLogger  # noqa: E402


class JsonLinesLogger(CustomLogger):
    def __init__(self, path):
        super().__init__()
        self._f = open(path, "w", encoding="utf-8")
        self._lock = threading.Lock()
        self.count = 0

    def _write(self, kwargs):
        slo = kwargs.get("standard_logging_object")
        if slo is None:
            print("warning: no standard_logging_object in kwargs", file=sys.stderr)
            return
        line = json.dumps(slo, default=str)
        with self._lock:
            self._f.write(line + "\n")
            self._f.flush()
            self.count += 1

    def log_success_event(self, kwargs, response_obj, start_time, end_time):
        self._write(kwargs)

    def log_failure_event(self, kwargs, response_obj, start_time, end_time):
        self._write(kwargs)

    def close(self):
        with self._lock:
            self._f.close()


def completion_args(base_url: str, fam: str, model: str, prompt: str) -> dict:
    """The arguments of one call: the mock's provider, no retries, a 1 s timeout."""
    return {
        "model": f"{fam}/{model}",
        "messages": [{"role": "user", "content": prompt}],
        "api_base": common.litellm_api_base(base_url, fam),
        "api_key": common.FAKE_KEY,
        "max_tokens": 64,
        "timeout": outcomes.CLIENT_TIMEOUT_S,
        "num_retries": 0,
        "max_retries": 0,
    }


def make_call(base_url: str):
    def call(fam, model, o, prompt):
        litellm.completion(**completion_args(base_url, fam, model, prompt))

    return call


def wait_for(logger, n, seconds=15.0):
    deadline = time.time() + seconds
    while logger.count < n and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # a late duplicate, if LiteLLM ever wrote one, would land now


def main():
    ap = common.base_args(__doc__)
    a = ap.parse_args()
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    logger = JsonLinesLogger(out / "log.jsonl")
    litellm.callbacks = [logger]
    litellm.suppress_debug_info = True
    fams = [f for f in a.families.split(",") if f]
    rows = common.run_calls("litellm_sdk", fams, make_call(a.base_url), out)
    wait_for(logger, len(rows))
    if logger.count != len(rows):
        print(f"warning: {logger.count} log lines for {len(rows)} calls", file=sys.stderr)
    logger.close()
    print(f"litellm_sdk: {len(rows)} calls, {logger.count} lines, litellm {litellm.__version__ if hasattr(litellm, '__version__') else ''}", file=sys.stderr)


if __name__ == "__main__":
    main()
