//! How clients handled failures: each retry of an operation set against
//! what the guide says for the failure before it (the `action` of its
//! class: never retry a 401/403, back off on a 429, at most 3 retries of a
//! 500, wait about 60 s on a 503, route a 529 elsewhere, and on a timeout
//! raise the timeout or cut the context).

use std::collections::{BTreeMap, HashMap};

use faultline_classify::{Provider, StatusClass};
use faultline_incidents::{Pattern, RetryFinding};
use faultline_ingest::Shared;
use faultline_report::Operation;
use serde_json::{json, Value};

/// A retry sooner than this after a 429 did not back off at all.
pub const NO_BACKOFF_MS: i64 = 1_000;

/// The wait the guide gives a 503 before a retry.
pub const UNAVAILABLE_WAIT_MS: i64 = 60_000;

/// Retries of server errors the guide allows in one operation.
pub const SERVER_ERROR_RETRIES: u32 = 3;

/// A prompt within this share of the one before is the same size.
const SAME_PROMPT: f64 = 0.1;

/// Operations listed as examples per misstep.
const EXAMPLES: usize = 3;

/// Services listed per misstep.
const SERVICES: usize = 5;

/// A retry the guide advises against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Misstep {
    /// A 401 or 403 retried: the key or permission will not change.
    AuthRetried,
    /// A 429 retried within [`NO_BACKOFF_MS`].
    RateLimitNoBackoff,
    /// More than [`SERVER_ERROR_RETRIES`] retries of server errors.
    ServerErrorOverRetried,
    /// A 503 retried sooner than [`UNAVAILABLE_WAIT_MS`].
    UnavailableRetriedEarly,
    /// A 529 retried on the same model.
    OverloadedNotRerouted,
    /// A timeout retried on the same model with a prompt of the same size.
    TimeoutSamePrompt,
}

impl Misstep {
    /// Every misstep, in the order reports list them.
    pub const ALL: [Misstep; 6] = [
        Misstep::AuthRetried,
        Misstep::RateLimitNoBackoff,
        Misstep::ServerErrorOverRetried,
        Misstep::UnavailableRetriedEarly,
        Misstep::OverloadedNotRerouted,
        Misstep::TimeoutSamePrompt,
    ];

    /// The stable snake_case name used in outputs.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Misstep::AuthRetried => "auth_retried",
            Misstep::RateLimitNoBackoff => "rate_limit_no_backoff",
            Misstep::ServerErrorOverRetried => "server_error_over_retried",
            Misstep::UnavailableRetriedEarly => "unavailable_retried_early",
            Misstep::OverloadedNotRerouted => "overloaded_not_rerouted",
            Misstep::TimeoutSamePrompt => "timeout_same_prompt",
        }
    }

    /// The patterns of the incidents an event of the failure retried
    /// would be: a finding during one of them is part of that event.
    #[must_use]
    pub fn patterns(self) -> &'static [Pattern] {
        match self {
            Misstep::AuthRetried => &[
                Pattern::KeyRotation401,
                Pattern::AuthMisconfigured,
                Pattern::AccessBlocked,
            ],
            Misstep::RateLimitNoBackoff => &[Pattern::RateLimitUnderLoad, Pattern::QuotaExhausted],
            Misstep::ServerErrorOverRetried => &[Pattern::ServerErrorStorm, Pattern::Outage],
            Misstep::UnavailableRetriedEarly => &[Pattern::Outage],
            Misstep::OverloadedNotRerouted => &[Pattern::OverloadPersistent],
            Misstep::TimeoutSamePrompt => &[Pattern::LongContextTimeout],
        }
    }

    /// Those of [`Misstep::patterns`] whose summary already counts these
    /// retries: a 500 storm counts the requests retried more than 3 times.
    #[must_use]
    pub fn told_by(self) -> &'static [Pattern] {
        match self {
            Misstep::ServerErrorOverRetried => &[Pattern::ServerErrorStorm],
            _ => &[],
        }
    }

    /// What the guide says, and what the clients did instead.
    #[must_use]
    pub fn words(self) -> (&'static str, &'static str) {
        match self {
            Misstep::AuthRetried => (
                "401/403: stop and alert; never retry",
                "retried a 401 or 403",
            ),
            Misstep::RateLimitNoBackoff => (
                "429: back off (about 30 s), honour Retry-After",
                "retried a 429 within 1 s",
            ),
            Misstep::ServerErrorOverRetried => (
                "500: retry at most 3 times, then switch model",
                "retried server errors more than 3 times",
            ),
            Misstep::UnavailableRetriedEarly => (
                "503: wait about 60 s, check the status page",
                "retried a 503 sooner than 60 s",
            ),
            Misstep::OverloadedNotRerouted => (
                "529: back off and route to a smaller model",
                "retried a 529 on the same model",
            ),
            Misstep::TimeoutSamePrompt => (
                "timeout: raise the timeout or cut the context",
                "retried a timeout with the same prompt on the same model",
            ),
        }
    }

    /// The misstep of retrying after a failure of `class` (none when the
    /// retry is what the guide says), given the wait, whether the model
    /// stayed and whether the prompt kept its size. Server errors are
    /// counted per operation instead ([`Missteps::server_error_retry`]).
    fn of(
        class: StatusClass,
        wait_ms: Option<i64>,
        same_model: bool,
        same_prompt: bool,
    ) -> Option<Misstep> {
        match class {
            StatusClass::Auth | StatusClass::Permission => Some(Misstep::AuthRetried),
            StatusClass::RateLimit if wait_ms.is_some_and(|w| w < NO_BACKOFF_MS) => {
                Some(Misstep::RateLimitNoBackoff)
            }
            StatusClass::Unavailable if wait_ms.is_none_or(|w| w < UNAVAILABLE_WAIT_MS) => {
                Some(Misstep::UnavailableRetriedEarly)
            }
            StatusClass::Overloaded if same_model => Some(Misstep::OverloadedNotRerouted),
            StatusClass::Timeout if same_model && same_prompt => Some(Misstep::TimeoutSamePrompt),
            _ => None,
        }
    }
}

