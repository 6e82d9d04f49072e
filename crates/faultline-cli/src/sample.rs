//! `faultline sample`: a realistic, seeded day of LLM API call logs with
//! injected incidents of every pattern, and the ground truth of them.
//!
//! Eleven services call four providers through three log formats (flat events,
//! request/response envelopes, LiteLLM payloads) with a daily load curve and
//! sporadic isolated errors that must not become incidents. The incidents are
//! written into that traffic at fixed times; their intensity scales with the
//! traffic so that detection holds at any `--size`. The same seed and size
//! give byte-identical files on every machine (the generator is a
//! SplitMix64 stream, not a library whose algorithm may change).

use std::fmt::Write as _;

use faultline_ingest::Fingerprinter;

use faultline_engine::files::rfc3339;
use serde_json::{json, Map, Value};

/// 2026-03-10T00:00:00Z: the sample day.
pub(crate) const DAY_START_MS: i64 = 1_773_100_800_000;
const MINUTE: i64 = 60_000;

/// Bytes written per unit of scale (measured; `--size` divides by it).
const BYTES_PER_SCALE: f64 = 6.19e7;

/// The smallest day in which every injected incident shows.
pub(crate) const MIN_BYTES: u64 = 4 << 20;

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    pub seed: u64,
    /// Approximate total size of the logs, in bytes.
    pub bytes: u64,
}

/// One injected incident, as the detectors should report it.
#[derive(Debug, Clone)]
pub(crate) struct Truth {
    pub pattern: &'static str,
    pub provider: &'static str,
    pub model: Option<&'static str>,
    pub service: Option<&'static str>,
    pub key_fp: Option<String>,
    pub start_ms: i64,
    pub end_ms: i64,
    pub what: &'static str,
}

impl Truth {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "pattern": self.pattern,
            "provider": self.provider,
            "model": self.model,
            "service": self.service,
            "key_fp": self.key_fp,
            "start": rfc3339(self.start_ms),
            "end": rfc3339(self.end_ms),
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "what": self.what,
        })
    }
}

