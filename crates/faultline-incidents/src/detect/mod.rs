//! The detectors: one function per pattern over the collected events and counters.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};

use faultline_ingest::Shared;

use crate::collect::{Collected, Counts, Event, Scope};
use crate::config::DetectConfig;
use crate::{join_events, Incident, Pattern, Severity, Touched};
use faultline_classify::{Provider, StatusClass};

mod access;
mod availability;
mod limits;
mod responses;
mod timeouts;
mod wording;

use self::wording::advice;
pub use self::wording::{duration_text, percent, shown, SHOWN_CHARS};
pub(crate) use self::wording::{label, span};

type Key = Option<Shared>;

/// A provider and one of its models (or none named): the scope of the
/// detectors of a model's bursts.
type ModelKey = (Provider, Key);

fn model_key(scope: &Scope) -> ModelKey {
    (scope.provider, scope.model.clone())
}

/// Hashing for maps that are looked up, never iterated (their order would
/// change from run to run).
type FastHash = foldhash::fast::RandomState;

/// Runs every enabled detector; incidents come most severe first, then by
/// start time, and do not depend on the order records arrived in.
///
/// The detectors read the same data and nothing else, so two threads take
/// them in turn (one when no thread can be started); their incidents are put
/// back in detector order before sorting, as if one thread had run them all.
#[must_use]
pub fn detect<'d>(data: &'d Collected, config: &'d DetectConfig) -> Vec<Incident> {
    let mut by_class: BTreeMap<StatusClass, Vec<&Event>> = BTreeMap::new();
    for e in &data.events {
        by_class.entry(e.class).or_default().push(e);
    }
    let ctx = Ctx {
        data,
        config,
        by_class,
    };
    let detectors: [fn(&Ctx<'d>, &mut Vec<Incident>); 11] = [
        Ctx::rate_limit_under_load,
        Ctx::quota_exhausted,
        Ctx::auth,
        Ctx::long_context_timeout,
        Ctx::overload_persistent,
        Ctx::server_error_storm,
        Ctx::outage,
        Ctx::empty_response,
        Ctx::access_blocked,
        Ctx::bad_request_spike,
        Ctx::secret_in_log,
    ];
    let next = AtomicUsize::new(0);
    let take_turns = || {
        let mut found = Vec::new();
        loop {
            let at = next.fetch_add(1, Ordering::Relaxed);
            let Some(detector) = detectors.get(at) else {
                break found;
            };
            let mut out = Vec::new();
            detector(&ctx, &mut out);
            found.push((at, out));
        }
    };
    let mut found = std::thread::scope(|scope| {
        let other = std::thread::Builder::new()
            .name("faultline-detect".into())
            .spawn_scoped(scope, take_turns);
        let mut found = take_turns();
        if let Ok(other) = other {
            found.extend(
                other
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        found
    });
    found.sort_by_key(|&(at, _)| at);
    let found: Vec<Incident> = found.into_iter().flat_map(|(_, out)| out).collect();
    let mut out = join_events(found, data, config);
    order(&mut out);
    out
}

/// Most severe first, then earliest.
pub(crate) fn order(incidents: &mut [Incident]) {
    incidents.sort_by(|a, b| {
        (a.severity, a.start_ms, a.pattern, &a.id).cmp(&(b.severity, b.start_ms, b.pattern, &b.id))
    });
}

struct Ctx<'a> {
    data: &'a Collected,
    config: &'a DetectConfig,
    /// The events of each class, in their order: most detectors read one
    /// class, and the events are sorted out once rather than once each.
    by_class: BTreeMap<StatusClass, Vec<&'a Event>>,
}

impl Ctx<'_> {
    fn events(&self, class: StatusClass) -> impl Iterator<Item = &Event> {
        self.by_class.get(&class).into_iter().flatten().copied()
    }

    /// Joins qualifying episodes closer than `merge_gap_s` into one incident.
    fn merge<'e>(&self, groups: Vec<Vec<&'e Event>>) -> Vec<Vec<&'e Event>> {
        let gap = self.config.merge_gap_s * 1000;
        let mut out: Vec<Vec<&Event>> = Vec::new();
        for group in groups {
            match out.last_mut() {
                Some(last) if group[0].ts_ms - last[last.len() - 1].ts_ms <= gap => {
                    last.extend(group);
                }
                _ => out.push(group),
            }
        }
        out
    }

    /// An incident over `events` (time-ordered, non-empty), with counts and
    /// evidence filled in; `requests` are the calls in scope over its span.
    fn incident(
        &self,
        pattern: Pattern,
        severity: Severity,
        events: &[&Event],
        requests: u64,
    ) -> Incident {
        let start_ms = events[0].ts_ms;
        let end_ms = events[events.len() - 1].ts_ms;
        let mut per_minute: BTreeMap<i64, u64> = BTreeMap::new();
        for e in events {
            *per_minute.entry(e.minute()).or_default() += 1;
        }
        let provider = common(events, |e| Some(e.scope.provider));
        let model = common(events, |e| e.scope.model.clone());
        let service = common(events, |e| e.scope.service.clone());
        let key_fp = common(events, |e| e.scope.key_fp.clone());
        let cause = common(events, |e| Some(e.cause.clone())).map(|c| c.to_shared());
        let (action, escalation) = advice(pattern);
        let (evidence, evidence_ms) = evidence(events, self.config.evidence);
        let mut inc = Incident {
            id: String::new(),
            pattern,
            severity,
            provider,
            model,
            service,
            key_fp,
            cause,
            start_ms,
            end_ms,
            requests: requests.max(events.len() as u64),
            errors: events.len() as u64,
            peak_rate: per_minute.values().copied().max().unwrap_or(0),
            summary: String::new(),
            action: action.to_owned(),
            escalation: escalation.to_owned(),
            evidence,
            models: touched(events, |e| e.scope.model.as_ref()),
            services: touched(events, |e| e.scope.service.as_ref()),
            keys: touched(events, |e| e.scope.key_fp.as_ref()),
            evidence_ms,
            per_minute: per_minute.into_iter().collect(),
        };
        inc.id = incident_id(&inc);
        inc
    }

    /// Bursts measured against traffic: minutes where `events` number at
    /// least `min_per_minute` and `min_rate` of the calls, in runs at most
    /// `gap` minutes apart; runs that `keep` accepts, closer than
    /// `merge_gap_s`, are joined. Returns the events of each.
    fn minute_runs<'e>(
        &self,
        events: &[&'e Event],
        minutes: &BTreeMap<i64, Counts>,
        min_per_minute: u64,
        min_rate: f64,
        gap: i64,
        keep: impl Fn(&[&Event]) -> bool,
    ) -> Vec<Vec<&'e Event>> {
        let by_minute = group(events.iter().copied(), Event::minute);
        let bad: Vec<i64> = by_minute
            .iter()
            .filter(|(minute, evs)| {
                let n = evs.len() as u64;
                let requests = minutes.get(minute).map_or(0, |c| c.requests);
                n >= min_per_minute && n as f64 >= min_rate * requests as f64
            })
            .map(|(minute, _)| *minute)
            .collect();
        let kept: Vec<Vec<i64>> = runs(&bad, gap)
            .into_iter()
            .filter(|run| keep(&in_minutes(&by_minute, run)))
            .collect();
        runs_merged(kept, self.config.merge_gap_s / 60)
            .iter()
            .map(|run| in_minutes(&by_minute, run))
            .collect()
    }

    /// Calls of the scopes `keep` accepts over the minutes of `events`.
    fn traffic(&self, events: &[&Event], keep: impl Fn(&Scope) -> bool) -> Counts {
        let from = events[0].minute();
        let to = events[events.len() - 1].minute();
        self.data.traffic(from, to, keep)
    }

    /// The bursts of `events` per provider and model, each measured against
    /// that model's calls ([`Ctx::minute_runs`]), in the order of the
    /// models: the model, the burst's events, and the model's calls over
    /// the burst's minutes.
    fn model_runs<'e>(
        &self,
        events: impl Iterator<Item = &'e Event>,
        min_per_minute: u64,
        min_rate: f64,
        gap: i64,
        keep: impl Fn(&[&Event]) -> bool,
    ) -> Vec<(ModelKey, Vec<&'e Event>, Counts)> {
        let groups = group(events, |e| model_key(&e.scope));
        let series = self
            .data
            .series(|s| Some(model_key(s)).filter(|k| groups.contains_key(k)));
        let mut out = Vec::new();
        for (key, events) in groups {
            let Some(minutes) = series.get(&key) else {
                continue;
            };
            for run in self.minute_runs(&events, minutes, min_per_minute, min_rate, gap, &keep) {
                let traffic = self.traffic(&run, |s| model_key(s) == key);
                out.push((key.clone(), run, traffic));
            }
        }
        out
    }
}

