use faultline_classify::{Provider, StatusClass};
use faultline_ingest::{GroupedBy, OperationKey, Record, Shared};
use faultline_report::{Operation, RecordColumns};

use super::*;
use crate::prices::Prices;

/// A call of checkout at `ts_ms`, answered with `status` (its class is
/// the status's).
fn call(line: u64, ts_ms: i64, status: u16) -> Record {
    let mut rec = Record::at(Shared::from("app.jsonl"), line, line * 100);
    rec.ts_ms = ts_ms;
    rec.http_status = Some(status);
    rec.service = Some(Shared::from("checkout"));
    rec.model = Some(Shared::from("gpt-4o"));
    rec.prompt_tokens = Some(100);
    rec.latency_ms = Some(500.0);
    rec
}

fn keyed(mut rec: Record, by: GroupedBy, id: &str) -> Record {
    rec.operation_key = Some(OperationKey::of(by, id));
    rec
}

fn class(status: u16) -> StatusClass {
    StatusClass::from_status(status)
}

/// Groups `calls` in batches of `batch` calls, each call's class
/// that of its status; see [`group_classed`].
fn group(calls: &[(Record, Provider)], batch: usize) -> (Vec<Operation>, Vec<u64>, OperationStats) {
    let classed: Vec<(Record, Provider, StatusClass)> = calls
        .iter()
        .map(|(rec, p)| (rec.clone(), *p, class(rec.http_status.unwrap_or(0))))
        .collect();
    group_classed(&classed, batch)
}

/// Groups `calls` in batches of `batch` calls; returns the operations
/// in the order they finished, each call's operation id, and the stats.
fn group_classed(
    calls: &[(Record, Provider, StatusClass)],
    batch: usize,
) -> (Vec<Operation>, Vec<u64>, OperationStats) {
    let classifier = faultline_classify::Classifier::new(faultline_classify::RuleSet::defaults());
    let prices = Prices::defaults();
    let mut grouper = Grouper::new(&prices, true);
    let mut ops = Vec::new();
    let mut ids = Vec::new();
    for chunk in calls.chunks(batch) {
        let mut files = FileHashes::default();
        let mut columns = RecordColumns::with_capacity(chunk.len());
        let mut attempts = Vec::new();
        for (rec, provider, status_class) in chunk {
            let mut class = classifier.classify(rec);
            class.provider = *provider;
            class.status_class = *status_class;
            columns.push(rec, &class);
            attempts.push(Attempt::of(rec, *provider, *status_class, &mut files));
        }
        grouper.add(&attempts, |row, id| columns.set_operation(row, id));
        ids.extend(columns.operation_ids());
        ops.extend(std::mem::take(&mut grouper.closed));
    }
    grouper.close_all();
    ops.extend(std::mem::take(&mut grouper.closed));
    (ops, ids, grouper.stats)
}

#[test]
fn retries_with_one_request_id_are_one_operation() {
    let calls = [
        (
            keyed(call(1, 0, 500), GroupedBy::RequestId, "req_1"),
            Provider::OpenAi,
        ),
        (
            keyed(call(2, 1_500, 500), GroupedBy::RequestId, "req_1"),
            Provider::OpenAi,
        ),
        (
            keyed(call(3, 4_500, 200), GroupedBy::RequestId, "req_1"),
            Provider::OpenAi,
        ),
    ];
    let (ops, ids, stats) = group(&calls, 10);
    assert_eq!(ops.len(), 1);
    let op = &ops[0];
    assert_eq!(op.attempts, 3);
    assert!(op.succeeded());
    assert_eq!(op.grouped_by, GroupedBy::RequestId);
    assert_eq!(op.first_error, Some(StatusClass::ServerError));
    assert_eq!(op.time_lost_ms(), Some(4_500));
    assert_eq!(op.wasted_prompt_tokens, 200);
    assert!(!op.fell_back());
    assert!(
        ids.iter().all(|&id| id == op.id),
        "every attempt carries the operation's id"
    );
    let summary = stats.json();
    assert_eq!(summary["attempts"], 3);
    assert_eq!(summary["failed_attempts"], 2);
    assert_eq!(summary["operations"], 1);
    assert_eq!(summary["failed_operations"], 0);
    assert_eq!(summary["effective_failure_rate"], 0.0);
}

