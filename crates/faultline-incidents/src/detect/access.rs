//! Access: keys rotated or misconfigured, access blocked, secrets in logs.

use std::collections::{BTreeMap, BTreeSet};

use crate::collect::{Event, Scope};
use crate::{Incident, Pattern, Severity};
use faultline_classify::{Provider, StatusClass};

use super::wording::{label, minute_text, plural, shown, span};
use super::{distinct, group, split, Ctx, Key};

impl Ctx<'_> {
    /// key_rotation_401 and auth_misconfigured: both start from the 401s of a key.
    pub(super) fn auth(&self, out: &mut Vec<Incident>) {
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

    pub(super) fn access_blocked(&self, out: &mut Vec<Incident>) {
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

    pub(super) fn secret_in_log(&self, out: &mut Vec<Incident>) {
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
