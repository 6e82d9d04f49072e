//! The parquet tables and the markdown report, from classified records.

use std::sync::Arc;

use faultline_classify::incidents::{detect, Collector, DetectConfig};
use faultline_classify::Classifier;
use faultline_ingest::Record;
use faultline_report::{
    incidents_frame, markdown, provider_table, records_schema, rollups, write_parquet, Overview,
    RecordColumns, RecordsWriter,
};
use polars::prelude::*;

/// 2026-03-10T00:00:00Z.
const DAY: i64 = 1_773_100_800_000;

fn calls() -> Vec<Record> {
    let file: Arc<str> = Arc::from("calls.jsonl");
    let mut out = Vec::new();
    for i in 0..600u32 {
        let minute = i64::from(i / 60);
        let mut rec = Record {
            ts_ms: DAY + minute * 60_000 + i64::from(i % 60) * 1000,
            source_file: Arc::clone(&file),
            source_line: u64::from(i) + 1,
            host: Some(
                if i % 3 == 0 {
                    "api.anthropic.com"
                } else {
                    "api.openai.com"
                }
                .into(),
            ),
            model: Some(
                if i % 3 == 0 {
                    "claude-sonnet-4-5"
                } else {
                    "gpt-4o-mini"
                }
                .into(),
            ),
            service: Some("checkout".into()),
            key_fp: Some("kf_0123456789abcdef".into()),
            http_status: Some(200),
            latency_ms: Some(f64::from(100 + i % 100)),
            prompt_tokens: Some(1000),
            request_id: Some(format!("req-{i}")),
            ..Record::default()
        };
        // Minutes 5 to 7: Anthropic overloaded on every call.
        if i % 3 == 0 && (5..8).contains(&minute) {
            rec.http_status = Some(529);
            rec.error_type = Some("overloaded_error".into());
            rec.error_message = Some("Overloaded".into());
        }
        out.push(rec);
    }
    out
}

struct Written {
    _dir: tempfile::TempDir,
    records: std::path::PathBuf,
    rows: u64,
}

fn write_records(records: &[Record]) -> Written {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("records.parquet");
    let classifier = Classifier::default();
    let mut writer = RecordsWriter::create(&path).unwrap();
    // Several frames, as the workers hand them over.
    for part in records.chunks(250) {
        let mut columns = RecordColumns::default();
        for rec in part {
            columns.push(rec, &classifier.classify(rec));
        }
        writer.write(columns.into_frame().unwrap()).unwrap();
    }
    let rows = writer.finish().unwrap();
    Written {
        _dir: dir,
        records: path,
        rows,
    }
}

fn read(path: &std::path::Path) -> DataFrame {
    ParquetReader::new(std::fs::File::open(path).unwrap())
        .finish()
        .unwrap()
}

#[test]
fn records_parquet_holds_every_call_with_the_documented_columns() {
    let written = write_records(&calls());
    assert_eq!(written.rows, 600);
    let frame = read(&written.records);
    assert_eq!(frame.height(), 600);
    let names: Vec<&str> = frame
        .get_column_names()
        .iter()
        .map(|n| n.as_str())
        .collect();
    let expected: Vec<String> = records_schema()
        .iter_names()
        .map(ToString::to_string)
        .collect();
    assert_eq!(names, expected);
    assert_eq!(
        frame.column("ts").unwrap().dtype(),
        &DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
    );
    assert_eq!(
        frame.column("http_status").unwrap().dtype(),
        &DataType::UInt16
    );
    // Rows keep input order and their evidence pointers.
    let lines = frame.column("source_line").unwrap().u64().unwrap();
    assert_eq!(lines.get(0), Some(1));
    assert_eq!(lines.get(599), Some(600));
    let classes = frame.column("status_class").unwrap().str().unwrap();
    let overloaded = (0..classes.len())
        .filter(|&i| classes.get(i) == Some("overloaded"))
        .count();
    assert_eq!(overloaded, 60);
    let providers = frame.column("provider").unwrap().str().unwrap();
    assert_eq!(providers.get(0), Some("anthropic"));
    assert_eq!(providers.get(1), Some("openai"));
}

