//! The words of incidents: summaries' numbers, times, durations and
//! names, and what to do per pattern. Every output uses these.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use chrono::DateTime;

use crate::collect::Event;
use crate::{Incident, Pattern};
use faultline_classify::Provider;

/// `1 log line`, `3 log lines`.
pub(super) fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What to do and who to call, per pattern.
pub(super) fn advice(pattern: Pattern) -> (&'static str, &'static str) {
    match pattern {
        Pattern::RateLimitUnderLoad => (
            "cap concurrency below the knee; retry with backoff, honour Retry-After",
            "raise the rate limit or switch provider",
        ),
        Pattern::QuotaExhausted => (
            "stop: add credits or raise the quota",
            "account owner / billing",
        ),
        Pattern::KeyRotation401 => (
            "deploy the new key to the services still using the old one",
            "developer on-call",
        ),
        Pattern::AuthMisconfigured => (
            "stop and alert: fix the key configuration",
            "developer on-call",
        ),
        Pattern::LongContextTimeout => ("retry with a longer read timeout", "reduce context size"),
        Pattern::OverloadPersistent => (
            "back off and retry",
            "route to a smaller model (e.g. Opus -> Sonnet)",
        ),
        Pattern::ServerErrorStorm => ("retry at most 3 times", "switch model"),
        Pattern::Outage => (
            "wait and retry",
            "check provider status; fail over to another provider",
        ),
        Pattern::EmptyResponse => (
            "retry once; treat as a failed call",
            "switch model or provider",
        ),
        Pattern::AccessBlocked => ("stop and alert", "developer on-call / account owner"),
        Pattern::BadRequestSpike => ("fix the request; never retry", "owning team"),
        Pattern::SecretInLog => (
            "rotate the exposed keys; stop logging credentials",
            "security on-call",
        ),
        Pattern::RetryPolicy => (
            "follow the guide when retrying",
            "the team that owns the client's retry policy",
        ),
    }
}

/// Characters of a logged value (a model, service or key name) a sentence
/// shows; the record keeps it whole.
pub const SHOWN_CHARS: usize = 120;

/// `text` as a sentence shows a logged value: cut after [`SHOWN_CHARS`]
/// characters, with `…` and how many more there were.
#[must_use]
pub fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(SHOWN_CHARS) {
        None => std::borrow::Cow::Borrowed(text),
        Some((at, _)) => std::borrow::Cow::Owned(format!(
            "{}… ({} more characters)",
            &text[..at],
            text[at..].chars().count()
        )),
    }
}

/// Distinct HTTP statuses and causes, e.g. `429 insufficient_quota`.
pub(super) fn statuses(events: &[&Event]) -> String {
    let set: BTreeSet<String> = events
        .iter()
        .map(|e| match e.http_status {
            Some(status) => format!("{status} {}", e.cause),
            None => e.cause.to_string(),
        })
        .collect();
    set.into_iter().collect::<Vec<_>>().join(" / ")
}

/// `openai gpt-4o-mini (service checkout, key kf_...)`.
pub(crate) fn label(inc: &Incident) -> String {
    let mut text = inc
        .provider
        .map_or("unknown provider", Provider::as_str)
        .to_owned();
    if let Some(model) = &inc.model {
        text.push(' ');
        text.push_str(&shown(model));
    }
    let mut scope = Vec::new();
    if let Some(service) = &inc.service {
        scope.push(format!("service {}", shown(service)));
    }
    if let Some(key) = &inc.key_fp {
        scope.push(format!("key {}", shown(key)));
    }
    if !scope.is_empty() {
        let _ = write!(text, " ({})", scope.join(", "));
    }
    text
}

pub(super) fn clock(ms: i64) -> (String, String) {
    match DateTime::from_timestamp_millis(ms) {
        Some(t) => (
            t.format("%Y-%m-%d").to_string(),
            t.format("%H:%M:%S").to_string(),
        ),
        None => (String::new(), ms.to_string()),
    }
}

/// `from 2026-03-10 12:00:05 to 12:41:10 UTC` (the date repeated only when it changes).
pub(crate) fn span(start_ms: i64, end_ms: i64) -> String {
    let (d0, t0) = clock(start_ms);
    let (d1, t1) = clock(end_ms);
    if (d0.as_str(), t0.as_str()) == (d1.as_str(), t1.as_str()) {
        format!("at {d0} {t0} UTC")
    } else if d0 == d1 {
        format!("from {d0} {t0} to {t1} UTC")
    } else {
        format!("from {d0} {t0} to {d1} {t1} UTC")
    }
}

pub(super) fn minute_text(minute: i64) -> String {
    let (d, t) = clock(minute * 60_000);
    format!("{d} {} UTC", &t[..5.min(t.len())])
}

/// `42 s`, `11 min 46 s`, `3 h 5 min`.
#[must_use]
pub fn duration_text(seconds: f64) -> String {
    let s = seconds.round() as i64;
    match s {
        ..=119 => format!("{s} s"),
        120..=7199 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// `0%`, `0.05%`, `4.8%`, `38%`: two significant digits where they matter.
#[must_use]
pub fn percent(rate: f64) -> String {
    let p = rate * 100.0;
    if p == 0.0 {
        "0%".to_owned()
    } else if p >= 10.0 {
        format!("{p:.0}%")
    } else if p >= 1.0 {
        format!("{p:.1}%")
    } else {
        format!("{p:.2}%")
    }
}

pub(super) fn tokens_text(tokens: u32) -> String {
    if tokens >= 1000 && tokens.is_multiple_of(1000) {
        format!("{}K", tokens / 1000)
    } else {
        tokens.to_string()
    }
}