/// Groups `events` by `key`, keeping their order inside each group.
fn group<'e, K: Ord>(
    events: impl Iterator<Item = &'e Event>,
    key: impl Fn(&Event) -> K,
) -> BTreeMap<K, Vec<&'e Event>> {
    let mut out: BTreeMap<K, Vec<&Event>> = BTreeMap::new();
    for e in events {
        out.entry(key(e)).or_default().push(e);
    }
    out
}

/// Splits time-ordered events where consecutive ones are more than `gap_ms` apart.
fn split<'e>(events: &[&'e Event], gap_ms: i64) -> Vec<Vec<&'e Event>> {
    let mut out: Vec<Vec<&Event>> = Vec::new();
    for e in events {
        match out.last_mut() {
            Some(last) if e.ts_ms - last[last.len() - 1].ts_ms <= gap_ms => last.push(e),
            _ => out.push(vec![e]),
        }
    }
    out
}

/// Splits sorted minutes into runs whose neighbours are at most `gap` apart.
fn runs(minutes: &[i64], gap: i64) -> Vec<Vec<i64>> {
    let mut out: Vec<Vec<i64>> = Vec::new();
    for &m in minutes {
        match out.last_mut() {
            Some(run) if m - run[run.len() - 1] <= gap => run.push(m),
            _ => out.push(vec![m]),
        }
    }
    out
}