/// The operations written into the day: every request and its attempts, as
/// the generator made them.
#[derive(Debug, Default, Clone)]
pub(crate) struct OperationsTruth {
    pub operations: u64,
    pub failed: u64,
    pub attempts: u64,
    pub retried: u64,
    pub fell_back: u64,
    /// Requests of more than one attempt: (request id of the first
    /// attempt, service, attempts, succeeded, fell back).
    pub multi: Vec<(String, &'static str, u64, bool, bool)>,
    /// The request being written.
    open: Option<(String, &'static str, u64, bool, bool)>,
}

impl OperationsTruth {
    /// An attempt: the first of a request, or the next one of the last.
    fn attempt(
        &mut self,
        request_id: &str,
        service: &'static str,
        failed: bool,
        again: bool,
        fallback: bool,
    ) {
        self.attempts += 1;
        if let (Some(open), true) = (&mut self.open, again) {
            open.2 += 1;
            open.3 = !failed;
            open.4 |= fallback;
        } else {
            self.close();
            self.open = Some((request_id.to_owned(), service, 1, !failed, false));
        }
    }

    fn close(&mut self) {
        if let Some(open) = self.open.take() {
            self.operations += 1;
            self.failed += u64::from(!open.3);
            if open.2 > 1 {
                self.retried += 1;
                self.fell_back += u64::from(open.4);
                self.multi.push(open);
            }
        }
    }

    fn add(&mut self, mut other: OperationsTruth) {
        other.close();
        self.operations += other.operations;
        self.failed += other.failed;
        self.attempts += other.attempts;
        self.retried += other.retried;
        self.fell_back += other.fell_back;
        self.multi.extend(other.multi);
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({
            "operations": self.operations,
            "failed": self.failed,
            "attempts": self.attempts,
            "retried": self.retried,
            "fell_back": self.fell_back,
            "effective_failure_rate": self.failed as f64 / self.operations.max(1) as f64,
            "multi_attempt": self.multi.iter().map(|(id, service, attempts, ok, fallback)| json!({
                "request_id": id, "service": service, "attempts": attempts, "succeeded": ok, "fallback": fallback,
            })).collect::<Vec<_>>(),
        })
    }
}

/// The generated day: log files (name, bytes) and the injected incidents.
#[derive(Debug)]
pub(crate) struct Sample {
    pub files: Vec<(String, Vec<u8>)>,
    pub truth: Vec<Truth>,
    /// The requests and their attempts.
    pub operations: OperationsTruth,
    /// Lines written that are not valid records (they land in the quarantine).
    pub bad_lines: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fmt {
    Flat,
    Envelope,
    LiteLlm,
}

#[derive(Debug)]
struct Service {
    name: &'static str,
    fmt: Fmt,
    provider: &'static str,
    base_url: &'static str,
    /// Models and their share of calls.
    models: &'static [(&'static str, f64)],
    /// The key id logged (an id, not a secret).
    key: &'static str,
    /// Calls per minute at the daily peak, at scale 1.
    per_min: f64,
    /// Active minutes of the day, [from, to).
    active: (i64, i64),
    /// Median prompt size, tokens.
    prompt: f64,
    /// Median latency, ms.
    latency: f64,
}

const fn hm(h: i64, m: i64) -> i64 {
    h * 60 + m
}

const SERVICES: &[Service] = &[
    Service {
        name: "checkout-api",
        fmt: Fmt::Flat,
        provider: "openai",
        base_url: "https://api.openai.com/v1",
        models: &[("gpt-4o-mini", 1.0)],
        key: "openai-checkout-prod",
        per_min: 40.0,
        active: (0, 1440),
        prompt: 1800.0,
        latency: 900.0,
    },
    Service {
        name: "support-bot",
        fmt: Fmt::Envelope,
        provider: "anthropic",
        base_url: "https://api.anthropic.com/v1/messages",
        models: &[("claude-sonnet-4-5", 1.0)],
        key: "anthropic-prod-2025-q4",
        per_min: 25.0,
        active: (0, 1440),
        prompt: 3500.0,
        latency: 2400.0,
    },
    Service {
        name: "support-worker",
        fmt: Fmt::Flat,
        provider: "anthropic",
        base_url: "https://api.anthropic.com/v1/messages",
        models: &[("claude-sonnet-4-5", 1.0)],
        key: "anthropic-prod-2025-q4",
        per_min: 8.0,
        active: (0, 1440),
        prompt: 2500.0,
        latency: 2100.0,
    },
    Service {
        name: "research-agent",
        fmt: Fmt::LiteLlm,
        provider: "anthropic",
        base_url: "https://api.anthropic.com/v1/messages",
        models: &[("claude-opus-4-1", 0.7), ("claude-sonnet-4-5", 0.3)],
        key: "gw-research",
        per_min: 14.0,
        active: (0, 1440),
        prompt: 9000.0,
        latency: 6000.0,
    },
    Service {
        name: "doc-summarizer",
        fmt: Fmt::Flat,
        provider: "gemini",
        base_url: "https://generativelanguage.googleapis.com/v1beta",
        models: &[("gemini-2.5-pro", 1.0)],
        key: "gemini-docs",
        per_min: 12.0,
        active: (hm(6, 0), hm(22, 0)),
        prompt: 6000.0,
        latency: 4000.0,
    },
    Service {
        name: "chat-lite",
        fmt: Fmt::Flat,
        provider: "deepseek",
        base_url: "https://api.deepseek.com",
        models: &[("deepseek-chat", 1.0)],
        key: "deepseek-chat-prod",
        per_min: 30.0,
        active: (0, 1440),
        prompt: 1200.0,
        latency: 1500.0,
    },
    Service {
        name: "batch-etl",
        fmt: Fmt::Envelope,
        provider: "openai",
        base_url: "https://api.openai.com/v1/chat/completions",
        models: &[("gpt-4.1", 1.0)],
        key: "openai-batch",
        per_min: 30.0,
        active: (hm(2, 0), hm(5, 0)),
        prompt: 4000.0,
        latency: 3000.0,
    },
    Service {
        name: "eval-runner",
        fmt: Fmt::Flat,
        provider: "openai",
        base_url: "https://api.openai.com/v1",
        models: &[("gpt-4o", 1.0)],
        key: "openai-eval-typo",
        per_min: 6.0,
        active: (hm(14, 0), hm(14, 20)),
        prompt: 2000.0,
        latency: 1200.0,
    },
    Service {
        name: "geo-assistant",
        fmt: Fmt::LiteLlm,
        provider: "openai",
        base_url: "https://api.openai.com/v1",
        models: &[("gpt-4o-mini", 1.0)],
        key: "gw-geo",
        per_min: 10.0,
        active: (0, 1440),
        prompt: 900.0,
        latency: 800.0,
    },
    Service {
        name: "summarizer-v2",
        fmt: Fmt::Flat,
        provider: "openai",
        base_url: "https://api.openai.com/v1",
        models: &[("gpt-4o", 1.0)],
        key: "openai-summarizer",
        per_min: 20.0,
        active: (0, 1440),
        prompt: 5000.0,
        latency: 2500.0,
    },
    Service {
        name: "legacy-proxy",
        fmt: Fmt::Flat,
        provider: "openai",
        base_url: "https://api.openai.com/v1",
        models: &[("gpt-4o-mini", 1.0)],
        key: "legacy-proxy",
        per_min: 3.0,
        active: (0, 1440),
        prompt: 700.0,
        latency: 700.0,
    },
];

/// A provider error as the provider sends it.
#[derive(Debug, Clone, Copy)]
struct Failure {
    status: Option<u16>,
    kind: &'static str,
    code: Option<&'static str>,
    message: &'static str,
}

const fn fail(
    status: u16,
    kind: &'static str,
    code: Option<&'static str>,
    message: &'static str,
) -> Failure {
    Failure {
        status: Some(status),
        kind,
        code,
        message,
    }
}

const TIMEOUT: Failure = Failure {
    status: None,
    kind: "ReadTimeout",
    code: None,
    message: "Request timed out after 60 s (read timeout)",
};
const RPM_429: Failure = fail(429, "requests", Some("rate_limit_exceeded"), "Rate limit reached for gpt-4o-mini in organization org-sample on requests per min (RPM): Limit 500, Used 500, Requested 1. Please try again in 120ms.");
const QUOTA_429: Failure = fail(
    429,
    "insufficient_quota",
    Some("insufficient_quota"),
    "You exceeded your current quota, please check your plan and billing details.",
);
const ANTHROPIC_401: Failure = fail(401, "authentication_error", None, "invalid x-api-key");
const OPENAI_401: Failure = fail(401, "invalid_request_error", Some("invalid_api_key"), "Incorrect API key provided: open****typo. You can find your API key at https://platform.openai.com/account/api-keys.");
// Anthropic's 429 body (https://docs.anthropic.com/en/api/errors, as quoted
// in anthropic-sdk-python issues).
const ANTHROPIC_429: Failure = fail(429, "rate_limit_error", None, "Number of request tokens has exceeded your per-minute rate limit (https://docs.anthropic.com/en/api/rate-limits); see the response headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later. You may also contact sales at https://www.anthropic.com/contact-sales to discuss your options for a rate limit increase.");
const OVERLOADED_529: Failure = fail(529, "overloaded_error", None, "Overloaded");
const SERVER_500: Failure = fail(500, "server_error", None, "The server had an error processing your request. Sorry about that! You can retry your request.");
const DEEPSEEK_503: Failure = fail(
    503,
    "service_unavailable_error",
    None,
    "Service Unavailable",
);
const REGION_403: Failure = fail(
    403,
    "request_forbidden",
    Some("unsupported_country_region_territory"),
    "Country, region, or territory not supported",
);
const ROLE_400: Failure = fail(
    400,
    "invalid_request_error",
    None,
    "Invalid value for 'role': 'developer' is not supported with this model.",
);
const CONTEXT_400: Failure = fail(400, "invalid_request_error", Some("context_length_exceeded"), "This model's maximum context length is 128000 tokens. However, your messages resulted in 131234 tokens. Please reduce the length of the messages.");

/// Background failures: isolated, at a low rate everywhere, never an incident.
const BACKGROUND: &[(f64, Failure)] = &[
    (0.0006, RPM_429),
    (0.0004, SERVER_500),
    (0.0003, DEEPSEEK_503),
    (0.0003, TIMEOUT),
    (0.0003, CONTEXT_400),
];

#[derive(Debug, Clone, Copy)]
enum Outcome {
    Ok,
    Empty,
    Fail(Failure),
}

/// SplitMix64: small, fast, and fixed forever.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Log-normal around `median` (sigma 0.6).
    fn around(&mut self, median: f64) -> f64 {
        let (u1, u2) = (self.unit().max(1e-12), self.unit());
        let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        median * (0.6 * normal).exp()
    }
}

