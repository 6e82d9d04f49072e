//! From classified calls to incidents and reports: the second half of
//! `analyze`, and all of `faultline report`, which reads the calls back from
//! earlier `records.parquet` files.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use faultline_classify::incidents::{self, shown, Collector, DetectConfig, Incident, Severity};
use faultline_ingest::{Format, Record};
use faultline_report::{inert, Outcome, Overview, RecordSet, Report, Rollups};
use serde_json::{json, Value};

use crate::output::{rfc3339, Atomic, Staged};
use crate::outset::OutputSet;
use crate::pipeline::{family, Kinds, Tally};
use crate::progress::Progress;
use crate::{FailOn, OutputArgs, ReportArgs, ReportFormat};

/// How many of the most frequent unclassified messages the summary lists.
const TOP_UNKNOWN: usize = 10;

/// Every file a run may write in `--out`. A run removes those of an earlier
/// run that it does not write itself, so that the directory never mixes runs.
pub(crate) const OUTPUTS: [&str; 9] = [
    "records.parquet",
    "records",
    "quarantine.jsonl",
    "rollups.parquet",
    "incidents.parquet",
    "incidents.json",
    "summary.json",
    "report.md",
    "report.html",
];

/// What was read, for summary.json and the report's data-quality section.
pub(crate) struct Read {
    /// One JSON object per input.
    pub inputs: Vec<Value>,
    pub bytes: u64,
    pub lines: u64,
    pub blank_lines: u64,
    pub bad_lines: u64,
    pub bad_by_reason: BTreeMap<String, u64>,
    pub lines_with_secrets: u64,
    /// HTTP spans read into their call's record, and those whose call was
    /// not found near them.
    pub child_spans: u64,
    pub child_spans_unjoined: u64,
    pub duplicate_spans: u64,
    /// Inputs that could not be read (or only in part), with the reason.
    pub problems: Vec<String>,
    pub sample: bool,
    pub threads: usize,
    pub started: Instant,
}

/// The detection thresholds: embedded defaults, then the user's config file.
pub(crate) fn detect_config(path: Option<&Path>) -> Result<DetectConfig> {
    let Some(path) = path else {
        return Ok(DetectConfig::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    Ok(DetectConfig::parse_file(&text, path)?)
}

/// The parquet files named on the command line, a directory standing for
/// every `.parquet` file under it (in path order).
fn record_files(args: &[PathBuf]) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read directory {}", dir.display()))?
            .map(|e| e.map(|e| e.path()))
            .collect::<io::Result<_>>()
            .with_context(|| format!("cannot read directory {}", dir.display()))?;
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out)?;
            } else if path.extension().is_some_and(|e| e == "parquet") {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    for path in args {
        if path.is_dir() {
            walk(path, &mut files)?;
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            anyhow::bail!("{}: no such file", path.display());
        }
    }
    if files.is_empty() {
        anyhow::bail!("no .parquet file in {}", args[0].display());
    }
    Ok(files)
}

/// The files a run with these settings writes, besides records and quarantine.
pub(crate) fn report_outputs(args: &OutputArgs) -> Vec<&'static str> {
    let mut names = vec!["rollups.parquet", "incidents.parquet"];
    if args.format.contains(&ReportFormat::Json) {
        names.extend(["incidents.json", "summary.json"]);
    }
    if args.format.contains(&ReportFormat::Md) {
        names.push("report.md");
    }
    if args.format.contains(&ReportFormat::Html) {
        names.push("report.html");
    }
    names
}

/// What a run gathered before detection: the classified calls (as records
/// files, counts and collector), what was read, and what was written so far.
pub(crate) struct Gathered<'a> {
    pub rollups: Rollups,
    pub read: &'a Read,
    pub tally: &'a Tally,
    pub collector: Collector,
    pub written: &'a [&'a str],
}