/// The events of the minutes from the first to the last of `run`.
fn in_minutes<'e>(by_minute: &BTreeMap<i64, Vec<&'e Event>>, run: &[i64]) -> Vec<&'e Event> {
    by_minute
        .range(run[0]..=run[run.len() - 1])
        .flat_map(|(_, evs)| evs.iter().copied())
        .collect()
}

/// Joins runs at most `gap` minutes apart.
fn runs_merged(runs: Vec<Vec<i64>>, gap: i64) -> Vec<Vec<i64>> {
    let mut out: Vec<Vec<i64>> = Vec::new();
    for run in runs {
        match out.last_mut() {
            Some(last) if run[0] - last[last.len() - 1] <= gap => last.extend(run),
            _ => out.push(run),
        }
    }
    out
}

fn mean_requests(minutes: &BTreeMap<i64, Counts>, run: &[i64]) -> f64 {
    let total: u64 = run
        .iter()
        .map(|m| minutes.get(m).map_or(0, |c| c.requests))
        .sum();
    total as f64 / run.len().max(1) as f64
}

/// The value all events share, if they do.
fn common<T: PartialEq>(events: &[&Event], value: impl Fn(&Event) -> Option<T>) -> Option<T> {
    let first = value(events.first()?)?;
    events[1..]
        .iter()
        .all(|e| value(e).as_ref() == Some(&first))
        .then_some(first)
}

/// The distinct values of events, sorted, as a sentence shows them.
fn distinct<T: Ord + std::fmt::Display>(
    events: &[&Event],
    value: impl Fn(&Event) -> Option<T>,
) -> Vec<String> {
    let set: BTreeSet<T> = events.iter().filter_map(|e| value(e)).collect();
    set.into_iter()
        .map(|s| shown(&s.to_string()).into_owned())
        .collect()
}

/// Up to `n` evidence pointers, spread over the incident (first, last, and
/// between), with the time of each.
fn evidence(events: &[&Event], n: usize) -> (Vec<String>, Vec<i64>) {
    spread(events, n)
        .into_iter()
        .map(|e| (e.pointer(), e.ts_ms))
        .unzip()
}

/// Up to `n` items of `items`: the first, the last, and evenly between.
pub(crate) fn spread<T: Copy>(items: &[T], n: usize) -> Vec<T> {
    if items.len() <= n {
        return items.to_vec();
    }
    let step = (items.len() - 1) as f64 / (n - 1).max(1) as f64;
    (0..n)
        .map(|i| items[((i as f64 * step).round() as usize).min(items.len() - 1)])
        .collect()
}

/// The values of `value` among `events` with their counts, most first
/// (then by name).
fn touched<'e>(
    events: &[&'e Event],
    value: impl Fn(&'e Event) -> Option<&'e Shared>,
) -> Vec<Touched> {
    let mut counts: BTreeMap<&Shared, u64> = BTreeMap::new();
    for e in events {
        if let Some(v) = value(e) {
            *counts.entry(v).or_default() += 1;
        }
    }
    Touched::busiest_first(counts.into_iter().map(|(name, n)| (name.clone(), n)))
}

/// `inc-` and 12 hex digits of the hash of an incident's pattern, start and
/// scope (the values all its calls share).
pub(crate) fn incident_id(inc: &Incident) -> String {
    let mut id_text = format!("{}|{}", inc.pattern, inc.start_ms);
    let parts = [
        inc.model.as_deref(),
        inc.service.as_deref(),
        inc.key_fp.as_deref(),
        inc.cause.as_deref(),
    ];
    for part in parts.into_iter().flatten() {
        id_text.push('|');
        id_text.push_str(part);
    }
    if let Some(p) = inc.provider {
        id_text.push('|');
        id_text.push_str(p.as_str());
    }
    format!("inc-{:012x}", fnv1a(id_text.as_bytes()) >> 16)
}

/// FNV-1a, 64 bits: a stable id hash with no dependency and no per-run seed.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