/// Daily load curve: quiet nights, a peak in the early afternoon.
fn diurnal(minute: i64) -> f64 {
    let hours = minute as f64 / 60.0;
    let phase = (hours - 14.0) / 24.0 * std::f64::consts::TAU;
    0.3 + 0.7 * (0.5 + 0.5 * phase.cos())
}

/// Generates the day.
pub(crate) fn generate(spec: Spec) -> Sample {
    let scale = (spec.bytes as f64 / BYTES_PER_SCALE).max(0.05);
    let fingerprint = Fingerprinter::default();
    let mut files = Vec::new();
    let mut bad_lines = 0;
    let mut operations = OperationsTruth::default();
    for (index, service) in SERVICES.iter().enumerate() {
        let mut rng = Rng(spec.seed ^ (0x5eed_0000 + index as u64).wrapping_mul(0x9e37_79b9));
        let mut out = Vec::new();
        let mut writer = Writer {
            service,
            out: &mut out,
            broken: 0,
            operations: OperationsTruth::default(),
        };
        generate_service(service, scale, &mut rng, &mut writer);
        bad_lines += writer.broken;
        operations.add(writer.operations);
        files.push((format!("{}.jsonl", service.name), out));
    }
    Sample {
        files,
        truth: truth(&fingerprint),
        operations,
        bad_lines,
    }
}

