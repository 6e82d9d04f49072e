//! Ingest behaviour seen from outside: fixtures in, records and quarantine out.

use std::io::Write;
use std::path::{Path, PathBuf};

use faultline_ingest::{
    discover, BadLine, BodyShape, Compression, Error, Format, IngestOptions, Ingester, Input,
    Reason, Record, Summary,
};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(rel)
}

struct Run {
    records: Vec<Record>,
    bad: Vec<BadLine>,
    summary: Summary,
}

fn run_with(inputs: &[Input], options: IngestOptions) -> Run {
    let ingester = Ingester::new(options).unwrap();
    let mut records = Vec::new();
    let mut bad = Vec::new();
    let summary = ingester.ingest(inputs, &mut |batch| {
        records.extend(batch.records);
        bad.extend(batch.bad_lines);
    });
    Run {
        records,
        bad,
        summary,
    }
}

fn run(paths: &[PathBuf]) -> Run {
    let inputs: Vec<Input> = paths.iter().cloned().map(Input::File).collect();
    run_with(&inputs, IngestOptions::default())
}

fn run_fixture(rel: &str) -> Run {
    run(&[fixture(rel)])
}

/// Dates a file back so that it counts as settled, not live, and is mapped.
fn settle(path: &Path) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    file.set_modified(hour_ago).unwrap();
}

fn reasons(bad: &[BadLine]) -> Vec<(u64, Reason)> {
    bad.iter().map(|b| (b.line, b.reason)).collect()
}

const KEY: &str = "sk-proj-Q9x7LmN3vB5cT8rWz2Yk4Hj6";

#[test]
fn flat_events_with_common_aliases() {
    let Run { records, bad, .. } = run_fixture("formats/flat_event.jsonl");
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(records.len(), 5);
    assert!(records.iter().all(|r| r.format == Some(Format::FlatEvent)));

    let ok = &records[0];
    assert_eq!(ok.ts_ms, 1_741_078_800_120);
    assert_eq!(ok.source_line, 1);
    assert_eq!(ok.service.as_deref(), Some("checkout-api"));
    assert_eq!(ok.provider_hint.as_deref(), Some("openai"));
    assert_eq!(ok.http_status, Some(200));
    assert_eq!(ok.latency_ms, Some(812.5));
    assert_eq!(
        (ok.prompt_tokens, ok.completion_tokens),
        (Some(1200), Some(310))
    );
    assert_eq!((ok.attempt, ok.stream), (Some(0), Some(false)));
    assert!(ok.key_fp.as_deref().unwrap().starts_with("kf_"));
    assert_eq!(ok.secrets_found, 1);

    let overloaded = &records[1];
    assert_eq!(overloaded.ts_ms, 1_741_075_201_500, "offset +01:00 applied");
    assert_eq!(overloaded.service.as_deref(), Some("search"));
    assert_eq!(overloaded.http_status, Some(529));
    assert_eq!(overloaded.error_type.as_deref(), Some("overloaded_error"));
    assert_eq!(overloaded.error_message.as_deref(), Some("Overloaded"));
    assert_eq!(overloaded.latency_ms, Some(2250.0));
    assert_eq!(overloaded.retry_after_s, Some(30.0));

    let empty = &records[2];
    assert_eq!(empty.ts_ms, 1_741_078_802_123, "epoch milliseconds");
    assert!(empty.empty_response);

    let limited = &records[3];
    assert_eq!(limited.host.as_deref(), Some("api.openai.com"));
    assert_eq!(limited.http_status, Some(429), "status as a string");
    assert_eq!(limited.error_type.as_deref(), Some("requests"));
    assert_eq!(limited.error_code.as_deref(), Some("rate_limit_exceeded"));
    assert!(limited
        .error_message
        .as_deref()
        .unwrap()
        .starts_with("Rate limit reached"));
    assert_eq!(limited.retry_after_s, Some(1.2));
    assert_eq!(
        limited.key_fp, ok.key_fp,
        "a bearer header and the bare key share a fingerprint"
    );

    let timeout = &records[4];
    assert_eq!(timeout.http_status, None);
    assert_eq!(timeout.error_type.as_deref(), Some("APITimeoutError"));
    assert_eq!(timeout.timeout_ms, Some(60_000));
    assert_eq!(
        (timeout.prompt_tokens, timeout.max_tokens),
        (Some(81_234), Some(4096))
    );
}

#[test]
fn envelopes_with_provider_bodies() {
    let Run { records, bad, .. } = run_fixture("formats/envelope.jsonl");
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(records.len(), 7);
    assert!(records.iter().all(|r| r.format == Some(Format::Envelope)));

    let anthropic = &records[0];
    assert_eq!(anthropic.host.as_deref(), Some("api.anthropic.com"));
    assert_eq!(anthropic.model.as_deref(), Some("claude-opus-4-1"));
    assert_eq!(
        (anthropic.max_tokens, anthropic.stream),
        (Some(8192), Some(true))
    );
    assert_eq!(anthropic.http_status, Some(529));
    assert_eq!(anthropic.body_shape, Some(BodyShape::Anthropic));
    assert_eq!(anthropic.error_type.as_deref(), Some("overloaded_error"));
    assert_eq!(anthropic.request_id.as_deref(), Some("req_011CKx"));
    assert_eq!(anthropic.retry_after_s, Some(12.0));
    assert!(anthropic.key_fp.is_some(), "x-api-key header fingerprinted");

    let gemini = &records[1];
    assert_eq!(gemini.body_shape, Some(BodyShape::Google));
    assert_eq!(gemini.error_type.as_deref(), Some("RESOURCE_EXHAUSTED"));
    assert!(gemini.error_message.as_deref().unwrap().contains("quota"));

    let bedrock = &records[2];
    assert_eq!(bedrock.body_shape, Some(BodyShape::Bedrock));
    assert_eq!(bedrock.error_type.as_deref(), Some("ThrottlingException"));
    assert_eq!(bedrock.request_id.as_deref(), Some("b7d1"));

    let deepseek = &records[3];
    assert!(deepseek.empty_response);
    assert_eq!(deepseek.http_status, Some(200));
    assert_eq!(deepseek.prompt_tokens, Some(42));

    let wrapped = &records[4];
    assert_eq!(wrapped.http_status, Some(400));
    assert_eq!(
        wrapped.error_code.as_deref(),
        Some("context_length_exceeded")
    );
    assert!(wrapped
        .error_message
        .as_deref()
        .unwrap()
        .starts_with("This model's maximum context"));

    let timeout = &records[5];
    assert_eq!(timeout.http_status, None);
    assert_eq!(timeout.timeout_ms, Some(60_000));
    assert_eq!(timeout.error_type.as_deref(), Some("ReadTimeout"));

    let success = &records[6];
    assert_eq!(success.http_status, Some(200));
    assert!(!success.empty_response);
    assert_eq!(success.error_message, None);
    assert_eq!(
        (success.prompt_tokens, success.completion_tokens),
        (Some(12), Some(3))
    );
}

