"""Driver (held-out): the LiteLLM proxy server between the openai SDK and the
mock. The proxy (its own venv, requirements-proxy.txt: `litellm[proxy]` of
1.110.0 does not resolve from the index) runs as `litellm --config
DIR/config.yaml` on 127.0.0.1 with no database, its master key the suite's
made-up key (FAKE_KEY, which the client sends); a custom
callback module (litellm_proxy_callbacks.py, copied to
DIR/conformance_callbacks.py) writes each call's `standard_logging_object` as
one JSON line to DIR/log.jsonl.

    python litellm_proxy.py --base-url http://127.0.0.1:PORT --out DIR [--proxy-venv /tmp/proxy-venv]

The proxy's model list maps the four models of outcomes.MODELS to
openai/gpt-4o-mini (api_base {mock}/v1), anthropic/claude-sonnet-4-20250514
(api_base {mock}), gemini/gemini-2.0-flash (api_base {mock}/v1beta) and
deepseek/deepseek-chat (api_base {mock}/deepseek), with a 1 s timeout, no
retries (`num_retries: 0` for the proxy and its router, `max_retries: 0` per
model) and no cooldowns (so that no call is refused by the router without
reaching the mock). The client is `openai.OpenAI(base_url=PROXY/v1)` with
max_retries 0 and a 5 s timeout (the proxy, not the client, times out the
`timeout` outcome). The proxy is stopped (its process group, by its pid) at
the end; its output is in DIR/proxy.log.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402
import outcomes  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
CLIENT_TIMEOUT_S = 5.0
START_TIMEOUT_S = 60.0


def write_config(d: pathlib.Path, base_url: str, fams) -> pathlib.Path:
    """config.yaml (JSON is YAML) and the callback module beside it."""
    shutil.copyfile(HERE / "litellm_proxy_callbacks.py", d / "conformance_callbacks.py")
    model_list = []
    for fam in fams:
        model_list.append(
            {
                "model_name": outcomes.MODELS[fam],
                "litellm_params": {
                    "model": f"{fam}/{outcomes.MODELS[fam]}",
                    "api_base": common.litellm_api_base(base_url, fam),
                    "api_key": common.FAKE_KEY,
                    "timeout": outcomes.CLIENT_TIMEOUT_S,
                    "max_retries": 0,
                },
            }
        )
    cfg = {
        "model_list": model_list,
        "litellm_settings": {
            "callbacks": ["conformance_callbacks.proxy_handler_instance"],
            "num_retries": 0,
            "request_timeout": outcomes.CLIENT_TIMEOUT_S,
        },
        "router_settings": {"num_retries": 0, "disable_cooldowns": True},
        # The master key is the suite's made-up key (the proxy refuses to
        # start without one); the client sends it as its API key.
        "general_settings": {"master_key": common.FAKE_KEY},
    }
    p = d / "config.yaml"
    p.write_text(json.dumps(cfg, indent=2) + "\n")
    return p


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_proxy(venv: pathlib.Path, cfg: pathlib.Path, d: pathlib.Path, log_path: pathlib.Path):
    exe = venv / "bin" / "litellm"
    if not exe.exists():
        sys.exit(f"no LiteLLM proxy at {exe}: make the venv from requirements-proxy.txt (run.sh does)")
    port = free_port()
    env = dict(os.environ)
    for k in list(env):
        if k.startswith(("OTEL_", "DATABASE_URL", "LITELLM_MASTER_KEY", "REDIS_")):
            env.pop(k)
    env.update(
        {
            "CONFORMANCE_PROXY_LOG": str(log_path),
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_TELEMETRY": "False",
            "LITELLM_LOG": "ERROR",
            "PYTHONUNBUFFERED": "1",
            "NO_DOCS": "True",
        }
    )
    out = open(d / "proxy.log", "w")
    p = subprocess.Popen(
        [str(exe), "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"],
        stdout=out,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=str(d),
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    t0 = time.time()
    while time.time() - t0 < START_TIMEOUT_S:
        if p.poll() is not None:
            sys.exit(f"the proxy exited with {p.returncode} (see {d / 'proxy.log'})")
        try:
            with urllib.request.urlopen(url + "/health/liveliness", timeout=1) as r:
                if r.status == 200:
                    print(f"proxy up at {url} in {time.time() - t0:.1f}s", file=sys.stderr)
                    return p, url
        except OSError:
            pass
        time.sleep(0.2)
    stop_proxy(p)
    sys.exit(f"the proxy did not answer in {START_TIMEOUT_S:.0f}s (see {d / 'proxy.log'})")


def stop_proxy(p: subprocess.Popen):
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=5)


def count_lines(path: pathlib.Path) -> int:
    if not path.exists():
        return 0
    return sum(1 for ln in path.read_bytes().split(b"\n") if ln.strip())


def main():
    ap = common.base_args(__doc__)
    ap.add_argument("--proxy-venv", default=os.environ.get("CONFORMANCE_PROXY_VENV", "/tmp/proxy-venv"))
    a = ap.parse_args()
    d = pathlib.Path(a.out).resolve()
    d.mkdir(parents=True, exist_ok=True)
    log_path = d / "log.jsonl"
    log_path.write_text("")
    fams = [f for f in a.families.split(",") if f]
    cfg = write_config(d, a.base_url, fams)
    proc, url = start_proxy(pathlib.Path(a.proxy_venv), cfg, d, log_path)
    try:
        import openai

        client = openai.OpenAI(api_key=common.FAKE_KEY, base_url=url + "/v1", max_retries=0, timeout=CLIENT_TIMEOUT_S)

        def call(fam, model, o, prompt):
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}], max_tokens=64)

        rows = common.run_calls("litellm_proxy", fams, call, d)
        deadline = time.time() + 15
        while count_lines(log_path) < len(rows) and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # a late duplicate, if the proxy ever wrote one, would land now
    finally:
        stop_proxy(proc)
    n = count_lines(log_path)
    if n != len(rows):
        print(f"warning: {n} log lines for {len(rows)} calls", file=sys.stderr)
    ver = subprocess.run(
        [str(pathlib.Path(a.proxy_venv) / "bin" / "python"), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    print(f"litellm_proxy: {len(rows)} calls, {n} lines, proxy litellm {ver}, client openai {openai.__version__}", file=sys.stderr)


if __name__ == "__main__":
    main()
