//! Harder days than the sample day, from a generator of their own, scored
//! over many seeds and sizes: events that hit several models of a provider,
//! incidents of different patterns at the same time, the same call logged
//! by the app and by its gateway, two log formats for one service, files
//! whose lines are out of time order, and busy days with a high background
//! error rate and nothing to report. Each injected event must be found
//! (recall), each incident must be one of them (precision), and no event may
//! come out as more than one incident.

use faultline_classify::{Classifier, Provider};
use faultline_incidents::{detect, Collector, DetectConfig, Incident, Pattern};
use faultline_ingest::{IngestOptions, Ingester};

/// 2026-03-10T00:00:00Z.
const DAY: i64 = 1_773_100_800_000;
const MINUTE: i64 = 60_000;

/// SplitMix64: the same seed gives the same day everywhere.
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

    /// Uniform in [lo, hi).
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo) as u64) as i64
    }
}

/// An injected event: what a reader of the report should count once.
#[derive(Debug)]
struct Truth {
    pattern: Pattern,
    provider: Provider,
    start_ms: i64,
    end_ms: i64,
}

/// How a failed call is logged: status (none for a timeout), type, message.
type Failure = (Option<u16>, &'static str, &'static str);

const UNAVAILABLE: Failure = (Some(503), "service_unavailable", "Service Unavailable");
const INTERNAL: Failure = (
    Some(500),
    "server_error",
    "The server had an error processing your request.",
);
const OVERLOADED: Failure = (Some(529), "overloaded_error", "Overloaded");
const BAD_KEY: Failure = (Some(401), "authentication_error", "invalid x-api-key");
const RATE_LIMITED: Failure = (
    Some(429),
    "requests",
    "Rate limit reached on requests per min (RPM): Limit 500, Used 500, Requested 1.",
);
const TIMED_OUT: Failure = (None, "APITimeoutError", "Request timed out.");

/// The log formats a service may write.
#[derive(Clone, Copy, PartialEq)]
enum Format {
    Flat,
    Envelope,
}

/// One call, as the generator decides it.
struct Call<'a> {
    ts_ms: i64,
    service: &'a str,
    provider: &'a str,
    host: &'a str,
    model: &'a str,
    key: &'a str,
    request_id: String,
    attempt: u16,
    failure: Option<Failure>,
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("in range")
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn line(call: &Call<'_>, format: Format) -> String {
    let ts = rfc3339(call.ts_ms);
    let status = call.failure.map_or(Some(200), |f| f.0);
    let error = call
        .failure
        .map(|(_, kind, message)| serde_json::json!({"type": kind, "message": message}));
    let value = match format {
        Format::Flat => serde_json::json!({
            "ts": ts, "service": call.service, "provider": call.provider, "model": call.model,
            "status_code": status, "latency_ms": 900, "request_id": call.request_id,
            "attempt": call.attempt, "key_id": call.key, "error": error,
        }),
        Format::Envelope => serde_json::json!({
            "ts": ts, "service": call.service, "request_id": call.request_id,
            "attempt": call.attempt, "key_id": call.key, "latency_ms": 900,
            "request": {"url": format!("https://{}/v1/chat", call.host), "body": {"model": call.model}},
            "response": match status {
                Some(status) => serde_json::json!({"status": status, "body": error.clone().map(|e| serde_json::json!({"error": e}))}),
                None => serde_json::Value::Null,
            },
            "error": if status.is_none() { error } else { None },
        }),
    };
    value.to_string()
}

/// A stream of calls: one service calling one model at a rate.
struct Stream {
    service: &'static str,
    provider: &'static str,
    host: &'static str,
    model: &'static str,
    key: &'static str,
    /// Which files it is logged to, and in what format (two entries: the
    /// app and its gateway both log every call; a format per call
    /// alternates when `alternate`).
    logs: &'static [(&'static str, Format)],
    alternate: bool,
}

