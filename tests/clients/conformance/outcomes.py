"""The catalogue of outcomes the mock provider can serve, shared by the mock and
the client drivers.

An outcome is chosen per request by a marker in the prompt text,
`[[fl:OUTCOME_ID]]`. Each outcome says what the mock sends (status, headers,
body or a delay) and what a correct analysis of the resulting log line must
say (`expected_class`, in the vocabulary of
`fixtures/ground-truth/provider-errors.jsonl`, or `ok`).

Error bodies come from that corpus (provider openai, anthropic, google_gemini
or deepseek). A corpus body that is a dict is served as JSON. A string body is
served when it can be turned back into the provider's JSON:

* an SDK `str()` rendering `... Error code: 401 - {python dict repr}`
  (`ast.literal_eval` of the part after ` - `),
* google-genai's rendering `429 RESOURCE_EXHAUSTED. {python dict repr}`,
* a string that is itself JSON, or that holds an embedded JSON object with an
  `error` key (`[API Error: got status: INTERNAL. {"error": ...}]`).

Two corpus strings are raw non-JSON bodies that providers really send (an
Envoy text 503 from Anthropic, a Cloudflare HTML 524 from OpenAI): they are
served as text. Every other string is skipped (`skipped_corpus()` lists them).

A few classes the corpus has only as unparseable strings are added as
`synthetic` outcomes: the corpus message put in the provider's usual body
shape (documented per entry in `SYNTHETIC`).
"""

from __future__ import annotations

import ast
import json
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[3]
CORPUS = ROOT / "fixtures" / "ground-truth" / "provider-errors.jsonl"

FAMILIES = ("openai", "anthropic", "gemini", "deepseek")
CORPUS_PROVIDER = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google_gemini": "gemini",
    "deepseek": "deepseek",
}
MODELS = {
    "openai": "gpt-4o-mini",
    "anthropic": "claude-sonnet-4-20250514",
    "gemini": "gemini-2.0-flash",
    "deepseek": "deepseek-chat",
}

# Outcome ids end up in logs (prompts are logged by several clients): keep
# them free of free-standing 3-digit numbers, which score.py would take for an
# HTTP status stated in the line.
MARKER_RE = re.compile(rb"\[\[fl:([A-Za-z0-9_.-]+)\]\]")
CLIENT_RE = re.compile(rb"\[\[flc:([A-Za-z0-9_.-]+)\]\]")

# Client timeout (s) used by every driver, and how long the mock sleeps on a
# `timeout` outcome before answering (the client has given up by then).
CLIENT_TIMEOUT_S = 1.0
SLOW_SLEEP_S = 2.0

# Corpus lines whose string body is a raw (non-JSON) body as the provider sends it.
RAW_TEXT = {
    87: "text/plain",  # anthropic 503 Envoy "upstream connect error ..."
    90: "text/html",  # openai 524 Cloudflare timeout page
}

# Hand-picked evidence where the message start is not distinctive enough (or
# holds something a client may redact).
EVIDENCE_OVERRIDE = {
    3: "Incorrect API key provided",
    6: "Incorrect API key provided",
    5: "Authentication Fails, Your api key",
    7: "Authentication Fails, Your api key",
    35: "max_tokens: 21333 > 4096",
    59: None,
    87: "upstream connect error",
    90: "524: A timeout occurred",
}

