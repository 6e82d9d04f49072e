//! `faultline analyze` (read, classify, detect, report) and `faultline
//! classify` (read and classify only).

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use faultline_engine::{read_logs, Logs, Prices, RecordsTarget, Settings, Source, OPERATIONS};
use faultline_incidents::DetectConfig;
use faultline_ingest::IngestOptions;
use serde_json::json;

use crate::outset::OutputSet;
use crate::progress::Progress;
use crate::report;
use crate::{AnalyzeArgs, ClassifyArgs, IngestArgs, PartitionBy};

/// Size of the built-in sample day analyzed when no input is given.
pub(crate) const SAMPLE_BYTES: u64 = 24 << 20;

/// The engine's settings for these flags.
fn settings(
    args: &IngestArgs,
    filter: faultline_engine::Filter,
    detect: DetectConfig,
    window_ms: i64,
    prices: Option<&std::path::Path>,
) -> Result<Settings> {
    let mut ingest = IngestOptions {
        threads: args.threads,
        chunk_bytes: args.chunk_bytes.max(1),
        max_line_bytes: args.max_line_bytes.max(1),
        mmap: !args.no_mmap,
        ..IngestOptions::default()
    };
    if let Some(key) = &args.fingerprint_key {
        ingest.fingerprint_key.clone_from(key);
    }
    Ok(Settings {
        ingest,
        rules: crate::rules::effective(args.rules.as_deref())?,
        filter,
        detect,
        window_ms,
        prices: price_table(prices)?,
    })
}

/// The built-in list prices, with those of `path` laid over them.
pub(crate) fn price_table(path: Option<&std::path::Path>) -> Result<Prices> {
    let mut table = Prices::defaults();
    if let Some(path) = path {
        table.add_file(path)?;
    }
    Ok(table)
}

/// Reads `inputs`, or the built-in sample day when there are none.
fn read(
    settings: &Settings,
    inputs: &[PathBuf],
    skip: &dyn Fn(&std::path::Path) -> bool,
    target: &RecordsTarget,
    operations: Option<&std::path::Path>,
    quarantine: &std::path::Path,
    progress: &mut Progress,
) -> Result<Logs> {
    if inputs.is_empty() {
        let day = crate::sample::generate(crate::sample::Spec {
            seed: 42,
            bytes: SAMPLE_BYTES,
        });
        let files: Vec<(String, Vec<u8>)> = day
            .files
            .into_iter()
            .map(|(name, bytes)| (format!("sample/{name}"), bytes))
            .collect();
        read_logs(
            settings,
            &Source::Embedded(&files),
            target,
            operations,
            quarantine,
            progress,
        )
    } else {
        read_logs(
            settings,
            &Source::Logs { inputs, skip },
            target,
            operations,
            quarantine,
            progress,
        )
    }
}

pub(crate) fn run(args: &AnalyzeArgs, quiet: bool) -> Result<ExitCode> {
    let detect = report::detect_config(args.output.config.as_deref())?;
    let out = &args.output.out;
    let records_name = match args.partition_by {
        Some(PartitionBy::Date) => "records",
        None => "records.parquet",
    };
    let mut writes = vec![records_name, OPERATIONS, "quarantine.jsonl"];
    writes.extend(report::formats(&args.output).outputs());
    refuse_without_input(&args.inputs, out)?;
    let set = OutputSet::begin(out, &writes, &[], &[])?;
    let dir = set.dir();
    let target = match args.partition_by {
        Some(PartitionBy::Date) => RecordsTarget::ByDate(dir.join("records")),
        None => RecordsTarget::File(dir.join("records.parquet")),
    };

    let settings = settings(
        &args.ingest,
        args.filter.filter(),
        detect,
        args.output.window,
        args.prices.prices.as_deref(),
    )?;
    let mut progress = Progress::new(quiet);
    let logs = read(
        &settings,
        &args.inputs,
        &|path| set.owns(path),
        &target,
        Some(&dir.join(OPERATIONS)),
        &dir.join("quarantine.jsonl"),
        &mut progress,
    )?;
    if !logs.read_any {
        let why = if logs.read.problems.is_empty() {
            "every input named is an output of this run".to_owned()
        } else {
            logs.read.problems.join("; ")
        };
        anyhow::bail!(
            "{why}; nothing was read, so {} was left as it was",
            out.display()
        );
    }
    report::finish(
        &args.output,
        set,
        quiet,
        &settings.detect,
        (logs.analysis, &logs.read),
        &[records_name, OPERATIONS, "quarantine.jsonl"],
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
    let settings = settings(
        &args.ingest,
        args.filter.filter(),
        DetectConfig::default(),
        faultline_report::DEFAULT_WINDOW_MS,
        None,
    )?;
    let target = match args.partition_by {
        Some(PartitionBy::Date) => RecordsTarget::ByDate(args.output.clone()),
        None => RecordsTarget::File(args.output.clone()),
    };
    let mut progress = Progress::new(quiet);
    let logs = read(
        &settings,
        &args.inputs,
        &|_| false,
        &target,
        None,
        &quarantine,
        &mut progress,
    )?;
    progress.finish();
    let read = &logs.read;
    let tally = logs.analysis.tally();
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