const STREAMS: &[Stream] = &[
    Stream {
        service: "chat",
        provider: "deepseek",
        host: "api.deepseek.com",
        model: "deepseek-chat",
        key: "kf_chat",
        logs: &[("chat.jsonl", Format::Flat)],
        alternate: false,
    },
    Stream {
        service: "chat",
        provider: "deepseek",
        host: "api.deepseek.com",
        model: "deepseek-reasoner",
        key: "kf_chat",
        logs: &[("chat.jsonl", Format::Flat)],
        alternate: false,
    },
    Stream {
        service: "agent",
        provider: "anthropic",
        host: "api.anthropic.com",
        model: "claude-opus-4-1",
        key: "kf_agent",
        logs: &[("agent.jsonl", Format::Envelope)],
        alternate: false,
    },
    Stream {
        service: "agent",
        provider: "anthropic",
        host: "api.anthropic.com",
        model: "claude-sonnet-4-5",
        key: "kf_agent",
        logs: &[("agent.jsonl", Format::Envelope)],
        alternate: false,
    },
    Stream {
        service: "support",
        provider: "anthropic",
        host: "api.anthropic.com",
        model: "claude-sonnet-4-5",
        key: "kf_support",
        logs: &[("support.jsonl", Format::Flat)],
        alternate: false,
    },
    Stream {
        service: "summarizer",
        provider: "openai",
        host: "api.openai.com",
        model: "gpt-4o",
        key: "kf_summarizer",
        // The app logs each call, and so does the gateway in front of it.
        logs: &[
            ("summarizer.jsonl", Format::Flat),
            ("gateway.jsonl", Format::Envelope),
        ],
        alternate: false,
    },
    Stream {
        service: "search",
        provider: "openai",
        host: "api.openai.com",
        model: "gpt-4o-mini",
        key: "kf_search",
        // Two formats for one service, mid-migration.
        logs: &[
            ("search.jsonl", Format::Flat),
            ("search.jsonl", Format::Envelope),
        ],
        alternate: true,
    },
];

/// What happens to a call at `ts_ms` of a stream, beyond the background.
struct Plan {
    outage: (i64, i64),
    storm: (i64, i64),
    overload: (i64, i64),
    rotation_at: i64,
}

/// A day: its files and the events injected into it.
fn day(seed: u64) -> (Vec<(String, String)>, Vec<Truth>) {
    let mut rng = Rng(seed);
    let minutes = rng.range(150, 270);
    let per_minute = rng.range(3, 11);
    // Every fourth day is busy and clean: a high background error rate,
    // nothing injected.
    let quiet = seed % 4 == 3;
    let background = if quiet { 0.015 } else { 0.002 };
    let end = DAY + minutes * MINUTE;
    let window = |rng: &mut Rng, lo: i64, hi: i64| {
        let start = DAY + rng.range(20, minutes - 60) * MINUTE + rng.range(0, MINUTE);
        (start, start + rng.range(lo, hi) * MINUTE)
    };
    let never = (i64::MAX, i64::MAX);
    let plan = if quiet {
        Plan {
            outage: never,
            storm: never,
            overload: never,
            rotation_at: i64::MAX,
        }
    } else {
        let overload = window(&mut rng, 10, 16);
        Plan {
            outage: window(&mut rng, 5, 9),
            storm: window(&mut rng, 4, 6),
            // The key rotation starts while Opus is overloaded.
            rotation_at: overload.0 + rng.range(1, 6) * MINUTE,
            overload,
        }
    };
    let inside = |ts: i64, (a, b): (i64, i64)| ts >= a && ts < b;

    let mut files: std::collections::BTreeMap<String, Vec<(i64, String)>> =
        std::collections::BTreeMap::new();
    let mut truth = Vec::new();
    let mut retried = Vec::new();
    let mut n = 0u64;
    for stream in STREAMS {
        let step = MINUTE / per_minute;
        let mut ts = DAY + rng.range(0, step);
        while ts < end {
            n += 1;
            let mut call = Call {
                ts_ms: ts,
                service: stream.service,
                provider: stream.provider,
                host: stream.host,
                model: stream.model,
                key: stream.key,
                request_id: format!("req-{seed}-{n}"),
                attempt: 0,
                failure: None,
            };
            let roll = rng.unit();
            call.failure = match stream.provider {
                // Provider-wide: both DeepSeek models.
                "deepseek" if inside(ts, plan.outage) && roll < 0.9 => Some(UNAVAILABLE),
                "openai" if stream.model == "gpt-4o" && inside(ts, plan.storm) && roll < 0.5 => {
                    retried.push((ts, call.request_id.clone()));
                    Some(INTERNAL)
                }
                "anthropic"
                    if stream.model == "claude-opus-4-1"
                        && inside(ts, plan.overload)
                        && roll < 0.6 =>
                {
                    Some(OVERLOADED)
                }
                "anthropic" if stream.service == "support" && ts >= plan.rotation_at => {
                    Some(BAD_KEY)
                }
                _ if roll < background => Some(RATE_LIMITED),
                _ if roll < 2.0 * background => Some(INTERNAL),
                _ if roll < 2.5 * background => Some(UNAVAILABLE),
                _ if roll < 2.8 * background => Some(TIMED_OUT),
                _ => None,
            };
            let logs: &[(&str, Format)] = if stream.alternate {
                let at = usize::from(n.is_multiple_of(2));
                &stream.logs[at..=at]
            } else {
                stream.logs
            };
            for (file, format) in logs {
                files
                    .entry((*file).to_owned())
                    .or_default()
                    .push((ts, line(&call, *format)));
            }
            ts += step + rng.range(-step / 3, step / 3);
        }
    }
    // The storm's failed requests: a few are retried five times each, a
    // minute apart, after it (a retry storm of its own, too thin a minute
    // to be a burst).
    for (at, id) in retried.iter().take(6) {
        for attempt in 1..=5u16 {
            let call = Call {
                ts_ms: plan.storm.1 + (*at - plan.storm.0) / 4 + i64::from(attempt) * MINUTE,
                service: "summarizer",
                provider: "openai",
                host: "api.openai.com",
                model: "gpt-4o",
                key: "kf_summarizer",
                request_id: id.clone(),
                attempt,
                failure: Some(INTERNAL),
            };
            files
                .entry("summarizer.jsonl".to_owned())
                .or_default()
                .push((call.ts_ms, line(&call, Format::Flat)));
        }
    }
    if !quiet {
        truth.push(Truth {
            pattern: Pattern::Outage,
            provider: Provider::DeepSeek,
            start_ms: plan.outage.0,
            end_ms: plan.outage.1,
        });
        truth.push(Truth {
            pattern: Pattern::ServerErrorStorm,
            provider: Provider::OpenAi,
            start_ms: plan.storm.0,
            end_ms: plan.storm.1 + 8 * MINUTE,
        });
        truth.push(Truth {
            pattern: Pattern::OverloadPersistent,
            provider: Provider::Anthropic,
            start_ms: plan.overload.0,
            end_ms: plan.overload.1,
        });
        truth.push(Truth {
            pattern: Pattern::KeyRotation401,
            provider: Provider::Anthropic,
            start_ms: plan.rotation_at,
            end_ms: end,
        });
    }
    // Lines out of time order: neighbours swapped at random, as writers
    // that flush late leave them.
    let files = files
        .into_iter()
        .map(|(name, mut lines)| {
            lines.sort_by_key(|(ts, _)| *ts);
            for i in 1..lines.len() {
                if rng.unit() < 0.3 {
                    lines.swap(i - 1, i);
                }
            }
            let text: String = lines.into_iter().map(|(_, l)| l + "\n").collect();
            (name, text)
        })
        .collect();
    (files, truth)
}