#[test]
fn litellm_payloads() {
    let Run { records, bad, .. } = run_fixture("formats/litellm.jsonl");
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(records.len(), 3);
    assert!(records.iter().all(|r| r.format == Some(Format::LiteLlm)));

    let ok = &records[0];
    assert_eq!(ok.ts_ms, 1_741_082_400_250);
    assert_eq!(ok.latency_ms, Some(1500.0));
    assert_eq!(ok.http_status, Some(200));
    assert_eq!(ok.provider_hint.as_deref(), Some("openai"));
    assert_eq!(
        ok.service.as_deref(),
        Some("support-bot"),
        "key alias first"
    );
    assert_eq!(ok.max_tokens, Some(1024));
    assert_eq!(ok.request_id.as_deref(), Some("chatcmpl-2f1"));

    let overloaded = &records[1];
    assert_eq!(overloaded.http_status, Some(529));
    assert_eq!(
        overloaded.error_type.as_deref(),
        Some("InternalServerError")
    );
    assert_eq!(
        overloaded.latency_ms, None,
        "startTime == endTime is no latency"
    );
    assert!(overloaded
        .error_message
        .as_deref()
        .unwrap()
        .contains("Overloaded"));
    assert_eq!(overloaded.key_fp, ok.key_fp);
    assert_eq!(
        overloaded.service.as_deref(),
        Some("support"),
        "then the team alias"
    );

    let quota = &records[2];
    assert_eq!(quota.http_status, Some(429));
    assert_eq!(quota.latency_ms, Some(300.0));
    assert!(quota
        .error_message
        .as_deref()
        .unwrap()
        .contains("exceeded your current quota"));
}

#[test]
fn otel_spans_flattened_and_otlp() {
    let Run { records, bad, .. } = run_fixture("formats/otel_flat.jsonl");
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(records.len(), 2);
    let limited = &records[0];
    assert_eq!(limited.format, Some(Format::OtelGenAi));
    assert_eq!(limited.provider_hint.as_deref(), Some("openai"));
    assert_eq!(limited.http_status, Some(429));
    assert_eq!(limited.error_type.as_deref(), Some("RateLimitError"));
    assert_eq!(limited.latency_ms, Some(1250.0));
    assert_eq!(limited.host.as_deref(), Some("api.openai.com"));
    assert_eq!(limited.max_tokens, Some(512));
    let ok = &records[1];
    assert_eq!(ok.provider_hint.as_deref(), Some("anthropic"));
    assert_eq!(ok.http_status, Some(200));
    assert_eq!(ok.latency_ms, Some(2000.0));
    assert_eq!(ok.service.as_deref(), Some("ranker"));

    let Run { records, bad, .. } = run_fixture("formats/otel_otlp.jsonl");
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(
        records.len(),
        2,
        "the HTTP child span is not a call of its own"
    );
    assert!(records.iter().all(|r| r.source_line == 1));
    assert_eq!(records[0].service.as_deref(), Some("assistant"));
    assert_eq!(
        (records[0].prompt_tokens, records[0].completion_tokens),
        (Some(310), Some(42))
    );
    assert_eq!(records[0].http_status, Some(200));
    let timeout = &records[1];
    assert_eq!(timeout.error_type.as_deref(), Some("APITimeoutError"));
    assert_eq!(
        timeout.http_status,
        Some(504),
        "taken from the child HTTP span"
    );
    assert_eq!(timeout.error_message.as_deref(), Some("Request timed out."));
}

