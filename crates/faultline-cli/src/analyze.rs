//! `faultline analyze`: ingest and classify everything, detect incidents, then
//! write the incidents, the summary and the quarantine.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Instant;

use anyhow::{Context, Result};
use faultline_classify::incidents::{self, Collector, DetectConfig, Incident};
use faultline_classify::{Classification, Classifier, StatusClass};
use faultline_ingest::{
    discover, BadLine, Batch, FileSummary, IngestOptions, Ingester, Record, Stage, Summary,
};
use faultline_report::{DataFrame, Error as ReportError, RecordColumns, RecordsWriter};
use serde_json::{json, Value};

use crate::output::{Atomic, Staged};
use crate::AnalyzeArgs;

/// Size of the built-in sample day analyzed when no input is given.
const SAMPLE_BYTES: u64 = 24 << 20;

/// How many of the most frequent unclassified messages the summary lists.
const TOP_UNKNOWN: usize = 10;

/// Classifies and tallies each batch on the worker threads; only the small
/// tallies and the bad lines come back to the writer.
struct ClassifyStage<'c> {
    classifier: &'c Classifier,
    detect: &'c DetectConfig,
}

/// What each batch hands back to the writer thread.
struct Classified {
    tally: Tally,
    collector: Collector,
    /// The batch's rows of records.parquet, built here so that the writer
    /// thread only encodes.
    records: Result<DataFrame, faultline_report::Error>,
    bad_lines: Vec<BadLine>,
}

impl Stage for ClassifyStage<'_> {
    type Output = Classified;

    fn process(&self, batch: Batch) -> Classified {
        let mut tally = Tally::default();
        let mut collector = Collector::new(self.detect);
        let mut columns = RecordColumns::default();
        for rec in &batch.records {
            let class = self.classifier.classify(rec);
            tally.add(rec, &class);
            collector.add(rec, &class);
            columns.push(rec, &class);
        }
        Classified {
            tally,
            collector,
            records: columns.into_frame(),
            bad_lines: batch.bad_lines,
        }
    }
}

/// What analyze keeps of the records while they stream past.
#[derive(Default)]
struct Tally {
    by_status: BTreeMap<&'static str, u64>,
    by_provider: BTreeMap<&'static str, u64>,
    by_class: BTreeMap<&'static str, u64>,
    by_cause: BTreeMap<String, u64>,
    /// Failed calls no rule explained, by message: what users write rules for.
    unknown_messages: BTreeMap<String, u64>,
    empty_responses: u64,
    with_error: u64,
}

impl Tally {
    fn add(&mut self, rec: &Record, class: &Classification) {
        *self.by_provider.entry(class.provider.as_str()).or_default() += 1;
        *self
            .by_class
            .entry(class.status_class.as_str())
            .or_default() += 1;
        if class.status_class != StatusClass::Ok {
            *self.by_cause.entry(class.cause.to_string()).or_default() += 1;
        }
        if &*class.cause == "unknown" {
            let message = match rec.error_message.as_deref().or(rec.error_type.as_deref()) {
                Some(text) => text.chars().take(200).collect(),
                None => match rec.http_status {
                    Some(status) => format!("(HTTP {status}, no message)"),
                    None => "(no status, no message)".to_owned(),
                },
            };
            *self.unknown_messages.entry(message).or_default() += 1;
        }
        let family = match rec.http_status {
            Some(200..=299) => "2xx",
            Some(400..=499) => "4xx",
            Some(500..=599) => "5xx",
            Some(_) => "other",
            None => "no_response",
        };
        *self.by_status.entry(family).or_default() += 1;
        self.empty_responses += u64::from(rec.empty_response);
        self.with_error += u64::from(rec.error_message.is_some() || rec.error_type.is_some());
    }

    fn merge(&mut self, other: Tally) {
        fn sum<K: Ord>(into: &mut BTreeMap<K, u64>, from: BTreeMap<K, u64>) {
            for (key, n) in from {
                *into.entry(key).or_default() += n;
            }
        }
        sum(&mut self.by_status, other.by_status);
        sum(&mut self.by_provider, other.by_provider);
        sum(&mut self.by_class, other.by_class);
        sum(&mut self.by_cause, other.by_cause);
        sum(&mut self.unknown_messages, other.unknown_messages);
        self.empty_responses += other.empty_responses;
        self.with_error += other.with_error;
    }
}