#[test]
fn a_fallback_to_another_provider_is_one_operation_that_fell_back() {
    let mut second = keyed(call(2, 2_000, 200), GroupedBy::LiteLlmCall, "trace-a");
    second.model = Some(Shared::from("claude-sonnet-4"));
    let calls = [
        (
            keyed(call(1, 0, 429), GroupedBy::LiteLlmCall, "trace-a"),
            Provider::OpenAi,
        ),
        (second, Provider::Anthropic),
    ];
    let (ops, _, stats) = group(&calls, 10);
    assert_eq!(ops.len(), 1);
    assert!(ops[0].fell_back());
    assert_eq!(
        ops[0].providers[..],
        [Provider::OpenAi, Provider::Anthropic]
    );
    assert_eq!(ops[0].models.len(), 2);
    // The operation counts where it ended: anthropic, which never failed.
    let by_provider = stats.json()["by_provider"].clone();
    let openai = by_provider
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["provider"] == "openai")
        .unwrap()
        .clone();
    assert_eq!(openai["failed_attempts"], 1);
    assert_eq!(openai["operations"], 0);
}

#[test]
fn a_success_closes_its_operation_and_a_late_attempt_starts_another() {
    let calls = [
        // Two successful calls of one trace: an agent's two steps.
        (
            keyed(call(1, 0, 200), GroupedBy::Trace, "t/p"),
            Provider::OpenAi,
        ),
        (
            keyed(call(2, 1_000, 200), GroupedBy::Trace, "t/p"),
            Provider::OpenAi,
        ),
        // A failure, then the same id again past the join window.
        (
            keyed(call(3, 2_000, 503), GroupedBy::Trace, "t/q"),
            Provider::OpenAi,
        ),
        (
            keyed(
                call(4, 2_000 + JOIN_WINDOW_MS + 10_000, 503),
                GroupedBy::Trace,
                "t/q",
            ),
            Provider::OpenAi,
        ),
    ];
    let (ops, _, stats) = group(&calls, 10);
    assert_eq!(ops.len(), 4);
    assert!(ops.iter().all(|op| op.attempts == 1));
    assert_eq!(stats.json()["failed_operations"], 2);
}

#[test]
fn attempt_numbers_without_ids_group_by_service_and_file_as_a_heuristic() {
    let numbered = |line, ts, status, n: u16, service: &str| {
        let mut rec = call(line, ts, status);
        rec.attempt = Some(n);
        rec.service = Some(Shared::from(service));
        (rec, Provider::OpenAi)
    };
    let calls = [
        numbered(1, 0, 500, 0, "checkout"),
        numbered(2, 100, 200, 0, "search"),
        numbered(3, 1_000, 500, 1, "checkout"),
        // A retry of another service's call that was not seen failing.
        numbered(4, 1_100, 200, 1, "search"),
        numbered(5, 2_000, 200, 2, "checkout"),
    ];
    let (ops, _, _) = group(&calls, 10);
    let checkout: Vec<&Operation> = ops
        .iter()
        .filter(|op| op.service.as_deref() == Some("checkout"))
        .collect();
    assert_eq!(checkout.len(), 1);
    assert_eq!(checkout[0].attempts, 3);
    assert_eq!(checkout[0].grouped_by, GroupedBy::Heuristic);
    assert!(checkout[0].succeeded());
    let search = ops
        .iter()
        .filter(|op| op.service.as_deref() == Some("search"))
        .count();
    assert_eq!(search, 2);
}

#[test]
fn calls_with_nothing_to_tie_them_are_operations_by_themselves() {
    let calls = [
        (call(1, 0, 500), Provider::OpenAi),
        (call(2, 10, 500), Provider::OpenAi),
    ];
    let (ops, ids, _) = group(&calls, 10);
    assert_eq!(ops.len(), 2);
    assert!(ops.iter().all(|op| op.grouped_by == GroupedBy::Single));
    assert_ne!(ids[0], ids[1]);
}

#[test]
fn grouping_does_not_depend_on_where_batches_end() {
    let mut calls = Vec::new();
    for i in 0..60u64 {
        let id = format!("req_{}", i / 3);
        let status = if i % 3 == 2 { 200 } else { 429 };
        calls.push((
            keyed(
                call(i + 1, i as i64 * 1_000, status),
                GroupedBy::RequestId,
                &id,
            ),
            Provider::OpenAi,
        ));
    }
    let (one, one_ids, _) = group(&calls, calls.len());
    for batch in [1, 2, 7] {
        let (split, split_ids, _) = group(&calls, batch);
        assert_eq!(split, one, "batches of {batch}");
        assert_eq!(split_ids, one_ids, "batches of {batch}");
    }
    assert_eq!(one.len(), 20);
}

