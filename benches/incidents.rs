//! Incident detection cost: folding classified records into the collector
//! (runs on the workers, once per record) and detecting over a day's
//! collection (runs once per run).
//!
//! `cargo bench -p faultline-classify --bench incidents`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use faultline_classify::{Classification, Classifier, Record};
use faultline_incidents::{detect, Collector, DetectConfig};
use faultline_ingest::Shared;

/// 2026-03-10T00:00:00Z.
const DAY: i64 = 1_773_100_800_000;

/// A day of calls from ten services (one key and model each), 3% failing.
fn day(n: usize) -> Vec<Record> {
    let file = Shared::intern("calls.jsonl");
    let services: Vec<(Shared, Shared, Shared)> = (0..10)
        .map(|i| {
            (
                Shared::intern(&format!("service-{i}")),
                Shared::intern(&format!("kf_{i:016x}")),
                Shared::intern(if i % 2 == 0 { "gpt-4o-mini" } else { "gpt-4o" }),
            )
        })
        .collect();
    let host = Shared::intern("api.openai.com");
    (0..n)
        .map(|i| {
            let (service, key, model) = &services[(i / 7) % services.len()];
            let mut rec = Record {
                ts_ms: DAY + (i as i64 * 86_400_000) / n as i64,
                source_file: file.clone(),
                source_line: i as u64 + 1,
                service: Some(service.clone()),
                key_fp: Some(key.clone()),
                model: Some(model.clone()),
                host: Some(host.clone()),
                http_status: Some(200),
                latency_ms: Some(800.0 + (i % 400) as f64),
                prompt_tokens: Some(500 + (i % 9000) as u32),
                request_id: Some(format!("req_{i:08x}").as_str().into()),
                ..Record::default()
            };
            if i % 33 == 0 {
                rec.http_status = Some(if i % 2 == 0 { 429 } else { 500 });
                rec.error_type = Some("server_error".into());
                rec.error_message = Some("The server had an error processing your request.".into());
            }
            rec
        })
        .collect()
}

fn bench_incidents(c: &mut Criterion) {
    let records = day(200_000);
    let classifier = Classifier::default();
    let classes: Vec<Classification> = records.iter().map(|r| classifier.classify(r)).collect();
    let config = DetectConfig::default();
    let mut group = c.benchmark_group("incidents");
    group.throughput(Throughput::Elements(records.len() as u64));
    group.bench_function("collect", |b| {
        b.iter(|| {
            let mut collector = Collector::new(&config);
            for (rec, class) in records.iter().zip(&classes) {
                collector.add(rec, class);
            }
            collector.events().len()
        });
    });
    let mut collector = Collector::new(&config);
    for (rec, class) in records.iter().zip(&classes) {
        collector.add(rec, class);
    }
    group.bench_function("detect", |b| {
        b.iter_batched(
            || collector.clone(),
            |collector| detect(&collector.finish(), &config).len(),
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, bench_incidents);
criterion_main!(benches);