/// The value of a scoped thread; its panic, if it panicked, goes on here.
fn rejoin<T>(thread: std::thread::ScopedJoinHandle<'_, T>) -> T {
    thread
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Detects incidents, writes every report output, prints the summary and
/// returns the exit code.
pub(crate) fn finish(
    args: &OutputArgs,
    set: OutputSet,
    quiet: bool,
    detect: &DetectConfig,
    gathered: Gathered<'_>,
    progress: &Progress,
) -> Result<ExitCode> {
    let Gathered {
        rollups,
        read,
        tally,
        collector,
        written,
    } = gathered;
    let out = set.dir();
    let formats = &args.format;
    let folded = rollups.folded_calls();
    let (md, html) = (
        formats.contains(&ReportFormat::Md),
        formats.contains(&ReportFormat::Html),
    );
    // Detection, rollups.parquet, the charts and the provider table need
    // only what was gathered, not each other: they run side by side, and
    // the run's tail is shorter.
    progress.step("detecting incidents and writing rollups");
    let (incidents, charts, providers, written_rollups) = std::thread::scope(|scope| {
        let detection = scope.spawn(|| {
            let step = Instant::now();
            let incidents = incidents::detect(&collector.finish(), detect);
            tracing::info!(
                seconds = step.elapsed().as_secs_f64(),
                incidents = incidents.len(),
                "detected incidents"
            );
            incidents
        });
        let rollups = &rollups;
        let charts = scope.spawn(move || html.then(|| rollups.charts()).flatten());
        let providers = scope.spawn(move || {
            if md || html {
                rollups.providers()
            } else {
                Vec::new()
            }
        });
        let written = (|| -> Result<()> {
            let step = Instant::now();
            let staged = Staged::new(out, "rollups.parquet");
            let mut frame = rollups.frame().context("cannot build the rollups")?;
            faultline_report::write_parquet(&mut frame, staged.path())?;
            staged.commit()?;
            tracing::info!(
                seconds = step.elapsed().as_secs_f64(),
                "wrote rollups.parquet"
            );
            Ok(())
        })();
        (
            rejoin(detection),
            rejoin(charts),
            rejoin(providers),
            written,
        )
    });
    written_rollups?;

    progress.step("writing incidents");
    let staged = Staged::new(out, "incidents.parquet");
    let mut frame = faultline_report::incidents_frame(&incidents)?;
    faultline_report::write_parquet(&mut frame, staged.path())?;
    staged.commit()?;

    if md || html {
        progress.step("writing reports");
        let step = Instant::now();
        let report = Report {
            overview: overview(read, tally),
            providers,
            incidents: &incidents,
            charts,
        };
        if md {
            let mut file = Atomic::create(out, "report.md")?;
            file.write_all(faultline_report::markdown(&report).as_bytes())?;
            file.commit()?;
        }
        if html {
            let mut file = Atomic::create(out, "report.html")?;
            file.write_all(faultline_report::html(&report).as_bytes())?;
            file.commit()?;
        }
        tracing::info!(seconds = step.elapsed().as_secs_f64(), "wrote the reports");
    }

    let mut all_written: Vec<&str> = written.to_vec();
    all_written.extend(report_outputs(args));
    let summary = summary_json(read, tally, &incidents, &all_written, folded);
    if formats.contains(&ReportFormat::Json) {
        let incidents: Vec<Value> = incidents.iter().map(incident_json).collect();
        for (name, value) in [
            ("incidents.json", &Value::from(incidents)),
            ("summary.json", &summary),
        ] {
            let mut file = Atomic::create(out, name)?;
            serde_json::to_writer_pretty(&mut file, value)?;
            writeln!(file)?;
            file.commit()?;
        }
    }
    progress.step("making the outputs current");
    set.switch()?;
    progress.finish();
    let out = &args.out;

    let mut stderr = io::stderr().lock();
    for problem in &read.problems {
        writeln!(stderr, "faultline: {}", inert::terminal(problem))?;
    }
    if folded > 0 {
        writeln!(
            stderr,
            "faultline: warning: {folded} calls of models or services past the first {} distinct \
             are counted as {} in rollups and incidents (records keep every name)",
            faultline_classify::bound::DISTINCT_LIMIT,
            faultline_classify::bound::OTHER,
        )?;
    }
    if !quiet {
        let mut stdout = io::stdout().lock();
        if args.json {
            serde_json::to_writer_pretty(&mut stdout, &summary)?;
            writeln!(stdout)?;
        } else {
            print_summary(&mut stdout, read, tally, &incidents, out, &all_written)?;
        }
        stdout.flush()?;
    }
    let worst = incidents.iter().map(|i| i.severity).min();
    Ok(if !read.problems.is_empty() {
        ExitCode::from(2)
    } else if fails(args.fail_on, worst) {
        if !quiet {
            writeln!(
                stderr,
                "faultline: found incidents of severity {} or worse (--fail-on)",
                args.fail_on.map_or("", |level| level.threshold().as_str())
            )?;
        }
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

impl FailOn {
    /// The least severe incident that fails the run.
    fn threshold(self) -> Severity {
        match self {
            FailOn::Low => Severity::Low,
            FailOn::Medium => Severity::Medium,
            FailOn::High => Severity::High,
            FailOn::Critical => Severity::Critical,
        }
    }
}

/// Whether the most severe incident found reaches `--fail-on`.
fn fails(fail_on: Option<FailOn>, worst: Option<Severity>) -> bool {
    // Severities order from critical (least) to low (greatest).
    matches!((fail_on, worst), (Some(level), Some(worst)) if worst <= level.threshold())
}

/// `faultline report`: the records of earlier runs, read back as one table.
pub(crate) fn run(args: &ReportArgs, quiet: bool) -> Result<ExitCode> {
    let started = Instant::now();
    let detect = detect_config(args.output.config.as_deref())?;
    let filter = args.filter.filter();
    let files = record_files(&args.records)?;
    let records = RecordSet::new(&files).with_filter(filter.expr());
    records.check()?;
    // report writes no records and no quarantine: those of an earlier
    // analyze in the same directory stay (they are often this run's input).
    let set = OutputSet::begin(
        &args.output.out,
        &report_outputs(&args.output),
        &["records.parquet", "records", "quarantine.jsonl"],
        &args.records,
    )?;

    let mut progress = Progress::new(quiet);
    let mut tally = Tally::default();
    let mut collector = Collector::new(&detect);
    let mut rollups = Rollups::new(args.output.window);
    let mut with_secrets = 0u64;
    // Each batch of rows is folded into a part of its own on a worker; the
    // parts are merged in the order of the batches, as analyze merges its
    // chunks.
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let rows = records.fold(
        threads,
        || Part::new(&detect, args.output.window),
        Part::add,
        |part| {
            progress.batch(part.rows, None);
            let Part {
                tally: mut part_tally,
                kinds,
                collector: part_collector,
                rollups: part_rollups,
                with_secrets: part_secrets,
                rows: _,
            } = part;
            kinds.fold_into(&mut part_tally);
            tally.merge(part_tally);
            collector.merge(part_collector);
            rollups.merge(part_rollups);
            with_secrets += part_secrets;
        },
    )?;
    tracing::info!(
        rows,
        seconds = started.elapsed().as_secs_f64(),
        "read the records back"
    );
    let size = |p: &PathBuf| std::fs::metadata(p).map_or(0, |m| m.len());
    let read = Read {
        inputs: files
            .iter()
            .map(|p| json!({"name": p.display().to_string(), "bytes": size(p)}))
            .collect(),
        bytes: files.iter().map(size).sum(),
        lines: rows,
        blank_lines: 0,
        bad_lines: 0,
        bad_by_reason: BTreeMap::new(),
        lines_with_secrets: with_secrets,
        child_spans: 0,
        child_spans_unjoined: 0,
        duplicate_spans: 0,
        problems: Vec::new(),
        sample: false,
        threads: 0,
        started,
    };
    finish(
        &args.output,
        set,
        quiet,
        &detect,
        Gathered {
            rollups,
            read: &read,
            tally: &tally,
            collector,
            written: &[],
        },
        &progress,
    )
}

/// What one batch of records read back adds to a report.
struct Part {
    tally: Tally,
    /// Calls by kind, folded into the tally's maps once per batch: a lookup
    /// in each map per row cost more than the rest of the tally.
    kinds: Kinds,
    collector: Collector,
    rollups: Rollups,
    with_secrets: u64,
    rows: usize,
}

impl Part {
    fn new(detect: &DetectConfig, window_ms: i64) -> Part {
        Part {
            tally: Tally::default(),
            kinds: Kinds::default(),
            collector: Collector::new(detect),
            rollups: Rollups::new(window_ms),
            with_secrets: 0,
            rows: 0,
        }
    }

    fn add(&mut self, rec: &Record, outcome: &Outcome) {
        let format = outcome.format.as_deref().and_then(|name| {
            let format = Format::ALL.into_iter().find(|f| f.as_str() == name);
            if format.is_none() {
                self.tally.format(name);
            }
            format
        });
        self.kinds.add((
            outcome.provider,
            outcome.status_class,
            family(rec.http_status),
            format,
        ));
        self.tally
            .add_details(rec, outcome.status_class, &outcome.cause);
        self.with_secrets += u64::from(rec.secrets_found > 0);
        self.collector
            .add_outcome(rec, outcome.provider, outcome.status_class, &outcome.cause);
        self.rollups
            .add(rec, outcome.provider, outcome.status_class);
        self.rows += 1;
    }
}

fn overview(read: &Read, tally: &Tally) -> Overview {
    let ok = tally.by_class.get("ok").copied().unwrap_or(0);
    let records = tally.records();
    let most_first = |items: Vec<(String, u64)>| {
        let mut items = items;
        items.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        items
    };
    Overview {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        sample: read.sample,
        inputs: read.inputs.len(),
        bytes: read.bytes,
        lines: read.lines,
        records,
        failed: records.saturating_sub(ok),
        bad_lines: read.bad_lines,
        bad_by_reason: read
            .bad_by_reason
            .iter()
            .map(|(r, n)| (r.clone(), *n))
            .collect(),
        input_errors: read.problems.clone(),
        lines_with_secrets: read.lines_with_secrets,
        failures_by_class: most_first(
            tally
                .by_class
                .iter()
                .filter(|(class, _)| **class != "ok")
                .map(|(class, n)| ((*class).to_owned(), *n))
                .collect(),
        ),
        failures_by_cause: most_first(
            tally
                .by_cause
                .iter()
                .map(|(c, n)| (c.clone(), *n))
                .collect(),
        ),
        top_unknown: top_unknown(tally),
    }
}

fn summary_json(
    read: &Read,
    tally: &Tally,
    incidents: &[Incident],
    outputs: &[&str],
    folded: u64,
) -> Value {
    let count = |key: fn(&Incident) -> &'static str| {
        let mut out: BTreeMap<&'static str, u64> = BTreeMap::new();
        for inc in incidents {
            *out.entry(key(inc)).or_default() += 1;
        }
        out
    };
    json!({
        "faultline_version": env!("CARGO_PKG_VERSION"),
        "embedded_sample": read.sample,
        "threads": read.threads,
        "run_seconds": read.started.elapsed().as_secs_f64(),
        "inputs": read.inputs,
        "input_errors": read.problems,
        "outputs": outputs,
        "totals": {
            "bytes": read.bytes,
            "lines": read.lines,
            "blank_lines": read.blank_lines,
            "records": tally.records(),
            "filtered_out": tally.filtered_out,
            "bad_lines": read.bad_lines,
            "lines_with_plaintext_secrets": read.lines_with_secrets,
            "child_spans": read.child_spans,
            "child_spans_unjoined": read.child_spans_unjoined,
            "duplicate_spans": read.duplicate_spans,
            "records_with_error": tally.with_error,
            "empty_responses": tally.empty_responses,
            "calls_counted_as_other": folded,
        },
        "bad_lines_by_reason": read.bad_by_reason,
        "records_by_format": tally.by_format,
        "records_by_http_status": tally.by_status,
        "records_by_provider": tally.by_provider,
        "records_by_status_class": tally.by_class,
        "failures_by_cause": tally.by_cause,
        "top_unknown_errors": top_unknown(tally)
            .into_iter()
            .map(|(count, message)| json!({"count": count, "message": message}))
            .collect::<Vec<_>>(),
        "incidents_by_pattern": count(|i| i.pattern.as_str()),
        "incidents_by_severity": count(|i| i.severity.as_str()),
    })
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
        "start": rfc3339(inc.start_ms),
        "end": rfc3339(inc.end_ms),
        "duration_s": inc.duration_s(),
        "requests": inc.requests,
        "errors": inc.errors,
        "error_rate": (inc.error_rate() * 10_000.0).round() / 10_000.0,
        "peak_rate": inc.peak_rate,
        "summary": inc.summary,
        "action": inc.action,
        "escalation": inc.escalation,
        "evidence": inc.evidence,
        "models": touched_json(&inc.models),
        "services": touched_json(&inc.services),
        "keys": touched_json(&inc.keys),
    })
}

/// `[{"name": ..., "errors": n}, ...]`, busiest first.
fn touched_json(list: &[faultline_classify::incidents::Touched]) -> Value {
    list.iter()
        .map(|t| json!({"name": &*t.name, "errors": t.errors}))
        .collect()
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
    read: &Read,
    tally: &Tally,
    incidents: &[Incident],
    dir: &Path,
    written: &[&str],
) -> io::Result<()> {
    if read.sample {
        writeln!(
            out,
            "No input given: analyzing the built-in sample day ({} services; `faultline sample` writes it out). Pass files, directories, globs or - to analyze your own logs.",
            read.inputs.len()
        )?;
    }
    writeln!(
        out,
        "read {} input(s), {} bytes, {} lines: {} records, {} bad lines, {} blank",
        read.inputs.len(),
        read.bytes,
        read.lines,
        tally.records(),
        read.bad_lines,
        read.blank_lines
    )?;
    if tally.filtered_out > 0 {
        writeln!(
            out,
            "left out by --since/--until/--provider/--service: {} records",
            tally.filtered_out
        )?;
    }
    writeln!(out, "formats: {}", counts(&tally.by_format))?;
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
            writeln!(out, "      {}", inert::terminal(&inc.summary))?;
        }
    }
    let unknown = top_unknown(tally);
    if !unknown.is_empty() {
        writeln!(
            out,
            "failures no rule explains (write a rule with --rules):"
        )?;
        for (count, message) in &unknown {
            writeln!(out, "  {count:>6}  {}", inert::terminal(&shown(message)))?;
        }
    }
    if read.bad_lines > 0 {
        writeln!(out, "bad lines by reason: {}", counts(&read.bad_by_reason))?;
    }
    if read.lines_with_secrets > 0 {
        writeln!(
            out,
            "warning: {} line(s) hold plaintext API keys or tokens (not copied to any output)",
            read.lines_with_secrets
        )?;
    }
    writeln!(out, "wrote {} to {}", written.join(", "), dir.display())
}

/// `key n, key n, ...` in key order.
fn counts<K: std::fmt::Display>(map: &BTreeMap<K, u64>) -> String {
    map.iter()
        .map(|(key, n)| format!("{key} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