#[test]
fn every_bad_line_is_quarantined_with_its_line_and_reason() {
    let Run {
        records,
        bad,
        summary,
    } = run_fixture("bad/mixed.jsonl");
    assert_eq!(
        reasons(&bad),
        vec![
            (2, Reason::InvalidJson),
            (5, Reason::NotAnObject),
            (6, Reason::MissingTimestamp),
            (7, Reason::BadTimestamp),
            (8, Reason::TimestampOutOfRange),
            (9, Reason::NotACall),
            (13, Reason::NotAnObject),
        ]
    );
    // Line 14 nests 200 deep under a field faultline does not read: it is
    // skipped without recursion, and the call is kept.
    let lines: Vec<u64> = records.iter().map(|r| r.source_line).collect();
    assert_eq!(lines, vec![1, 10, 11, 12, 14, 15]);
    let totals = &summary.totals;
    assert_eq!(totals.lines, 15);
    assert_eq!(totals.blank_lines, 2);
    assert_eq!(
        totals.records + totals.bad_lines + totals.blank_lines,
        totals.lines
    );
    assert_eq!(totals.bad_by_reason[&Reason::NotAnObject], 2);

    // Offsets point at the line's first byte.
    let text = std::fs::read(fixture("bad/mixed.jsonl")).unwrap();
    let second = &bad[0];
    assert!(text[second.offset as usize..].starts_with(br#"{"ts":"2025-03-04T12:00:01Z""#));
    assert_eq!(
        second.detail.as_deref(),
        Some("expected a key at column 50 (end of line)")
    );
    assert!(second
        .excerpt
        .starts_with(r#"{"ts":"2025-03-04T12:00:01Z""#));

    // Numbers as strings are read; wrong types are ignored, not fatal.
    assert_eq!(records[1].http_status, Some(503));
    assert_eq!(records[1].latency_ms, Some(1500.5));
    assert_eq!(records[1].prompt_tokens, Some(12));
    assert_eq!(records[2].model.as_deref(), Some("42"));
    assert_eq!(records[2].http_status, None);
    assert_eq!(records[2].latency_ms, None);
    assert_eq!(
        records[3].model.as_deref(),
        Some("gpt-4o"),
        "first duplicate key wins"
    );
}

#[test]
fn nesting_10000_deep_never_exhausts_the_stack() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let log = format!(
        r#"{{"ts":"2025-03-04T12:00:00Z","provider":"openai","status_code":200,"extra":{deep}}}
{{"ts":"2025-03-04T12:00:01Z","provider":"openai","status_code":500,"error":{deep}}}
{{"ts":"2025-03-04T12:00:02Z","gen_ai.system":"openai","attributes":{deep}}}
{{"ts":"2025-03-04T12:00:03Z","status_code":502,"error":{}"x"{}}}
"#,
        r#"{"error":"#.repeat(10_000),
        "}".repeat(10_000)
    );
    let ingester = Ingester::new(IngestOptions::default()).unwrap();
    let mut records = Vec::new();
    let mut bad = Vec::new();
    ingester.ingest_bytes("deep", log.as_bytes(), &mut |b| {
        records.extend(b.records);
        bad.extend(b.bad_lines);
    });
    let kept: Vec<_> = records
        .iter()
        .map(|r| (r.source_line, r.http_status))
        .collect();
    // The OpenTelemetry span too: its attributes are flattened from their
    // texts, with no tree of values built, so no depth is too deep.
    assert_eq!(
        kept,
        vec![
            (1, Some(200)),
            (2, Some(500)),
            (3, Some(200)),
            (4, Some(502))
        ]
    );
    assert!(bad.is_empty(), "{bad:?}");
}

#[test]
fn bom_and_crlf_are_invisible() {
    let Run { records, bad, .. } = run_fixture("bad/bom_crlf.jsonl");
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].model.as_deref(), Some("gpt-4o"));
}

#[test]
fn truncated_last_line_is_named_as_such() {
    let Run { records, bad, .. } = run_fixture("bad/truncated_last_line.jsonl");
    assert_eq!(records.len(), 2);
    assert_eq!(reasons(&bad), vec![(3, Reason::TruncatedLine)]);
}

#[test]
fn invalid_utf8_and_nul_bytes() {
    let Run { records, bad, .. } = run_fixture("bad/invalid_utf8_nul.jsonl");
    assert_eq!(records.len(), 2);
    assert_eq!(
        reasons(&bad),
        vec![(2, Reason::InvalidUtf8), (3, Reason::InvalidJson)]
    );
    assert!(bad[0].excerpt.contains('\u{fffd}'));
    assert_eq!(bad[0].detail.as_deref(), Some("invalid utf-8 at byte 62"));
    assert!(
        !bad[1].excerpt.contains('\0'),
        "control bytes are not copied out"
    );
}

#[test]
fn empty_and_blank_files_yield_nothing_and_no_error() {
    let Run {
        records,
        bad,
        summary,
    } = run(&[
        fixture("bad/empty.jsonl"),
        fixture("bad/blank_lines_only.jsonl"),
    ]);
    assert!(records.is_empty() && bad.is_empty());
    assert!(summary.files.iter().all(|f| f.error.is_none()));
    assert_eq!(summary.totals.blank_lines, 5);
}

#[test]
fn a_100_mb_line_is_quarantined_in_both_read_paths() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.jsonl");
    {
        let mut file = std::fs::File::create(&path).unwrap();
        file.write_all(
            b"{\"ts\":\"2025-03-04T12:00:00Z\",\"provider\":\"openai\",\"status_code\":200}\n",
        )
        .unwrap();
        let mut line = Vec::with_capacity(100 << 20);
        line.extend_from_slice(b"{\"ts\":\"2025-03-04T12:00:01Z\",\"message\":\"");
        line.resize(100 << 20, b'x');
        line.extend_from_slice(b"\"}\n");
        file.write_all(&line).unwrap();
        file.write_all(
            b"{\"ts\":\"2025-03-04T12:00:02Z\",\"provider\":\"openai\",\"status_code\":500}\n",
        )
        .unwrap();
    }
    settle(&path);
    for mmap in [true, false] {
        let options = IngestOptions {
            mmap,
            chunk_bytes: 1 << 20,
            ..IngestOptions::default()
        };
        let run = run_with(&[Input::File(path.clone())], options);
        assert_eq!(run.summary.files[0].mapped, mmap);
        assert_eq!(
            reasons(&run.bad),
            vec![(2, Reason::LineTooLong)],
            "mmap={mmap}"
        );
        assert!(run.bad[0].excerpt.len() <= 200);
        let statuses: Vec<_> = run
            .records
            .iter()
            .map(|r| (r.source_line, r.http_status))
            .collect();
        assert_eq!(
            statuses,
            vec![(1, Some(200)), (3, Some(500))],
            "mmap={mmap}"
        );
        assert_eq!(
            run.summary.totals.bytes,
            std::fs::metadata(&path).unwrap().len()
        );
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn strip_file(records: &[Record]) -> Vec<Record> {
    records
        .iter()
        .map(|r| Record {
            source_file: "".into(),
            ..r.clone()
        })
        .collect()
}

#[test]
fn compression_is_detected_by_magic_bytes_not_names() {
    let plain = std::fs::read(fixture("formats/envelope.jsonl")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("looks-plain.log");
    std::fs::write(&gz, gzip(&plain)).unwrap();
    // Two gzip members back to back, as `cat a.gz b.gz` makes.
    let (first, second) = plain.split_at(plain.iter().position(|&b| b == b'\n').unwrap() + 1);
    let multi = dir.path().join("multi.jsonl.gz");
    std::fs::write(&multi, [gzip(first), gzip(second)].concat()).unwrap();
    let zst = dir.path().join("data.jsonl");
    std::fs::write(&zst, zstd::encode_all(&plain[..], 3).unwrap()).unwrap();

    let expected = strip_file(&run_fixture("formats/envelope.jsonl").records);
    for (path, compression) in [
        (&gz, Compression::Gzip),
        (&multi, Compression::Gzip),
        (&zst, Compression::Zstd),
    ] {
        let run = run(std::slice::from_ref(path));
        assert_eq!(run.summary.files[0].compression, compression);
        assert!(run.summary.files[0].error.is_none());
        assert_eq!(strip_file(&run.records), expected, "{}", path.display());
    }
}

#[test]
fn a_truncated_gzip_keeps_its_good_lines_and_the_other_files() {
    let plain = std::fs::read(fixture("formats/flat_event.jsonl")).unwrap();
    let mut big = Vec::new();
    for _ in 0..200 {
        big.extend_from_slice(&plain);
    }
    let packed = gzip(&big);
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.jsonl.gz");
    std::fs::write(&cut, &packed[..packed.len() / 2]).unwrap();
    let run = run(&[cut.clone(), fixture("formats/litellm.jsonl")]);

    let broken = &run.summary.files[0];
    match &broken.error {
        Some(Error::Read {
            path,
            last_good_line,
            ..
        }) => {
            assert_eq!(path, &cut);
            assert!(*last_good_line > 0);
            let message = broken.error.as_ref().unwrap().to_string();
            assert!(message.contains("cut.jsonl.gz"), "{message}");
            assert!(message.contains("read failed after line"), "{message}");
        }
        other => panic!("expected a read error, got {other:?}"),
    }
    assert!(broken.counts.records > 0, "lines before the cut are kept");
    assert!(run.summary.files[1].error.is_none());
    assert_eq!(run.summary.files[1].counts.records, 3);
}

#[test]
fn corrupt_or_cut_gzip_and_zstd_keep_good_lines_and_name_the_file() {
    // Varied lines, so that the compressed stream has many blocks to cut between.
    let big = calls(20_000).into_bytes();
    let zst = zstd::encode_all(&big[..], 3).unwrap();
    let gz = gzip(&big);
    let corrupt = |packed: &[u8]| {
        let mut bytes = packed.to_vec();
        let at = bytes.len() * 3 / 4;
        for b in &mut bytes[at..at + 64] {
            *b ^= 0x5a;
        }
        bytes
    };
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("cut.jsonl.zst", zst[..zst.len() / 2].to_vec()),
        ("corrupt.jsonl.zst", corrupt(&zst)),
        ("corrupt.jsonl.gz", corrupt(&gz)),
    ];
    for (name, bytes) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let run = run(&[path.clone(), fixture("formats/litellm.jsonl")]);
        let broken = &run.summary.files[0];
        // A zstd frame without a checksum can decode damage into garbage
        // without noticing; then the garbage lines are what is quarantined.
        match &broken.error {
            Some(error) => {
                let message = error.to_string();
                assert!(
                    message.starts_with(&path.display().to_string()),
                    "{message}"
                );
                assert!(message.contains("read failed after line"), "{message}");
            }
            None => assert!(broken.counts.bad_lines > 0, "{name}: damage went unnoticed"),
        }
        assert!(
            broken.counts.records > 0,
            "{name}: lines before the damage are kept"
        );
        assert!(
            broken.counts.records < 20_000,
            "{name}: {} records",
            broken.counts.records
        );
        assert_eq!(
            run.summary.files[1].counts.records, 3,
            "the next file is read"
        );
    }
}

#[test]
fn one_file_may_mix_every_format() {
    let mut mixed = Vec::new();
    let mut expected = Vec::new();
    for name in [
        "flat_event",
        "envelope",
        "litellm",
        "otel_flat",
        "otel_otlp",
    ] {
        let path = fixture(&format!("formats/{name}.jsonl"));
        mixed.extend_from_slice(&std::fs::read(&path).unwrap());
        expected.extend(
            run(&[path])
                .records
                .into_iter()
                .map(|r| (r.format, r.http_status, r.ts_ms)),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.jsonl");
    std::fs::write(&path, mixed).unwrap();
    let got: Vec<_> = run(&[path])
        .records
        .into_iter()
        .map(|r| (r.format, r.http_status, r.ts_ms))
        .collect();
    assert_eq!(got, expected);
    let formats: std::collections::BTreeSet<_> = got.iter().filter_map(|r| r.0).collect();
    assert_eq!(formats.len(), 4, "{formats:?}");
}

#[cfg(unix)]
#[test]
fn an_entry_that_cannot_be_opened_is_named_and_the_rest_is_read() {
    // Runs as root ignore permission bits, so the unreadable entry is a
    // symlink to nothing: listed by the directory, refused by open().
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("formats/litellm.jsonl"), dir.path().join("a.jsonl")).unwrap();
    let dangling = dir.path().join("b.jsonl");
    std::os::unix::fs::symlink(dir.path().join("gone.jsonl"), &dangling).unwrap();
    std::fs::copy(fixture("formats/litellm.jsonl"), dir.path().join("c.jsonl")).unwrap();
    let (inputs, errors) = discover(&[dir.path()]);
    let mut problems: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let ingester = Ingester::new(IngestOptions::default()).unwrap();
    let summary = ingester.ingest(&inputs, &mut |_| {});
    problems.extend(summary.errors().map(ToString::to_string));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("b.jsonl"), "{problems:?}");
    let read: u64 = summary.files.iter().map(|f| f.counts.records).sum();
    assert_eq!(read, 6, "both readable files are read");
}

#[test]
fn discovery_walks_directories_sorted_and_expands_globs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("b/nested")).unwrap();
    std::fs::create_dir_all(root.join("a")).unwrap();
    for rel in ["b/nested/z.jsonl", "b/y.jsonl", "a/x.jsonl", "a/w.log"] {
        std::fs::write(root.join(rel), "").unwrap();
    }
    let (inputs, errors) = discover(&[root.to_path_buf()]);
    assert!(errors.is_empty(), "{errors:?}");
    let names: Vec<String> = inputs
        .iter()
        .map(|i| {
            i.name()
                .trim_start_matches(&root.display().to_string())
                .to_owned()
        })
        .collect();
    assert_eq!(
        names,
        ["/a/w.log", "/a/x.jsonl", "/b/nested/z.jsonl", "/b/y.jsonl"]
    );

    let pattern = root.join("*/*.jsonl");
    let missing = root.join("nope.jsonl");
    let (inputs, errors) = discover(&[
        pattern,
        root.join("a/x.jsonl"),
        missing.clone(),
        PathBuf::from("-"),
    ]);
    assert_eq!(
        inputs.len(),
        3,
        "a/x.jsonl named twice is read once, plus stdin: {inputs:?}"
    );
    assert_eq!(inputs.last(), Some(&Input::Stdin));
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].to_string(),
        format!("{}: no such file or directory", missing.display())
    );
}

