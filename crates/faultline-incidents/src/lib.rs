//! Incidents: the patterns behind the errors.
//!
//! Records stream into a [`Collector`] (one per worker, merged in any order):
//! successes only bump per-minute counters per scope, failures are kept as
//! small [`Event`]s. [`detect`] then runs every detector over the time-ordered
//! events and the counters and returns [`Incident`]s, most severe first.
//! Thresholds come from [`DetectConfig`] (embedded defaults, user overrides).

mod collect;
mod config;
mod detect;
mod join;
mod retry_policy;

use std::fmt;
use std::sync::Arc;

use faultline_ingest::Shared;

pub use crate::collect::{Collected, Collector, Counts, Event, Scope};
pub use crate::config::{DetectConfig, DEFAULT_CONFIG};
pub use crate::detect::{detect, duration_text, percent, shown, SHOWN_CHARS};
pub(crate) use crate::join::join_events;
pub use crate::retry_policy::{add_retry_findings, RetryFinding};
use faultline_classify::{names, Provider};

names! {
    /// What kind of incident: each has its own detector.
    Pattern {
        RateLimitUnderLoad => "rate_limit_under_load",
        QuotaExhausted => "quota_exhausted",
        KeyRotation401 => "key_rotation_401",
        AuthMisconfigured => "auth_misconfigured",
        LongContextTimeout => "long_context_timeout",
        OverloadPersistent => "overload_persistent",
        ServerErrorStorm => "server_error_storm",
        Outage => "outage",
        EmptyResponse => "empty_response",
        AccessBlocked => "access_blocked",
        BadRequestSpike => "bad_request_spike",
        SecretInLog => "secret_in_log",
        RetryPolicy => "retry_policy",
    }
}

names! {
    /// How urgent an incident is; orders from most to least severe.
    Severity {
        Critical => "critical",
        High => "high",
        Medium => "medium",
        Low => "low",
    }
}

/// One incident: a pattern, its scope, its span, its numbers, and what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// Stable id: a hash of pattern, scope and start.
    pub id: String,
    /// The pattern that found it.
    pub pattern: Pattern,
    /// How urgent it is.
    pub severity: Severity,
    /// The provider, when the incident has one.
    pub provider: Option<Provider>,
    /// The model, when all its calls share one.
    pub model: Option<Shared>,
    /// The calling service, when all its calls share one.
    pub service: Option<Shared>,
    /// The key fingerprint, when all its calls share one.
    pub key_fp: Option<Shared>,
    /// The cause, when all its calls share one.
    pub cause: Option<Arc<str>>,
    /// First failing call, ms since the epoch.
    pub start_ms: i64,
    /// Last failing call, ms since the epoch.
    pub end_ms: i64,
    /// Calls in the incident's scope during its span.
    pub requests: u64,
    /// Failing calls (or, for secret_in_log, lines) in the incident.
    pub errors: u64,
    /// Most failing calls in one minute.
    pub peak_rate: u64,
    /// One sentence with the numbers.
    pub summary: String,
    /// What to do first.
    pub action: String,
    /// Who or what to escalate to.
    pub escalation: String,
    /// Up to a few request ids or file:line pointers.
    pub evidence: Vec<String>,
    /// The models its failing calls went to, busiest first.
    pub models: Vec<Touched>,
    /// The services that made its failing calls, busiest first.
    pub services: Vec<Touched>,
    /// The key fingerprints of its failing calls, busiest first.
    pub keys: Vec<Touched>,
    /// When each evidence pointer's call was made, ms since the epoch.
    pub(crate) evidence_ms: Vec<i64>,
    /// Failing calls per minute (minutes since the epoch), in time order.
    pub(crate) per_minute: Vec<(i64, u64)>,
}

/// One model, service or key an incident touched, and its failing calls there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touched {
    /// The model name, service name or key fingerprint.
    pub name: Shared,
    /// Failing calls of the incident with that value.
    pub errors: u64,
}

impl Touched {
    /// Failing calls by value, busiest first (ties by name).
    pub(crate) fn busiest_first(counts: impl IntoIterator<Item = (Shared, u64)>) -> Vec<Touched> {
        let mut out: Vec<Touched> = counts
            .into_iter()
            .map(|(name, errors)| Touched { name, errors })
            .collect();
        out.sort_by(|a, b| b.errors.cmp(&a.errors).then_with(|| a.name.cmp(&b.name)));
        out
    }
}

/// Items a sentence names one by one; the rest are counted.
pub const NAMED: usize = 5;

/// The first [`NAMED`] of `items`, each as `each` writes it, then `N more`.
pub fn named<T>(items: &[T], each: impl Fn(&T) -> String) -> Vec<String> {
    let mut names: Vec<String> = items.iter().take(NAMED).map(each).collect();
    if items.len() > NAMED {
        names.push(format!("{} more", items.len() - NAMED));
    }
    names
}

impl Incident {
    /// Length of the span in seconds.
    #[must_use]
    pub fn duration_s(&self) -> f64 {
        (self.end_ms - self.start_ms) as f64 / 1000.0
    }

    /// Failing calls over calls in scope (0 when no calls were counted).
    #[must_use]
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            (self.errors as f64 / self.requests as f64).min(1.0)
        }
    }
}

impl fmt::Display for Incident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}: {}", self.severity, self.pattern, self.summary)
    }
}