pub(crate) fn run(args: &AnalyzeArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let mut options = IngestOptions {
        threads: args.threads,
        chunk_bytes: args.chunk_bytes.max(1),
        max_line_bytes: args.max_line_bytes.max(1),
        mmap: !args.no_mmap,
        ..IngestOptions::default()
    };
    if let Some(key) = &args.fingerprint_key {
        options.fingerprint_key.clone_from(key);
    }
    let ingester = Ingester::new(options)?;
    let classifier = Classifier::new(crate::rules::effective(args.rules.as_deref())?);
    let detect = detect_config(args.config.as_deref())?;

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create output directory {}", args.out.display()))?;
    let mut quarantine = Atomic::create(&args.out, "quarantine.jsonl")?;
    let records_file = Staged::new(&args.out, "records.parquet");
    let records = RecordsWriter::create(records_file.path())?;
    let mut tally = Tally::default();
    let mut collector = Collector::new(&detect);
    let mut write_error = None;
    let stage = ClassifyStage {
        classifier: &classifier,
        detect: &detect,
    };
    let sample = args.inputs.is_empty();

    // records.parquet is encoded on its own thread, overlapping the parse;
    // the bounded channel keeps at most a few batches in flight.
    let (frames, received) = mpsc::sync_channel::<Result<DataFrame, ReportError>>(4);
    let (summary, input_errors, written) = std::thread::scope(|scope| {
        let writer = scope.spawn(move || {
            let mut records = records;
            for frame in received {
                records.write(frame?)?;
            }
            records.finish()
        });
        let mut on_output = |out: Classified| {
            tally.merge(out.tally);
            collector.merge(out.collector);
            // A failed writer has hung up; its error comes from join below.
            let _ = frames.send(out.records);
            for bad in &out.bad_lines {
                if write_error.is_none() {
                    if let Err(e) = writeln!(quarantine, "{}", quarantine_line(bad)) {
                        write_error = Some(e);
                    }
                }
            }
        };
        let (summary, input_errors) = if sample {
            let mut summary = Summary::default();
            let day = crate::sample::generate(crate::sample::Spec {
                seed: 42,
                bytes: SAMPLE_BYTES,
            });
            for (name, bytes) in &day.files {
                let name = format!("sample/{name}");
                let file = ingester.ingest_bytes_staged(&name, bytes, &stage, &mut on_output);
                summary.totals.add(&file.counts);
                summary.files.push(file);
            }
            (summary, Vec::new())
        } else {
            let (inputs, errors) = discover(&args.inputs);
            (
                ingester.ingest_staged(&inputs, &stage, &mut on_output),
                errors,
            )
        };
        drop(frames);
        let written = writer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (summary, input_errors, written)
    });
    if let Some(e) = write_error {
        return Err(e).context(format!(
            "cannot write quarantine.jsonl in {}",
            args.out.display()
        ));
    }
    quarantine.commit()?;
    written.with_context(|| format!("cannot write {}", records_file.dest().display()))?;
    records_file.commit()?;

    let incidents = incidents::detect(&collector.finish(), &detect);
    let mut file = Atomic::create(&args.out, "incidents.json")?;
    serde_json::to_writer_pretty(
        &mut file,
        &incidents.iter().map(incident_json).collect::<Vec<_>>(),
    )?;
    writeln!(file)?;
    file.commit()?;

    let mut problems: Vec<String> = input_errors.iter().map(ToString::to_string).collect();
    problems.extend(
        summary
            .files
            .iter()
            .filter_map(|f| f.error.as_ref())
            .map(ToString::to_string),
    );
    let report = summary_json(
        &summary,
        &tally,
        &incidents,
        &problems,
        sample,
        ingester.threads(),
        started,
    );
    let mut file = Atomic::create(&args.out, "summary.json")?;
    serde_json::to_writer_pretty(&mut file, &report)?;
    writeln!(file)?;
    file.commit()?;
    write_reports(args, &summary, &tally, &incidents, &problems, sample)?;

    let mut stderr = io::stderr().lock();
    for problem in &problems {
        writeln!(stderr, "faultline: {problem}")?;
    }
    if !args.quiet {
        let mut stdout = io::stdout().lock();
        if args.json {
            serde_json::to_writer_pretty(&mut stdout, &report)?;
            writeln!(stdout)?;
        } else {
            print_summary(&mut stdout, &summary, &tally, &incidents, sample, args)?;
        }
        stdout.flush()?;
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn quarantine_line(bad: &BadLine) -> Value {
    json!({
        "file": &*bad.file,
        "line": bad.line,
        "offset": bad.offset,
        "reason": bad.reason.as_str(),
        "detail": bad.detail,
        "excerpt": bad.excerpt,
    })
}

fn file_json(file: &FileSummary) -> Value {
    json!({
        "name": file.name,
        "compression": file.compression.as_str(),
        "memory_mapped": file.mapped,
        "bytes": file.counts.bytes,
        "lines": file.counts.lines,
        "records": file.counts.records,
        "bad_lines": file.counts.bad_lines,
        "error": file.error.as_ref().map(ToString::to_string),
    })
}

fn summary_json(
    summary: &Summary,
    tally: &Tally,
    incidents: &[Incident],
    problems: &[String],
    sample: bool,
    threads: usize,
    started: Instant,
) -> Value {
    let totals = &summary.totals;
    let by_reason: BTreeMap<&str, u64> = totals
        .bad_by_reason
        .iter()
        .map(|(reason, n)| (reason.as_str(), *n))
        .collect();
    let by_format: BTreeMap<&str, u64> = totals
        .records_by_format
        .iter()
        .map(|(format, n)| (format.as_str(), *n))
        .collect();
    json!({
        "faultline_version": env!("CARGO_PKG_VERSION"),
        "embedded_sample": sample,
        "threads": threads,
        "run_seconds": started.elapsed().as_secs_f64(),
        "inputs": summary.files.iter().map(file_json).collect::<Vec<_>>(),
        "input_errors": problems,
        "totals": {
            "bytes": totals.bytes,
            "lines": totals.lines,
            "blank_lines": totals.blank_lines,
            "records": totals.records,
            "bad_lines": totals.bad_lines,
            "lines_with_plaintext_secrets": totals.lines_with_secrets,
            "records_with_error": tally.with_error,
            "empty_responses": tally.empty_responses,
        },
        "bad_lines_by_reason": by_reason,
        "records_by_format": by_format,
        "records_by_http_status": tally.by_status,
        "records_by_provider": tally.by_provider,
        "records_by_status_class": tally.by_class,
        "failures_by_cause": tally.by_cause,
        "top_unknown_errors": top_unknown(tally)
            .into_iter()
            .map(|(count, message)| json!({"count": count, "message": message}))
            .collect::<Vec<_>>(),
        "incidents_by_pattern": by_pattern(incidents),
        "incidents_by_severity": by_severity(incidents),
    })
}

fn by_pattern(incidents: &[Incident]) -> BTreeMap<&'static str, u64> {
    let mut out = BTreeMap::new();
    for inc in incidents {
        *out.entry(inc.pattern.as_str()).or_default() += 1;
    }
    out
}

fn by_severity(incidents: &[Incident]) -> BTreeMap<&'static str, u64> {
    let mut out = BTreeMap::new();
    for inc in incidents {
        *out.entry(inc.severity.as_str()).or_default() += 1;
    }
    out
}

