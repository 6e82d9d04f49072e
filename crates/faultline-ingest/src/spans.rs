//! One call, one record: the OpenTelemetry spans of one call joined.
//!
//! An instrumented client writes several spans for one call. The GenAI span
//! (`gen_ai.*` attributes) is the call; an HTTP client span under it
//! (`opentelemetry-instrumentation-httpx`: `http.status_code`, `http.url`)
//! is the request the SDK sent, and often the only place the HTTP status is
//! written; LiteLLM's `raw_gen_ai_request` span holds the provider's raw
//! exchange. Such a child gives its status and host to its GenAI parent's
//! record and is no record of its own. And two instrumentations may each
//! write a GenAI span of the same call, in two traces: the Anthropic SDK's
//! own span and OpenLLMetry's around it. The two become one record.
//!
//! Spans come in one OTLP export or in several, one span per line, in any
//! order: they are joined over the whole piece of input a worker reads (a
//! few MiB of whole lines), which holds the spans of a call but for those
//! a piece's end cuts apart. A child with no parent in its piece is counted
//! ([`crate::Counts::child_spans_unjoined`]), not quarantined: its line was
//! read, and its call has a record of its own.

use std::collections::{HashMap, HashSet};

use crate::record::set_if_none;
use crate::record::{HttpAttempts, Record};
use crate::text::Shared;

/// What a child span tells of its call.
#[derive(Debug)]
pub(crate) struct Child {
    /// `trace id/parent span id`, lower-case hex.
    pub(crate) parent: String,
    pub(crate) status: Option<u16>,
    pub(crate) host: Option<Shared>,
    /// An HTTP request (not LiteLLM's raw-request span): one attempt of
    /// the call.
    pub(crate) request: bool,
    pub(crate) start_ms: Option<i64>,
}

/// A GenAI span that became a record.
#[derive(Debug)]
pub(crate) struct CallSpan {
    /// The record's index in the batch.
    pub(crate) index: usize,
    /// `trace id/span id`, lower-case hex.
    pub(crate) key: Option<String>,
    /// The span's name: two instrumentations name their spans differently.
    pub(crate) name: Option<String>,
    pub(crate) start_ms: i64,
    pub(crate) end_ms: i64,
    pub(crate) model: Option<Shared>,
    /// The provider's response and request ids the span holds.
    pub(crate) ids: Vec<String>,
}

/// Two spans of one call, by two instrumentations, start and end within
/// this of each other (the outer one wraps the SDK method the inner one
/// traces).
const SAME_CALL_MS: i64 = 250;

/// The spans of one piece, gathered while its lines are read.
#[derive(Debug, Default)]
pub(crate) struct SpanLinks {
    calls: Vec<CallSpan>,
    children: Vec<Child>,
}

/// What joining a piece's spans did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Joined {
    /// Child spans read.
    pub(crate) children: u64,
    /// Of those, the ones whose parent was not in the piece.
    pub(crate) unjoined: u64,
    /// GenAI spans of a call another instrumentation's span already
    /// recorded: merged into that record, and removed.
    pub(crate) duplicates: u64,
}

impl SpanLinks {
    pub(crate) fn call(&mut self, call: CallSpan) {
        self.calls.push(call);
    }

    pub(crate) fn child(&mut self, child: Child) {
        self.children.push(child);
    }

    /// Gives each child's status and host to its parent's record, and merges
    /// the records of one call's spans, removing all but the first.
    pub(crate) fn join(self, records: &mut Vec<Record>) -> Joined {
        let mut joined = Joined {
            children: self.children.len() as u64,
            ..Joined::default()
        };
        if !self.children.is_empty() {
            joined.unjoined = join_children(&self.calls, self.children, records);
        }
        if self.calls.len() > 1 {
            joined.duplicates = merge_duplicates(self.calls, records);
        }
        joined
    }
}

/// Joins children to their parents; returns how many found none.
///
/// A call with several HTTP requests under it (an SDK's own retries) takes
/// the status of the last one to start, and keeps what the others were
/// ([`Record::http_attempts`]).
fn join_children(calls: &[CallSpan], mut children: Vec<Child>, records: &mut [Record]) -> u64 {
    let parents: HashMap<&str, usize> = calls
        .iter()
        .filter_map(|c| Some((c.key.as_deref()?, c.index)))
        .collect();
    // Requests in the order they were sent; the others after them, each
    // group in line order.
    children.sort_by_key(|c| (c.start_ms.is_none(), c.start_ms));
    let mut requests: HashMap<usize, HttpAttempts> = HashMap::new();
    let mut from_child: HashSet<usize> = HashSet::new();
    let mut unjoined = 0;
    for child in children {
        let Some(&index) = parents.get(child.parent.as_str()) else {
            unjoined += 1;
            continue;
        };
        let Some(rec) = records.get_mut(index) else {
            unjoined += 1;
            continue;
        };
        if child.request {
            requests
                .entry(index)
                .and_modify(|r| {
                    r.count = r.count.saturating_add(1);
                    r.last_start_ms = child.start_ms.or(r.last_start_ms);
                })
                .or_insert(HttpAttempts {
                    count: 1,
                    first_status: child.status,
                    last_start_ms: child.start_ms,
                });
        }
        if let Some(status) = child.status {
            // A GenAI span that ended without an error was read as a 200;
            // the request's own status says better, and of several requests
            // the last one's.
            let assumed_ok = rec.http_status == Some(200)
                && rec.error_type.is_none()
                && rec.error_message.is_none();
            if assumed_ok || rec.http_status.is_none() || from_child.contains(&index) {
                rec.http_status = Some(status);
                from_child.insert(index);
            }
        }
        set_if_none(&mut rec.host, child.host);
    }
    for (index, sent) in requests {
        if sent.count > 1 {
            if let Some(rec) = records.get_mut(index) {
                rec.http_attempts = Some(sent);
                set_if_none(&mut rec.attempt, Some(sent.count - 1));
            }
        }
    }
    unjoined
}