#[cfg(unix)]
#[test]
fn symlink_loops_are_reported_and_the_rest_is_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ok.jsonl"), "").unwrap();
    std::os::unix::fs::symlink(dir.path(), dir.path().join("loop")).unwrap();
    let (inputs, errors) = discover(&[dir.path()]);
    assert_eq!(inputs.len(), 1);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].to_string().contains("loop"), "{}", errors[0]);
}

#[test]
fn secrets_never_survive_into_records_or_quarantine() {
    let run = run(&[
        fixture("formats/flat_event.jsonl"),
        fixture("formats/envelope.jsonl"),
    ]);
    let dump = format!("{:?}{:?}", run.records, run.bad);
    assert!(!dump.contains(KEY));
    assert!(!dump.contains("sk-ant-api03-abcdefghij"));

    let line = format!(
        r#"{{"ts":"2025-03-04T12:00:00Z","provider":"openai","status_code":401,"error":"Incorrect API key provided: {KEY}"}}
{{"ts":"2025-03-04T12:00:01Z","api_key":"{KEY}","oops"
"#
    );
    let ingester = Ingester::new(IngestOptions::default()).unwrap();
    let mut out = Vec::new();
    ingester.ingest_bytes("inline", line.as_bytes(), &mut |b| out.push(b));
    let dump = format!("{out:?}");
    assert!(!dump.contains(KEY), "{dump}");
    assert!(dump.contains("[REDACTED]"));
}

/// Key material that looks random, made here so that the repository holds
/// no key-shaped literal.
fn noise(len: usize) -> String {
    "Zq8v2LmN4pR7sT1uW3xY5bKc9dHf6gJe"
        .chars()
        .cycle()
        .take(len)
        .collect()
}

#[test]
fn no_key_of_any_shape_or_encoding_reaches_records_or_excerpts() {
    use std::fmt::Write as _;

    let pem = format!(
        "-----BEGIN {0}-----\\n{1}\\n{1}\\n-----END {0}-----",
        ["PRIVATE", "KEY"].join(" "),
        noise(64)
    );
    let hex = "0123456789abcdef".repeat(2);
    // Free text as services log it, each holding a secret made of `noise`
    // (or `hex`).
    let texts = [
        format!("Incorrect API key provided: sk-proj-{}", noise(32)),
        format!("bad credentials ghp_{}", noise(36)),
        format!("github_pat_{} rejected", noise(82)),
        format!("slack said invalid_auth for xoxb-1234567890-{}", noise(24)),
        format!("app token xapp-1-{}", noise(30)),
        format!("jwt eyJ{}.eyJ{}.{}", noise(20), noise(30), noise(43)),
        format!(r#"service account {{"private_key": "{pem}"}}"#),
        format!("GET https://x.example/v1?key=sk%2Dproj%2D{}", noise(32)),
        format!("retry with sk%252Dproj%252D{} failed", noise(32)),
    ];
    // Opaque values that only their field's name marks as secret, and the
    // shapes known only by the name before them (AWS, Azure): found in free
    // text (messages, excerpts), not searched for in every line.
    let named = [
        format!(
            r#"config {{"aws_secret_access_key": "{}/{}"}}"#,
            noise(20),
            noise(19)
        ),
        format!("Ocp-Apim-Subscription-Key: {hex}"),
        format!(r#"{{"api-key": "{hex}"}}"#),
        format!(r#"upstream body {{"api_key": "{}"}}"#, noise(40)),
        format!("connect passwd={}&user=app", noise(24)),
    ];
    let mut log = String::new();
    for (i, text) in texts.iter().chain(&named).enumerate() {
        // A good line, its text in the error message, and in the request
        // id when it has a key's shape (the other fields are redacted
        // when the line holds one).
        let mut good = serde_json::json!({
            "ts": "2025-03-04T12:00:00Z",
            "provider": "openai",
            "status_code": 401,
            "error": {"type": "invalid_request_error", "message": text},
        });
        if i < texts.len() {
            good["request_id"] = text.as_str().into();
        }
        log.push_str(&good.to_string());
        log.push('\n');
        // A bad line holding the same text.
        let bad = serde_json::json!({"ts": 1, "error": text}).to_string();
        log.push_str(&bad[..bad.len() - 1]);
        log.push_str(", oops\n");
    }
    // Hidden from a look at the raw bytes: a JSON-escaped key in a good
    // line and a bad one, and an opaque key under `api_key` in both.
    let escaped = format!(r"\u0073k-proj-{}", noise(32));
    writeln!(
        log,
        r#"{{"ts":"2025-03-04T12:00:01Z","provider":"openai","status_code":401,"error":"key {escaped}","api_key":"{}"}}"#,
        noise(40)
    )
    .unwrap();
    writeln!(
        log,
        r#"{{"ts":1,"error":"key {escaped}","api_key":"{}", oops"#,
        noise(40)
    )
    .unwrap();
    // Placeholders and masked keys: redacted or not, never counted.
    let placeholder = serde_json::json!({
        "ts": "2025-03-04T12:00:02Z",
        "provider": "openai",
        "status_code": 401,
        "error": "Incorrect API key provided: sk-abc...xyz. You can find your API key at \
                  https://platform.openai.com/account/api-keys. (Authorization: Bearer YOUR_KEY, \
                  api_key=REDACTED, sk-proj-abcd1234efgh5678...wxyz)",
    });
    log.push_str(&placeholder.to_string());
    log.push('\n');

    let run = ingest_text(&log);
    let lines = texts.len() + named.len();
    assert_eq!(run.records.len(), lines + 2);
    assert_eq!(run.bad.len(), lines + 1);
    let dump = format!("{:?}{:?}", run.records, run.bad);
    for secret in [noise(16), hex] {
        assert!(!dump.contains(&secret), "{secret} survived in {dump}");
    }
    for bad in &run.bad {
        assert!(bad.excerpt.contains("[REDACTED]"), "{}", bad.excerpt);
    }
    // Every real key is counted, the placeholders are not.
    let last = run.records.last().unwrap();
    assert_eq!(last.secrets_found, 0, "{:?}", last.error_message);
    assert!(run.records[..texts.len()]
        .iter()
        .all(|r| r.secrets_found > 0));
}

#[test]
fn ground_truth_bodies_all_normalize() {
    // Every real provider body, wrapped as it would be logged: in an envelope
    // whose URL names the provider's host (or, with no response, as the
    // client's error). Classification is tested in faultline-classify; here
    // the point is that none is lost and the evidence it needs survives.
    let hosts = [
        ("openai", "api.openai.com"),
        ("azure_openai", "myres.openai.azure.com"),
        ("anthropic", "api.anthropic.com"),
        ("google_gemini", "generativelanguage.googleapis.com"),
        ("google_code_assist", "cloudcode-pa.googleapis.com"),
        ("aws_bedrock", "bedrock-runtime.us-east-1.amazonaws.com"),
        ("deepseek", "api.deepseek.com"),
        ("deepseek_web_adapter", "localhost"),
        ("groq", "api.groq.com"),
        ("mistral", "api.mistral.ai"),
        ("openrouter", "openrouter.ai"),
        ("openai_compatible_vllm", "vllm.internal"),
    ];
    let text = std::fs::read_to_string(fixture("ground-truth/provider-errors.jsonl")).unwrap();
    let mut log = String::new();
    let mut expected = Vec::new();
    for line in text.lines() {
        let case: serde_json::Value = serde_json::from_str(line).unwrap();
        let provider = case["provider"].as_str().unwrap();
        let host = hosts
            .iter()
            .find(|(p, _)| *p == provider)
            .map_or_else(|| panic!("no host for {provider}"), |(_, h)| *h);
        let status = case["http_status"].as_u64().unwrap();
        let envelope = if status == 0 {
            serde_json::json!({"ts": "2025-03-04T12:00:00Z", "request": {"url": format!("https://{host}/v1/x")}, "error": case["body"]})
        } else {
            serde_json::json!({"ts": "2025-03-04T12:00:00Z", "request": {"url": format!("https://{host}/v1/x")},
                "response": {"status": status, "headers": case["headers"], "body": case["body"]}})
        };
        log.push_str(&envelope.to_string());
        log.push('\n');
        expected.push((status, case["expected_class"].as_str().unwrap().to_owned()));
    }
    let ingester = Ingester::new(IngestOptions::default()).unwrap();
    let mut records = Vec::new();
    let summary = ingester.ingest_bytes("ground-truth", log.as_bytes(), &mut |b| {
        assert!(b.bad_lines.is_empty(), "{:?}", b.bad_lines);
        records.extend(b.records);
    });
    assert_eq!(summary.counts.records as usize, expected.len());
    for (rec, (status, class)) in records.iter().zip(&expected) {
        let at = rec.source_line;
        assert_eq!(
            rec.host.as_deref().map(str::is_empty),
            Some(false),
            "line {at}"
        );
        if *status == 0 {
            assert_eq!(rec.http_status, None, "line {at}");
        } else {
            assert_eq!(rec.http_status, Some(*status as u16), "line {at}");
        }
        if class == "empty_response" {
            assert!(rec.empty_response, "line {at}: {rec:?}");
        } else if class != "rate_limit" || rec.error_message.is_some() {
            // One Anthropic 429 has a null body: its headers are all there is.
            assert!(
                rec.error_message.is_some() || rec.error_type.is_some(),
                "line {at} ({class}) lost its error: {rec:?}"
            );
        }
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Every fixture, good and bad, in one buffer.
    fn corpus() -> Vec<u8> {
        let mut all = Vec::new();
        for rel in [
            "formats/flat_event.jsonl",
            "formats/envelope.jsonl",
            "formats/litellm.jsonl",
            "formats/otel_flat.jsonl",
            "formats/otel_otlp.jsonl",
            "bad/mixed.jsonl",
            "bad/invalid_utf8_nul.jsonl",
            "bad/truncated_last_line.jsonl",
        ] {
            all.extend(std::fs::read(fixture(rel)).unwrap());
        }
        all
    }

    fn collect(
        f: impl FnOnce(&mut dyn FnMut(faultline_ingest::Batch)),
    ) -> (Vec<Record>, Vec<BadLine>) {
        let mut records = Vec::new();
        let mut bad = Vec::new();
        f(&mut |b| {
            records.extend(b.records);
            bad.extend(b.bad_lines);
        });
        (records, bad)
    }

    /// A reader that hands out the data in pieces of the given sizes.
    struct Trickle<'a> {
        data: &'a [u8],
        sizes: Vec<usize>,
        at: usize,
    }

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let size = self.sizes[self.at % self.sizes.len()];
            self.at += 1;
            let n = size.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn options(chunk_bytes: usize, threads: usize) -> IngestOptions {
        IngestOptions {
            chunk_bytes,
            threads,
            ..IngestOptions::default()
        }
    }

    /// Bytes that are mostly JSON-ish, so that generated inputs reach past
    /// the first brace: fragments of real lines mixed with any byte.
    fn log_bytes() -> impl Strategy<Value = Vec<u8>> {
        let fragment = prop_oneof![
            proptest::collection::vec(any::<u8>(), 1..8),
            proptest::sample::select(vec![
                &b"{\"ts\":\"2025-03-04T12:00:00Z\","[..],
                b"\"status_code\":429,",
                b"\"error\":{\"type\":\"rate_limit_error\",\"message\":\"slow down\"}",
                b"\"request\":{\"url\":\"https://api.openai.com/v1\"},\"response\":{\"status\":500,\"body\":",
                b"\"\\u00e9\\\"\"",
                b"}\n",
                b"]",
                b"[",
                b"\n",
                b"\r\n",
                b"\xEF\xBB\xBF",
                b"\"gen_ai.system\":\"openai\",",
                b"sk-proj-0123456789abcdefghij",
            ])
            .prop_map(<[u8]>::to_vec),
        ];
        proptest::collection::vec(fragment, 0..60).prop_map(|parts| parts.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any bytes: no panic, every line accounted for, and the same
        /// records and bad lines however the input is cut.
        #[test]
        fn any_bytes_never_panic_and_chunks_change_nothing(
            data in log_bytes(),
            chunk_bytes in 1usize..200,
        ) {
            let whole = Ingester::new(options(1 << 20, 1)).unwrap();
            let cut = Ingester::new(options(chunk_bytes, 2)).unwrap();
            let mut counts = None;
            let baseline = collect(|emit| counts = Some(whole.ingest_bytes("b", &data, emit).counts));
            let counts = counts.unwrap();
            prop_assert!(counts.records + counts.bad_lines + counts.blank_lines >= counts.lines);
            let chunked = collect(|emit| {
                cut.ingest_bytes("b", &data, emit);
            });
            prop_assert_eq!(chunked, baseline);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn chunking_and_threads_never_change_the_output(
            chunk_bytes in 1usize..3000,
            threads in 1usize..4,
            reads in proptest::collection::vec(1usize..700, 1..8),
        ) {
            let data = corpus();
            let baseline = collect(|emit| {
                Ingester::new(options(1 << 20, 1)).unwrap().ingest_bytes("c", &data, emit);
            });
            let ingester = Ingester::new(options(chunk_bytes, threads)).unwrap();
            let mapped = collect(|emit| {
                ingester.ingest_bytes("c", &data, emit);
            });
            prop_assert_eq!(&mapped, &baseline);
            let streamed = collect(|emit| {
                let reader = Trickle { data: &data, sizes: reads, at: 0 };
                ingester.ingest_stream("c", reader, Compression::None, emit);
            });
            prop_assert_eq!(&streamed, &baseline);
        }

        #[test]
        fn any_bytes_are_counted_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let ingester = Ingester::new(options(64, 2)).unwrap();
            let mut bad = 0u64;
            let summary = ingester.ingest_bytes("fuzz", &data, &mut |b| bad += b.bad_lines.len() as u64);
            let counts = &summary.counts;
            prop_assert_eq!(counts.bad_lines, bad);
            prop_assert_eq!(counts.bytes, data.len() as u64);
            prop_assert!(counts.bad_lines + counts.blank_lines <= counts.lines);
        }

        #[test]
        fn json_shaped_lines_never_panic(
            fields in proptest::collection::vec(
                (prop_oneof![Just("ts"), Just("status_code"), Just("error"), Just("response"),
                             Just("request"), Just("body"), Just("choices"), Just("startTime"),
                             Just("gen_ai.system"), Just("error_str"), Just("resourceSpans")],
                 prop_oneof![Just("null".to_owned()), Just("\"\"".to_owned()), Just("[]".to_owned()),
                             Just("{}".to_owned()), Just("429".to_owned()), Just("-1e999".to_owned()),
                             Just("\"2025-03-04T12:00:00Z\"".to_owned()),
                             Just("{\"error\":{\"code\":\"x\",\"message\":{}}}".to_owned()),
                             Just("\"Error code: 500 - {'type': 'x'}\"".to_owned()),
                             "\"[a-zA-Z0-9 :._{}-]{0,20}\""]),
                0..8),
        ) {
            let line: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            let line = format!("{{{}}}\n", line.join(","));
            let ingester = Ingester::new(options(1 << 20, 1)).unwrap();
            let summary = ingester.ingest_bytes("shaped", line.as_bytes(), &mut |_| {});
            prop_assert_eq!(summary.counts.lines, 1);
        }
    }
}

/// A log of `lines` flat events, one call per second.
fn calls(lines: usize) -> String {
    use std::fmt::Write as _;
    let mut log = String::new();
    for i in 0..lines {
        let (h, m, s) = (i / 3600 % 24, i / 60 % 60, i % 60);
        let _ = writeln!(
            log,
            r#"{{"ts":"2025-03-04T{h:02}:{m:02}:{s:02}Z","provider":"openai","status_code":200,"request_id":"req_{i:08x}"}}"#
        );
    }
    log
}

/// Ingests `path` in small chunks on one thread, calling `change` on the
/// file once, after the first batch, while the rest is still to be read.
/// Returns the calls read and the summary.
fn ingest_while_changing(path: &Path, change: impl FnOnce(&Path)) -> (usize, Summary) {
    let ingester = Ingester::new(IngestOptions {
        chunk_bytes: 4096,
        threads: 1,
        ..IngestOptions::default()
    })
    .unwrap();
    let mut records = 0;
    let mut change = Some(change);
    let summary = ingester.ingest(&[Input::File(path.to_path_buf())], &mut |batch| {
        records += batch.records.len();
        if let Some(change) = change.take() {
            change(path);
        }
    });
    (records, summary)
}

#[test]
fn a_live_file_is_read_without_a_map_and_may_shrink_while_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.jsonl");
    let log = calls(2000);
    std::fs::write(&path, &log).unwrap();
    let (records, summary) = ingest_while_changing(&path, |path| {
        // Rotation with copytruncate, while the file is being read.
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_len(0)
            .unwrap();
    });
    let file = &summary.files[0];
    assert!(!file.mapped, "a file just written is never mapped");
    assert!(records > 0 && records < 2000, "read {records} calls");
    match &file.error {
        Some(Error::Changed { before, after, .. }) => {
            assert_eq!((*before, *after), (log.len() as u64, 0));
        }
        other => panic!("expected a size change, got {other:?}"),
    }
    let message = file.error.as_ref().unwrap().to_string();
    assert!(message.contains("live.jsonl: file changed size while being read"));
}

#[test]
fn a_lone_surrogate_keeps_the_rest_of_its_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("surrogate.jsonl");
    std::fs::write(
        &path,
        concat!(
            r#"{"ts":"2025-03-04T12:00:00Z","provider":"openai","model":"gpt-4o","status_code":500,"#,
            r#""error":{"message":"upstream \ud800 failed"}}"#,
            "\n"
        ),
    )
    .unwrap();
    let run = run(&[path]);
    assert!(run.bad.is_empty(), "{:?}", run.bad);
    assert_eq!(
        run.records[0].error_message.as_deref(),
        Some("upstream \u{FFFD} failed")
    );
}

#[test]
fn a_mapped_file_truncated_while_read_is_reported_changed_not_a_crash() {
    // logrotate's copytruncate of an idle log: the file is mapped, and
    // reading a page past its new end raised SIGBUS, which killed the
    // process with no message.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idle.jsonl");
    let log = calls(20_000);
    std::fs::write(&path, &log).unwrap();
    settle(&path);
    let (records, summary) = ingest_while_changing(&path, |path| {
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_len(0)
            .unwrap();
    });
    let file = &summary.files[0];
    assert!(file.mapped);
    assert!(records > 0 && records < 20_000, "read {records} calls");
    match &file.error {
        Some(Error::Changed { before, after, .. }) => {
            assert_eq!((*before, *after), (log.len() as u64, 0));
        }
        other => panic!("expected a size change, got {other:?}"),
    }
    // The process lives on: the next file maps and reads whole.
    let again = dir.path().join("again.jsonl");
    std::fs::write(&again, calls(100)).unwrap();
    settle(&again);
    let run = run(&[again]);
    assert!(run.summary.files[0].mapped && run.summary.files[0].error.is_none());
    assert_eq!(run.records.len(), 100);
}

#[test]
fn a_mapped_file_rewritten_while_read_never_panics() {
    // A writer rewriting an idle log in place (or truncating it and writing
    // again) changes the bytes under the map while a line is parsed: a regex
    // read a key forward, then not backward, and panicked. Two contents of
    // one length, flipped as fast as they can be written: a key and text
    // that is none.
    use std::os::unix::fs::FileExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    /// Stops the writer however the reading ends, a failed assertion included.
    struct Stop<'a>(&'a AtomicBool);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rewritten.jsonl");
    let line = |key: &str| {
        format!(
            concat!(
                r#"{{"ts":"2025-03-04T12:00:00Z","provider":"openai","model":"gpt-4o","#,
                r#""status_code":401,"error":{{"message":"Incorrect API key provided: {}. "#,
                r#"You can find your API key at https://platform.openai.com/account/api-keys."}}}}"#,
                "\n"
            ),
            key
        )
    };
    let with_key = line(KEY).repeat(4000);
    let without = line(&"x".repeat(KEY.len())).repeat(4000);
    assert_eq!(with_key.len(), without.len());
    std::fs::write(&path, &with_key).unwrap();
    settle(&path);
    let ingester = Ingester::new(IngestOptions {
        chunk_bytes: 16 << 10,
        threads: 2,
        ..IngestOptions::default()
    })
    .unwrap();
    let mut runs = Vec::new();
    for _ in 0..8 {
        settle(&path);
        let (started, stop) = (AtomicBool::new(false), AtomicBool::new(false));
        let run = std::thread::scope(|scope| {
            let writer = std::fs::File::options().write(true).open(&path).unwrap();
            let (started, stop, contents) = (&started, &stop, [&without, &with_key]);
            scope.spawn(move || {
                // Once the run has mapped the file and read its first lines.
                while !started.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                    std::thread::yield_now();
                }
                while !stop.load(Ordering::Relaxed) {
                    for content in contents {
                        writer.write_all_at(content.as_bytes(), 0).unwrap();
                    }
                }
            });
            let _stop = Stop(stop);
            let (mut records, mut bad) = (Vec::new(), Vec::new());
            let summary = ingester.ingest(&[Input::File(path.clone())], &mut |batch| {
                started.store(true, Ordering::Relaxed);
                records.extend(batch.records);
                bad.extend(batch.bad_lines);
            });
            Run {
                records,
                bad,
                summary,
            }
        });
        runs.push(run);
    }
    for run in runs {
        assert!(run.summary.files[0].mapped);
        assert_eq!(run.records.len() + run.bad.len(), 4000);
        assert!(run
            .records
            .iter()
            .all(|r| r.error_message.as_deref().is_none_or(|m| !m.contains(KEY))));
    }
}

#[test]
fn a_line_without_end_in_a_sparse_file_is_one_bad_line_never_held() {
    // 1 GiB of zeros with no newline between two calls: a 50 GB one ran
    // out of memory when mapped; both read paths now skip it in steps.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sparse.jsonl");
    let first = calls(1);
    let last = "\n".to_owned() + &calls(1);
    {
        let mut file = std::fs::File::create(&path).unwrap();
        file.write_all(first.as_bytes()).unwrap();
        file.set_len(1 << 30).unwrap();
        std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0)).unwrap();
        file.write_all(last.as_bytes()).unwrap();
    }
    settle(&path);
    for mmap in [true, false] {
        let options = IngestOptions {
            mmap,
            max_line_bytes: 1 << 20,
            ..IngestOptions::default()
        };
        let run = run_with(&[Input::File(path.clone())], options);
        assert_eq!(run.summary.files[0].mapped, mmap);
        assert_eq!(
            reasons(&run.bad),
            vec![(2, Reason::LineTooLong)],
            "mmap={mmap}"
        );
        assert_eq!(run.records.len(), 2, "mmap={mmap}");
        assert_eq!(run.summary.totals.bytes, (1 << 30) + last.len() as u64);
    }
}

