//! Answers that are wrong without an error status: empty responses, bad request spikes.

use crate::collect::{Event, Scope};
use crate::{Incident, Pattern, Severity};
use faultline_classify::StatusClass;

use super::wording::{label, percent, span};
use super::{group, split, Ctx};

impl Ctx<'_> {
    pub(super) fn empty_response(&self, out: &mut Vec<Incident>) {
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

    pub(super) fn bad_request_spike(&self, out: &mut Vec<Incident>) {
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
}
