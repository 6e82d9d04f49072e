//! `faultline analyze` (read, classify, detect, report) and `faultline
//! classify` (read and classify only).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use faultline_classify::incidents::DetectConfig;
use faultline_ingest::FileSummary;
use serde_json::{json, Value};

use crate::outset::OutputSet;
use crate::pipeline::{self, Ingested, RecordsTarget};
use crate::progress::Progress;
use crate::report::{self, Read};
use crate::{AnalyzeArgs, ClassifyArgs, PartitionBy};

pub(crate) fn run(args: &AnalyzeArgs, quiet: bool) -> Result<ExitCode> {
    let detect = report::detect_config(args.output.config.as_deref())?;
    let out = &args.output.out;
    let records_name = match args.partition_by {
        Some(PartitionBy::Date) => "records",
        None => "records.parquet",
    };
    let mut writes = vec![records_name, "quarantine.jsonl"];
    writes.extend(report::report_outputs(&args.output));
    refuse_without_input(&args.inputs, out)?;
    let set = OutputSet::begin(out, &writes, &[], &[])?;
    let dir = set.dir();
    let target = match args.partition_by {
        Some(PartitionBy::Date) => RecordsTarget::ByDate(dir.join("records")),
        None => RecordsTarget::File(dir.join("records.parquet")),
    };

    let mut progress = Progress::new(quiet);
    let ingested = pipeline::ingest(
        &args.ingest,
        &args.inputs,
        &|path| set.owns(path),
        &args.filter.filter(),
        &detect,
        args.output.window,
        (&target, &dir.join("quarantine.jsonl")),
        &mut progress,
    )?;
    if !ingested.read_any() {
        let why = if ingested.problems.is_empty() {
            "every input named is an output of this run".to_owned()
        } else {
            ingested.problems.join("; ")
        };
        anyhow::bail!(
            "{why}; nothing was read, so {} was left as it was",
            out.display()
        );
    }
    let read = read_of(&ingested);
    report::finish(
        &args.output,
        set,
        quiet,
        &detect,
        report::Gathered {
            rollups: ingested.rollups,
            read: &read,
            tally: &ingested.tally,
            collector: ingested.collector,
            written: &[records_name, "quarantine.jsonl"],
        },
        &progress,
    )
}

/// Stops a run none of whose inputs can be found before `--out` is
/// touched: a typo in the only input path must not replace the last good
/// outputs with empty ones. (With no input at all, the sample day is read.)
fn refuse_without_input(inputs: &[PathBuf], out: &std::path::Path) -> Result<()> {
    if inputs.is_empty() {
        return Ok(());
    }
    let (found, errors) = faultline_ingest::discover(inputs);
    if found.is_empty() {
        let reasons: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::bail!(
            "{}; nothing to read, so {} was left as it was",
            reasons.join("; "),
            out.display()
        );
    }
    Ok(())
}

/// `faultline classify`: records.parquet and its quarantine, nothing else.
pub(crate) fn classify(args: &ClassifyArgs, quiet: bool) -> Result<ExitCode> {
    let quarantine = quarantine_path(&args.output);
    if let Some(dir) = args.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            anyhow::anyhow!("cannot create output directory {}: {e}", dir.display())
        })?;
    }
    let mut progress = Progress::new(quiet);
    let ingested = pipeline::ingest(
        &args.ingest,
        &args.inputs,
        &|_| false,
        &args.filter.filter(),
        &DetectConfig::default(),
        faultline_report::DEFAULT_WINDOW_MS,
        (
            &match args.partition_by {
                Some(PartitionBy::Date) => RecordsTarget::ByDate(args.output.clone()),
                None => RecordsTarget::File(args.output.clone()),
            },
            &quarantine,
        ),
        &mut progress,
    )?;
    progress.finish();
    let read = read_of(&ingested);
    let tally = &ingested.tally;
    let mut stderr = io::stderr().lock();
    for problem in &read.problems {
        writeln!(
            stderr,
            "faultline: {}",
            faultline_report::inert::terminal(problem)
        )?;
    }
    if !quiet {
        let mut stdout = io::stdout().lock();
        if args.json {
            let summary = json!({
                "inputs": read.inputs,
                "input_errors": read.problems,
                "records": tally.records(),
                "filtered_out": tally.filtered_out,
                "bad_lines": read.bad_lines,
                "bad_lines_by_reason": read.bad_by_reason,
                "records_by_provider": tally.by_provider,
                "records_by_status_class": tally.by_class,
                "output": args.output.display().to_string(),
                "quarantine": quarantine.display().to_string(),
            });
            serde_json::to_writer_pretty(&mut stdout, &summary)?;
            writeln!(stdout)?;
        } else {
            writeln!(
                stdout,
                "read {} input(s), {} bytes, {} lines: {} records, {} bad lines",
                read.inputs.len(),
                read.bytes,
                read.lines,
                tally.records(),
                read.bad_lines
            )?;
            if tally.filtered_out > 0 {
                writeln!(
                    stdout,
                    "left out by --since/--until/--provider/--service: {} records",
                    tally.filtered_out
                )?;
            }
            writeln!(
                stdout,
                "wrote {} and {}",
                args.output.display(),
                quarantine.display()
            )?;
        }
        stdout.flush()?;
    }
    Ok(if read.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// `day.parquet` -> `day.quarantine.jsonl`, beside it.
fn quarantine_path(records: &std::path::Path) -> PathBuf {
    let stem = records
        .file_stem()
        .map_or_else(|| "records".into(), |s| s.to_string_lossy().into_owned());
    records.with_file_name(format!("{stem}.quarantine.jsonl"))
}

fn read_of(ingested: &Ingested) -> Read {
    let totals = &ingested.summary.totals;
    Read {
        inputs: ingested.summary.files.iter().map(file_json).collect(),
        bytes: totals.bytes,
        lines: totals.lines,
        blank_lines: totals.blank_lines,
        bad_lines: totals.bad_lines,
        bad_by_reason: totals
            .bad_by_reason
            .iter()
            .map(|(reason, n)| (reason.as_str().to_owned(), *n))
            .collect::<BTreeMap<_, _>>(),
        lines_with_secrets: totals.lines_with_secrets,
        child_spans: totals.child_spans,
        child_spans_unjoined: totals.child_spans_unjoined,
        duplicate_spans: totals.duplicate_spans,
        problems: ingested.problems.clone(),
        sample: ingested.sample,
        threads: ingested.threads,
        started: ingested.started,
    }
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
