//! `faultline analyze`: ingest and classify everything, detect incidents, then
//! write the incidents, the summary and the quarantine.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use faultline_classify::incidents::{self, Collector, DetectConfig, Incident};
use faultline_classify::{Classification, Classifier, StatusClass};
use faultline_ingest::{
    discover, BadLine, Batch, FileSummary, IngestOptions, Ingester, Record, Stage, Summary,
};
use serde_json::{json, Value};

use crate::output::Atomic;
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

impl Stage for ClassifyStage<'_> {
    type Output = (Tally, Collector, Vec<BadLine>);

    fn process(&self, batch: Batch) -> Self::Output {
        let mut tally = Tally::default();
        let mut collector = Collector::new(self.detect);
        for rec in &batch.records {
            let class = self.classifier.classify(rec);
            tally.add(rec, &class);
            collector.add(rec, &class);
        }
        (tally, collector, batch.bad_lines)
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
    let mut tally = Tally::default();
    let mut collector = Collector::new(&detect);
    let mut write_error = None;
    let stage = ClassifyStage {
        classifier: &classifier,
        detect: &detect,
    };
    let mut on_output = |(part, events, bad_lines): (Tally, Collector, Vec<BadLine>)| {
        tally.merge(part);
        collector.merge(events);
        for bad in &bad_lines {
            if write_error.is_none() {
                if let Err(e) = writeln!(quarantine, "{}", quarantine_line(bad)) {
                    write_error = Some(e);
                }
            }
        }
    };

    let sample = args.inputs.is_empty();
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
    if let Some(e) = write_error {
        return Err(e).context(format!(
            "cannot write quarantine.jsonl in {}",
            args.out.display()
        ));
    }
    quarantine.commit()?;

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
        "top_unknown_errors": top_unknown(tally),
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
        "start": crate::sample::rfc3339(inc.start_ms),
        "end": crate::sample::rfc3339(inc.end_ms),
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
fn top_unknown(tally: &Tally) -> Vec<Value> {
    let mut messages: Vec<(&String, &u64)> = tally.unknown_messages.iter().collect();
    messages.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    messages
        .into_iter()
        .take(TOP_UNKNOWN)
        .map(|(message, count)| json!({"count": count, "message": message}))
        .collect()
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
        for item in &unknown {
            writeln!(
                out,
                "  {:>6}  {}",
                item["count"],
                item["message"].as_str().unwrap_or("")
            )?;
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
        "wrote {}, {} and {}",
        args.out.join("incidents.json").display(),
        args.out.join("summary.json").display(),
        args.out.join("quarantine.jsonl").display()
    )
}

/// `key n, key n, ...` in key order.
fn counts<K: std::fmt::Display>(map: &BTreeMap<K, u64>) -> String {
    map.iter()
        .map(|(key, n)| format!("{key} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