fn generate_service(service: &Service, scale: f64, rng: &mut Rng, writer: &mut Writer<'_>) {
    for minute in service.active.0..service.active.1 {
        let mut rate =
            service.per_min * scale * diurnal(minute) * load_factor(service.name, minute);
        if incident_window(service.name, minute) {
            // An incident needs calls to show in: at least ten a minute.
            rate = rate.max(10.0);
        }
        let calls = (rate + rng.unit()).floor() as u64;
        let mut offsets: Vec<i64> = (0..calls).map(|_| rng.below(60_000) as i64).collect();
        offsets.sort_unstable();
        for offset in offsets {
            let ts = DAY_START_MS + minute * MINUTE + offset;
            let model = pick_model(service, rng);
            let call = Call::new(service, model, ts, rng);
            let outcome = outcome(service, &call, minute, rate, scale, rng);
            writer.call(&call, outcome, 0, rng);
            if let (Outcome::Fail(f), "research-agent") = (outcome, service.name) {
                // The gateway falls back from Opus to Sonnet when Opus is
                // overloaded: the same request, the same trace.
                if f.status == Some(529) && call.model == "claude-opus-4-1" {
                    let mut fallback = call.clone();
                    fallback.model = "claude-sonnet-4-5";
                    fallback.ts += 400;
                    fallback.first_id = Some(call.request_id.clone());
                    fallback.request_id.push_str("-fb");
                    writer.fallback(&fallback, Outcome::Ok, rng);
                }
            }
            if let (Outcome::Fail(f), "summarizer-v2") = (outcome, service.name) {
                // The storm's clients retry the same request up to 5 times.
                if f.status == Some(500) && in_window(minute, hm(17, 0), hm(17, 8)) {
                    let mut retry = call.clone();
                    for attempt in 1..=5u16 {
                        retry.ts += 1500 * i64::from(attempt);
                        let again = if rng.chance(0.55) {
                            Outcome::Fail(SERVER_500)
                        } else {
                            Outcome::Ok
                        };
                        writer.call(&retry, again, attempt, rng);
                        if matches!(again, Outcome::Ok) {
                            break;
                        }
                    }
                }
            }
        }
        extras(service, minute, rng, writer);
    }
}

/// Load multipliers: the checkout flash sale drives the 429s.
fn load_factor(service: &str, minute: i64) -> f64 {
    match service {
        "checkout-api" if in_window(minute, hm(12, 0), hm(12, 40)) => 2.6,
        _ => 1.0,
    }
}

/// The windows of the incidents that are not about load.
fn incident_window(service: &str, minute: i64) -> bool {
    match service {
        "batch-etl" => in_window(minute, hm(3, 10), hm(3, 40)),
        "support-worker" => in_window(minute, hm(9, 0), hm(10, 30)),
        "eval-runner" => true,
        "research-agent" => in_window(minute, hm(15, 0), hm(15, 12)),
        "summarizer-v2" => in_window(minute, hm(17, 0), hm(17, 8)),
        "chat-lite" => {
            in_window(minute, hm(21, 0), hm(21, 6)) || in_window(minute, hm(10, 0), hm(11, 0))
        }
        "geo-assistant" => in_window(minute, hm(13, 0), hm(13, 30)),
        "checkout-api" => in_window(minute, hm(16, 0), hm(16, 30)),
        _ => false,
    }
}

fn in_window(minute: i64, from: i64, to: i64) -> bool {
    (from..to).contains(&minute)
}

/// What happens to one call: the injected incidents first, then background noise.
fn outcome(
    service: &Service,
    call: &Call,
    minute: i64,
    rate: f64,
    scale: f64,
    rng: &mut Rng,
) -> Outcome {
    let injected = match service.name {
        "checkout-api" if in_window(minute, hm(12, 0), hm(12, 40)) => {
            // The limit sits at 1.6x the normal afternoon load.
            let knee = service.per_min * scale * diurnal(minute) * 1.6;
            rng.chance(1.0 - knee / rate).then_some(RPM_429)
        }
        "checkout-api" if in_window(minute, hm(16, 0), hm(16, 30)) => {
            rng.chance(0.2).then_some(ROLE_400)
        }
        "batch-etl" if in_window(minute, hm(3, 10), hm(3, 40)) => Some(QUOTA_429),
        "support-worker" if in_window(minute, hm(9, 0), hm(10, 30)) => Some(ANTHROPIC_401),
        "eval-runner" => Some(OPENAI_401),
        "doc-summarizer" if call.prompt_tokens >= 50_000 => rng.chance(0.45).then_some(TIMEOUT),
        "research-agent"
            if call.model == "claude-opus-4-1" && in_window(minute, hm(15, 0), hm(15, 12)) =>
        {
            rng.chance(0.6).then_some(OVERLOADED_529)
        }
        "summarizer-v2" if in_window(minute, hm(17, 0), hm(17, 8)) => {
            rng.chance(0.5).then_some(SERVER_500)
        }
        "chat-lite" if in_window(minute, hm(21, 0), hm(21, 6)) => Some(DEEPSEEK_503),
        "chat-lite" if in_window(minute, hm(10, 0), hm(11, 0)) && rng.chance(0.1) => {
            return Outcome::Empty
        }
        "geo-assistant" if in_window(minute, hm(13, 0), hm(13, 30)) => {
            rng.chance(0.4).then_some(REGION_403)
        }
        _ => None,
    };
    if let Some(failure) = injected {
        return Outcome::Fail(failure);
    }
    let mut roll = rng.unit();
    for (p, failure) in BACKGROUND {
        if roll < *p {
            return Outcome::Fail(*failure);
        }
        roll -= p;
    }
    Outcome::Ok
}

