"""Driver (held-out): the LiteLLM SDK called asynchronously
(`litellm.acompletion`) with a CustomLogger whose async hooks
(`async_log_success_event` / `async_log_failure_event`, what LiteLLM calls for
async requests) write each call's `standard_logging_object` as one JSON line.

    python litellm_async.py --base-url http://127.0.0.1:PORT --out DIR

Same models, api_base, 1 s timeout and no retries as litellm_sdk.py. The
event loop runs in its own thread for the whole run (as in an async service),
so LiteLLM's logging tasks run when it schedules them; each call is submitted
to it and waited for. The success outcomes of `--stream-family` (default
openai) are streaming calls (`stream=True`, the stream consumed to its end
with `async for`); every other call is a plain `await litellm.acompletion(...)`.
The driver waits until one line per call is written.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import pathlib
import sys
import threading

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no fetch of the cost map
os.environ.setdefault("LITELLM_TELEMETRY", "False")

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402
import litellm_sdk  # noqa: E402  (api_base, wait_for)

import litellm  # noqa: E402


class AsyncJsonLinesLogger(litellm_sdk.JsonLinesLogger):
    """The sync driver's logger, through the hooks LiteLLM calls for async requests."""

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        self._write(kwargs)

    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):
        self._write(kwargs)


def make_call(base_url: str, loop: asyncio.AbstractEventLoop, stream_family: str):
    async def acall(fam, model, o, prompt):
        stream = fam == stream_family and o["kind"] == "success"
        resp = await litellm.acompletion(
            **litellm_sdk.completion_args(base_url, fam, model, prompt), stream=stream
        )
        if stream:
            async for _ in resp:
                pass

    def call(fam, model, o, prompt):
        asyncio.run_coroutine_threadsafe(acall(fam, model, o, prompt), loop).result()

    return call


def main():
    ap = common.base_args(__doc__)
    ap.add_argument("--stream-family", default="openai", help="the family whose success outcomes are streamed")
    a = ap.parse_args()
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    logger = AsyncJsonLinesLogger(out / "log.jsonl")
    litellm.callbacks = [logger]
    litellm.suppress_debug_info = True
    loop = asyncio.new_event_loop()
    th = threading.Thread(target=loop.run_forever, daemon=True)
    th.start()
    fams = [f for f in a.families.split(",") if f]
    rows = common.run_calls("litellm_async", fams, make_call(a.base_url, loop, a.stream_family), out)
    litellm_sdk.wait_for(logger, len(rows))
    if logger.count != len(rows):
        print(f"warning: {logger.count} log lines for {len(rows)} calls", file=sys.stderr)
    loop.call_soon_threadsafe(loop.stop)
    th.join(timeout=5)
    logger.close()
    print(
        f"litellm_async: {len(rows)} calls, {logger.count} lines, litellm {importlib.metadata.version('litellm')}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