#[test]
fn a_settled_file_is_mapped_and_what_is_appended_meanwhile_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("settled.jsonl");
    let log = calls(2000);
    std::fs::write(&path, &log).unwrap();
    settle(&path);
    let (records, summary) = ingest_while_changing(&path, |path| {
        let mut file = std::fs::File::options().append(true).open(path).unwrap();
        file.write_all(calls(10).as_bytes()).unwrap();
    });
    let file = &summary.files[0];
    assert!(file.mapped);
    assert_eq!(
        records, 2000,
        "the map holds the file as it was when opened"
    );
    assert!(matches!(
        &file.error,
        Some(Error::Changed { before, after, .. })
            if *before == log.len() as u64 && *after > *before
    ));
}

/// A stage that fails on the batch holding the call at a given byte offset
/// (offsets are final in a stage; line numbers are counted per piece).
struct FailsAt(u64);

impl faultline_ingest::Stage for FailsAt {
    type Output = usize;

    fn process(&self, batch: faultline_ingest::Batch) -> usize {
        assert!(
            !batch.records.iter().any(|r| r.byte_offset == self.0),
            "stage bug planted at byte {}",
            self.0
        );
        batch.records.len()
    }

    fn rebase(&self, _: &mut usize, _: u64) {}
}

#[test]
fn a_panicking_stage_is_raised_to_the_caller_not_a_hang() {
    let log = calls(2_000);
    let ingester = Ingester::new(IngestOptions {
        chunk_bytes: 1024,
        threads: 2,
        ..IngestOptions::default()
    })
    .unwrap();
    // The planted bug sits in the middle of the input (line 1000): pieces
    // before it were handed over, pieces after it are in flight on the
    // other worker.
    let line_1000: usize = log.lines().take(999).map(|l| l.len() + 1).sum();
    let mut handed = 0;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ingester.ingest_bytes_staged(
            "calls",
            log.as_bytes(),
            &FailsAt(line_1000 as u64),
            &mut |n| {
                handed += n;
            },
        )
    }));
    let panic = outcome.expect_err("the stage's panic reaches the caller");
    let message = panic.downcast_ref::<String>().map(String::as_str);
    assert_eq!(
        message,
        Some(format!("stage bug planted at byte {line_1000}").as_str())
    );
    assert!(handed > 0 && handed < 1_000, "{handed} calls handed over");
    // The pool is still usable afterwards.
    let summary =
        ingester.ingest_bytes_staged("calls", log.as_bytes(), &FailsAt(u64::MAX), &mut |_| {});
    assert_eq!(summary.counts.records, 2_000);
}