/// rollups.parquet, incidents.parquet and report.md, from records.parquet
/// (already in place) and what the run counted.
fn write_reports(
    args: &AnalyzeArgs,
    summary: &Summary,
    tally: &Tally,
    incidents: &[Incident],
    problems: &[String],
    sample: bool,
) -> Result<()> {
    let records = args.out.join("records.parquet");
    let staged = Staged::new(&args.out, "rollups.parquet");
    let mut rollups = faultline_report::rollups(&records, faultline_report::DEFAULT_WINDOW_MS)
        .context("cannot aggregate records.parquet")?;
    faultline_report::write_parquet(&mut rollups, staged.path())?;
    staged.commit()?;

    let staged = Staged::new(&args.out, "incidents.parquet");
    let mut frame = faultline_report::incidents_frame(incidents)?;
    faultline_report::write_parquet(&mut frame, staged.path())?;
    staged.commit()?;

    let providers = faultline_report::provider_table(&records)?;
    let totals = &summary.totals;
    let ok = tally.by_class.get("ok").copied().unwrap_or(0);
    let most_first = |map: &BTreeMap<String, u64>| {
        let mut items: Vec<(String, u64)> = map.iter().map(|(k, n)| (k.clone(), *n)).collect();
        items.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        items
    };
    let overview = faultline_report::Overview {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        sample,
        inputs: summary.files.len(),
        bytes: totals.bytes,
        lines: totals.lines,
        records: totals.records,
        failed: totals.records.saturating_sub(ok),
        bad_lines: totals.bad_lines,
        bad_by_reason: totals
            .bad_by_reason
            .iter()
            .map(|(reason, n)| (reason.as_str().to_owned(), *n))
            .collect(),
        input_errors: problems.to_vec(),
        lines_with_secrets: totals.lines_with_secrets,
        failures_by_class: most_first(
            &tally
                .by_class
                .iter()
                .filter(|(class, _)| **class != "ok")
                .map(|(class, n)| ((*class).to_owned(), *n))
                .collect(),
        ),
        failures_by_cause: most_first(&tally.by_cause),
        top_unknown: top_unknown(tally),
    };
    let mut file = Atomic::create(&args.out, "report.md")?;
    file.write_all(faultline_report::markdown(&overview, &providers, incidents).as_bytes())?;
    file.commit()
}

