"""The LiteLLM proxy's custom callback module for the `litellm_proxy` config
(litellm_proxy.py copies it beside the proxy's config.yaml, which names
`conformance_callbacks.proxy_handler_instance` under
`litellm_settings.callbacks`, as LiteLLM's docs show for custom callbacks).

It runs inside the proxy (the proxy's own venv): each call's
`standard_logging_object` is written as one JSON line to the file named by
$CONFORMANCE_PROXY_LOG, from the async hooks the proxy calls.
"""

import json
import os
import threading

from litellm.integrations.custom_logger import CustomLogger


class JsonLinesProxyLogger(CustomLogger):
    def __init__(self, path):
        super().__init__()
        self._path = path
        self._lock = threading.Lock()

    def _write(self, kwargs):
        slo = kwargs.get("standard_logging_object")
        if slo is None:
            return
        line = json.dumps(slo, default=str)
        with self._lock, open(self._path, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        self._write(kwargs)

    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):
        self._write(kwargs)


proxy_handler_instance = JsonLinesProxyLogger(os.environ.get("CONFORMANCE_PROXY_LOG", "proxy_log.jsonl"))
