//! Findings about how clients retry: a kind of retry the guide advises
//! against (a 401 retried, a 429 retried at once...), made by one service
//! in enough requests to act on. The engine finds them once calls are
//! grouped into requests; here they become incidents, or a sentence of the
//! incident of the event they were part of.
//!
//! One event is one incident: when an incident of the failure the clients
//! retried (a 500 storm for 500s retried too often) covers the same
//! service and overlaps the same time, the finding is told in that
//! incident's summary rather than reported again. Otherwise it is an
//! incident of its own (`retry_policy`) when at least `min_operations`
//! requests did it.

use std::sync::Arc;

use faultline_classify::Provider;
use faultline_ingest::Shared;

use crate::config::DetectConfig;
use crate::detect::incident_id;
use crate::{Incident, Pattern, Severity, Touched};

/// Requests past this many times `min_operations` make a finding medium,
/// not low.
const MEDIUM_AFTER: u64 = 10;

/// One kind of retry one service made against the guide.
#[derive(Debug, Clone)]
pub struct RetryFinding {
    /// The misstep's stable name (e.g. `server_error_over_retried`).
    pub misstep: &'static str,
    /// What the guide says, and what the clients did.
    pub guide: &'static str,
    pub did: &'static str,
    /// The patterns of the incidents an event of this failure would be.
    pub patterns: &'static [Pattern],
    /// Those of them whose summary already counts these retries (a 500
    /// storm counts the requests retried more than 3 times).
    pub told_by: &'static [Pattern],
    pub service: Option<Shared>,
    /// The provider and model, when all the requests share one.
    pub provider: Option<Provider>,
    pub model: Option<Shared>,
    /// Start of the first such request, end of the last.
    pub start_ms: i64,
    pub end_ms: i64,
    /// Requests that did it, and the retries against the guide in them.
    pub operations: u64,
    pub retries: u64,
    /// Example operation ids, and when each started.
    pub examples: Vec<(String, i64)>,
}

impl RetryFinding {
    /// One sentence with the numbers; `when` adds the span (an incident
    /// of its own has no other sentence to give it).
    fn sentence(&self, when: bool) -> String {
        let who = self
            .service
            .as_ref()
            .map_or_else(|| "Clients".to_owned(), |s| format!("Clients of {s}"));
        let span = if when {
            format!(" {}", crate::detect::span(self.start_ms, self.end_ms))
        } else {
            String::new()
        };
        format!(
            "{who} {} in {} {}{span} ({} {} against the guide: {}).",
            self.did,
            self.operations,
            if self.operations == 1 {
                "request"
            } else {
                "requests"
            },
            self.retries,
            if self.retries == 1 {
                "retry"
            } else {
                "retries"
            },
            self.guide,
        )
    }

    /// Whether `inc` is the incident of the event this finding was part
    /// of: a pattern of the failure retried, the same service, and spans
    /// that overlap (within the merge gap).
    fn part_of(&self, inc: &Incident, gap_ms: i64) -> bool {
        // `services` lists every service an incident touched, its shared
        // one too.
        let same_service = match &self.service {
            Some(service) => inc.services.iter().any(|t| &t.name == service),
            None => inc.service.is_none(),
        };
        self.patterns.contains(&inc.pattern)
            && same_service
            && self.start_ms <= inc.end_ms.saturating_add(gap_ms)
            && inc.start_ms <= self.end_ms.saturating_add(gap_ms)
    }
}

/// Adds `findings` to `incidents`: each told in the incident of its event
/// when there is one, else an incident of its own when enough requests
/// did it. `incidents` are left in detection order.
pub fn add_retry_findings(
    incidents: &mut Vec<Incident>,
    findings: &[RetryFinding],
    config: &DetectConfig,
) {
    let rule = &config.retry_policy;
    if !rule.enabled {
        return;
    }
    let gap_ms = config.merge_gap_s.saturating_mul(1000);
    for finding in findings {
        if let Some(inc) = incidents
            .iter_mut()
            .find(|inc| finding.part_of(inc, gap_ms))
        {
            if !finding.told_by.contains(&inc.pattern) {
                inc.summary.push(' ');
                inc.summary.push_str(&finding.sentence(false));
            }
            continue;
        }
        if finding.operations < rule.min_operations {
            continue;
        }
        incidents.push(incident(finding, rule.min_operations, config.evidence));
    }
    crate::detect::order(incidents);
}