fn ingest_text(text: &str) -> Run {
    let ingester = Ingester::new(IngestOptions::default()).unwrap();
    let mut records = Vec::new();
    let mut bad = Vec::new();
    let file = ingester.ingest_bytes("log.jsonl", text.as_bytes(), &mut |batch| {
        records.extend(batch.records);
        bad.extend(batch.bad_lines);
    });
    Run {
        records,
        bad,
        summary: Summary {
            totals: file.counts.clone(),
            files: vec![file],
        },
    }
}

/// `(status, error type)` of each record, in time order.
fn outcomes(records: &[Record]) -> Vec<(i64, Option<u16>, Option<String>)> {
    let mut out: Vec<_> = records
        .iter()
        .map(|r| (r.ts_ms, r.http_status, r.error_type.clone()))
        .collect();
    out.sort();
    out
}

#[test]
fn an_http_child_span_joins_its_call_in_any_line_order() {
    // The httpx instrumentation's spans, one per line, each written before
    // its parent GenAI span (as the console exporter writes them).
    let text =
        std::fs::read_to_string(fixture("clients/sdk_otel-openai-console-httpx.jsonl")).unwrap();
    let forward = ingest_text(&text);
    assert!(forward.bad.is_empty(), "{:?}", forward.bad);
    let children = forward.summary.totals.child_spans;
    assert!(children > 0);
    // The sample cuts one call's spans apart: its child has no parent here.
    assert!(forward.summary.totals.child_spans_unjoined <= 1);
    // Every record is a GenAI call; none is an HTTP span.
    assert!(forward.records.iter().all(|r| r.model.is_some()));
    let mut reversed = text.lines().rev().collect::<Vec<_>>().join("\n");
    reversed.push('\n');
    let backward = ingest_text(&reversed);
    assert_eq!(backward.summary.totals.child_spans, children);
    assert_eq!(
        backward.summary.totals.child_spans_unjoined,
        forward.summary.totals.child_spans_unjoined
    );
    assert_eq!(outcomes(&backward.records), outcomes(&forward.records));
}