/// Calls outside the regular flow: the near misses and the leaked key.
fn extras(service: &Service, minute: i64, rng: &mut Rng, writer: &mut Writer<'_>) {
    let base = DAY_START_MS + minute * MINUTE;
    match (service.name, minute) {
        // A 12-second 529 blip at 05:00: not persistent overload.
        ("research-agent", m) if m == hm(5, 0) => {
            for offset in [0, 5_000, 12_000] {
                let mut call = Call::new(service, "claude-opus-4-1", base + offset, rng);
                call.request_id.push_str("-blip");
                writer.call(&call, Outcome::Fail(OVERLOADED_529), 0, rng);
            }
        }
        // support-worker's client retries a 429 300 ms after it, without
        // backing off: one lone 429 every half hour (no rate-limit
        // incident), 43 requests in all (none near the key rotation).
        ("support-worker", m) if m % 30 == 15 && !in_window(m, hm(8, 30), hm(11, 0)) => {
            let call = Call::new(service, "claude-sonnet-4-5", base + 10_000, rng);
            writer.call(&call, Outcome::Fail(ANTHROPIC_429), 0, rng);
            let mut retry = call.clone();
            // The failed attempt's logged latency is an eighth of the call's.
            retry.ts += (call.latency_ms / 8.0).round() as i64 + 300;
            writer.call(&retry, Outcome::Ok, 1, rng);
        }
        // A 20-second 503 blip at 07:30: not an outage.
        ("chat-lite", m) if m == hm(7, 30) => {
            for offset in [0, 9_000, 20_000] {
                let call = Call::new(service, "deepseek-chat", base + offset, rng);
                writer.call(&call, Outcome::Fail(DEEPSEEK_503), 0, rng);
            }
        }
        // A debug flag logs the raw key for ten minutes.
        ("legacy-proxy", m) if in_window(m, hm(18, 0), hm(18, 10)) => {
            let mut call = Call::new(service, "gpt-4o-mini", base + 30_000, rng);
            let mut key = String::from("sk-proj-");
            for _ in 0..40 {
                key.push(char::from(
                    b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
                        [rng.below(57) as usize],
                ));
            }
            call.leaked_key = Some(key);
            writer.call(&call, Outcome::Ok, 0, rng);
        }
        // The gateway log has a few broken lines: they go to the quarantine.
        ("research-agent", m) if m == hm(8, 0) => writer.broken(base),
        _ => {}
    }
}

fn pick_model(service: &Service, rng: &mut Rng) -> &'static str {
    let mut roll = rng.unit();
    for (model, share) in service.models {
        if roll < *share {
            return model;
        }
        roll -= share;
    }
    service.models[service.models.len() - 1].0
}

#[derive(Debug, Clone)]
struct Call {
    ts: i64,
    model: &'static str,
    request_id: String,
    key: &'static str,
    prompt_tokens: u32,
    completion_tokens: u32,
    latency_ms: f64,
    leaked_key: Option<String>,
    /// The request id of the request's first attempt, on a later one.
    first_id: Option<String>,
}

impl Call {
    fn new(service: &Service, model: &'static str, ts: i64, rng: &mut Rng) -> Call {
        let prompt_tokens = if service.name == "doc-summarizer" && rng.chance(0.08) {
            50_000 + rng.below(350_000) as u32
        } else {
            rng.around(service.prompt).clamp(20.0, 45_000.0) as u32
        };
        // Key rotation: support-bot moved to the new key at 09:00, support-worker only at 10:30.
        let rotated = match service.name {
            "support-bot" => ts >= DAY_START_MS + hm(9, 0) * MINUTE,
            "support-worker" => ts >= DAY_START_MS + hm(10, 30) * MINUTE,
            _ => false,
        };
        Call {
            ts,
            model,
            request_id: format!("req_{:016x}", rng.next()),
            key: if rotated {
                "anthropic-prod-2026-q1"
            } else {
                service.key
            },
            prompt_tokens,
            completion_tokens: rng.around(300.0).clamp(1.0, 4000.0) as u32,
            latency_ms: (rng.around(service.latency) + f64::from(prompt_tokens) * 0.02).round(),
            leaked_key: None,
            first_id: None,
        }
    }
}

struct Writer<'a> {
    service: &'a Service,
    out: &'a mut Vec<u8>,
    /// Broken lines written.
    broken: u64,
    /// The requests written, and their attempts.
    operations: OperationsTruth,
}

