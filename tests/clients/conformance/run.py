"""Runs the client conformance suite end to end.

    python run.py FAULTLINE_BINARY [--out target/conformance] [--jobs 2]
                  [--only SUBSTRING] [--capture-fixtures]

(run with the suite's venv python; run.sh does that.)

1. starts the mock provider (127.0.0.1, ephemeral port) in this process;
2. runs every client config, each as its own subprocess writing
   OUT/<config>/log.jsonl and truth.jsonl: litellm_sdk, litellm_otel,
   litellm_router (operations.py: retries and fallbacks, scored as
   operations), and
   sdk_otel for openai, anthropic, gemini, deepseek x (otlp, console) x
   (without, with --httpx); then the held-out configs (README.md, "Held-out
   configs"): openllmetry_openai-otlp, openllmetry_deepseek-console,
   sdk_otel-openai-stream-otlp, sdk_otel-anthropic-stream-console,
   litellm_async, litellm_proxy (the LiteLLM proxy runs from its own venv,
   $CONFORMANCE_PROXY_VENV or /tmp/proxy-venv, made from
   requirements-proxy.txt when absent and the config is selected);
3. for each: FAULTLINE analyze -q --format json --out OUT/<config>/fl OUT/<config>/log.jsonl;
4. scores every config (score.py), writes OUT/mismatches.txt, OUT/results.json,
   OUT/table.md, prints the table, and exits 1 if any config is below the
   bar. The held-out configs are held to the same bar (a regression there
   fails too) and shown in a table of their own; --capture-fixtures leaves
   them out, so that no test of faultline's is tuned on their lines.

The mock's request log is split per config into OUT/<config>/mock_requests.jsonl
(the prompt carries a client tag), so retries would show as more HTTP
attempts than calls.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import pathlib
import shutil
import shlex
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import mock_provider  # noqa: E402
import operations  # noqa: E402
import score  # noqa: E402

FAMILIES = ("openai", "anthropic", "gemini", "deepseek")


def configs():
    out = [("litellm_sdk", ["litellm_sdk.py"]), ("litellm_otel", ["litellm_otel.py"])]
    for httpx in (False, True):
        for exp in ("otlp", "console"):
            for fam in FAMILIES:
                name = f"sdk_otel-{fam}-{exp}" + ("-httpx" if httpx else "")
                args = ["sdk_otel.py", "--provider", fam, "--export", exp] + (["--httpx"] if httpx else [])
                out.append((name, args))
    out.extend(heldout_configs())
    out.append((operations.CLIENT, ["operations.py"]))
    out.append((operations.SDK_CLIENT, ["operations.py", "--client", operations.SDK_CLIENT]))
    return out


def heldout_configs():
    """Configs faultline was not tuned on (README.md, "Held-out configs")."""
    out = []
    for fam, exp in (("openai", "otlp"), ("deepseek", "console")):
        name = f"openllmetry_{fam}-{exp}"
        out.append((name, ["sdk_otel.py", "--provider", fam, "--export", exp,
                           "--openai-instrumentation", "openllmetry", "--client", name]))
    for fam, exp in (("openai", "otlp"), ("anthropic", "console")):
        name = f"sdk_otel-{fam}-stream-{exp}"
        out.append((name, ["sdk_otel.py", "--provider", fam, "--export", exp, "--stream", "--client", name]))
    out.append(("litellm_async", ["litellm_async.py"]))
    out.append(("litellm_proxy", ["litellm_proxy.py"]))
    return out


HELD_OUT = frozenset(n for n, _ in heldout_configs())
# Started first, so that the longest driver (the proxy imports for ~20 s)
# overlaps the others instead of running alone at the end.
START_FIRST = ("litellm_proxy",)


def proxy_venv() -> pathlib.Path:
    """The proxy's venv, absolute: the drivers run in their own directories."""
    v = pathlib.Path(os.environ.get("CONFORMANCE_PROXY_VENV", "/tmp/proxy-venv")).resolve()
    os.environ["CONFORMANCE_PROXY_VENV"] = str(v)
    return v