/// The last attempt of an operation, as the next retry is judged against.
#[derive(Debug, Clone)]
pub(crate) struct Last {
    pub class: StatusClass,
    pub end_ms: i64,
    pub model: Option<Shared>,
    pub prompt_tokens: Option<u32>,
}

/// The next attempt, as judged.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Next<'a> {
    pub start_ms: i64,
    pub model: Option<&'a Shared>,
    pub prompt_tokens: Option<u32>,
}

/// The missteps of one operation: retries counted per kind.
#[derive(Debug, Clone, Default)]
pub(crate) struct Missteps {
    counts: [u32; Misstep::ALL.len()],
    server_error_retries: u32,
}

impl Missteps {
    /// Judges a retry after `last`. `wait_known` is false for the requests
    /// an SDK made inside one call (their times are not logged).
    pub(crate) fn retry(&mut self, last: &Last, next: Next<'_>, wait_known: bool) {
        if matches!(
            last.class,
            StatusClass::ServerError | StatusClass::BadGateway
        ) {
            self.server_error_retry();
            return;
        }
        let same_model = match (&last.model, next.model) {
            (Some(a), Some(b)) => a.as_str() == b.as_str(),
            (None, None) => true,
            _ => false,
        };
        let same_prompt = match (last.prompt_tokens, next.prompt_tokens) {
            (Some(a), Some(b)) => {
                let (a, b) = (f64::from(a), f64::from(b));
                (a - b).abs() <= SAME_PROMPT * a.max(b)
            }
            // An SDK resends the same request.
            (None, None) => !wait_known,
            _ => false,
        };
        let wait = wait_known.then_some(next.start_ms.saturating_sub(last.end_ms));
        if let Some(misstep) = Misstep::of(last.class, wait, same_model, same_prompt) {
            self.counts[misstep as usize] += 1;
        }
    }

    /// A retry after a server error: past [`SERVER_ERROR_RETRIES`] in one
    /// operation, each one more is a misstep.
    pub(crate) fn server_error_retry(&mut self) {
        self.server_error_retries += 1;
        if self.server_error_retries > SERVER_ERROR_RETRIES {
            self.counts[Misstep::ServerErrorOverRetried as usize] += 1;
        }
    }

    /// Retries of each misstep, where there were any.
    fn each(&self) -> impl Iterator<Item = (Misstep, u32)> + '_ {
        Misstep::ALL
            .into_iter()
            .zip(self.counts)
            .filter(|(_, n)| *n > 0)
    }
}

/// What the clients of a run did against the guide: per misstep, the
/// retries, the operations, the services and a few example operations.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    kinds: BTreeMap<Misstep, Kind>,
}

#[derive(Debug, Clone, Default)]
struct Kind {
    retries: u64,
    operations: u64,
    /// By service (`None`: the operations that logged none).
    services: HashMap<Option<Shared>, ByService, foldhash::fast::RandomState>,
    /// In the order the operations closed.
    examples: Vec<u64>,
}

/// One misstep of one service: what a finding says.
#[derive(Debug, Clone)]
struct ByService {
    operations: u64,
    retries: u64,
    start_ms: i64,
    end_ms: i64,
    /// The one provider and model of every operation, while they share one.
    provider: Option<Provider>,
    model: Option<Shared>,
    mixed: bool,
    /// Example operations and their starts, in the order they closed.
    examples: Vec<(u64, i64)>,
}