/// Whether two spans, of different names, are one call: the same model,
/// the same moments, and no provider id that tells them apart.
fn same_call(a: &CallSpan, b: &CallSpan) -> bool {
    let named_apart = matches!((&a.name, &b.name), (Some(x), Some(y)) if x != y);
    let ids_agree =
        a.ids.is_empty() || b.ids.is_empty() || a.ids.iter().any(|id| b.ids.contains(id));
    named_apart
        && a.model.is_some()
        && a.model == b.model
        && (a.start_ms - b.start_ms).abs() <= SAME_CALL_MS
        && (a.end_ms - b.end_ms).abs() <= SAME_CALL_MS
        && ids_agree
}

/// Merges the records of spans that are one call into the first of them;
/// returns how many records were removed. Pairs are taken best first (a
/// shared provider id, then the closest moments), so that a call next to
/// another is not paired with its neighbour's span.
fn merge_duplicates(mut calls: Vec<CallSpan>, records: &mut Vec<Record>) -> u64 {
    calls.sort_by_key(|c| (c.start_ms, c.index));
    let mut pairs = Vec::new();
    for (i, a) in calls.iter().enumerate() {
        for b in &calls[i + 1..] {
            if b.start_ms - a.start_ms > SAME_CALL_MS {
                break;
            }
            if same_call(a, b) {
                let shared = a.ids.iter().any(|id| b.ids.contains(id));
                let apart = (a.start_ms - b.start_ms).abs() + (a.end_ms - b.end_ms).abs();
                pairs.push((!shared, apart, a.index.min(b.index), a.index.max(b.index)));
            }
        }
    }
    pairs.sort_unstable();
    let mut gone = vec![false; records.len()];
    let mut paired = vec![false; records.len()];
    let mut removed = 0;
    for (_, _, keep, drop) in pairs {
        if paired[keep] || paired[drop] {
            continue;
        }
        paired[keep] = true;
        paired[drop] = true;
        let other = std::mem::take(&mut records[drop]);
        merge(&mut records[keep], other);
        gone[drop] = true;
        removed += 1;
    }
    if removed > 0 {
        let mut at = 0;
        records.retain(|_| {
            at += 1;
            !gone[at - 1]
        });
    }
    removed
}

/// Fills what `rec` lacks from another span's record of the same call.
fn merge(rec: &mut Record, other: Record) {
    set_if_none(&mut rec.request_id, other.request_id);
    set_if_none(&mut rec.service, other.service);
    set_if_none(&mut rec.provider_hint, other.provider_hint);
    set_if_none(&mut rec.host, other.host);
    set_if_none(&mut rec.key_fp, other.key_fp);
    set_if_none(&mut rec.http_status, other.http_status);
    set_if_none(&mut rec.error_type, other.error_type);
    set_if_none(&mut rec.error_code, other.error_code);
    set_if_none(&mut rec.error_message, other.error_message);
    set_if_none(&mut rec.body_shape, other.body_shape);
    set_if_none(&mut rec.latency_ms, other.latency_ms);
    set_if_none(&mut rec.prompt_tokens, other.prompt_tokens);
    set_if_none(&mut rec.completion_tokens, other.completion_tokens);
    set_if_none(&mut rec.max_tokens, other.max_tokens);
    set_if_none(&mut rec.attempt, other.attempt);
    set_if_none(&mut rec.stream, other.stream);
    set_if_none(&mut rec.timeout_ms, other.timeout_ms);
    set_if_none(&mut rec.retry_after_s, other.retry_after_s);
    set_if_none(&mut rec.cost_usd, other.cost_usd);
    let failed = rec.error_type.is_some() || rec.error_message.is_some();
    rec.empty_response = !failed && (rec.empty_response || other.empty_response);
    rec.secrets_found = rec.secrets_found.max(other.secrets_found);
}

