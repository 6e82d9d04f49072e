//! The detectors: one function per pattern over the collected events and counters.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::DateTime;
use faultline_ingest::Shared;

use crate::incidents::collect::{Collected, Counts, Event, Scope};
use crate::incidents::config::DetectConfig;
use crate::incidents::{join_events, Incident, Pattern, Severity, Touched};
use crate::taxonomy::{Provider, StatusClass};

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
    out.sort_by(|a, b| {
        (a.severity, a.start_ms, a.pattern, &a.id).cmp(&(b.severity, b.start_ms, b.pattern, &b.id))
    });
    out
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

    fn rate_limit_under_load(&self, out: &mut Vec<Incident>) {
        let c = &self.config.rate_limit_under_load;
        if !c.enabled {
            return;
        }
        // Rate limits belong to a key (or, unkeyed, to a service) and a model.
        let project = |s: &Scope| {
            (
                s.provider,
                s.model.clone(),
                if s.key_fp.is_some() {
                    None
                } else {
                    s.service.clone()
                },
                s.key_fp.clone(),
            )
        };
        let limited = group(self.events(StatusClass::RateLimit), |e| project(&e.scope));
        if limited.is_empty() {
            return;
        }
        let series = self
            .data
            .series(|s| Some(project(s)).filter(|k| limited.contains_key(k)));
        for (key, events) in limited {
            let Some(minutes) = series.get(&key) else {
                continue;
            };
            let by_minute = group(events.iter().copied(), Event::minute);
            let throttled: Vec<i64> = by_minute
                .iter()
                .filter(|(minute, evs)| {
                    let counts = minutes.get(minute).copied().unwrap_or_default();
                    let n = evs.len() as u64;
                    n >= c.min_per_minute
                        && counts.ok > 0
                        && n as f64 >= c.min_error_rate * counts.requests as f64
                })
                .map(|(minute, _)| *minute)
                .collect();
            let mut free = Counts::default();
            let mut free_minutes = 0u64;
            let mut busiest_free = 0u64;
            for (minute, counts) in minutes {
                if counts.requests > 0 && !by_minute.contains_key(minute) {
                    free.requests += counts.requests;
                    free.latency_ms = free.latency_ms.saturating_add(counts.latency_ms);
                    free.latency_n += counts.latency_n;
                    free_minutes += 1;
                    busiest_free = busiest_free.max(counts.requests);
                }
            }
            if free_minutes == 0 {
                continue;
            }
            let baseline = free.requests as f64 / free_minutes as f64;
            let qualifying: Vec<Vec<i64>> = runs(&throttled, c.gap_minutes)
                .into_iter()
                .filter(|run| {
                    let errors: usize = run.iter().map(|m| by_minute[m].len()).sum();
                    let load = mean_requests(minutes, run);
                    run.len() >= c.min_minutes
                        && errors >= c.min_errors
                        && load >= c.load_ratio * baseline
                })
                .collect();
            for run in runs_merged(qualifying, self.config.merge_gap_s / 60) {
                let evs = in_minutes(&by_minute, &run);
                let load = mean_requests(minutes, &run);
                // The limit shows as what got through: the median of successes
                // per throttled minute.
                let mut accepted: Vec<u64> = run
                    .iter()
                    .map(|m| minutes.get(m).map_or(0, |c| c.ok))
                    .collect();
                accepted.sort_unstable();
                let knee = accepted[accepted.len() / 2];
                let traffic = self.traffic(&evs, |s| project(s) == key);
                let mut inc = self.incident(
                    Pattern::RateLimitUnderLoad,
                    Severity::Medium,
                    &evs,
                    traffic.requests,
                );
                if inc.error_rate() >= 0.2 {
                    inc.severity = Severity::High;
                }
                let cap = free
                    .mean_latency_s()
                    .map(|s| (s, ((knee as f64 / 60.0) * s).floor().max(1.0) as u64));
                inc.summary = format!(
                    "{} of {} calls to {} were rate limited (429) {}, in minutes running {load:.0} calls/min against {baseline:.0} calls/min on average (at most {busiest_free}) in 429-free minutes; about {knee} calls/min got through, so 429s start near that rate{}.",
                    inc.errors,
                    inc.requests,
                    label(&inc),
                    span(inc.start_ms, inc.end_ms),
                    match cap {
                        Some((s, cap)) => format!(
                            "; at {s:.1} s per call that is about {cap} concurrent call{}: cap concurrency there or raise the limit",
                            if cap == 1 { "" } else { "s" }
                        ),
                        None => String::new(),
                    }
                );
                out.push(inc);
            }
        }
    }

    fn quota_exhausted(&self, out: &mut Vec<Incident>) {
        let c = &self.config.quota_exhausted;
        if !c.enabled {
            return;
        }
        let key_of = |s: &Scope| (s.provider, s.key_fp.clone().or_else(|| s.service.clone()));
        for (key, events) in group(self.events(StatusClass::Quota), |e| key_of(&e.scope)) {
            let episodes: Vec<_> = split(&events, c.gap_s * 1000)
                .into_iter()
                .filter(|ep| ep.len() >= c.min_errors)
                .collect();
            for ep in self.merge(episodes) {
                let traffic = self.traffic(&ep, |s| key_of(s) == key);
                let mut inc = self.incident(
                    Pattern::QuotaExhausted,
                    Severity::Critical,
                    &ep,
                    traffic.requests,
                );
                inc.summary = format!(
                    "{} of {} calls to {} failed with {} {}: the account is out of quota or credit, and retrying does not help.",
                    inc.errors,
                    inc.requests,
                    label(&inc),
                    statuses(&ep),
                    span(inc.start_ms, inc.end_ms),
                );
                out.push(inc);
            }
        }
    }

    /// key_rotation_401 and auth_misconfigured: both start from the 401s of a key.
    fn auth(&self, out: &mut Vec<Incident>) {
        let rotation = &self.config.key_rotation_401;
        let misconfigured = &self.config.auth_misconfigured;
        if !rotation.enabled && !misconfigured.enabled {
            return;
        }
        // A key, or the service when the log names no key.
        let key_of = |s: &Scope| -> (Provider, Key, Key) {
            match &s.key_fp {
                Some(k) => (s.provider, Some(k.clone()), None),
                None => (s.provider, None, s.service.clone()),
            }
        };
        let failures = group(self.events(StatusClass::Auth), |e| key_of(&e.scope));
        if failures.is_empty() {
            return;
        }
        let mut ok_minutes: BTreeMap<(Provider, Key, Key), BTreeSet<i64>> = BTreeMap::new();
        for (scope, minutes) in &self.data.scopes {
            let set = ok_minutes.entry(key_of(scope)).or_default();
            set.extend(minutes.iter().filter(|(_, c)| c.ok > 0).map(|(m, _)| *m));
        }
        let empty = BTreeSet::new();
        for (key, events) in failures {
            let first = events[0].minute();
            let oks = ok_minutes.get(&key).unwrap_or(&empty);
            let worked_before = oks.range(..=first).next().is_some();
            let works_after = oks.range(first + 1..).next().is_some();
            // Another key of the same provider that works after the first 401.
            let replacement = ok_minutes
                .iter()
                .filter(|((p, k, _), _)| *p == key.0 && k.is_some() && *k != key.1)
                .filter(|(_, minutes)| minutes.range(first..).next().is_some())
                .map(|((_, k, _), _)| k.clone())
                .next()
                .flatten();
            let traffic = self.traffic(&events, |s| key_of(s) == key);
            let who = match (&key.1, &key.2) {
                (Some(k), _) => format!("key {k}"),
                (None, Some(service)) => format!("service {} (no key logged)", shown(service)),
                (None, None) => "calls with no key or service logged".to_owned(),
            };
            let services = distinct(&events, |e| e.scope.service.clone());
            if worked_before && !works_after && key.1.is_some() && replacement.is_some() {
                if !rotation.enabled || events.len() < rotation.min_errors {
                    continue;
                }
                let mut inc = self.incident(
                    Pattern::KeyRotation401,
                    Severity::High,
                    &events,
                    traffic.requests,
                );
                let last_ok = oks.range(..=first).next_back().copied().unwrap_or(first);
                inc.summary = format!(
                    "{who} ({}) worked until {} then failed with 401 on {} calls {}, while {} of the same provider succeeded: services still using the old key: {}.",
                    key.0,
                    minute_text(last_ok),
                    inc.errors,
                    span(inc.start_ms, inc.end_ms),
                    replacement.map_or_else(String::new, |k| format!("key {k}")),
                    if services.is_empty() { "(not logged)".to_owned() } else { services.join(", ") },
                );
                out.push(inc);
            } else if !works_after {
                if !misconfigured.enabled || events.len() < misconfigured.min_errors {
                    continue;
                }
                let mut inc = self.incident(
                    Pattern::AuthMisconfigured,
                    Severity::High,
                    &events,
                    traffic.requests,
                );
                let history = if worked_before {
                    "worked earlier, then every call failed with 401 and no other key of the provider took over (revoked or expired?)"
                } else {
                    "never succeeded in the window"
                };
                inc.summary = format!(
                    "{who} ({}) {history}: {} of {} calls failed {}{}.",
                    key.0,
                    inc.errors,
                    inc.requests,
                    span(inc.start_ms, inc.end_ms),
                    if services.is_empty() {
                        String::new()
                    } else {
                        format!(", from {}", services.join(", "))
                    },
                );
                out.push(inc);
            }
        }
    }

    fn long_context_timeout(&self, out: &mut Vec<Incident>) {
        let c = &self.config.long_context_timeout;
        if !c.enabled || self.data.edges.is_empty() {
            return;
        }
        let edges = &self.data.edges;
        let bucket_of = |tokens: u32| edges.partition_point(|&edge| edge <= tokens).max(1) - 1;
        let large_from = edges.partition_point(|&edge| edge < c.large_prompt_tokens);
        let timeouts = group(
            self.events(StatusClass::Timeout)
                .filter(|e| e.prompt_tokens.is_some()),
            |e| (e.scope.provider, e.scope.model.clone()),
        );
        for (key, events) in timeouts {
            let Some(calls) = self.data.buckets.get(&key) else {
                continue;
            };
            let mut timed_out = vec![0u64; edges.len()];
            for e in &events {
                timed_out[bucket_of(e.prompt_tokens.unwrap_or(0))] += 1;
            }
            let sum = |v: &[u64]| v.iter().sum::<u64>();
            let (large_n, small_n) = (sum(&timed_out[large_from..]), sum(&timed_out[..large_from]));
            let (large_calls, small_calls) = (sum(&calls[large_from..]), sum(&calls[..large_from]));
            if large_calls == 0 || (large_n as usize) < c.min_errors {
                continue;
            }
            let large_rate = large_n as f64 / large_calls as f64;
            let small_rate = if small_calls == 0 {
                0.0
            } else {
                small_n as f64 / small_calls as f64
            };
            if large_rate < c.min_rate || large_rate < c.min_ratio * small_rate {
                continue;
            }
            let large: Vec<&Event> = events
                .iter()
                .copied()
                .filter(|e| e.prompt_tokens.unwrap_or(0) >= c.large_prompt_tokens)
                .collect();
            if large.is_empty() {
                continue;
            }
            let mut inc = self.incident(
                Pattern::LongContextTimeout,
                Severity::Medium,
                &large,
                large_calls,
            );
            let mut table = String::new();
            for i in large_from..edges.len() {
                if calls[i] > 0 {
                    let upper = edges
                        .get(i + 1)
                        .map_or_else(|| "+".to_owned(), |e| format!("-{}", tokens_text(*e)));
                    let _ = write!(
                        table,
                        "{}{}{upper} {}/{}",
                        if table.is_empty() { "" } else { ", " },
                        tokens_text(edges[i]),
                        timed_out[i],
                        calls[i]
                    );
                }
            }
            inc.summary = format!(
                "{} of {} calls to {} with prompts of {} tokens or more timed out ({}), against {} of {} ({}) below; by prompt size: {table}; {}.",
                large_n,
                large_calls,
                label(&inc),
                tokens_text(c.large_prompt_tokens),
                percent(large_rate),
                small_n,
                small_calls,
                percent(small_rate),
                span(inc.start_ms, inc.end_ms),
            );
            out.push(inc);
        }
    }

    fn overload_persistent(&self, out: &mut Vec<Incident>) {
        let c = &self.config.overload_persistent;
        if !c.enabled {
            return;
        }
        let overloaded: Vec<&Event> = self.events(StatusClass::Overloaded).collect();
        let runs = self.model_runs(
            overloaded.iter().copied(),
            1,
            c.min_error_rate,
            c.gap_minutes,
            |evs| {
                evs.len() >= c.min_errors
                    && evs[evs.len() - 1].ts_ms - evs[0].ts_ms > c.min_duration_s * 1000
            },
        );
        for ((provider, model), ep, traffic) in runs {
            let mut inc = self.incident(
                Pattern::OverloadPersistent,
                Severity::High,
                &ep,
                traffic.requests,
            );
            let fallback = self.fallback(provider, model.as_ref(), &ep, &overloaded);
            inc.summary = format!(
                "{} answered overloaded on {} of {} calls {} ({}); {}.",
                label(&inc),
                inc.errors,
                inc.requests,
                span(inc.start_ms, inc.end_ms),
                duration_text(inc.duration_s()),
                match fallback {
                    Some((m, n)) => format!(
                        "{} served {n} calls without overload meanwhile: route there while it lasts",
                        shown(&m)
                    ),
                    None => "route to a smaller model (e.g. Opus -> Sonnet) while it lasts"
                        .to_owned(),
                }
            );
            out.push(inc);
        }
    }

    /// Another model of the provider that succeeded during the span and was never overloaded in it.
    fn fallback(
        &self,
        provider: Provider,
        model: Option<&Shared>,
        span: &[&Event],
        overloaded: &[&Event],
    ) -> Option<(Shared, u64)> {
        let (start, end) = (span[0].ts_ms, span[span.len() - 1].ts_ms);
        let busy: BTreeSet<&Shared> = overloaded
            .iter()
            .filter(|e| e.scope.provider == provider && (start..=end).contains(&e.ts_ms))
            .filter_map(|e| e.scope.model.as_ref())
            .collect();
        let candidates = self.data.series(|s| {
            (s.provider == provider && s.model.as_ref() != model)
                .then(|| s.model.clone())
                .flatten()
        });
        candidates
            .into_iter()
            .filter(|(m, _)| !busy.contains(m))
            .map(|(m, minutes)| {
                let ok: u64 = minutes
                    .range(span[0].minute()..=span[span.len() - 1].minute())
                    .map(|(_, c)| c.ok)
                    .sum();
                (m, ok)
            })
            .filter(|(_, ok)| *ok > 0)
            .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
    }

    fn server_error_storm(&self, out: &mut Vec<Incident>) {
        let c = &self.config.server_error_storm;
        if !c.enabled {
            return;
        }
        // Requests retried more than max_retries times, by attempt counter or
        // repeated id. Looked up once per failed call and never iterated:
        // hashed, not ordered (an ordered map compared ids byte by byte).
        let mut tries: HashMap<&str, (u64, u16), FastHash> =
            HashMap::with_capacity_and_hasher(self.data.events.len(), FastHash::default());
        for e in &self.data.events {
            if let Some(id) = &e.request_id {
                let entry = tries.entry(id).or_default();
                entry.0 += 1;
                entry.1 = entry.1.max(e.attempt.unwrap_or(0));
            }
        }
        let over = |e: &Event| {
            e.attempt.is_some_and(|a| a > c.max_retries)
                || e.request_id
                    .as_deref()
                    .and_then(|id| tries.get(id))
                    .is_some_and(|(n, a)| *n > u64::from(c.max_retries) + 1 || *a > c.max_retries)
        };
        let storms = self.model_runs(
            self.events(StatusClass::ServerError),
            c.min_per_minute,
            c.min_error_rate,
            c.gap_minutes,
            |evs| evs.len() >= c.min_errors,
        );
        let mut covered: Vec<(Provider, i64, i64)> = Vec::new();
        // Requests of a burst: their retries belong to it, even when they
        // land after its last 500.
        let mut in_storm: HashSet<&str, FastHash> = HashSet::default();
        for ((provider, _), evs, traffic) in storms {
            let mut inc = self.incident(
                Pattern::ServerErrorStorm,
                Severity::High,
                &evs,
                traffic.requests,
            );
            let retried = distinct(&evs, |e| {
                over(e)
                    .then(|| e.request_id.as_deref().map(Arc::<str>::from))
                    .flatten()
            });
            covered.push((provider, inc.start_ms, inc.end_ms));
            in_storm.extend(evs.iter().filter_map(|e| e.request_id.as_deref()));
            inc.summary = format!(
                "{} of {} calls to {} failed with 500 {}, peaking at {}/min{}.",
                inc.errors,
                inc.requests,
                label(&inc),
                span(inc.start_ms, inc.end_ms),
                inc.peak_rate,
                if retried.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; {} requests were retried more than {} times",
                        retried.len(),
                        c.max_retries
                    )
                },
            );
            out.push(inc);
        }
        // Retry storms outside any burst of 500s.
        let loose: Vec<&Event> = self
            .data
            .events
            .iter()
            .filter(|e| e.class != StatusClass::Ok && over(e))
            .filter(|e| {
                !e.request_id
                    .as_deref()
                    .is_some_and(|id| in_storm.contains(id))
            })
            .filter(|e| {
                !covered
                    .iter()
                    .any(|(p, s, t)| *p == e.scope.provider && (*s..=*t).contains(&e.ts_ms))
            })
            .collect();
        for (key, events) in group(loose.into_iter(), |e| model_key(&e.scope)) {
            for ep in split(&events, c.gap_minutes * 60_000) {
                let retried = distinct(&ep, |e| e.request_id.as_deref().map(Arc::<str>::from));
                if retried.len() < c.min_retried_requests {
                    continue;
                }
                let traffic = self.traffic(&ep, |s| model_key(s) == key);
                let mut inc = self.incident(
                    Pattern::ServerErrorStorm,
                    Severity::High,
                    &ep,
                    traffic.requests,
                );
                inc.summary = format!(
                    "{} requests to {} were retried more than {} times {} ({} failed attempts): a retry storm that multiplies load.",
                    retried.len(),
                    label(&inc),
                    c.max_retries,
                    span(inc.start_ms, inc.end_ms),
                    inc.errors,
                );
                out.push(inc);
            }
        }
    }

    fn outage(&self, out: &mut Vec<Incident>) {
        let c = &self.config.outage;
        if !c.enabled {
            return;
        }
        // Continuous means down minute after down minute, whatever the
        // traffic: a minute is down when most of its calls got 503.
        let spans = self.model_runs(
            self.events(StatusClass::Unavailable),
            1,
            c.min_error_rate,
            c.gap_minutes,
            |evs| {
                evs.len() >= c.min_errors
                    && evs[evs.len() - 1].ts_ms - evs[0].ts_ms >= c.min_duration_s * 1000
            },
        );
        for (_, evs, traffic) in spans {
            let long = evs[evs.len() - 1].ts_ms - evs[0].ts_ms >= c.critical_after_s * 1000;
            let severity = if long {
                Severity::Critical
            } else {
                Severity::High
            };
            let mut inc = self.incident(Pattern::Outage, severity, &evs, traffic.requests);
            inc.summary = format!(
                "{} was unavailable (503) for {} {}: {} of {} calls failed.",
                label(&inc),
                duration_text(inc.duration_s()),
                span(inc.start_ms, inc.end_ms),
                inc.errors,
                inc.requests,
            );
            out.push(inc);
        }
    }

    fn empty_response(&self, out: &mut Vec<Incident>) {
        let c = &self.config.empty_response;
        if !c.enabled {
            return;
        }
        for ((provider, model), events) in group(self.events(StatusClass::EmptyResponse), |e| {
            (e.scope.provider, e.scope.model.clone())
        }) {
            let scope = |s: &Scope| s.provider == provider && s.model == model;
            let episodes: Vec<_> = split(&events, c.gap_s * 1000)
                .into_iter()
                .filter(|ep| {
                    ep.len() >= c.min_errors
                        && ep.len() as f64 >= c.min_rate * self.traffic(ep, scope).requests as f64
                })
                .collect();
            for ep in self.merge(episodes) {
                let traffic = self.traffic(&ep, scope);
                let mut inc = self.incident(
                    Pattern::EmptyResponse,
                    Severity::Medium,
                    &ep,
                    traffic.requests,
                );
                inc.summary = format!(
                    "{} of {} calls to {} ({}) came back 2xx with no choices or empty content {}: count them as failures and retry once.",
                    inc.errors,
                    inc.requests,
                    label(&inc),
                    percent(inc.error_rate()),
                    span(inc.start_ms, inc.end_ms),
                );
                out.push(inc);
            }
        }
    }

    fn access_blocked(&self, out: &mut Vec<Incident>) {
        let c = &self.config.access_blocked;
        if !c.enabled {
            return;
        }
        let key_of = |e: &Event| (e.scope.provider, e.scope.service.clone(), e.cause.clone());
        for (key, events) in group(self.events(StatusClass::Permission), key_of) {
            let episodes: Vec<_> = split(&events, c.gap_s * 1000)
                .into_iter()
                .filter(|ep| ep.len() >= c.min_errors)
                .collect();
            for ep in self.merge(episodes) {
                let traffic = self.traffic(&ep, |s| s.provider == key.0 && s.service == key.1);
                let mut inc = self.incident(
                    Pattern::AccessBlocked,
                    Severity::High,
                    &ep,
                    traffic.requests,
                );
                inc.summary = format!(
                    "{} refused {} of {} calls with 403 ({}) {}: {}.",
                    label(&inc),
                    inc.errors,
                    inc.requests,
                    key.2,
                    span(inc.start_ms, inc.end_ms),
                    match &*key.2 {
                        "region_blocked" =>
                            "the provider does not serve the region the calls come from",
                        "model_access_denied" => "the key or project has no access to this model",
                        "tier_insufficient" => "the account tier does not allow this",
                        _ => "the key is not allowed to do this",
                    }
                );
                out.push(inc);
            }
        }
    }

    fn bad_request_spike(&self, out: &mut Vec<Incident>) {
        let c = &self.config.bad_request_spike;
        if !c.enabled {
            return;
        }
        let client = |e: &&Event| {
            matches!(
                e.class,
                StatusClass::BadRequest | StatusClass::Unprocessable | StatusClass::PayloadTooLarge
            )
        };
        let groups = group(self.data.events.iter().filter(client), |e| {
            (e.scope.service.clone(), e.cause.clone())
        });
        for ((service, cause), events) in groups {
            if events.len() < c.min_errors {
                continue;
            }
            let in_service = |s: &Scope| s.service == service;
            let whole = self.data.traffic(i64::MIN, i64::MAX, in_service);
            let episodes: Vec<_> = split(&events, c.gap_s * 1000)
                .into_iter()
                .filter(|ep| {
                    // Counting first: traffic lookups cost a pass over the scopes.
                    if ep.len() < c.min_errors {
                        return false;
                    }
                    let inside = self.traffic(ep, in_service).requests;
                    let rate = ep.len() as f64 / inside.max(1) as f64;
                    let outside_n = (events.len() - ep.len()) as f64;
                    let outside_calls = whole.requests.saturating_sub(inside) as f64;
                    let outside_rate = if outside_calls > 0.0 {
                        outside_n / outside_calls
                    } else {
                        0.0
                    };
                    rate >= c.min_rate && rate >= c.jump * outside_rate
                })
                .collect();
            for ep in self.merge(episodes) {
                let inside = self.traffic(&ep, in_service).requests;
                let before = events.iter().take_while(|e| e.ts_ms < ep[0].ts_ms).count();
                let mut inc =
                    self.incident(Pattern::BadRequestSpike, Severity::Medium, &ep, inside);
                inc.summary = format!(
                    "{} of {} calls from {} failed with 400 {cause} {} ({}); {}: look for a deploy or config change just before.",
                    inc.errors,
                    inc.requests,
                    service.as_deref().map_or_else(|| "calls with no service logged".to_owned(), |s| format!("service {s}")),
                    span(inc.start_ms, inc.end_ms),
                    percent(inc.error_rate()),
                    if before == 0 { "a cause not seen before in the window".to_owned() } else { format!("{before} such failures earlier in the window") },
                );
                out.push(inc);
            }
        }
    }

    fn secret_in_log(&self, out: &mut Vec<Incident>) {
        if !self.config.secret_in_log.enabled {
            return;
        }
        let leaking = self.data.events.iter().filter(|e| e.secrets > 0);
        for (service, events) in group(leaking, |e| e.scope.service.clone()) {
            let mut inc = self.incident(Pattern::SecretInLog, Severity::High, &events, 0);
            // Pointers only: a request id next to a secret is harmless, the line is what matters.
            inc.evidence = events
                .iter()
                .take(self.config.evidence)
                .map(|e| format!("{}:{}", e.file, e.line))
                .collect();
            let files = distinct(&events, |e| Some(e.file.clone()));
            let secrets: u64 = events.iter().map(|e| u64::from(e.secrets)).sum();
            inc.summary = format!(
                "{}{} {} {} {} (in {}); faultline copies none of them, but the logs leak them: rotate those keys and stop logging credentials.",
                plural(inc.errors, "log line", "log lines"),
                service.as_deref().map_or_else(String::new, |s| format!(" of service {}", shown(s))),
                if inc.errors == 1 { "holds" } else { "hold" },
                plural(secrets, "plaintext API key or token", "plaintext API keys or tokens"),
                span(inc.start_ms, inc.end_ms),
                files.join(", "),
            );
            out.push(inc);
        }
    }
}

/// `1 log line`, `3 log lines`.
fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What to do and who to call, per pattern.
fn advice(pattern: Pattern) -> (&'static str, &'static str) {
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
fn statuses(events: &[&Event]) -> String {
    let set: BTreeSet<String> = events
        .iter()
        .map(|e| match e.http_status {
            Some(status) => format!("{status} {}", e.cause),
            None => e.cause.to_string(),
        })
        .collect();
    set.into_iter().collect::<Vec<_>>().join(" / ")
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

fn clock(ms: i64) -> (String, String) {
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

fn minute_text(minute: i64) -> String {
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

fn tokens_text(tokens: u32) -> String {
    if tokens >= 1000 && tokens.is_multiple_of(1000) {
        format!("{}K", tokens / 1000)
    } else {
        tokens.to_string()
    }
}

/// FNV-1a, 64 bits: a stable id hash with no dependency and no per-run seed.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
