//! A provider failing: persistent overload, server error storms, outages, and the fallbacks that answered.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use faultline_ingest::Shared;

use crate::collect::Event;
use crate::{Incident, Pattern, Severity};
use faultline_classify::{Provider, StatusClass};

use super::wording::{duration_text, label, shown, span};
use super::{distinct, group, model_key, split, Ctx, FastHash};

impl Ctx<'_> {
    pub(super) fn overload_persistent(&self, out: &mut Vec<Incident>) {
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
    pub(super) fn fallback(
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

    pub(super) fn server_error_storm(&self, out: &mut Vec<Incident>) {
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

    pub(super) fn outage(&self, out: &mut Vec<Incident>) {
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
}