impl ByService {
    fn new(op: &Operation) -> ByService {
        ByService {
            operations: 0,
            retries: 0,
            start_ms: op.start_ms,
            end_ms: op.end_ms,
            provider: op.providers.first().copied(),
            model: op.models.first().cloned(),
            mixed: false,
            examples: Vec::new(),
        }
    }

    fn add(&mut self, op: &Operation, retries: u32) {
        self.operations += 1;
        self.retries += u64::from(retries);
        self.start_ms = self.start_ms.min(op.start_ms);
        self.end_ms = self.end_ms.max(op.end_ms);
        let one_provider =
            op.providers.len() == 1 && op.providers.first() == self.provider.as_ref();
        let one_model = op.models.len() == 1
            && op.models.first().map(Shared::as_str) == self.model.as_ref().map(Shared::as_str);
        self.mixed |= !one_provider || !one_model;
        if self.examples.len() < EXAMPLES {
            self.examples.push((op.id, op.start_ms));
        }
    }
}

/// One misstep as reports show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BehaviourRow {
    pub misstep: Misstep,
    pub retries: u64,
    pub operations: u64,
    /// The services, most operations first (at most five).
    pub services: Vec<(String, u64)>,
    /// Ids of example operations (`op_...`).
    pub examples: Vec<u64>,
}

impl Behaviour {
    /// Counts the missteps of an operation that closed.
    pub(crate) fn add(&mut self, missteps: &Missteps, op: &Operation) {
        for (misstep, retries) in missteps.each() {
            let kind = self.kinds.entry(misstep).or_default();
            kind.retries += u64::from(retries);
            kind.operations += 1;
            // Services are few; a hostile log's thousands stop at the bound.
            if kind.services.len() < faultline_classify::bound::DISTINCT_LIMIT
                || kind.services.contains_key(&op.service)
            {
                kind.services
                    .entry(op.service.clone())
                    .or_insert_with(|| ByService::new(op))
                    .add(op, retries);
            }
            if kind.examples.len() < EXAMPLES {
                kind.examples.push(op.id);
            }
        }
    }

    /// Each misstep of each service, as incidents are told of it, in
    /// [`Misstep::ALL`] order, then by service.
    #[must_use]
    pub fn findings(&self) -> Vec<RetryFinding> {
        let mut out = Vec::new();
        for (&misstep, kind) in &self.kinds {
            let mut services: Vec<(&Option<Shared>, &ByService)> = kind.services.iter().collect();
            services.sort_by(|a, b| a.0.cmp(b.0));
            for (service, by) in services {
                let (guide, did) = misstep.words();
                out.push(RetryFinding {
                    misstep: misstep.as_str(),
                    guide,
                    did,
                    patterns: misstep.patterns(),
                    told_by: misstep.told_by(),
                    service: service.clone(),
                    provider: by.provider.filter(|_| !by.mixed),
                    model: by.model.clone().filter(|_| !by.mixed),
                    start_ms: by.start_ms,
                    end_ms: by.end_ms,
                    operations: by.operations,
                    retries: by.retries,
                    examples: by
                        .examples
                        .iter()
                        .map(|&(id, ms)| (faultline_report::operation_id(id), ms))
                        .collect(),
                });
            }
        }
        out
    }

    /// Every misstep seen, in [`Misstep::ALL`] order.
    #[must_use]
    pub fn rows(&self) -> Vec<BehaviourRow> {
        self.kinds
            .iter()
            .map(|(&misstep, kind)| {
                let mut services: Vec<(String, u64)> = kind
                    .services
                    .iter()
                    .filter_map(|(s, by)| Some((s.as_ref()?.as_str().to_owned(), by.operations)))
                    .collect();
                services.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                services.truncate(SERVICES);
                BehaviourRow {
                    misstep,
                    retries: kind.retries,
                    operations: kind.operations,
                    services,
                    examples: kind.examples.clone(),
                }
            })
            .collect()
    }

    /// summary.json's `client_behaviour`.
    #[must_use]
    pub fn json(&self) -> Value {
        self.rows()
            .iter()
            .map(|row| {
                let (guide, did) = row.misstep.words();
                json!({
                    "misstep": row.misstep.as_str(),
                    "guide": guide,
                    "clients": did,
                    "retries": row.retries,
                    "operations": row.operations,
                    "services": row.services.iter().map(|(name, n)| json!({"name": name, "operations": n})).collect::<Vec<_>>(),
                    "examples": row.examples.iter().map(|&id| faultline_report::operation_id(id)).collect::<Vec<_>>(),
                })
            })
            .collect()
    }
}