/// The detection thresholds: embedded defaults, then the user's config file.
fn detect_config(path: Option<&std::path::Path>) -> Result<DetectConfig> {
    let Some(path) = path else {
        return Ok(DetectConfig::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    Ok(DetectConfig::parse_file(&text, path)?)
}

/// One incident as incidents.json holds it (docs/schema.md).
pub(crate) fn incident_json(inc: &Incident) -> Value {
    json!({
        "id": inc.id,
        "pattern": inc.pattern.as_str(),
        "severity": inc.severity.as_str(),
        "provider": inc.provider.map(faultline_classify::Provider::as_str),
        "model": inc.model.as_deref(),
        "service": inc.service.as_deref(),
        "key_fp": inc.key_fp.as_deref(),
        "cause": inc.cause.as_deref(),
        "start": crate::output::rfc3339(inc.start_ms),
        "end": crate::output::rfc3339(inc.end_ms),
        "duration_s": inc.duration_s(),
        "requests": inc.requests,
        "errors": inc.errors,
        "error_rate": (inc.error_rate() * 10_000.0).round() / 10_000.0,
        "peak_rate": inc.peak_rate,
        "summary": inc.summary,
        "action": inc.action,
        "escalation": inc.escalation,
        "evidence": inc.evidence,
    })
}

/// The most frequent messages of failures no rule explained, most frequent first.
fn top_unknown(tally: &Tally) -> Vec<(u64, String)> {
    let mut messages: Vec<(u64, String)> = tally
        .unknown_messages
        .iter()
        .map(|(message, n)| (*n, message.clone()))
        .collect();
    messages.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    messages.truncate(TOP_UNKNOWN);
    messages
}

fn print_summary(
    out: &mut impl Write,
    summary: &Summary,
    tally: &Tally,
    incidents: &[Incident],
    sample: bool,
    args: &AnalyzeArgs,
) -> io::Result<()> {
    let totals = &summary.totals;
    if sample {
        writeln!(
            out,
            "No input given: analyzing the built-in sample day ({} services; `faultline sample` writes it out). Pass files, directories, globs or - to analyze your own logs.",
            summary.files.len()
        )?;
    }
    writeln!(
        out,
        "read {} input(s), {} bytes, {} lines: {} records, {} bad lines, {} blank",
        summary.files.len(),
        totals.bytes,
        totals.lines,
        totals.records,
        totals.bad_lines,
        totals.blank_lines
    )?;
    writeln!(out, "formats: {}", counts(&totals.records_by_format))?;
    writeln!(
        out,
        "http status: {}; records with an error: {}; empty responses: {}",
        counts(&tally.by_status),
        tally.with_error,
        tally.empty_responses
    )?;
    writeln!(out, "providers: {}", counts(&tally.by_provider))?;
    writeln!(out, "status classes: {}", counts(&tally.by_class))?;
    if incidents.is_empty() {
        writeln!(out, "incidents: none")?;
    } else {
        writeln!(out, "incidents ({}), most severe first:", incidents.len())?;
        for inc in incidents {
            writeln!(out, "  [{}] {} {}", inc.severity, inc.pattern, inc.id)?;
            writeln!(out, "      {}", inc.summary)?;
        }
    }
    let unknown = top_unknown(tally);
    if !unknown.is_empty() {
        writeln!(
            out,
            "failures no rule explains (write a rule with --rules):"
        )?;
        for (count, message) in &unknown {
            writeln!(out, "  {count:>6}  {message}")?;
        }
    }
    if totals.bad_lines > 0 {
        writeln!(
            out,
            "bad lines by reason: {}",
            counts(&totals.bad_by_reason)
        )?;
    }
    if totals.lines_with_secrets > 0 {
        writeln!(
            out,
            "warning: {} line(s) hold plaintext API keys or tokens (not copied to any output)",
            totals.lines_with_secrets
        )?;
    }
    writeln!(
        out,
        "wrote report.md, incidents.json, incidents.parquet, records.parquet, rollups.parquet, summary.json and quarantine.jsonl to {}",
        args.out.display()
    )
}

/// `key n, key n, ...` in key order.
fn counts<K: std::fmt::Display>(map: &BTreeMap<K, u64>) -> String {
    map.iter()
        .map(|(key, n)| format!("{key} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
