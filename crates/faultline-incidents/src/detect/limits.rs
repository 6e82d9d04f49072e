//! Rate limits and quotas: 429s under load, and limits that are quota.

use crate::collect::{Counts, Event, Scope};
use crate::{Incident, Pattern, Severity};
use faultline_classify::StatusClass;

use super::wording::{label, span, statuses};
use super::{group, in_minutes, mean_requests, runs, runs_merged, split, Ctx};

impl Ctx<'_> {
    pub(super) fn rate_limit_under_load(&self, out: &mut Vec<Incident>) {
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

    pub(super) fn quota_exhausted(&self, out: &mut Vec<Incident>) {
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
}