#[test]
fn two_instrumentations_spans_of_one_call_are_one_record() {
    // The Anthropic SDK traces each call itself; OpenLLMetry's span of the
    // same call is in another trace.
    let run = run_fixture("clients/sdk_otel-anthropic-console.jsonl");
    assert!(run.bad.is_empty(), "{:?}", run.bad);
    let truth =
        std::fs::read_to_string(fixture("clients/sdk_otel-anthropic-console.truth.jsonl")).unwrap();
    // Each call whose lines are all in the sample had two spans.
    let calls = truth.lines().count() as u64;
    assert!(calls >= 5);
    assert_eq!(run.summary.totals.duplicate_spans, calls);
    let records = run.records.len() as u64;
    assert_eq!(run.summary.totals.records, records);
    assert_eq!(
        run.summary.totals.records_by_format.get(&Format::OtelGenAi),
        Some(&records)
    );
}

#[test]
fn a_line_of_many_spans_counts_its_keys_once() {
    let span = |id: u32| {
        format!(
            r#"{{"traceId":"t{id}","spanId":"s{id}","name":"chat","startTimeUnixNano":"1741089600000000000","attributes":[{{"key":"gen_ai.system","value":{{"stringValue":"openai"}}}},{{"key":"gen_ai.request.model","value":{{"stringValue":"gpt-4o"}}}}]}}"#
        )
    };
    let spans: Vec<String> = (0..5).map(span).collect();
    let line = format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"openai.api_key","value":{{"stringValue":"sk-proj-Zq8v2LmN4pR7sT1uW3xY5b"}}}}]}},"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
        spans.join(",")
    );
    let run = ingest_text(&format!("{line}\n"));
    assert_eq!(run.records.len(), 5);
    assert_eq!(run.summary.totals.lines_with_secrets, 1);
    let keys: u32 = run.records.iter().map(|r| u32::from(r.secrets_found)).sum();
    assert_eq!(keys, 1);
}