fn incidents_of(files: &[(String, String)]) -> Vec<Incident> {
    let config = DetectConfig::default();
    let classifier = Classifier::default();
    let mut collector = Collector::new(&config);
    let ingester = Ingester::new(IngestOptions::default()).unwrap();
    for (name, text) in files {
        ingester.ingest_bytes(name, text.as_bytes(), &mut |batch| {
            assert!(batch.bad_lines.is_empty(), "{name}: {:?}", batch.bad_lines);
            for rec in &batch.records {
                collector.add(rec, &classifier.classify(rec));
            }
        });
    }
    detect(&collector.finish(), &config)
}

/// Whether an incident is the injected event: same pattern and provider,
/// and their spans meet (the incident may start a little early or end
/// late, as retries and stragglers do).
fn is(inc: &Incident, truth: &Truth) -> bool {
    inc.pattern == truth.pattern
        && inc.provider == Some(truth.provider)
        && inc.start_ms <= truth.end_ms + 10 * MINUTE
        && inc.end_ms >= truth.start_ms - 2 * MINUTE
}

#[test]
#[allow(clippy::print_stderr, reason = "the scores are what the test reports")]
fn harder_days_are_found_whole_and_nothing_else() {
    let (mut injected, mut found, mut reported, mut right) = (0u32, 0u32, 0usize, 0usize);
    let mut problems = Vec::new();
    for seed in 1..=24u64 {
        let (files, truth) = day(seed);
        let incidents = incidents_of(&files);
        reported += incidents.len();
        for t in &truth {
            injected += 1;
            let matches = incidents.iter().filter(|i| is(i, t)).count();
            if matches > 0 {
                found += 1;
            }
            if matches != 1 {
                problems.push(format!(
                    "seed {seed}: {t:?} came out as {matches} incidents"
                ));
            }
        }
        for inc in &incidents {
            if truth.iter().any(|t| is(inc, t)) {
                right += 1;
            } else {
                problems.push(format!("seed {seed}: stray incident {inc}"));
            }
        }
    }
    let recall = f64::from(found) / f64::from(injected);
    let precision = right as f64 / reported.max(1) as f64;
    eprintln!(
        "harder days, 24 seeds: recall {found}/{injected} = {recall:.3}, precision {right}/{reported} = {precision:.3}\n{}", problems.join("\n")
    );
    assert!(
        found == injected
            && precision >= 0.95
            && problems.iter().all(|p| !p.contains("came out as")),
        "{}",
        problems.join("\n")
    );
}
