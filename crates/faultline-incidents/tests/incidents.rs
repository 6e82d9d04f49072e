//! Each detector on small fixtures with and without its pattern, including
//! the near misses a user would not want paged for.

use faultline_classify::{Classifier, Provider};
use faultline_incidents::{detect, Collector, DetectConfig, Incident, Pattern};
use faultline_ingest::Record;

/// 2026-03-10T00:00:00Z.
const DAY: i64 = 1_773_100_800_000;

/// A call `s` seconds into the day.
fn call(s: f64, host: &str, model: &str, service: &str, key: &str) -> Record {
    Record {
        ts_ms: DAY + (s * 1000.0) as i64,
        source_file: "calls.jsonl".into(),
        source_line: 0,
        host: Some(host.into()),
        model: Some(model.into()),
        service: Some(service.into()),
        key_fp: Some(key.into()),
        http_status: Some(200),
        latency_ms: Some(1200.0),
        ..Record::default()
    }
}

fn failed(mut rec: Record, status: Option<u16>, kind: &str, message: &str) -> Record {
    rec.http_status = status;
    rec.error_type = Some(kind.to_owned());
    rec.error_message = Some(message.to_owned());
    rec
}

const OPENAI: &str = "api.openai.com";
const ANTHROPIC: &str = "api.anthropic.com";
const DEEPSEEK: &str = "api.deepseek.com";

/// `n` calls a minute, spread evenly, from minute `from` to `to` (exclusive).
fn steady(from: i64, to: i64, n: i64, make: impl Fn(f64) -> Record) -> Vec<Record> {
    every(from, to, n, |s, _| make(s))
}

/// As [`steady`], also passing the call's index (0, 1, 2, ...).
fn every(from: i64, to: i64, n: i64, make: impl Fn(f64, i64) -> Record) -> Vec<Record> {
    let mut out = Vec::new();
    for minute in from..to {
        for i in 0..n {
            let k = (minute - from) * n + i;
            out.push(make(
                (minute * 60) as f64 + (i as f64 + 0.5) * 60.0 / n as f64,
                k,
            ));
        }
    }
    out
}

fn run_with(records: &[Record], config: &DetectConfig) -> Vec<Incident> {
    let classifier = Classifier::default();
    let mut collector = Collector::new(config);
    for (i, rec) in records.iter().enumerate() {
        let mut rec = rec.clone();
        rec.source_line = i as u64 + 1;
        collector.add(&rec, &classifier.classify(&rec));
    }
    detect(&collector.finish(), config)
}

fn run(records: &[Record]) -> Vec<Incident> {
    run_with(records, &DetectConfig::default())
}

fn patterns(incidents: &[Incident]) -> Vec<Pattern> {
    incidents.iter().map(|i| i.pattern).collect()
}

fn openai(s: f64) -> Record {
    call(s, OPENAI, "gpt-4o-mini", "checkout", "kf_checkout")
}

const RPM: &str = "Rate limit reached for gpt-4o-mini on requests per min (RPM): Limit 500";

#[test]
fn rate_limit_under_load_reports_the_knee_and_a_cap() {
    // An hour at 20 calls/min without trouble, then 20 minutes at 60/min of
    // which a third are turned away.
    let mut records = steady(0, 60, 20, openai);
    records.extend(every(60, 80, 60, |s, k| {
        if k % 3 == 0 {
            failed(openai(s), Some(429), "requests", RPM)
        } else {
            openai(s)
        }
    }));
    let incidents = run(&records);
    assert_eq!(patterns(&incidents), [Pattern::RateLimitUnderLoad]);
    let inc = &incidents[0];
    assert_eq!(inc.provider, Some(Provider::OpenAi));
    assert_eq!(inc.key_fp.as_deref(), Some("kf_checkout"));
    assert_eq!(inc.start_ms / 60_000, (DAY / 60_000) + 60);
    assert_eq!(inc.errors, 400);
    assert!(
        inc.summary
            .contains("60 calls/min against 20 calls/min on average (at most 20)"),
        "{}",
        inc.summary
    );
    assert!(
        inc.summary.contains("about 40 calls/min got through"),
        "{}",
        inc.summary
    );
    // 40 calls/min at 1.2 s each: 0.8 calls in flight, so a cap of 1.
    assert!(
        inc.summary.contains("about 1 concurrent call:"),
        "{}",
        inc.summary
    );
}