def ensure_proxy_venv():
    """Make the LiteLLM proxy's venv from requirements-proxy.txt if it is
    absent (about 2 minutes). Its litellm cannot share the suite's venv:
    `litellm[proxy]` of the suite's litellm does not resolve (README.md)."""
    v = proxy_venv()
    if (v / "bin" / "litellm").exists():
        return
    t0 = time.time()
    print(f"making the proxy venv {v} from requirements-proxy.txt ...", flush=True)
    py = shutil.which("python3.11") or sys.executable
    for cmd in (
        [py, "-m", "venv", str(v)],
        [str(v / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "-r", str(HERE / "requirements-proxy.txt")],
    ):
        p = subprocess.run(cmd)
        if p.returncode != 0:
            print(f"warning: {shlex.join(cmd)} failed ({p.returncode}); litellm_proxy will not run", file=sys.stderr)
            return
    print(f"proxy venv {v} made in {time.time() - t0:.0f}s", flush=True)


def run_one(name, args, base_url, out_root: pathlib.Path, faultline: str, timeout_s: float):
    d = out_root / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    env = dict(os.environ)
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    env["PYTHONUNBUFFERED"] = "1"
    t0 = time.time()
    with open(d / "driver.log", "w") as log:
        try:
            p = subprocess.run(
                [sys.executable, str(HERE / args[0]), *args[1:], "--base-url", base_url, "--out", str(d)],
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout_s,
                env=env,
                cwd=str(d),
            )
            rc = p.returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    t1 = time.time()
    fl_rc = None
    if (d / "log.jsonl").exists():
        with open(d / "faultline.log", "w") as log:
            p = subprocess.run(
                [faultline, "analyze", "-q", "--format", "json", "--out", str(d / "fl"), str(d / "log.jsonl")],
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=300,
            )
            fl_rc = p.returncode
    t2 = time.time()
    return name, rc, fl_rc, t1 - t0, t2 - t1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("faultline")
    ap.add_argument("--out", default="target/conformance")
    ap.add_argument("--jobs", "-j", type=int, default=2, help="configs run at once (the mock serves them all)")
    ap.add_argument("--only", action="append", help="run only configs whose name contains this (repeatable)")
    ap.add_argument("--driver-timeout", type=float, default=150.0)
    ap.add_argument("--capture-fixtures", action="store_true", help="then refresh fixtures/clients/ from this run")
    a = ap.parse_args()
    faultline = str(pathlib.Path(a.faultline).resolve())
    if not os.access(faultline, os.X_OK):
        sys.exit(f"not an executable: {a.faultline}")
    out_root = pathlib.Path(a.out).resolve()
    out_root.mkdir(parents=True, exist_ok=True)
    cfgs = [c for c in configs() if not a.only or any(s in c[0] for s in a.only)]
    if any(n == "litellm_proxy" for n, _ in cfgs):
        ensure_proxy_venv()

    t_all = time.time()
    server, base = mock_provider.start()
    print(f"mock provider at {base}; {len(cfgs)} configs, {a.jobs} at a time; output in {out_root}", flush=True)
    rows = []
    try:
        with cf.ThreadPoolExecutor(max_workers=max(1, a.jobs)) as ex:
            order = sorted(cfgs, key=lambda c: c[0] not in START_FIRST)
            futs = [ex.submit(run_one, n, args, base, out_root, faultline, a.driver_timeout) for n, args in order]
            for f in cf.as_completed(futs):
                name, rc, fl_rc, td, tf = f.result()
                rows.append((name, rc, fl_rc, td, tf))
                print(f"  {name:32} driver rc={rc} {td:5.1f}s   faultline rc={fl_rc} {tf:4.1f}s", flush=True)
        time.sleep(0.2)
    finally:
        reqs = list(server.requests)
        mock_provider.stop(server)
    by_client = {}
    for r in reqs:
        by_client.setdefault(r.get("client"), []).append(r)
    for name, *_ in rows:
        with open(out_root / name / "mock_requests.jsonl", "w") as f:
            for r in by_client.get(name, []):
                f.write(json.dumps(r) + "\n")
    stray = by_client.get(None, [])
    if stray:
        print(f"warning: {len(stray)} mock requests without a client tag", file=sys.stderr)

    t_score = time.time()
    results, allm = [], []
    for name, rc, fl_rc, *_ in sorted(rows, key=lambda r: [c[0] for c in cfgs].index(r[0])):
        d = out_root / name
        if name in operations.CLIENTS:
            scored = rc == 0 and fl_rc == 0 and (d / "fl" / "operations.parquet").exists()
            res, mism = operations.score(d) if scored else (
                {"client": name, "requests": 0, "operations": 0, "right": 0, "attempts": 0, "records": 0,
                 "stray": 0, "pass": False},
                [f"{name}: not scored (driver rc={rc}, faultline rc={fl_rc}; see {d}/driver.log, faultline.log)"])
            res["kind"] = "operations"
            results.append(res)
            allm.extend(mism)
            continue
        if rc != 0 or fl_rc != 0 or not (d / "fl" / "records.parquet").exists():
            allm.append(f"{name}: not scored (driver rc={rc}, faultline rc={fl_rc}; see {d}/driver.log, faultline.log)")
            results.append(
                {"client": name, "calls": 0, "records": 0, "stray": 0, "one": 0.0, "provider": 0.0, "status": 0.0,
                 "status_n": 0, "class_ev": 0.0, "class_ev_n": 0, "class_all": 0.0, "quarantined": -1, "pass": False}
            )
            continue
        res, mism = score.score_client(d / "truth.jsonl", d / "fl", d)
        results.append(res)
        allm.extend(mism)
    (out_root / "mismatches.txt").write_text("".join(m + "\n" for m in allm))
    for r in results:
        r["held_out"] = r["client"] in HELD_OUT
    (out_root / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    ops = [r for r in results if r.get("kind") == "operations"]
    held = [r for r in results if r["held_out"] and r.get("kind") != "operations"]
    gated = [r for r in results if not r["held_out"] and r.get("kind") != "operations"]
    parts = []
    if gated:
        parts.append(score.table(gated))
    if held:
        parts.append("Held-out configs (added after faultline's fixes, and at the bar on their first run):\n\n"
                     + score.table(held))
    if ops:
        parts.append("Operations (a request and its retries and fallbacks, grouped):\n\n" + operations.table(ops))
    tbl = "\n\n".join(parts)
    (out_root / "table.md").write_text(tbl + "\n")
    print(f"scored in {time.time() - t_score:.1f}s; total {time.time() - t_all:.1f}s")
    print(f"{len(allm)} mismatches (all in {out_root / 'mismatches.txt'}); the first 15:")
    for m in allm[:15]:
        print("  " + m)
    print()
    print(tbl)
    if a.capture_fixtures:
        import capture_fixtures

        capture_fixtures.capture(out_root, [n for n, *_ in rows])  # leaves the held-out configs out
    passed = sum(1 for r in results if r["pass"])
    print(f"clients: {passed} passed, {len(results) - passed} failed")
    sys.exit(0 if passed == len(results) else 1)


if __name__ == "__main__":
    main()