fn incident(finding: &RetryFinding, min_operations: u64, evidence: usize) -> Incident {
    let severity = if finding.operations >= MEDIUM_AFTER * min_operations.max(1) {
        Severity::Medium
    } else {
        Severity::Low
    };
    let examples = &finding.examples[..finding.examples.len().min(evidence)];
    let services = finding
        .service
        .iter()
        .map(|name| Touched {
            name: name.clone(),
            errors: finding.retries,
        })
        .collect();
    let mut inc = Incident {
        id: String::new(),
        pattern: Pattern::RetryPolicy,
        severity,
        provider: finding.provider,
        model: finding.model.clone(),
        service: finding.service.clone(),
        key_fp: None,
        cause: Some(Arc::from(finding.misstep)),
        start_ms: finding.start_ms,
        end_ms: finding.end_ms,
        requests: finding.operations,
        errors: finding.retries,
        peak_rate: 0,
        summary: finding.sentence(true),
        action: format!("follow the guide when retrying: {}", finding.guide),
        escalation: "the team that owns the client's retry policy".to_owned(),
        evidence: examples.iter().map(|(id, _)| id.clone()).collect(),
        models: finding
            .model
            .iter()
            .map(|name| Touched {
                name: name.clone(),
                errors: finding.retries,
            })
            .collect(),
        services,
        keys: Vec::new(),
        evidence_ms: examples.iter().map(|(_, ms)| *ms).collect(),
        per_minute: Vec::new(),
    };
    inc.id = incident_id(&inc);
    inc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(service: &str, operations: u64, start_ms: i64) -> RetryFinding {
        RetryFinding {
            misstep: "rate_limit_no_backoff",
            guide: "429: back off (about 30 s), honour Retry-After",
            did: "retried a 429 within 1 s",
            patterns: &[Pattern::RateLimitUnderLoad, Pattern::QuotaExhausted],
            told_by: &[],
            service: Some(Shared::from(service)),
            provider: Some(Provider::OpenAi),
            model: None,
            start_ms,
            end_ms: start_ms + 60_000,
            operations,
            retries: operations * 2,
            examples: vec![("op_00000000000000aa".to_owned(), start_ms)],
        }
    }

    fn rate_limited(service: &str, start_ms: i64) -> Incident {
        let mut inc = incident(&finding(service, 1, start_ms), 1, 5);
        inc.pattern = Pattern::RateLimitUnderLoad;
        inc.severity = Severity::High;
        inc.summary = "40 of 100 calls failed with 429.".to_owned();
        inc.id = incident_id(&inc);
        inc
    }

    #[test]
    fn a_finding_during_the_incident_of_its_failure_is_told_there() {
        let config = DetectConfig::default();
        let mut incidents = vec![rate_limited("checkout", 1_000_000)];
        // Starts within the merge gap of the incident's end.
        let late = 1_000_000 + 60_000 + config.merge_gap_s * 1000 - 1;
        add_retry_findings(&mut incidents, &[finding("checkout", 50, late)], &config);
        assert_eq!(incidents.len(), 1, "one event, one incident");
        assert_eq!(
            incidents[0].summary,
            "40 of 100 calls failed with 429. Clients of checkout retried a 429 within 1 s \
             in 50 requests (100 retries against the guide: 429: back off (about 30 s), \
             honour Retry-After)."
        );
    }

    #[test]
    fn a_finding_of_another_service_time_or_failure_stands_alone() {
        let config = DetectConfig::default();
        let far = 1_000_000 + 60_000 + config.merge_gap_s * 1000 + 1;
        let mut timeouts = rate_limited("checkout", 1_000_000);
        timeouts.pattern = Pattern::LongContextTimeout;
        timeouts.id = incident_id(&timeouts);
        for (incident, finding) in [
            (
                rate_limited("search", 1_000_000),
                finding("checkout", 5, 1_000_000),
            ),
            (
                rate_limited("checkout", 1_000_000),
                finding("checkout", 5, far),
            ),
            (timeouts, finding("checkout", 5, 1_000_000)),
        ] {
            let mut incidents = vec![incident.clone()];
            add_retry_findings(&mut incidents, &[finding], &config);
            assert_eq!(incidents.len(), 2);
            assert_eq!(incidents[0], incident, "the High incident first, untouched");
            assert_eq!(incidents[1].pattern, Pattern::RetryPolicy);
            assert_eq!(incidents[1].severity, Severity::Low);
            assert_ne!(incidents[1].id, incident.id);
        }
    }

    #[test]
    fn too_few_requests_or_a_switched_off_rule_find_nothing() {
        let mut config = DetectConfig::default();
        let mut incidents = Vec::new();
        let below = config.retry_policy.min_operations - 1;
        add_retry_findings(&mut incidents, &[finding("checkout", below, 0)], &config);
        assert!(incidents.is_empty());
        config.retry_policy.enabled = false;
        add_retry_findings(&mut incidents, &[finding("checkout", 500, 0)], &config);
        assert!(incidents.is_empty());
        config.retry_policy.enabled = true;
        add_retry_findings(&mut incidents, &[finding("checkout", 500, 0)], &config);
        assert_eq!(incidents[0].severity, Severity::Medium, "500 requests");
    }
}