#[test]
fn isolated_429s_or_429s_without_more_load_are_not_an_incident() {
    let mut single = steady(0, 120, 30, openai);
    single[1000] = failed(single[1000].clone(), Some(429), "requests", RPM);
    assert!(run(&single).is_empty());

    // Throttled at the usual load: a lowered limit, not load.
    let flat: Vec<Record> = every(0, 60, 30, |s, k| {
        if k % 5 == 0 && s > 1800.0 {
            failed(openai(s), Some(429), "requests", RPM)
        } else {
            openai(s)
        }
    });
    let found = run(&flat);
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn quota_is_never_taken_for_load() {
    let mut records = steady(0, 30, 10, openai);
    records.extend(steady(30, 40, 40, |s| {
        failed(
            openai(s),
            Some(429),
            "insufficient_quota",
            "You exceeded your current quota, please check your plan and billing details.",
        )
    }));
    let incidents = run(&records);
    assert_eq!(patterns(&incidents), [Pattern::QuotaExhausted]);
    assert_eq!(incidents[0].cause.as_deref(), Some("quota_exhausted"));
    assert_eq!(incidents[0].errors, 400);

    let balance = steady(0, 5, 4, |s| {
        failed(
            call(s, DEEPSEEK, "deepseek-chat", "chat", "kf_ds"),
            Some(402),
            "unknown_error",
            "Insufficient Balance",
        )
    });
    let incidents = run(&balance);
    assert_eq!(patterns(&incidents), [Pattern::QuotaExhausted]);
    assert_eq!(incidents[0].cause.as_deref(), Some("insufficient_balance"));
}

fn anthropic(s: f64, service: &str, key: &str) -> Record {
    call(s, ANTHROPIC, "claude-sonnet-4-5", service, key)
}

fn unauthorized(rec: Record) -> Record {
    failed(rec, Some(401), "authentication_error", "invalid x-api-key")
}

#[test]
fn a_401_after_a_rotation_is_not_a_key_that_never_worked() {
    // Both services use the old key; at minute 30 the bot moves to the new
    // key and the worker keeps the old one.
    let mut records = steady(0, 30, 5, |s| anthropic(s, "bot", "kf_old"));
    records.extend(steady(0, 30, 2, |s| anthropic(s, "worker", "kf_old")));
    records.extend(steady(30, 60, 5, |s| anthropic(s, "bot", "kf_new")));
    records.extend(steady(30, 60, 2, |s| {
        unauthorized(anthropic(s, "worker", "kf_old"))
    }));
    // A job whose key never worked.
    records.extend(steady(40, 45, 2, |s| {
        unauthorized(anthropic(s, "eval", "kf_typo"))
    }));
    let incidents = run(&records);
    let mut found = patterns(&incidents);
    found.sort();
    assert_eq!(found, [Pattern::KeyRotation401, Pattern::AuthMisconfigured]);
    let rotation = incidents
        .iter()
        .find(|i| i.pattern == Pattern::KeyRotation401)
        .unwrap();
    assert_eq!(rotation.key_fp.as_deref(), Some("kf_old"));
    assert_eq!(rotation.errors, 60);
    assert!(rotation.summary.contains("kf_new"), "{}", rotation.summary);
    assert!(
        rotation.summary.contains("still using the old key: worker"),
        "{}",
        rotation.summary
    );
    let never = incidents
        .iter()
        .find(|i| i.pattern == Pattern::AuthMisconfigured)
        .unwrap();
    assert_eq!(never.key_fp.as_deref(), Some("kf_typo"));
    assert!(
        never.summary.contains("never succeeded"),
        "{}",
        never.summary
    );
}

#[test]
fn a_single_401_is_not_an_incident() {
    let mut records = steady(0, 30, 5, |s| anthropic(s, "bot", "kf_a"));
    records.push(unauthorized(anthropic(100.0, "bot", "kf_b")));
    assert!(run(&records).is_empty());
}

fn gemini(s: f64, prompt: u32) -> Record {
    let mut rec = call(
        s,
        "generativelanguage.googleapis.com",
        "gemini-2.5-pro",
        "docs",
        "kf_g",
    );
    rec.prompt_tokens = Some(prompt);
    rec
}

fn timed_out(mut rec: Record) -> Record {
    rec.http_status = None;
    rec.error_type = Some("ReadTimeout".into());
    rec.error_message = Some("Request timed out".into());
    rec
}

#[test]
fn long_context_timeouts_report_the_prompt_size_buckets() {
    let mut records = steady(0, 100, 4, |s| gemini(s, 3000));
    records[7] = timed_out(records[7].clone());
    records.extend(steady(0, 20, 1, |s| {
        if (s as i64 / 60) % 2 == 0 {
            timed_out(gemini(s, 120_000))
        } else {
            gemini(s, 60_000)
        }
    }));
    let incidents = run(&records);
    assert_eq!(patterns(&incidents), [Pattern::LongContextTimeout]);
    let inc = &incidents[0];
    assert_eq!(inc.errors, 10);
    assert_eq!(inc.requests, 20);
    assert!(
        inc.summary.contains("50K-100K 0/10, 100K-200K 10/10"),
        "{}",
        inc.summary
    );
    assert!(inc.summary.contains("1 of 400"), "{}", inc.summary);
}

#[test]
fn timeouts_spread_over_all_prompt_sizes_are_not_long_context() {
    let records = every(0, 100, 4, |s, k| {
        let prompt = if k % 2 == 0 { 3000 } else { 80_000 };
        if k % 10 < 2 {
            timed_out(gemini(s, prompt))
        } else {
            gemini(s, prompt)
        }
    });
    let found = run(&records);
    assert_eq!(found.iter().map(|i| i.errors).sum::<u64>(), 0, "{found:#?}");
    assert!(!patterns(&found).contains(&Pattern::LongContextTimeout));
}

fn opus(s: f64) -> Record {
    call(s, ANTHROPIC, "claude-opus-4-1", "agent", "kf_agent")
}

fn overloaded(rec: Record) -> Record {
    failed(rec, Some(529), "overloaded_error", "Overloaded")
}

#[test]
fn overload_lasting_minutes_suggests_the_model_that_kept_working() {
    let mut records = steady(0, 10, 6, opus);
    records.extend(steady(10, 14, 6, |s| overloaded(opus(s))));
    records.extend(steady(0, 14, 3, |s| {
        call(s, ANTHROPIC, "claude-sonnet-4-5", "agent", "kf_agent")
    }));
    let incidents = run(&records);
    assert_eq!(patterns(&incidents), [Pattern::OverloadPersistent]);
    let inc = &incidents[0];
    assert_eq!(inc.model.as_deref(), Some("claude-opus-4-1"));
    assert_eq!(inc.errors, 24);
    assert!(
        inc.summary.contains("claude-sonnet-4-5 served 12 calls"),
        "{}",
        inc.summary
    );
}

#[test]
fn a_short_529_blip_is_not_persistent_overload() {
    let mut records = steady(0, 10, 6, opus);
    for s in [300.0, 305.0, 312.0] {
        records.push(overloaded(opus(s)));
    }
    assert!(run(&records).is_empty());
}

fn internal(rec: Record) -> Record {
    failed(
        rec,
        Some(500),
        "server_error",
        "The server had an error processing your request.",
    )
}

#[test]
fn bursts_of_500s_and_retry_storms() {
    let gpt = |s: f64| call(s, OPENAI, "gpt-4o", "summarizer", "kf_s");
    let mut records = steady(0, 20, 10, gpt);
    records.extend(every(20, 24, 10, |s, k| {
        if k % 2 == 0 {
            internal(gpt(s))
        } else {
            gpt(s)
        }
    }));
    let incidents = run(&records);
    assert_eq!(patterns(&incidents), [Pattern::ServerErrorStorm]);
    assert_eq!(incidents[0].errors, 20);

    // The burst's last four failed requests are retried five times each,
    // slowly, after it ends, amid normal traffic: those retries belong to
    // the burst, not to a second incident.
    records.extend(steady(24, 40, 10, gpt));
    let burst: Vec<usize> = (0..records.len())
        .filter(|&i| records[i].http_status == Some(500))
        .collect();
    for (n, &i) in burst.iter().rev().take(4).enumerate() {
        records[i].request_id = Some(format!("tail-{n}").as_str().into());
        for attempt in 1..=5u16 {
            let at = (27 * 60 + 120 * i64::from(attempt) + n as i64 * 30) as f64;
            let mut rec = internal(gpt(at));
            rec.request_id = Some(format!("tail-{n}").as_str().into());
            rec.attempt = Some(attempt);
            records.push(rec);
        }
    }
    let incidents = run(&records);
    assert_eq!(
        patterns(&incidents),
        [Pattern::ServerErrorStorm],
        "{incidents:#?}"
    );

    // No burst, but the same requests retried five times each.
    let mut records = steady(0, 60, 10, gpt);
    for (n, minute) in [10.0, 11.0, 12.0].into_iter().enumerate() {
        for attempt in 0..=5u16 {
            let mut rec = internal(gpt(minute * 60.0 + f64::from(attempt) * 2.0));
            rec.request_id = Some(format!("req-{n}").as_str().into());
            rec.attempt = Some(attempt);
            records.push(rec);
        }
    }
    let incidents = run(&records);
    assert_eq!(patterns(&incidents), [Pattern::ServerErrorStorm]);
    assert!(
        incidents[0].summary.contains("3 requests"),
        "{}",
        incidents[0].summary
    );

    // Isolated 500s are part of life.
    let mut records = steady(0, 60, 10, gpt);
    for i in [50, 250, 450] {
        records[i] = internal(records[i].clone());
    }
    assert!(run(&records).is_empty());
}

fn deepseek(s: f64) -> Record {
    call(s, DEEPSEEK, "deepseek-chat", "chat", "kf_ds")
}

fn unavailable(rec: Record) -> Record {
    failed(
        rec,
        Some(503),
        "service_unavailable_error",
        "Service Unavailable",
    )
}

#[test]
fn a_503_span_is_an_outage_and_a_20_second_blip_is_not() {
    let mut records = steady(0, 10, 6, deepseek);
    records.extend(steady(10, 16, 6, |s| unavailable(deepseek(s))));
    records.extend(steady(16, 20, 6, deepseek));
    let incidents = run(&records);
    assert_eq!(patterns(&incidents), [Pattern::Outage]);
    assert_eq!(incidents[0].errors, 36);
    assert!(
        incidents[0].summary.contains("for 5 min 50 s"),
        "{}",
        incidents[0].summary
    );

    let mut records = steady(0, 10, 6, deepseek);
    for s in [300.0, 309.0, 320.0] {
        records.push(unavailable(deepseek(s)));
    }
    assert!(run(&records).is_empty());
}

#[test]
fn empty_200s_per_provider_and_model() {
    let records = every(0, 20, 5, |s, k| {
        let mut rec = deepseek(s);
        rec.empty_response = k % 10 == 0;
        rec
    });
    let incidents = run(&records);
    assert_eq!(patterns(&incidents), [Pattern::EmptyResponse]);
    assert_eq!(incidents[0].model.as_deref(), Some("deepseek-chat"));

    let mut records = steady(0, 20, 5, deepseek);
    records[3].empty_response = true;
    assert!(run(&records).is_empty());
}

#[test]
fn forbidden_calls_are_grouped_by_cause() {
    let geo = |s: f64| call(s, OPENAI, "gpt-4o-mini", "geo", "kf_geo");
    let mut records = steady(0, 10, 5, geo);
    records.extend(steady(10, 12, 3, |s| {
        failed(
            geo(s),
            Some(403),
            "request_forbidden",
            "Country, region, or territory not supported",
        )
    }));
    let incidents = run(&records);
    assert_eq!(patterns(&incidents), [Pattern::AccessBlocked]);
    assert_eq!(incidents[0].cause.as_deref(), Some("region_blocked"));
}

fn bad_role(rec: Record) -> Record {
    failed(
        rec,
        Some(400),
        "invalid_request_error",
        "Invalid value for 'role': 'developer' is not supported with this model.",
    )
}

#[test]
fn a_new_400_cause_in_a_service_is_a_spike_and_a_steady_one_is_not() {
    let mut records = steady(0, 60, 10, openai);
    records.extend(every(60, 70, 10, |s, k| {
        if k % 4 == 0 {
            bad_role(openai(s))
        } else {
            openai(s)
        }
    }));
    let incidents = run(&records);
    assert_eq!(patterns(&incidents), [Pattern::BadRequestSpike]);
    assert!(
        incidents[0].summary.contains("not seen before"),
        "{}",
        incidents[0].summary
    );

    // One in 200 all day long: a known, steady problem.
    let records = every(0, 600, 10, |s, k| {
        if k % 200 == 0 {
            bad_role(openai(s))
        } else {
            openai(s)
        }
    });
    let found = run(&records);
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn secrets_are_pointed_at_never_shown() {
    let mut records = steady(0, 10, 2, |s| {
        call(s, OPENAI, "gpt-4o-mini", "proxy", "kf_p")
    });
    records[4].secrets_found = 1;
    records[9].secrets_found = 2;
    let incidents = run(&records);
    assert_eq!(patterns(&incidents), [Pattern::SecretInLog]);
    let inc = &incidents[0];
    assert_eq!(inc.errors, 2);
    assert_eq!(inc.evidence, ["calls.jsonl:5", "calls.jsonl:10"]);
    assert!(
        inc.summary.contains("3 plaintext API keys"),
        "{}",
        inc.summary
    );
}

#[test]
fn incidents_do_not_depend_on_input_order_or_how_work_was_split() {
    let mut records = steady(0, 30, 5, |s| anthropic(s, "bot", "kf_old"));
    records.extend(steady(30, 60, 5, |s| anthropic(s, "bot", "kf_new")));
    records.extend(steady(30, 60, 2, |s| {
        unauthorized(anthropic(s, "worker", "kf_old"))
    }));
    records.extend(steady(10, 16, 6, |s| unavailable(deepseek(s))));
    records.extend(steady(0, 10, 6, deepseek));
    for (i, rec) in records.iter_mut().enumerate() {
        rec.source_line = i as u64 + 1;
    }
    let config = DetectConfig::default();
    let classifier = Classifier::default();
    let collect_in = |parts: &[&[Record]]| {
        let mut total = Collector::new(&config);
        for part in parts.iter().rev() {
            let mut collector = Collector::new(&config);
            for rec in *part {
                collector.add(rec, &classifier.classify(rec));
            }
            assert_eq!(collector.requests(), part.len() as u64);
            total.merge(collector);
        }
        assert_eq!(total.requests(), records.len() as u64);
        total.finish()
    };
    let whole = collect_in(&[&records]);
    let incidents = detect(&whole, &config);
    assert_eq!(incidents.len(), 2);
    let mut shuffled = records.clone();
    shuffled.reverse();
    shuffled.rotate_left(137);
    let (a, rest) = shuffled.split_at(100);
    let (b, c) = rest.split_at(77);
    for parts in [&[a, b, c][..], &[&shuffled[..]]] {
        let collected = collect_in(parts);
        // The same calls per scope and minute, and so the same incidents.
        assert_eq!(collected.scopes, whole.scopes);
        assert_eq!(detect(&collected, &config), incidents);
    }
}

#[test]
fn thresholds_are_overridden_by_a_user_file() {
    let records = steady(0, 5, 1, |s| unauthorized(anthropic(s, "eval", "kf_typo")));
    assert_eq!(patterns(&run(&records)), [Pattern::AuthMisconfigured]);
    let config = DetectConfig::parse(
        "[incidents.auth_misconfigured]\nmin_errors = 10\n\n[analyze]\nwindow = \"1m\"\n",
    )
    .unwrap();
    assert_eq!(config.auth_misconfigured.min_errors, 10);
    // Other values keep their defaults.
    assert_eq!(config.key_rotation_401.min_errors, 3);
    assert!(run_with(&records, &config).is_empty());

    let disabled =
        DetectConfig::parse("[incidents.auth_misconfigured]\nenabled = false\n").unwrap();
    assert!(run_with(&records, &disabled).is_empty());
}

#[test]
fn an_invalid_config_names_the_line_and_the_reason() {
    let err = DetectConfig::parse("# thresholds\n[incidents.outage]\nmin_duraton_s = 10\n")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("config:3:"), "{err}");
    assert!(err.contains("min_duraton_s"), "{err}");

    let err = DetectConfig::parse("[incidents.outage]\nmin_errors = \"five\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("invalid type"), "{err}");

    let err =
        DetectConfig::parse("[incidents.long_context_timeout]\nbucket_edges = [0, 50000, 8000]\n")
            .unwrap_err()
            .to_string();
    assert!(err.starts_with("config:2:"), "{err}");
    assert!(err.contains("rise strictly"), "{err}");

    let err = DetectConfig::parse("[incidents\n").unwrap_err().to_string();
    assert!(err.starts_with("config:1:"), "{err}");
}

#[test]
fn an_absurd_latency_in_one_line_does_not_break_the_count() {
    // Found by fuzzing: a latency near f64::MAX wrapped the minute's total.
    let mut records = steady(0, 600, 60, openai);
    for (i, rec) in records.iter_mut().enumerate().take(3) {
        rec.latency_ms = Some(if i == 0 { 1e300 } else { f64::MAX });
    }
    let classifier = Classifier::default();
    let config = DetectConfig::default();
    let mut collector = Collector::new(&config);
    for rec in &records {
        collector.add(rec, &classifier.classify(rec));
    }
    let collected = collector.finish();
    let counts = collected.traffic(i64::MIN, i64::MAX, |_| true);
    assert_eq!(counts.requests, records.len() as u64);
    assert!(counts.mean_latency_s().is_some_and(f64::is_finite));
    assert!(detect(&collected, &config).is_empty());
}

#[test]
fn a_provider_wide_burst_on_two_models_is_one_incident() {
    let reasoner = |s: f64| call(s, DEEPSEEK, "deepseek-reasoner", "chat", "kf_ds");
    let mut records = steady(0, 10, 6, deepseek);
    records.extend(steady(0, 10, 4, reasoner));
    records.extend(steady(10, 16, 6, |s| unavailable(deepseek(s))));
    records.extend(steady(10, 16, 4, |s| unavailable(reasoner(s))));
    records.extend(steady(16, 20, 6, deepseek));
    records.extend(steady(16, 20, 4, reasoner));
    let incidents = run(&records);
    assert_eq!(patterns(&incidents), [Pattern::Outage], "{incidents:#?}");
    let inc = &incidents[0];
    assert_eq!(inc.errors, 60);
    assert_eq!(inc.model, None, "two models: no one model");
    let models: Vec<(&str, u64)> = inc.models.iter().map(|t| (&*t.name, t.errors)).collect();
    assert_eq!(models, [("deepseek-chat", 36), ("deepseek-reasoner", 24)]);
    assert_eq!(inc.service.as_deref(), Some("chat"));
    assert!(inc.requests >= 60 && inc.requests <= 70, "{}", inc.requests);
    assert!(
        inc.summary.starts_with(
            "One event across 2 models (deepseek-chat: 36, deepseek-reasoner: 24) of deepseek:"
        ),
        "{}",
        inc.summary
    );
    // Both models' numbers are in the sentence.
    assert!(inc.summary.contains("36 of"), "{}", inc.summary);
    assert!(inc.summary.contains("24 of"), "{}", inc.summary);

    // The same burst an hour apart on each model: two events.
    let mut records = steady(0, 10, 6, deepseek);
    records.extend(steady(0, 90, 4, reasoner));
    records.extend(steady(10, 16, 6, |s| unavailable(deepseek(s))));
    records.extend(steady(16, 90, 6, deepseek));
    records.extend(steady(80, 86, 4, |s| unavailable(reasoner(s))));
    let incidents = run(&records);
    assert_eq!(patterns(&incidents), [Pattern::Outage, Pattern::Outage]);
    assert!(incidents.iter().all(|i| i.models.len() == 1));
}

#[test]
fn a_storm_of_500s_and_the_retry_storm_it_sets_off_are_one_incident() {
    let gpt = |s: f64| call(s, OPENAI, "gpt-4o", "summarizer", "kf_s");
    // Half the calls fail with 500 for four minutes.
    let mut records = steady(0, 20, 30, gpt);
    records.extend(every(20, 24, 30, |s, k| {
        if k % 2 == 0 {
            internal(gpt(s))
        } else {
            gpt(s)
        }
    }));
    records.extend(steady(24, 40, 30, gpt));
    // Then other requests are retried five times each, a minute apart, a
    // few minutes on: too few a minute to be a burst of their own.
    for n in 0..4 {
        for attempt in 0..=5u16 {
            let at = (26 * 60 + n * 15 + i64::from(attempt) * 60) as f64;
            let mut rec = internal(gpt(at));
            rec.request_id = Some(format!("again-{n}").as_str().into());
            rec.attempt = Some(attempt);
            records.push(rec);
        }
    }
    let incidents = run(&records);
    assert_eq!(
        patterns(&incidents),
        [Pattern::ServerErrorStorm],
        "{incidents:#?}"
    );
    let inc = &incidents[0];
    assert_eq!(inc.model.as_deref(), Some("gpt-4o"));
    assert!(
        inc.summary.starts_with("One event on openai gpt-4o"),
        "{}",
        inc.summary
    );
    assert!(inc.summary.contains("failed with 500"), "{}", inc.summary);
    assert!(
        inc.summary
            .contains("4 requests to openai gpt-4o (service summarizer, key kf_s) were retried"),
        "{}",
        inc.summary
    );
    assert_eq!(inc.errors, 60 + 24);
}

#[test]
fn one_model_overloaded_while_its_sibling_works_stays_that_models_incident() {
    let sonnet = |s: f64| call(s, ANTHROPIC, "claude-sonnet-4-5", "agent", "kf_agent");
    let mut records = steady(0, 10, 6, opus);
    records.extend(steady(10, 14, 6, |s| overloaded(opus(s))));
    records.extend(steady(0, 14, 6, sonnet));
    // A 529 blip on the sibling meanwhile is no incident of its own.
    for s in [640.0, 650.0] {
        records.push(overloaded(sonnet(s)));
    }
    let incidents = run(&records);
    assert_eq!(patterns(&incidents), [Pattern::OverloadPersistent]);
    assert_eq!(incidents[0].model.as_deref(), Some("claude-opus-4-1"));
    assert_eq!(incidents[0].models.len(), 1);
    assert!(!incidents[0].summary.starts_with("One event"));
}

#[test]
fn a_failure_the_app_and_its_gateway_both_logged_counts_once() {
    let gpt = |s: f64| call(s, OPENAI, "gpt-4o", "summarizer", "kf_s");
    let mut records = steady(0, 30, 10, gpt);
    // Two 500s a minute for four minutes: under the storm's 8 failures...
    let mut failures = Vec::new();
    for minute in 10..14 {
        for i in 0..2 {
            let mut rec = internal(gpt(f64::from(minute * 60 + i * 20 + 1)));
            rec.request_id = Some(format!("r-{minute}-{i}").as_str().into());
            failures.push(rec);
        }
    }
    // ...though the gateway logged each of them too, a few ms later.
    for rec in failures.clone() {
        let mut twin = rec;
        twin.source_file = "gateway.jsonl".into();
        twin.ts_ms += 40;
        failures.push(twin);
    }
    records.extend(failures.iter().cloned());
    assert!(run(&records).is_empty(), "{:#?}", run(&records));

    // The same request retried by one client, in its own log, is no twin.
    let mut records = steady(0, 30, 10, gpt);
    for minute in 10..14 {
        for attempt in 0..4u16 {
            let mut rec = internal(gpt(f64::from(minute * 60) + f64::from(attempt)));
            rec.request_id = Some(format!("r-{minute}").as_str().into());
            records.push(rec);
        }
    }
    assert_eq!(patterns(&run(&records)), [Pattern::ServerErrorStorm]);
}
