//! One event, one incident: the detectors look at one scope at a time (a
//! model, a key, a service), so an event that hits several scopes of one
//! provider at once (a provider-wide 503 burst on two models, an org quota
//! hitting every key, a 500 storm and the retry storm it sets off) comes out
//! of them as several incidents. This pass joins them back into one.
//!
//! Incidents join when they have the same pattern and provider (and, for
//! `access_blocked` and `bad_request_spike`, the same cause), and each
//! starts no later than `merge_gap_s` after the end of the ones before it:
//! the rule that joins episodes of one scope, applied across scopes. A
//! narrow incident stays narrow: one model overloaded while its sibling
//! works has no second incident to join. `secret_in_log` never joins: each
//! service's leak is its own fix.

use std::collections::BTreeMap;

use faultline_ingest::Shared;

use crate::collect::{Collected, Scope};
use crate::config::DetectConfig;
use crate::detect::{incident_id, label, shown, spread};
use crate::{named, Incident, Pattern, Touched, NAMED};
use faultline_classify::Provider;

/// Which incidents may be one event: pattern, provider, and the cause for
/// the patterns whose cause is the event.
type JoinKey = (Pattern, Option<Provider>, Option<std::sync::Arc<str>>);

fn join_key(inc: &Incident) -> Option<JoinKey> {
    let cause = match inc.pattern {
        Pattern::SecretInLog => return None,
        Pattern::AccessBlocked | Pattern::BadRequestSpike => inc.cause.clone(),
        _ => None,
    };
    Some((inc.pattern, inc.provider, cause))
}

/// The incidents with those of one event joined; the others as they were,
/// in the order they came.
pub(crate) fn join_events(
    found: Vec<Incident>,
    data: &Collected,
    config: &DetectConfig,
) -> Vec<Incident> {
    let gap = config.merge_gap_s * 1000;
    let mut by_key: BTreeMap<JoinKey, Vec<usize>> = BTreeMap::new();
    for (at, inc) in found.iter().enumerate() {
        if let Some(key) = join_key(inc) {
            by_key.entry(key).or_default().push(at);
        }
    }
    // Each incident's cluster: the first incident of its event.
    let mut lead: Vec<usize> = (0..found.len()).collect();
    for (_, mut members) in by_key {
        members.sort_by(|&a, &b| {
            let (a, b) = (&found[a], &found[b]);
            (a.start_ms, a.end_ms, &a.id).cmp(&(b.start_ms, b.end_ms, &b.id))
        });
        let mut cluster_lead = members[0];
        let mut cluster_end = found[members[0]].end_ms;
        for &at in &members[1..] {
            if found[at].start_ms <= cluster_end + gap {
                lead[at] = cluster_lead;
                cluster_end = cluster_end.max(found[at].end_ms);
            } else {
                cluster_lead = at;
                cluster_end = found[at].end_ms;
            }
        }
    }
    let mut parts: BTreeMap<usize, Vec<Incident>> = BTreeMap::new();
    for (at, inc) in found.into_iter().enumerate() {
        parts.entry(lead[at]).or_default().push(inc);
    }
    parts
        .into_values()
        .map(|mut event| {
            if event.len() == 1 {
                event.pop().expect("one part")
            } else {
                joined(event, data, config)
            }
        })
        .collect()
}