#[test]
fn open_operations_are_bounded_and_the_oldest_close_first() {
    // Every call fails with an id of its own, all within the window.
    let calls: Vec<(Record, Provider)> = (0..(MAX_OPEN as u64 + 5_000))
        .map(|i| {
            let id = format!("req_{i}");
            (
                keyed(call(i + 1, i as i64, 429), GroupedBy::RequestId, &id),
                Provider::OpenAi,
            )
        })
        .collect();
    let prices = Prices::defaults();
    let mut grouper = Grouper::new(&prices, true);
    let mut files = FileHashes::default();
    let mut most_open = 0;
    let classified = faultline_classify::Classifier::new(faultline_classify::RuleSet::defaults())
        .classify(&calls[0].0);
    for chunk in calls.chunks(1_000) {
        let mut columns = RecordColumns::with_capacity(chunk.len());
        let attempts: Vec<Attempt> = chunk
            .iter()
            .map(|(rec, p)| Attempt::of(rec, *p, StatusClass::RateLimit, &mut files))
            .collect();
        for (rec, _) in chunk {
            columns.push(rec, &classified);
        }
        grouper.add(&attempts, |row, id| columns.set_operation(row, id));
        most_open = most_open.max(grouper.open.len());
    }
    assert!(most_open <= MAX_OPEN, "{most_open} open");
    let done = std::mem::take(&mut grouper.closed);
    assert!(!done.is_empty());
    assert_eq!(done[0].start_ms, 0, "the first to close is the oldest");
    grouper.close_all();
    assert_eq!(grouper.stats.operations(), calls.len() as u64);
}

#[test]
fn retries_against_the_guide_are_counted_per_kind_with_their_services() {
    // One operation per case: (id, [(start ms, status, model, prompt tokens)]).
    type Case<'a> = (&'a str, &'a [(i64, u16, &'a str, u32)]);
    let cases: [Case<'_>; 8] = [
        // A 401 retried.
        (
            "auth",
            &[(0, 401, "gpt-4o", 100), (2_000, 401, "gpt-4o", 100)],
        ),
        // A 429 retried at once, and one retried after 5 s (fine).
        (
            "rl-fast",
            &[(10_000, 429, "gpt-4o", 100), (10_700, 200, "gpt-4o", 100)],
        ),
        (
            "rl-slow",
            &[(20_000, 429, "gpt-4o", 100), (25_600, 200, "gpt-4o", 100)],
        ),
        // Five retries of a 500: two past the guide's three.
        (
            "5xx",
            &[
                (30_000, 500, "gpt-4o", 100),
                (31_000, 500, "gpt-4o", 100),
                (32_000, 500, "gpt-4o", 100),
                (33_000, 500, "gpt-4o", 100),
                (34_000, 500, "gpt-4o", 100),
                (35_000, 200, "gpt-4o", 100),
            ],
        ),
        // A 503 retried after 2 s.
        (
            "503",
            &[(40_000, 503, "gpt-4o", 100), (42_500, 200, "gpt-4o", 100)],
        ),
        // A 529 retried on the same model; another routed to a smaller one.
        (
            "529-same",
            &[
                (50_000, 529, "claude-opus-4-1", 100),
                (51_000, 200, "claude-opus-4-1", 100),
            ],
        ),
        (
            "529-else",
            &[
                (60_000, 529, "claude-opus-4-1", 100),
                (61_000, 200, "claude-sonnet-4-5", 100),
            ],
        ),
        // A timeout retried with the same prompt.
        (
            "timeout",
            &[(70_000, 0, "gpt-4o", 9_000), (80_000, 200, "gpt-4o", 9_100)],
        ),
    ];
    let mut calls = Vec::new();
    for (id, attempts) in cases {
        for &(ts, status, model, prompt) in attempts {
            let mut rec = keyed(
                call(calls.len() as u64 + 1, ts, status),
                GroupedBy::RequestId,
                id,
            );
            rec.model = Some(Shared::from(model));
            rec.prompt_tokens = Some(prompt);
            let class = if status == 0 {
                rec.http_status = None;
                StatusClass::Timeout
            } else {
                StatusClass::from_status(status)
            };
            calls.push((rec, Provider::OpenAi, class));
        }
    }
    let (_, _, stats) = group_classed(&calls, 3);
    let behaviour = stats.json()["client_behaviour"].clone();
    let found: Vec<(String, u64, u64)> = behaviour
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["misstep"].as_str().unwrap().to_owned(),
                b["retries"].as_u64().unwrap(),
                b["operations"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(String, u64, u64)> = [
        ("auth_retried", 1, 1),
        ("rate_limit_no_backoff", 1, 1),
        ("server_error_over_retried", 2, 1),
        ("unavailable_retried_early", 1, 1),
        ("overloaded_not_rerouted", 1, 1),
        ("timeout_same_prompt", 1, 1),
    ]
    .iter()
    .map(|(m, r, o)| ((*m).to_owned(), *r, *o))
    .collect();
    assert_eq!(found, expected);
    assert_eq!(behaviour[0]["services"][0]["name"], "checkout");
    assert_eq!(behaviour[0]["examples"].as_array().unwrap().len(), 1);
}