#[test]
fn rollups_add_up_to_the_records() {
    let written = write_records(&calls());
    let rollups = rollups(&written.records, 60_000).unwrap();
    let requests: u64 = rollups
        .column("requests")
        .unwrap()
        .u64()
        .unwrap()
        .sum()
        .unwrap();
    let errors: u64 = rollups
        .column("errors")
        .unwrap()
        .u64()
        .unwrap()
        .sum()
        .unwrap();
    assert_eq!((requests, errors), (600, 60));
    // Ten minutes of openai ok; anthropic ok in seven, overloaded in three.
    assert_eq!(rollups.height(), 20);
    // Written, the window start is a UTC timestamp.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rollups.parquet");
    write_parquet(&mut rollups.clone(), &path).unwrap();
    assert_eq!(
        read(&path).column("window_start").unwrap().dtype(),
        &DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
    );
    // Each window's latency percentiles sit inside the logged range.
    let p95 = rollups.column("latency_p95_ms").unwrap().f64().unwrap();
    assert!((0..p95.len())
        .filter_map(|i| p95.get(i))
        .all(|ms| (100.0..200.0).contains(&ms)));

    // Five-minute windows fold the same calls into fewer rows.
    let coarse = faultline_report::rollups(&written.records, 300_000).unwrap();
    let requests: u64 = coarse
        .column("requests")
        .unwrap()
        .u64()
        .unwrap()
        .sum()
        .unwrap();
    assert_eq!(requests, 600);
    assert_eq!(coarse.height(), 5);
}

#[test]
fn the_markdown_report_leads_with_incidents_and_names_the_providers() {
    let records = calls();
    let written = write_records(&records);
    let classifier = Classifier::default();
    let config = DetectConfig::default();
    let mut collector = Collector::new(&config);
    for rec in &records {
        collector.add(rec, &classifier.classify(rec));
    }
    let incidents = detect(&collector.finish(), &config);
    assert_eq!(incidents.len(), 1, "{incidents:#?}");

    let providers = provider_table(&written.records).unwrap();
    assert_eq!(providers[0].provider, "openai");
    assert_eq!(providers[0].requests, 400);
    assert_eq!(providers[1].errors, 60);
    assert_eq!(
        providers[1].top_failure,
        Some(("overloaded".to_owned(), 60))
    );

    let overview = Overview {
        version: "test".into(),
        inputs: 1,
        records: 600,
        failed: 60,
        lines: 601,
        bad_lines: 1,
        bad_by_reason: vec![("invalid_json".into(), 1)],
        ..Overview::default()
    };
    let text = markdown(&overview, &providers, &incidents);
    let incidents_at = text.find("## Incidents").unwrap();
    let providers_at = text.find("## Providers").unwrap();
    assert!(incidents_at < providers_at);
    assert!(text.contains("### 1. overload_persistent"), "{text}");
    assert!(text.contains(&incidents[0].summary), "{text}");
    assert!(text.contains("| anthropic | 200 | 60 | 30% |"), "{text}");
    assert!(text.contains("invalid_json: 1"), "{text}");
    assert!(
        text.contains("2026-03-10 00:00:00 to 2026-03-10 00:09:59 UTC"),
        "{text}"
    );

    let mut frame = incidents_frame(&incidents).unwrap();
    assert_eq!(frame.height(), 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("incidents.parquet");
    write_parquet(&mut frame, &path).unwrap();
    let back = read(&path);
    assert_eq!(
        back.column("pattern").unwrap().str().unwrap().get(0),
        Some("overload_persistent")
    );
    assert_eq!(
        back.column("start").unwrap().dtype(),
        &DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
    );
    let evidence = back
        .column("evidence")
        .unwrap()
        .list()
        .unwrap()
        .get_as_series(0)
        .unwrap();
    assert_eq!(evidence.len(), 5);
}

#[test]
fn an_empty_run_still_writes_valid_tables() {
    let written = write_records(&[]);
    assert_eq!(written.rows, 0);
    assert_eq!(read(&written.records).height(), 0);
    assert_eq!(rollups(&written.records, 60_000).unwrap().height(), 0);
    assert!(provider_table(&written.records).unwrap().is_empty());
    let text = markdown(&Overview::default(), &[], &[]);
    assert!(text.contains("No incident"), "{text}");
}