/// A span or trace id as hex text, lower case, without a `0x`.
pub(crate) fn span_id(text: &str) -> Option<String> {
    let text = text.trim();
    let text = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| text.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: Option<u16>) -> Record {
        Record {
            http_status: status,
            ..Record::default()
        }
    }

    fn call(index: usize, key: &str, name: &str, start_ms: i64, ids: &[&str]) -> CallSpan {
        CallSpan {
            index,
            key: Some(key.into()),
            name: Some(name.into()),
            start_ms,
            end_ms: start_ms + 900,
            model: Some(Shared::from("claude-sonnet-4")),
            ids: ids.iter().map(|id| (*id).to_owned()).collect(),
        }
    }

    fn child(parent: &str, status: Option<u16>) -> Child {
        Child {
            parent: parent.into(),
            status,
            host: None,
            request: true,
            start_ms: None,
        }
    }

    #[test]
    fn several_requests_under_one_call_are_its_retries_and_the_last_one_decides() {
        // A failed call whose SDK retried: spans in any order; the parent
        // read no status of its own.
        let mut records = vec![Record {
            error_type: Some("RateLimitError".into()),
            ..Record::default()
        }];
        let mut links = SpanLinks::default();
        let at = |status, start_ms| Child {
            start_ms: Some(start_ms),
            ..child("t/p", Some(status))
        };
        links.child(at(500, 2_000));
        links.call(call(0, "t/p", "chat", 0, &[]));
        links.child(at(429, 0));
        links.child(at(503, 900));
        links.join(&mut records);
        assert_eq!(records[0].http_status, Some(500), "the last request's");
        assert_eq!(records[0].attempt, Some(2));
        assert_eq!(
            records[0].http_attempts,
            Some(HttpAttempts {
                count: 3,
                first_status: Some(429),
                last_start_ms: Some(2_000),
            })
        );
        // One request is no retry.
        let mut records = vec![record(Some(200))];
        let mut links = SpanLinks::default();
        links.call(call(0, "t/q", "chat", 0, &[]));
        links.child(child("t/q", Some(200)));
        links.join(&mut records);
        assert_eq!(records[0].http_attempts, None);
        assert_eq!(records[0].attempt, None);
    }

    #[test]
    fn a_child_gives_its_status_and_host_to_its_parent_in_any_order() {
        let mut records = vec![record(None), record(Some(200))];
        let mut links = SpanLinks::default();
        links.child(Child {
            host: Some(Shared::from("api.deepseek.com")),
            ..child("t1/a", Some(429))
        });
        links.call(call(0, "t1/a", "chat", 0, &[]));
        links.call(call(1, "t1/b", "chat", 5_000, &[]));
        links.child(child("t1/b", Some(529)));
        links.child(child("t9/z", Some(500)));
        let joined = links.join(&mut records);
        assert_eq!((joined.children, joined.unjoined), (3, 1));
        assert_eq!(records[0].http_status, Some(429));
        assert_eq!(records[0].host.as_deref(), Some("api.deepseek.com"));
        // A span that ended without an error was assumed a 200.
        assert_eq!(records[1].http_status, Some(529));
    }

    #[test]
    fn a_status_the_parent_read_itself_stays() {
        let mut records = vec![Record {
            http_status: Some(429),
            error_type: Some("insufficient_quota".into()),
            ..Record::default()
        }];
        let mut links = SpanLinks::default();
        links.call(call(0, "t/p", "chat", 0, &[]));
        links.child(child("t/p", Some(500)));
        links.join(&mut records);
        assert_eq!(records[0].http_status, Some(429));
    }

    #[test]
    fn two_instrumentations_spans_of_one_call_become_one_record() {
        let mut records = vec![
            Record {
                http_status: Some(400),
                error_type: Some("invalid_request_error".into()),
                ..Record::default()
            },
            Record {
                error_message: Some("prompt is too long: 210000 tokens > 200000 maximum".into()),
                ..Record::default()
            },
            record(Some(200)),
        ];
        let mut links = SpanLinks::default();
        links.call(call(0, "t1/a", "anthropic.messages.create", 10, &["req_1"]));
        links.call(call(1, "t2/b", "anthropic.chat", 0, &["req_1"]));
        // Another call, at the same moment, that a provider id tells apart.
        links.call(call(2, "t3/c", "anthropic.chat", 20, &["req_2"]));
        let joined = links.join(&mut records);
        assert_eq!(joined.duplicates, 1);
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].http_status, Some(400));
        assert!(records[0]
            .error_message
            .as_deref()
            .unwrap()
            .contains("too long"));
        assert_eq!(records[1].http_status, Some(200));
    }

    #[test]
    fn concurrent_calls_of_one_instrumentation_stay_apart() {
        let mut records = vec![record(Some(200)), record(Some(429))];
        let mut links = SpanLinks::default();
        links.call(call(0, "t1/a", "chat gpt-4o", 0, &[]));
        links.call(call(1, "t2/b", "chat gpt-4o", 3, &[]));
        assert_eq!(links.join(&mut records).duplicates, 0);
        assert_eq!(records.len(), 2);
    }

    #[test]
    fn ids_are_read_as_hex_with_or_without_0x() {
        assert_eq!(span_id("0xABCdef01").as_deref(), Some("abcdef01"));
        assert_eq!(span_id("abcdef01").as_deref(), Some("abcdef01"));
        assert_eq!(span_id("not hex"), None);
        assert_eq!(span_id(""), None);
    }
}
