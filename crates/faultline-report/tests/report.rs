//! The parquet tables and the markdown report, from classified records.

use faultline_classify::Classifier;
use faultline_incidents::{detect, Collector, DetectConfig};
use faultline_ingest::{Record, Shared};
use faultline_report::{
    html, markdown, records_schema, write_incidents, Filter, Overview, RecordColumns, RecordSet,
    RecordsWriter, Report, Rollups, RELATIVE_ACCURACY,
};
use polars::prelude::*;

/// 2026-03-10T00:00:00Z.
const DAY: i64 = 1_773_100_800_000;

fn calls() -> Vec<Record> {
    let file = Shared::intern("calls.jsonl");
    let mut out = Vec::new();
    for i in 0..600u32 {
        let minute = i64::from(i / 60);
        let mut rec = Record {
            ts_ms: DAY + minute * 60_000 + i64::from(i % 60) * 1000,
            source_file: file.clone(),
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
            completion_tokens: Some(200 + i % 50),
            request_id: Some(format!("req-{i}").as_str().into()),
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
    path: std::path::PathBuf,
    records: RecordSet,
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
        writer.write(columns).unwrap();
    }
    let rows = writer.finish().unwrap();
    Written {
        _dir: dir,
        records: RecordSet::new(std::slice::from_ref(&path)),
        path,
        rows,
    }
}

/// The aggregates of `records`, built in parts and merged, as the workers do.
fn rollups_of(records: &[Record], window_ms: i64) -> Rollups {
    let classifier = Classifier::default();
    let mut all = Rollups::new(window_ms);
    for part in records.chunks(170) {
        let mut rollups = Rollups::new(window_ms);
        for rec in part {
            let class = classifier.classify(rec);
            rollups.add(rec, class.provider, class.status_class);
        }
        all.merge(rollups);
    }
    all
}

fn read(path: &std::path::Path) -> DataFrame {
    ParquetReader::new(std::fs::File::open(path).unwrap())
        .finish()
        .unwrap()
}

/// Writes any table to `path`, as a file the crate did not write would be.
fn write_frame(frame: &mut DataFrame, path: &std::path::Path) {
    ParquetWriter::new(std::fs::File::create(path).unwrap())
        .finish(frame)
        .unwrap();
}

/// The rollups as written to rollups.parquet, read back.
fn rollups_table(rollups: &Rollups) -> DataFrame {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rollups.parquet");
    rollups.write(&path).unwrap();
    read(&path)
}

#[test]
fn records_parquet_holds_every_call_with_the_documented_columns() {
    let written = write_records(&calls());
    assert_eq!(written.rows, 600);
    let frame = read(&written.path);
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
    let rollups = rollups_table(&rollups_of(&calls(), 60_000));
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
    assert_eq!(
        rollups.column("window_start").unwrap().dtype(),
        &DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
    );
    // Each window's latency percentiles sit inside the logged range (within
    // the sketch's accuracy).
    let p95 = rollups.column("latency_p95_ms").unwrap().f64().unwrap();
    let range = 100.0 * (1.0 - RELATIVE_ACCURACY)..200.0 * (1.0 + RELATIVE_ACCURACY);
    assert!((0..p95.len())
        .filter_map(|i| p95.get(i))
        .all(|ms| range.contains(&ms)));
    // Rows are ordered by window, then provider name.
    let providers = rollups.column("provider").unwrap().str().unwrap();
    assert_eq!(
        (providers.get(0), providers.get(1)),
        (Some("anthropic"), Some("openai"))
    );

    // Five-minute windows fold the same calls into fewer rows.
    let coarse = rollups_table(&rollups_of(&calls(), 300_000));
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
    let classifier = Classifier::default();
    let config = DetectConfig::default();
    let mut collector = Collector::new(&config);
    for rec in &records {
        collector.add(rec, &classifier.classify(rec));
    }
    let incidents = detect(&collector.finish(), &config);
    assert_eq!(incidents.len(), 1, "{incidents:#?}");

    let rollups = rollups_of(&records, 60_000);
    let providers = rollups.providers();
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
    let report = Report {
        overview,
        providers: providers.clone(),
        incidents: &incidents,
        charts: rollups.charts(),
    };
    let text = markdown(&report);
    let incidents_at = text.find("## Incidents").unwrap();
    let providers_at = text.find("## Providers").unwrap();
    assert!(incidents_at < providers_at);
    assert!(text.contains("### 1. overload_persistent"), "{text}");
    // As markdown shows it: escaped, never markup of its own.
    assert!(
        text.contains(&faultline_report::inert::markdown(&incidents[0].summary)),
        "{text}"
    );
    assert!(text.contains("| anthropic | 200 | 60 | 30% |"), "{text}");
    assert!(text.contains("invalid_json: 1"), "{text}");
    assert!(
        text.contains("2026-03-10 00:00:00 to 2026-03-10 00:09:59 UTC"),
        "{text}"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("incidents.parquet");
    write_incidents(&incidents, &path).unwrap();
    let back = read(&path);
    assert_eq!(back.height(), 1);
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
    assert_eq!(read(&written.path).height(), 0);
    let rollups = rollups_of(&[], 60_000);
    assert_eq!(rollups_table(&rollups).height(), 0);
    assert!(rollups.providers().is_empty());
    assert!(rollups.charts().is_none());
    let report = Report {
        overview: Overview::default(),
        providers: Vec::new(),
        incidents: &[],
        charts: None,
    };
    assert!(markdown(&report).contains("No incident"));
    let page = html(&report);
    assert!(page.contains("No incident"));
    assert!(!page.contains("<svg"), "charts drawn without calls");
    let mut seen = 0;
    written.records.for_each(|_, _| seen += 1).unwrap();
    assert_eq!(seen, 0);
}

#[test]
fn chart_series_add_up_to_the_records_in_named_buckets() {
    let charts = rollups_of(&calls(), 60_000).charts().unwrap();
    // Ten minutes fit in 300 one-minute buckets.
    assert_eq!(
        (charts.bucket_ms, charts.start_ms, charts.buckets),
        (60_000, DAY, 10)
    );
    let names: Vec<&str> = charts
        .providers
        .iter()
        .map(|p| p.provider.as_str())
        .collect();
    assert_eq!(names, ["openai", "anthropic"]);
    let anthropic = &charts.providers[1];
    assert_eq!(anthropic.requests, vec![20; 10]);
    assert_eq!(anthropic.errors, [0, 0, 0, 0, 0, 20, 20, 20, 0, 0]);
    assert_eq!(charts.failures_by_class.len(), 1);
    assert_eq!(charts.failures_by_class[0].0, "overloaded");
    assert!(charts.latency[1]
        .iter()
        .all(|p95| p95.is_some_and(|ms| (99.0..202.0).contains(&ms))));
    // A week needs wider buckets, of a width a reader can name.
    assert_eq!(
        faultline_report::bucket_width(DAY, DAY + 86_400_000),
        5 * 60_000
    );
    assert_eq!(
        faultline_report::bucket_width(DAY, DAY + 7 * 86_400_000),
        3_600_000
    );
}

#[test]
fn floats_read_back_exactly_missing_ones_included() {
    // More rows than a page and a row group hold, so that values cross both.
    let file = Shared::intern("floats.jsonl");
    let latency = |i: u32| match i % 97 {
        0 => None,
        1 => Some(0.0),
        2 => Some(1e-3),
        3 => Some(86_400_000.5),
        _ => Some(f64::from(i % 5000) + f64::from(i % 7) / 8.0),
    };
    let retry_after = |i: u32| i.is_multiple_of(1000).then(|| f64::from(i / 1000));
    let records: Vec<Record> = (0..140_000u32)
        .map(|i| Record {
            ts_ms: DAY + i64::from(i),
            source_file: file.clone(),
            source_line: u64::from(i) + 1,
            latency_ms: latency(i),
            retry_after_s: retry_after(i),
            ..Record::default()
        })
        .collect();
    let written = write_records(&records);
    let frame = read(&written.path);
    let column = |name: &str| -> Vec<Option<f64>> {
        let values = frame.column(name).unwrap().f64().unwrap();
        (0..values.len()).map(|i| values.get(i)).collect()
    };
    let want: Vec<Option<f64>> = (0..140_000).map(latency).collect();
    assert_eq!(column("latency_ms"), want);
    let want: Vec<Option<f64>> = (0..140_000).map(retry_after).collect();
    assert_eq!(column("retry_after_s"), want);
}

#[test]
fn records_read_back_as_they_were_classified() {
    let records = calls();
    let written = write_records(&records);
    let classifier = Classifier::default();
    let mut back = Vec::new();
    let rows = written
        .records
        .for_each(|rec, outcome| back.push((rec.clone(), outcome.clone())))
        .unwrap();
    assert_eq!(rows, 600);
    for (original, (rec, outcome)) in records.iter().zip(&back) {
        let class = classifier.classify(original);
        assert_eq!(
            (outcome.provider, outcome.status_class, &*outcome.cause),
            (class.provider, class.status_class, &*class.cause)
        );
        assert_eq!(rec.ts_ms, original.ts_ms);
        assert_eq!(rec.source_line, original.source_line);
        assert_eq!(rec.request_id, original.request_id);
        assert_eq!(rec.model, original.model);
        assert_eq!(rec.key_fp, original.key_fp);
        assert_eq!(rec.http_status, original.http_status);
        assert_eq!(rec.latency_ms, original.latency_ms);
        assert_eq!(rec.error_message, original.error_message);
        assert_eq!(
            (rec.prompt_tokens, rec.completion_tokens),
            (original.prompt_tokens, original.completion_tokens)
        );
    }
    // Detection over the rows read back finds what it finds over the originals.
    let config = DetectConfig::default();
    let (mut direct, mut again) = (Collector::new(&config), Collector::new(&config));
    for rec in &records {
        direct.add(rec, &classifier.classify(rec));
    }
    for (rec, o) in &back {
        again.add_outcome(rec, o.provider, o.status_class, &o.cause);
    }
    assert_eq!(
        detect(&direct.finish(), &config),
        detect(&again.finish(), &config)
    );

    // A filter reads only the matching rows.
    let anthropic = RecordSet::new(std::slice::from_ref(&written.path)).with_filter(&Filter {
        providers: vec!["anthropic".to_owned()],
        ..Filter::default()
    });
    let mut n = 0;
    anthropic
        .for_each(|_, o| {
            assert_eq!(o.provider.as_str(), "anthropic");
            n += 1;
        })
        .unwrap();
    assert_eq!(n, 200);
}

#[test]
fn a_parquet_file_without_the_record_columns_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.parquet");
    let mut frame = df!("ts" => [1i64, 2], "x" => ["a", "b"]).unwrap();
    write_frame(&mut frame, &path);
    let err = RecordSet::new(&[path]).check().unwrap_err().to_string();
    assert!(
        err.contains("other.parquet: not a faultline records file"),
        "{err}"
    );
    assert!(err.contains("column \"ts\" is i64"), "{err}");
}

#[test]
fn records_parquet_bytes_do_not_depend_on_how_the_rows_arrive() {
    // More rows than two row groups, handed over in frames of two sizes, as
    // different chunk sizes or read paths cut the same input.
    let base = calls();
    let classifier = Classifier::default();
    let rows: Vec<(Record, faultline_classify::Classification)> = (0..300_000u64)
        .map(|i| {
            let mut rec = base[(i % 600) as usize].clone();
            rec.source_line = i + 1;
            let class = classifier.classify(&rec);
            (rec, class)
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, frame_rows: usize| {
        let path = dir.path().join(name);
        let mut writer = RecordsWriter::create(&path).unwrap();
        for part in rows.chunks(frame_rows) {
            let mut columns = RecordColumns::with_capacity(part.len());
            for (rec, class) in part {
                columns.push(rec, class);
            }
            writer.write(columns).unwrap();
        }
        assert_eq!(writer.finish().unwrap(), 300_000);
        std::fs::read(path).unwrap()
    };
    let small_frames = write("a.parquet", 1000);
    let odd_frames = write("b.parquet", 7777);
    assert!(small_frames == odd_frames, "the files differ");
    let back = read(&dir.path().join("a.parquet"));
    assert_eq!(back.height(), 300_000);
    assert_eq!(
        back.column("source_line")
            .unwrap()
            .u64()
            .unwrap()
            .get(299_999),
        Some(300_000)
    );
}

/// A records file of 140,000 rows (two batches of reading), and a copy
/// whose row 135,000 holds a status class faultline never writes.
fn good_and_bad_files() -> (Written, std::path::PathBuf) {
    let file = Shared::intern("many.jsonl");
    let records: Vec<Record> = (0..140_000u32)
        .map(|i| Record {
            ts_ms: DAY + i64::from(i),
            source_file: file.clone(),
            source_line: u64::from(i) + 1,
            http_status: Some(200),
            ..Record::default()
        })
        .collect();
    let good = write_records(&records);
    let mut frame = read(&good.path);
    let classes: Vec<&str> = (0..frame.height())
        .map(|i| if i == 135_000 { "bogus" } else { "ok" })
        .collect();
    frame
        .replace("status_class", Column::new("status_class".into(), classes))
        .unwrap();
    let bad = good.path.with_file_name("bad.parquet");
    write_frame(&mut frame, &bad);
    (good, bad)
}

#[test]
fn rows_read_back_stop_at_the_first_bad_one_across_batches_and_files() {
    // Two files of two batches each, the first with a bad row in its second.
    let (good, bad) = good_and_bad_files();
    let mut seen = 0u64;
    let err = RecordSet::new(&[bad.clone(), good.path.clone()])
        .for_each(|_, _| seen += 1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad.parquet"), "{err}");
    assert!(err.contains("\"bogus\""), "{err}");
    // Every row before the bad one was handed out, none after it.
    assert_eq!(seen, 135_000);

    // The same files the other way round: the good one is read whole first.
    let mut seen = 0u64;
    assert!(RecordSet::new(&[good.path.clone(), bad])
        .for_each(|_, _| seen += 1)
        .is_err());
    assert_eq!(seen, 140_000 + 135_000);
}

#[test]
fn rows_folded_by_batch_come_back_in_order_and_stop_at_the_first_bad_batch() {
    let (good, bad) = good_and_bad_files();
    // Each batch folded into its lines, on two workers: handed back in
    // file and batch order, whatever worker finished first.
    let lines = |paths: &[std::path::PathBuf]| {
        let mut parts: Vec<Vec<u64>> = Vec::new();
        let rows = RecordSet::new(paths).fold(
            2,
            Vec::new,
            |lines: &mut Vec<u64>, rec, _| lines.push(rec.source_line),
            |lines| parts.push(lines),
        );
        (rows, parts)
    };
    let (rows, parts) = lines(&[good.path.clone(), good.path.clone()]);
    assert_eq!(rows.unwrap(), 280_000);
    let sizes: Vec<usize> = parts.iter().map(Vec::len).collect();
    assert_eq!(sizes, [131_072, 8_928, 131_072, 8_928]);
    let all: Vec<u64> = parts.concat();
    let want: Vec<u64> = (1..=140_000).chain(1..=140_000).collect();
    assert_eq!(all, want);

    // The bad row's batch is not handed back, nor any after it; the error
    // names the file and the value, and the workers stop.
    let (rows, parts) = lines(&[bad, good.path.clone()]);
    let err = rows.unwrap_err().to_string();
    assert!(
        err.contains("bad.parquet") && err.contains("\"bogus\""),
        "{err}"
    );
    let sizes: Vec<usize> = parts.iter().map(Vec::len).collect();
    assert_eq!(sizes, [131_072]);
}