/// One incident of an event's parts (at least two, the first starting first).
fn joined(mut parts: Vec<Incident>, data: &Collected, config: &DetectConfig) -> Incident {
    parts.sort_by(|a, b| (a.start_ms, &a.id).cmp(&(b.start_ms, &b.id)));
    let first = &parts[0];
    let shared = |value: fn(&Incident) -> Option<&Shared>| -> Option<Shared> {
        let v = value(first)?;
        parts.iter().all(|p| value(p) == Some(v)).then(|| v.clone())
    };
    let model = shared(|p| p.model.as_ref());
    let service = shared(|p| p.service.as_ref());
    let key_fp = shared(|p| p.key_fp.as_ref());
    let cause = first
        .cause
        .clone()
        .filter(|c| parts.iter().all(|p| p.cause.as_ref() == Some(c)));
    let start_ms = parts
        .iter()
        .map(|p| p.start_ms)
        .min()
        .unwrap_or(first.start_ms);
    let end_ms = parts.iter().map(|p| p.end_ms).max().unwrap_or(first.end_ms);

    let mut per_minute: BTreeMap<i64, u64> = BTreeMap::new();
    for p in &parts {
        for &(minute, n) in &p.per_minute {
            *per_minute.entry(minute).or_default() += n;
        }
    }
    let errors: u64 = parts.iter().map(|p| p.errors).sum();
    let requests = match first.pattern {
        // Their requests are not the scope's calls (prompts over a size,
        // lines): the parts' own counts add up.
        Pattern::LongContextTimeout | Pattern::SecretInLog => {
            parts.iter().map(|p| p.requests).sum()
        }
        _ => {
            let scopes: Vec<PartScope<'_>> = parts.iter().map(PartScope::of).collect();
            let from = start_ms.div_euclid(60_000);
            let to = end_ms.div_euclid(60_000);
            data.traffic(from, to, |s| scopes.iter().any(|p| p.holds(s)))
                .requests
        }
    }
    .max(errors);

    let mut pointers: Vec<(i64, &String)> = parts
        .iter()
        .flat_map(|p| p.evidence_ms.iter().copied().zip(&p.evidence))
        .collect();
    pointers.sort();
    pointers.dedup_by(|a, b| a.1 == b.1);
    let (evidence_ms, evidence): (Vec<i64>, Vec<String>) = spread(&pointers, config.evidence)
        .into_iter()
        .map(|(ms, pointer)| (ms, pointer.clone()))
        .unzip();

    let models = touched(parts.iter().map(|p| &p.models));
    let services = touched(parts.iter().map(|p| &p.services));
    let keys = touched(parts.iter().map(|p| &p.keys));
    let summary = summary(&parts, &models, &services, &keys);
    let mut inc = Incident {
        id: String::new(),
        pattern: first.pattern,
        severity: parts
            .iter()
            .map(|p| p.severity)
            .min()
            .unwrap_or(first.severity),
        provider: first.provider,
        model,
        service,
        key_fp,
        cause,
        start_ms,
        end_ms,
        requests,
        errors,
        peak_rate: per_minute.values().copied().max().unwrap_or(0),
        summary,
        action: first.action.clone(),
        escalation: first.escalation.clone(),
        evidence,
        models,
        services,
        keys,
        evidence_ms,
        per_minute: per_minute.into_iter().collect(),
    };
    inc.id = incident_id(&inc);
    inc
}

/// What one part covered: the values all its calls shared (none: any).
struct PartScope<'a> {
    provider: Option<Provider>,
    model: Option<&'a Shared>,
    service: Option<&'a Shared>,
    key_fp: Option<&'a Shared>,
}

impl PartScope<'_> {
    fn of(inc: &Incident) -> PartScope<'_> {
        PartScope {
            provider: inc.provider,
            model: inc.model.as_ref(),
            service: inc.service.as_ref(),
            key_fp: inc.key_fp.as_ref(),
        }
    }

    fn holds(&self, s: &Scope) -> bool {
        let fits =
            |want: Option<&Shared>, have: Option<&Shared>| want.is_none_or(|w| have == Some(w));
        self.provider.is_none_or(|p| p == s.provider)
            && fits(self.model, s.model.as_ref())
            && fits(self.service, s.service.as_ref())
            && fits(self.key_fp, s.key_fp.as_ref())
    }
}

/// The parts' lists added up, busiest first.
fn touched<'a>(lists: impl Iterator<Item = &'a Vec<Touched>>) -> Vec<Touched> {
    let mut counts: BTreeMap<Shared, u64> = BTreeMap::new();
    for list in lists {
        for t in list {
            *counts.entry(t.name.clone()).or_default() += t.errors;
        }
    }
    Touched::busiest_first(counts)
}

/// `One event across 2 models of deepseek (deepseek-chat: 300,
/// deepseek-reasoner: 120): ` (failing calls of each) and each part's own
/// sentence, in time order.
fn summary(
    parts: &[Incident],
    models: &[Touched],
    services: &[Touched],
    keys: &[Touched],
) -> String {
    let provider = parts[0]
        .provider
        .map_or("an unknown provider", Provider::as_str);
    let mut across = Vec::new();
    for (list, what) in [(models, "models"), (services, "services"), (keys, "keys")] {
        if list.len() > 1 {
            let names = named(list, |t| format!("{}: {}", shown(&t.name), t.errors));
            across.push(format!("{} {what} ({})", list.len(), names.join(", ")));
        }
    }
    let mut sentences: Vec<String> = parts
        .iter()
        .take(NAMED)
        .map(|p| p.summary.clone())
        .collect();
    if parts.len() > NAMED {
        sentences.push(format!(
            "And {} more parts of the same kind.",
            parts.len() - NAMED
        ));
    }
    if across.is_empty() {
        // One scope seen twice (a burst and the retries it set off).
        format!("One event on {}: {}", label(&parts[0]), sentences.join(" "))
    } else {
        format!(
            "One event across {} of {provider}: {}",
            across.join(" and "),
            sentences.join(" ")
        )
    }
}