SYNTHETIC = [
    # (id, family, status, body, headers, expected_class, evidence, source)
    (
        "openai-s63-ratelimit",
        "openai",
        429,
        {
            "error": {
                "message": "Rate limit reached for gpt-4.1 in organization org-66tr5xhH5yhaqZAy6PAIy1Xi on tokens per min (TPM): Limit 30000, Used 18928, Requested 11159. Please try again in 174ms. Visit https://platform.openai.com/account/rate-limits to learn more.",
                "type": "tokens",
                "param": None,
                "code": "rate_limit_exceeded",
            }
        },
        {
            "x-ratelimit-limit-tokens": "30000",
            "x-ratelimit-remaining-tokens": "11072",
            "x-ratelimit-reset-tokens": "174ms",
        },
        "rate_limit",
        "Rate limit reached for gpt-4.1",
        "synthetic: message of corpus line 63 in the OpenAI error body shape",
    ),
    (
        "openai-s11-missingkey",
        "openai",
        401,
        {
            "error": {
                "message": "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        },
        None,
        "auth_missing_key",
        "You didnt provide an API key",
        "synthetic: message of corpus line 11 in the OpenAI error body shape",
    ),
    (
        "openai-s-overloaded",
        "openai",
        503,
        {
            "error": {
                "message": "The server is overloaded or not ready yet.",
                "type": "server_error",
                "param": None,
                "code": None,
            }
        },
        None,
        "overloaded",
        "The server is overloaded or not ready yet",
        "synthetic: OpenAI's 503 body (the corpus has no OpenAI 503)",
    ),
    (
        "deepseek-s09-missingkey",
        "deepseek",
        401,
        {
            "error": {
                "message": "Authentication Fails, Your api key: ****null is invalid",
                "type": "authentication_error",
                "param": None,
                "code": "invalid_request_error",
            }
        },
        None,
        "auth_missing_key",
        "Your api key: ****null is invalid",
        "synthetic: message of corpus line 9 in DeepSeek's body shape (corpus lines 1, 5, 7)",
    ),
    (
        "deepseek-s27-balance",
        "deepseek",
        402,
        {
            "error": {
                "message": "Insufficient Balance",
                "type": "unknown_error",
                "param": None,
                "code": "invalid_request_error",
            }
        },
        None,
        "insufficient_balance",
        "Insufficient Balance",
        "synthetic: message of corpus line 27 in DeepSeek's body shape",
    ),
    (
        "deepseek-s38-maxtokens",
        "deepseek",
        400,
        {
            "error": {
                "message": "Invalid max_tokens value, the valid range of max_tokens is [1, 8192]",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_request_error",
            }
        },
        None,
        "max_tokens_exceeded",
        "Invalid max_tokens value",
        "synthetic: message of corpus line 38 in DeepSeek's body shape",
    ),
]

# Corpus line 69 (anthropic 429) has headers but no body: serve its headers
# with the body of corpus line 76 (also an anthropic 429 rate_limit_error).
HEADERS_ONLY_BODY_FROM = {69: 76}

DROP_HEADERS = {"date", "content-length", "connection", "content-type", "transfer-encoding", "server"}


def _literal_dict(text: str):
    """A Python dict literal's value, or None."""
    try:
        v = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None
    return v if isinstance(v, dict) else None


def _find_dict_repr(s: str):
    """A dict from an SDK rendering, or None."""
    # `Error code: 401 - {...}` (openai/anthropic SDK str(), possibly prefixed by the exception name)
    m = re.search(r"Error code: \d{3} - (\{.*\})\s*$", s, re.S)
    if m:
        return _literal_dict(m.group(1))
    # google-genai: `429 RESOURCE_EXHAUSTED. {...}`
    m = re.match(r"^\d{3} [A-Z_]+\. (\{.*\})\s*$", s, re.S)
    if m:
        return _literal_dict(m.group(1))
    # a string that is JSON
    try:
        v = json.loads(s)
        if isinstance(v, dict):
            return v
    except ValueError:
        pass
    # an embedded JSON object with an `error` key
    i = s.find('{"error"')
    if i >= 0:
        j = s.rfind("}")
        try:
            v = json.loads(s[i : j + 1])
            if isinstance(v, dict):
                return v
        except ValueError:
            return None
    return None


def message_of(body) -> str | None:
    if isinstance(body, str):
        return body
    if not isinstance(body, dict):
        return None
    err = body.get("error")
    if isinstance(err, dict) and isinstance(err.get("message"), str):
        return err["message"]
    if isinstance(body.get("message"), str):
        return body["message"]
    return None


def _evidence_from(msg: str | None) -> str | None:
    if not msg:
        return None
    # the first words, up to ~36 characters, without quotes/backslashes
    words = []
    n = 0
    for w in msg.split():
        if "*" in w or w.startswith("sk-"):
            break
        if n + len(w) > 36 and words:
            break
        words.append(w)
        n += len(w) + 1
    ev = " ".join(words)
    return strip_ev(ev) or None


def strip_ev(s: str) -> str:
    return s.replace("\\", "").replace('"', "").replace("'", "")


def _request_id_from(body):
    if isinstance(body, dict) and isinstance(body.get("request_id"), str):
        return body["request_id"]
    return None


def load_corpus():
    rows = []
    with open(CORPUS, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if line.strip():
                rows.append((i, json.loads(line)))
    return rows


def _corpus_outcomes():
    rows = load_corpus()
    by_line = dict(rows)
    out, skipped = [], []
    for lineno, d in rows:
        fam = CORPUS_PROVIDER.get(d["provider"])
        if fam is None:
            continue
        body = d["body"]
        content_type = "application/json"
        src_line = lineno
        if body is None and lineno in HEADERS_ONLY_BODY_FROM:
            src_line = HEADERS_ONLY_BODY_FROM[lineno]
            body = by_line[src_line]["body"]
        if isinstance(body, str):
            if lineno in RAW_TEXT:
                content_type = RAW_TEXT[lineno]
            else:
                parsed = _find_dict_repr(body)
                if parsed is None:
                    skipped.append((lineno, d["provider"], d["http_status"], d["expected_class"], body[:80]))
                    continue
                body = parsed
        if body is None:
            skipped.append((lineno, d["provider"], d["http_status"], d["expected_class"], None))
            continue
        headers = {}
        for k, v in (d.get("headers") or {}).items():
            if k.lower() not in DROP_HEADERS:
                headers[k] = str(v)
        if lineno in EVIDENCE_OVERRIDE:
            ev = EVIDENCE_OVERRIDE[lineno]
            ev = strip_ev(ev) if ev else None
        else:
            ev = _evidence_from(message_of(body))
        out.append(
            {
                "id": f"{fam}-c{lineno:02d}",
                "family": fam,
                "kind": "error",
                "status": int(d["http_status"]),
                "body": body,
                "content_type": content_type,
                "headers": headers,
                "request_id": _request_id_from(body),
                "expected_class": d["expected_class"],
                "evidence": ev,
                "source": f"corpus line {lineno}"
                + (f" (body of line {src_line})" if src_line != lineno else "")
                + f": {d.get('source')}",
            }
        )
    return out, skipped


def skipped_corpus():
    return _corpus_outcomes()[1]


def _synthetic_outcomes():
    out = []
    for oid, fam, status, body, headers, cls, ev, source in SYNTHETIC:
        out.append(
            {
                "id": oid,
                "family": fam,
                "kind": "error",
                "status": status,
                "body": body,
                "content_type": "application/json",
                "headers": dict(headers or {}),
                "request_id": None,
                "expected_class": cls,
                "evidence": strip_ev(ev) if ev else None,
                "source": source,
            }
        )
    return out


def _special(fam):
    out = []
    for n in range(1, 6):
        out.append(
            dict(id=f"{fam}-ok{n}", family=fam, kind="success", status=200, expected_class="ok", evidence=None)
        )
    out.append(
        dict(id=f"{fam}-timeout", family=fam, kind="slow", status=None, expected_class="timeout", evidence=None)
    )
    out.append(
        dict(id=f"{fam}-empty", family=fam, kind="empty", status=200, expected_class="empty_response", evidence=None)
    )
    if fam == "gemini":
        out.append(
            dict(
                id="gemini-empty-noparts",
                family=fam,
                kind="empty_noparts",
                status=200,
                expected_class="empty_response",
                evidence=None,
            )
        )
    for o in out:
        o.setdefault("headers", {})
        o.setdefault("request_id", None)
        o.setdefault("source", "mock")
    return out


_CATALOG = None


def catalog() -> dict:
    """id -> outcome, for every family."""
    global _CATALOG
    if _CATALOG is None:
        allo = _corpus_outcomes()[0] + _synthetic_outcomes()
        for fam in FAMILIES:
            allo += _special(fam)
        _CATALOG = {o["id"]: o for o in allo}
    return _CATALOG


def plan(family: str) -> list[dict]:
    """The outcomes a driver walks through for one provider family, in order:
    successes spread between the errors, a timeout and the empty 200s."""
    cat = catalog()
    errors = [o for o in cat.values() if o["family"] == family and o["kind"] == "error"]
    special = [o for o in cat.values() if o["family"] == family and o["kind"] != "error"]
    oks = [o for o in special if o["kind"] == "success"]
    others = [o for o in special if o["kind"] not in ("success",)]
    seq = [oks[0]]
    rest = errors + others
    step = max(1, len(rest) // (len(oks) - 1))
    k = 1
    for i, o in enumerate(rest):
        seq.append(o)
        if (i + 1) % step == 0 and k < len(oks):
            seq.append(oks[k])
            k += 1
    seq.extend(oks[k:])
    return seq


# Scripted operations (a request and its retries or fallbacks), for the
# drivers of operations.py. The marker `op-<kind>-<n>` says what each
# attempt gets:
#   op-retry<k>-<status>-<n>: the first k attempts fail with <status>, then
#                             success;
#   op-fallback-<n>:          every openai attempt fails with 429, any other
#                             family answers;
#   op-fail-<status>-<n>:     every attempt fails with <status>.
# Bodies are the providers' own (OpenAI's 500 and 429 texts, Anthropic's 529).
OPERATION_BODIES = {
    500: {"error": {"message": "The server had an error while processing your request. Sorry about that!",
                    "type": "server_error", "param": None, "code": None}},
    429: {"error": {"message": "Rate limit reached for gpt-4o-mini in organization org-conformance on "
                               "requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.",
                    "type": "requests", "param": None, "code": "rate_limit_exceeded"}},
    529: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
}


def operation_attempt(oid: str, family: str, seen: int):
    """What attempt number `seen` (from 0) of scripted operation `oid` gets:
    None for a success, else (status, body)."""
    parts = oid.split("-")
    kind = parts[1]
    if kind.startswith("retry"):
        k, status = int(kind.removeprefix("retry")), int(parts[2])
        return (status, OPERATION_BODIES[status]) if seen < k else None
    if kind == "fallback":
        return (429, OPERATION_BODIES[429]) if family == "openai" else None
    if kind == "fail":
        status = int(parts[2])
        return status, OPERATION_BODIES[status]
    raise ValueError(f"unknown scripted operation {oid}")


def marker(oid: str) -> str:
    return f"[[fl:{oid}]]"


if __name__ == "__main__":
    for fam in FAMILIES:
        p = plan(fam)
        print(f"{fam}: {len(p)} calls")
        for o in p:
            print(f"  {o['id']:28} {o['kind']:13} {str(o['status']):5} {o['expected_class']:24} {o['evidence']!r}")
    print("skipped corpus lines:")
    for s in skipped_corpus():
        print("  ", s)