#[test]
fn a_fifo_is_read_like_stdin() {
    // `faultline analyze <(zcat day.gz)`, `/dev/stdin`: a file that cannot seek.
    let dir = std::env::temp_dir().join(format!("faultline-fifo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("calls.jsonl");
    let _ = std::fs::remove_file(&fifo);
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.unwrap().success(), "mkfifo {}", fifo.display());
    let text = std::fs::read(fixture("formats/flat_event.jsonl")).unwrap();
    let expected = run_fixture("formats/flat_event.jsonl").records.len();
    let writer = {
        let (fifo, text) = (fifo.clone(), text.clone());
        std::thread::spawn(move || std::fs::write(fifo, text).unwrap())
    };
    let run = run(std::slice::from_ref(&fifo));
    writer.join().unwrap();
    assert!(
        run.summary.files[0].error.is_none(),
        "{:?}",
        run.summary.files[0].error
    );
    assert_eq!(run.records.len(), expected);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn answers_stopped_for_their_content_and_failed_responses_say_why() {
    // Shapes a provider answers with HTTP 200 (or 400) and no `error` at
    // the top: a choice stopped by the content filter (Azure), a Gemini
    // candidate stopped for safety, the Responses API's `response.failed`
    // event, and an SDK's text quoting a blocked candidate.
    let lines = [
        r#"{"ts":"2025-03-04T12:00:00Z","request":{"url":"https://x.openai.azure.com/v1"},"response":{"status":400,"body":{"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":""},"finish_reason":"content_filter"}]}}}"#,
        r#"{"ts":"2025-03-04T12:00:01Z","request":{"url":"https://generativelanguage.googleapis.com/v1"},"response":{"status":200,"body":{"candidates":[{"content":{},"finishReason":"SAFETY","index":0}]}}}"#,
        r#"{"ts":"2025-03-04T12:00:02Z","request":{"url":"https://api.openai.com/v1/responses"},"response":{"status":200,"body":{"type":"response.failed","response":{"status":"failed","error":{"code":"insufficient_quota","message":"You exceeded your current quota."}}}}}"#,
        r#"{"ts":"2025-03-04T12:00:03Z","request":{"url":"https://generativelanguage.googleapis.com/v1"},"response":{"status":200,"body":"Type validation failed: Value: {\"candidates\":[{\"content\":{},\"finishReason\":\"PROHIBITED_CONTENT\"}]}. Error message: [{\"code\":\"invalid_type\",\"message\":\"Required\"}]"}}"#,
        r#"{"ts":"2025-03-04T12:00:04Z","request":{"url":"https://api.openai.com/v1"},"response":{"status":200,"body":{"choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}}}"#,
    ];
    let run = ingest_text(&(lines.join("\n") + "\n"));
    assert!(run.bad.is_empty(), "{:?}", run.bad);
    let said: Vec<(Option<&str>, Option<&str>, bool)> = run
        .records
        .iter()
        .map(|r| {
            (
                r.error_code.as_deref(),
                r.error_message.as_deref(),
                r.empty_response,
            )
        })
        .collect();
    assert_eq!(
        said,
        vec![
            (None, Some("finish_reason content_filter"), false),
            (None, Some("finish_reason SAFETY"), false),
            (
                Some("insufficient_quota"),
                Some("You exceeded your current quota."),
                false
            ),
            (
                Some("invalid_type"),
                Some("finish_reason PROHIBITED_CONTENT"),
                false
            ),
            (None, None, false),
        ]
    );
}