impl Writer<'_> {
    /// Writes a call: the first attempt of a request (`attempt` 0) or a
    /// retry of the last one.
    fn call(&mut self, call: &Call, outcome: Outcome, attempt: u16, rng: &mut Rng) {
        let failed = !matches!(outcome, Outcome::Ok);
        self.operations.attempt(
            &call.request_id,
            self.service.name,
            failed,
            attempt > 0,
            false,
        );
        self.line(call, outcome, attempt, rng);
    }

    /// Writes the next attempt of the last request, on another model.
    fn fallback(&mut self, call: &Call, outcome: Outcome, rng: &mut Rng) {
        let failed = !matches!(outcome, Outcome::Ok);
        let first = call.first_id.as_ref().unwrap_or(&call.request_id);
        self.operations
            .attempt(first, self.service.name, failed, true, true);
        self.line(call, outcome, 0, rng);
    }

    fn line(&mut self, call: &Call, outcome: Outcome, attempt: u16, rng: &mut Rng) {
        let line = match self.service.fmt {
            Fmt::Flat => self.flat(call, outcome, attempt),
            Fmt::Envelope => self.envelope(call, outcome),
            Fmt::LiteLlm => self.litellm(call, outcome, rng),
        };
        self.out.extend_from_slice(line.to_string().as_bytes());
        self.out.push(b'\n');
    }

    fn flat(&self, call: &Call, outcome: Outcome, attempt: u16) -> Value {
        let s = self.service;
        let mut m = Map::new();
        m.insert("ts".into(), json!(rfc3339(call.ts)));
        m.insert(
            "level".into(),
            json!(if matches!(outcome, Outcome::Fail(_)) {
                "error"
            } else {
                "info"
            }),
        );
        m.insert("event".into(), json!("llm_call"));
        m.insert("service".into(), json!(s.name));
        m.insert("provider".into(), json!(s.provider));
        m.insert("model".into(), json!(call.model));
        m.insert("api_base".into(), json!(s.base_url));
        match &call.leaked_key {
            Some(key) => m.insert("api_key".into(), json!(key)),
            None => m.insert("key_id".into(), json!(call.key)),
        };
        m.insert("request_id".into(), json!(call.request_id));
        m.insert("attempt".into(), json!(attempt));
        m.insert("prompt_tokens".into(), json!(call.prompt_tokens));
        match outcome {
            Outcome::Ok | Outcome::Empty => {
                m.insert("status_code".into(), json!(200));
                m.insert("completion_tokens".into(), json!(call.completion_tokens));
                m.insert("latency_ms".into(), json!(call.latency_ms));
                if matches!(outcome, Outcome::Empty) {
                    m.insert("choices".into(), json!([]));
                }
            }
            Outcome::Fail(f) => {
                if let Some(status) = f.status {
                    m.insert("status_code".into(), json!(status));
                    m.insert("latency_ms".into(), json!((call.latency_ms / 8.0).round()));
                } else {
                    m.insert("latency_ms".into(), json!(60_000));
                }
                m.insert(
                    "error".into(),
                    json!({"type": f.kind, "code": f.code, "message": f.message}),
                );
            }
        }
        Value::Object(m)
    }

    fn envelope(&self, call: &Call, outcome: Outcome) -> Value {
        let s = self.service;
        let anthropic = s.provider == "anthropic";
        let request = json!({
            "url": s.base_url,
            "headers": if anthropic { json!({"anthropic-version": "2023-06-01"}) } else { json!({"openai-organization": "org-sample"}) },
            "body": {"model": call.model, "max_tokens": 1024, "stream": false},
        });
        let (status, body) = match outcome {
            Outcome::Fail(f) if f.status.is_none() => {
                return json!({
                    "ts": rfc3339(call.ts), "service": s.name, "key_id": call.key,
                    "request": request, "error": format!("{}: {}", f.kind, f.message), "latency_ms": 60_000,
                });
            }
            Outcome::Fail(f) if anthropic => (
                f.status,
                json!({"type": "error", "error": {"type": f.kind, "message": f.message}, "request_id": call.request_id}),
            ),
            Outcome::Fail(f) => (
                f.status,
                json!({"error": {"message": f.message, "type": f.kind, "param": null, "code": f.code}}),
            ),
            Outcome::Ok | Outcome::Empty if anthropic => (
                Some(200),
                json!({"id": format!("msg_{}", &call.request_id[4..]), "type": "message", "role": "assistant", "model": call.model,
                       "content": [{"type": "text", "text": "Here is the answer."}], "stop_reason": "end_turn",
                       "usage": {"input_tokens": call.prompt_tokens, "output_tokens": call.completion_tokens}}),
            ),
            Outcome::Ok | Outcome::Empty => (
                Some(200),
                json!({"id": format!("chatcmpl-{}", &call.request_id[4..]), "object": "chat.completion", "model": call.model,
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": "Done."}, "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": call.prompt_tokens, "completion_tokens": call.completion_tokens}}),
            ),
        };
        let id_header = if anthropic {
            "request-id"
        } else {
            "x-request-id"
        };
        json!({
            "ts": rfc3339(call.ts),
            "service": s.name,
            "key_id": call.key,
            "request": request,
            "response": {"status": status, "headers": {id_header: call.request_id}, "body": body},
            "latency_ms": call.latency_ms,
        })
    }

    fn litellm(&self, call: &Call, outcome: Outcome, rng: &mut Rng) -> Value {
        let s = self.service;
        let start = call.ts as f64 / 1000.0;
        let mut m = Map::new();
        m.insert("id".into(), json!(call.request_id));
        // LiteLLM's trace id is one per request, kept over its retries and
        // fallbacks (a UUID; here made from the request's first id).
        m.insert(
            "trace_id".into(),
            json!(trace_id(call.first_id.as_ref().unwrap_or(&call.request_id))),
        );
        m.insert("call_type".into(), json!("acompletion"));
        m.insert("custom_llm_provider".into(), json!(s.provider));
        m.insert("model".into(), json!(call.model));
        m.insert("api_base".into(), json!(s.base_url));
        m.insert("startTime".into(), json!(start));
        // LiteLLM logs a hash of the virtual key, and its alias (the service).
        let metadata = json!({
            "user_api_key_hash": key_hash(call.key),
            "user_api_key_alias": s.name,
            "user_api_key_team_alias": "platform",
        });
        match outcome {
            Outcome::Ok | Outcome::Empty => {
                m.insert("status".into(), json!("success"));
                m.insert("endTime".into(), json!(start + call.latency_ms / 1000.0));
                m.insert("prompt_tokens".into(), json!(call.prompt_tokens));
                m.insert("completion_tokens".into(), json!(call.completion_tokens));
                m.insert("metadata".into(), metadata);
                m.insert("error_str".into(), Value::Null);
            }
            Outcome::Fail(f) => {
                let (class, exception) = match (f.status, s.provider) {
                    (None, _) => ("Timeout", "Timeout"),
                    (Some(529 | 500), "anthropic") => ("InternalServerError", "AnthropicException"),
                    (Some(_), "anthropic") => ("APIError", "AnthropicException"),
                    (Some(_), _) => ("APIError", "OpenAIException"),
                };
                let text = if f.status == Some(529) {
                    format!("litellm.{class}: {exception} - {{\"type\":\"error\",\"error\":{{\"type\":\"{}\",\"message\":\"{}\"}}}}", f.kind, f.message)
                } else if let Some(code) = f.code {
                    format!("litellm.{class}: {exception} - Error code: {} - {{'error': {{'message': '{}', 'type': '{}', 'code': '{code}'}}}}", f.status.unwrap_or(0), f.message, f.kind)
                } else {
                    format!("litellm.{class}: {exception} - {}", f.message)
                };
                m.insert("status".into(), json!("failure"));
                m.insert(
                    "endTime".into(),
                    json!(start + (rng.around(300.0) / 1000.0)),
                );
                m.insert("metadata".into(), metadata);
                m.insert("error_str".into(), json!(text));
                m.insert(
                    "error_information".into(),
                    json!({"error_code": f.status.map(|s| s.to_string()), "error_class": class, "llm_provider": s.provider, "error_message": text}),
                );
            }
        }
        Value::Object(m)
    }

    /// Three lines a real gateway log has: a cut-off write, a plain-text
    /// interjection, and an event with no time.
    fn broken(&mut self, ts: i64) {
        let mut text = String::new();
        let _ = writeln!(
            text,
            "{{\"id\":\"req_cut\",\"call_type\":\"acompletion\",\"status\":\"succ"
        );
        let _ = writeln!(
            text,
            "upstream proxy restarted, resuming at {}",
            rfc3339(ts)
        );
        let _ = writeln!(text, "{{\"id\":\"req_no_time\",\"call_type\":\"acompletion\",\"custom_llm_provider\":\"anthropic\",\"status\":\"success\"}}");
        self.out.extend_from_slice(text.as_bytes());
        self.broken += 3;
    }
}

/// The incidents written into the day, as the detectors should see them.
fn truth(fp: &Fingerprinter) -> Vec<Truth> {
    let at = |h: i64, m: i64| DAY_START_MS + hm(h, m) * MINUTE;
    vec![
        Truth { pattern: "rate_limit_under_load", provider: "openai", model: Some("gpt-4o-mini"), service: Some("checkout-api"), key_fp: Some(fp.fingerprint("openai-checkout-prod")), start_ms: at(12, 0), end_ms: at(12, 40), what: "flash sale: load 2.6x, 429s above 1.6x normal load" },
        Truth { pattern: "quota_exhausted", provider: "openai", model: Some("gpt-4.1"), service: Some("batch-etl"), key_fp: Some(fp.fingerprint("openai-batch")), start_ms: at(3, 10), end_ms: at(3, 40), what: "every batch call fails with insufficient_quota" },
        Truth { pattern: "key_rotation_401", provider: "anthropic", model: Some("claude-sonnet-4-5"), service: Some("support-worker"), key_fp: Some(fp.fingerprint("anthropic-prod-2025-q4")), start_ms: at(9, 0), end_ms: at(10, 30), what: "key rotated at 09:00; support-worker kept the old key until 10:30" },
        Truth { pattern: "auth_misconfigured", provider: "openai", model: Some("gpt-4o"), service: Some("eval-runner"), key_fp: Some(fp.fingerprint("openai-eval-typo")), start_ms: at(14, 0), end_ms: at(14, 20), what: "a new job with a mistyped key; never succeeds" },
        Truth { pattern: "long_context_timeout", provider: "gemini", model: Some("gemini-2.5-pro"), service: Some("doc-summarizer"), key_fp: None, start_ms: at(6, 0), end_ms: at(22, 0), what: "45% of prompts over 50K tokens time out, all day" },
        Truth { pattern: "overload_persistent", provider: "anthropic", model: Some("claude-opus-4-1"), service: Some("research-agent"), key_fp: None, start_ms: at(15, 0), end_ms: at(15, 12), what: "Opus answers 529 on 60% of calls for 12 minutes (a 12 s blip at 05:00 is not an incident)" },
        Truth { pattern: "server_error_storm", provider: "openai", model: Some("gpt-4o"), service: Some("summarizer-v2"), key_fp: None, start_ms: at(17, 0), end_ms: at(17, 8), what: "half the calls fail with 500 for 8 minutes, each retried up to 5 times" },
        Truth { pattern: "retry_policy", provider: "anthropic", model: Some("claude-sonnet-4-5"), service: Some("support-worker"), key_fp: None, start_ms: at(0, 15), end_ms: at(23, 46), what: "its client retries each 429 300 ms later, without backing off (43 requests)" },
        Truth { pattern: "outage", provider: "deepseek", model: Some("deepseek-chat"), service: Some("chat-lite"), key_fp: None, start_ms: at(21, 0), end_ms: at(21, 6), what: "every call 503 for 6 minutes (a 20 s blip at 07:30 is not an incident)" },
        Truth { pattern: "empty_response", provider: "deepseek", model: Some("deepseek-chat"), service: Some("chat-lite"), key_fp: None, start_ms: at(10, 0), end_ms: at(11, 0), what: "10% of calls come back 200 with no choices" },
        Truth { pattern: "access_blocked", provider: "openai", model: Some("gpt-4o-mini"), service: Some("geo-assistant"), key_fp: None, start_ms: at(13, 0), end_ms: at(13, 30), what: "40% of calls 403 unsupported_country_region_territory (traffic from a new region)" },
        Truth { pattern: "bad_request_spike", provider: "openai", model: Some("gpt-4o-mini"), service: Some("checkout-api"), key_fp: None, start_ms: at(16, 0), end_ms: at(16, 30), what: "a deploy sends role 'developer': 20% of calls fail with 400 invalid_role" },
        Truth { pattern: "secret_in_log", provider: "openai", model: None, service: Some("legacy-proxy"), key_fp: None, start_ms: at(18, 0), end_ms: at(18, 10), what: "a debug flag logs the raw API key on every call for ten minutes" },
    ]
}

/// A UUID-shaped trace id made from a request id (no draw of the day's
/// random numbers, so the rest of the day stays as it was).
fn trace_id(request_id: &str) -> String {
    let mut rng = Rng(request_id.bytes().fold(0x7472_6163_6500_0000, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    }));
    let (a, b) = (rng.next(), rng.next());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

/// A stand-in for the SHA-256 hex digest LiteLLM logs for a virtual key.
fn key_hash(key: &str) -> String {
    let mut rng = Rng(key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    }));
    (0..4).fold(String::new(), |mut text, _| {
        let _ = write!(text, "{:016x}", rng.next());
        text
    })
}

