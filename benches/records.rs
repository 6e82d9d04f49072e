//! The records stage: classified records into columns, and the columns into
//! a zstd parquet file, on a realistic mix (95% successes, every text column
//! filled as the sample day fills it).
//!
//! `cargo bench -p faultline-report --bench records`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use faultline_classify::{Classification, Classifier};
use faultline_ingest::{Format, Record, Shared};
use faultline_report::{RecordColumns, RecordsWriter};

const ROWS: usize = 200_000;

fn records() -> Vec<(Record, Classification)> {
    let classifier = Classifier::default();
    let file = Shared::intern("checkout-api.jsonl");
    // Interned, as ingest gives them.
    let services: Vec<Shared> = ["checkout-api", "support-bot", "search"]
        .into_iter()
        .map(Shared::intern)
        .collect();
    let models: Vec<Shared> = ["gpt-4o-mini", "claude-sonnet-4-5", "deepseek-chat"]
        .into_iter()
        .map(Shared::intern)
        .collect();
    (0..ROWS)
        .map(|i| {
            let failed = i % 20 == 0;
            let rec = Record {
                ts_ms: 1_773_100_800_000 + i as i64 * 37,
                source_file: file.clone(),
                source_line: i as u64 + 1,
                byte_offset: i as u64 * 380,
                format: Some(Format::FlatEvent),
                request_id: Some(format!("req_{:016x}", i.wrapping_mul(0x9E37_79B9)).as_str().into()),
                service: Some(services[i % 3].clone()),
                model: Some(models[i % 3].clone()),
                host: Some(Shared::intern("api.openai.com")),
                key_fp: Some(Shared::intern("kf_33b84d2137948259")),
                http_status: Some(if failed { 429 } else { 200 }),
                error_type: failed.then(|| "rate_limit_error".to_owned()),
                error_message: failed.then(|| {
                    "Rate limit reached for gpt-4o-mini on tokens per min (TPM): Limit 30000, Used 29000, Requested 1500.".to_owned()
                }),
                latency_ms: Some(200.0 + (i % 4000) as f64),
                prompt_tokens: Some((i % 20_000) as u32),
                completion_tokens: Some((i % 1500) as u32),
                attempt: Some(0),
                ..Record::default()
            };
            let class = classifier.classify(&rec);
            (rec, class)
        })
        .collect()
}

fn columns(rows: &[(Record, Classification)]) -> RecordColumns {
    let mut columns = RecordColumns::with_capacity(rows.len());
    for (rec, class) in rows {
        columns.push(rec, class);
    }
    columns
}

fn bench_records(c: &mut Criterion) {
    let rows = records();
    let mut group = c.benchmark_group("records");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.sample_size(10);
    group.bench_function("columns", |b| {
        b.iter(|| columns(&rows).len());
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("records.parquet");
    group.bench_function("parquet_write", |b| {
        b.iter_batched(
            || columns(&rows),
            |batch| {
                let mut writer = RecordsWriter::create(&path).unwrap();
                writer.write(batch).unwrap();
                writer.finish().unwrap()
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, bench_records);
criterion_main!(benches);
