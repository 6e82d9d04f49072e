//! Classification cost on a realistic mix: 95% successes, 5% failures of the
//! kinds production logs hold.
//!
//! `cargo bench -p faultline-classify --bench classify`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use faultline_classify::{Classifier, Record};

fn failure(status: Option<u16>, kind: &str, message: &str) -> Record {
    Record {
        host: Some("api.openai.com".into()),
        model: Some("gpt-4o".into()),
        http_status: status,
        error_type: Some(kind.into()),
        error_message: Some(message.into()),
        ..Record::default()
    }
}

fn mix() -> Vec<Record> {
    let ok = Record {
        provider_hint: Some("anthropic".into()),
        model: Some("claude-sonnet-4".into()),
        http_status: Some(200),
        latency_ms: Some(900.0),
        ..Record::default()
    };
    let failures = [
        failure(Some(429), "rate_limit_error", "Rate limit reached for gpt-4o on tokens per min (TPM): Limit 30000, Used 29000, Requested 1500."),
        failure(Some(529), "overloaded_error", "Overloaded"),
        failure(Some(429), "insufficient_quota", "You exceeded your current quota, please check your plan and billing details."),
        failure(Some(500), "server_error", "The server had an error while processing your request."),
        failure(None, "APITimeoutError", "Request timed out."),
    ];
    let mut records = Vec::with_capacity(10_000);
    for i in 0..10_000 {
        if i % 20 == 0 {
            records.push(failures[(i / 20) % failures.len()].clone());
        } else {
            records.push(ok.clone());
        }
    }
    records
}

fn bench_classify(c: &mut Criterion) {
    let records = mix();
    let classifier = Classifier::default();
    let mut group = c.benchmark_group("classify");
    group.throughput(Throughput::Elements(records.len() as u64));
    group.bench_function("mix_95_ok", |b| {
        b.iter(|| {
            records
                .iter()
                .map(|r| usize::from(classifier.classify(r).retryable))
                .sum::<usize>()
        });
    });
    let failures: Vec<Record> = records
        .iter()
        .filter(|r| r.error_type.is_some())
        .cloned()
        .collect();
    group.throughput(Throughput::Elements(failures.len() as u64));
    group.bench_function("failures_only", |b| {
        b.iter(|| {
            failures
                .iter()
                .map(|r| usize::from(classifier.classify(r).retryable))
                .sum::<usize>()
        });
    });
    group.finish();
}

criterion_group!(benches, bench_classify);
criterion_main!(benches);