/// `faultline sample`: writes the day and its ground truth to `--out`.
pub(crate) fn run(args: &crate::SampleArgs) -> anyhow::Result<std::process::ExitCode> {
    use anyhow::Context as _;
    use std::io::Write as _;

    anyhow::ensure!(
        args.size >= MIN_BYTES,
        "--size {} is too small: below {} MiB a day has too few calls for every injected incident to show",
        args.size,
        MIN_BYTES >> 20
    );
    let sample = generate(Spec {
        seed: args.seed,
        bytes: args.size,
    });
    let logs = args.out.join("logs");
    std::fs::create_dir_all(&logs)
        .with_context(|| format!("cannot create output directory {}", logs.display()))?;
    let mut total = 0;
    for (name, bytes) in &sample.files {
        let mut file = faultline_engine::files::Atomic::create(&logs, name)?;
        file.write_all(bytes)?;
        file.commit()?;
        total += bytes.len();
    }
    let truth = json!({
        "day": rfc3339(DAY_START_MS),
        "seed": args.seed,
        "bad_lines": sample.bad_lines,
        "incidents": sample.truth.iter().map(Truth::to_json).collect::<Vec<_>>(),
        "operations": sample.operations.to_json(),
    });
    let mut file = faultline_engine::files::Atomic::create(&args.out, "ground-truth.json")?;
    serde_json::to_writer_pretty(&mut file, &truth)?;
    writeln!(file)?;
    file.commit()?;
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "wrote {} log files ({total} bytes) with {} injected incidents to {}, and their ground truth to {}",
        sample.files.len(),
        sample.truth.len(),
        logs.display(),
        args.out.join("ground-truth.json").display()
    )?;
    Ok(std::process::ExitCode::SUCCESS)
}