#[test]
fn failed_attempts_cost_what_they_logged_else_their_list_price_or_is_unknown() {
    let mut logged = keyed(call(1, 0, 500), GroupedBy::LiteLlmCall, "a");
    logged.cost_usd = Some(0.25);
    let mut timeout = keyed(call(4, 30, 0), GroupedBy::LiteLlmCall, "c");
    timeout.http_status = None;
    let mut empty = keyed(call(5, 40, 200), GroupedBy::LiteLlmCall, "d");
    empty.model = Some(Shared::from("gpt-4o-mini"));
    empty.completion_tokens = Some(0);
    let calls = [
        (logged, Provider::OpenAi, StatusClass::ServerError),
        (
            keyed(call(2, 10, 200), GroupedBy::LiteLlmCall, "a"),
            Provider::OpenAi,
            StatusClass::Ok,
        ),
        // Refused: a provider bills nothing for a 500.
        (
            keyed(call(3, 20, 500), GroupedBy::LiteLlmCall, "b"),
            Provider::OpenAi,
            StatusClass::ServerError,
        ),
        (timeout, Provider::OpenAi, StatusClass::Timeout),
        (empty, Provider::OpenAi, StatusClass::EmptyResponse),
    ];
    let (ops, _, stats) = group_classed(&calls, 10);
    let cost = |start_ms: i64| {
        ops.iter()
            .find(|op| op.start_ms == start_ms)
            .expect("an operation starts then")
            .wasted_cost_usd
    };
    assert_eq!(cost(0), Some(0.25));
    assert_eq!(cost(20), Some(0.0));
    assert_eq!(
        cost(30),
        None,
        "a timeout may have been answered and billed"
    );
    // 100 prompt tokens of gpt-4o-mini at $0.15 per million.
    let priced = cost(40).unwrap();
    assert!((priced - 100.0 * 0.15 / 1e6).abs() < 1e-15, "{priced}");
    let wasted = &stats.json()["wasted"];
    assert_eq!(wasted["operations_cost_unknown"], 1);
    assert!(wasted["cost_source"]
        .as_str()
        .unwrap()
        .contains("litellm 1.110.0"));
}

#[test]
fn a_service_retrying_against_the_guide_in_enough_requests_is_an_incident() {
    let mut calls = Vec::new();
    // checkout retries each of three 429s 200 ms later; search only once.
    for (n, service) in ["checkout", "checkout", "checkout", "search"]
        .into_iter()
        .enumerate()
    {
        let at = n as i64 * 60_000;
        for (ts, status) in [(at, 429), (at + 700, 200)] {
            let mut rec = keyed(
                call(calls.len() as u64 + 1, ts, status),
                GroupedBy::IdempotencyKey,
                &format!("req-{n}"),
            );
            rec.service = Some(Shared::from(service));
            calls.push((rec, Provider::OpenAi));
        }
    }
    let (_, _, stats) = group(&calls, 4);
    let findings = stats.behaviour.findings();
    let found: Vec<(&str, Option<&str>, u64, u64)> = findings
        .iter()
        .map(|f| (f.misstep, f.service.as_deref(), f.operations, f.retries))
        .collect();
    assert_eq!(
        found,
        [
            ("rate_limit_no_backoff", Some("checkout"), 3, 3),
            ("rate_limit_no_backoff", Some("search"), 1, 1),
        ]
    );
    let config = faultline_incidents::DetectConfig::default();
    let mut incidents = Vec::new();
    faultline_incidents::add_retry_findings(&mut incidents, &findings, &config);
    assert_eq!(incidents.len(), 1, "search's one request is not enough");
    let inc = &incidents[0];
    assert_eq!(inc.pattern, faultline_incidents::Pattern::RetryPolicy);
    assert_eq!(inc.service.as_deref(), Some("checkout"));
    assert_eq!(inc.model.as_deref(), Some("gpt-4o"));
    assert_eq!((inc.requests, inc.errors), (3, 3));
    assert_eq!((inc.start_ms, inc.end_ms), (0, 120_700 + 500));
    assert_eq!(inc.evidence.len(), 3);
    assert!(inc.evidence.iter().all(|e| e.starts_with("op_")));
    assert!(
        inc.summary.contains(
            "retried a 429 within 1 s in 3 requests from 1970-01-01 00:00:00 to 00:02:01 UTC"
        ),
        "{}",
        inc.summary
    );
}
