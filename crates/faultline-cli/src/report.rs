//! From classified calls to incidents and reports: the second half of
//! `analyze`, and all of `faultline report`, which reads the calls back from
//! earlier `records.parquet` files. The engine finds and writes; this module
//! maps flags to it, makes the output set current and prints.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use faultline_engine::{
    read_records, top_unknown, Analysis, Formats, OperationStats, Progress as _, Read, Tally,
};
use faultline_incidents::{shown, DetectConfig, Incident, Severity};
use faultline_report::inert;

use crate::outset::OutputSet;
use crate::progress::Progress;
use crate::{FailOn, OutputArgs, ReportArgs, ReportFormat};

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

/// The reports `--format` asks for.
pub(crate) fn formats(args: &OutputArgs) -> Formats {
    Formats {
        md: args.format.contains(&ReportFormat::Md),
        html: args.format.contains(&ReportFormat::Html),
        json: args.format.contains(&ReportFormat::Json),
    }
}

/// Detects incidents and writes every report output into the output set,
/// makes the set current, prints the summary and returns the exit code.
/// `written` names the outputs already in the set (records, quarantine).
pub(crate) fn finish(
    args: &OutputArgs,
    set: OutputSet,
    quiet: bool,
    detect: &DetectConfig,
    (analysis, read): (Analysis, &Read),
    written: &[&'static str],
    progress: &Progress,
) -> Result<ExitCode> {
    let finished = analysis.finish(read, detect, formats(args), set.dir(), written, progress)?;
    progress.step("making the outputs current");
    set.switch()?;
    progress.finish();
    let (incidents, tally, folded) = (&finished.incidents, &finished.tally, finished.folded);

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
            serde_json::to_writer_pretty(&mut stdout, &finished.summary)?;
            writeln!(stdout)?;
        } else {
            print_summary(
                &mut stdout,
                read,
                tally,
                finished.operations.as_ref(),
                incidents,
                &args.out,
                &finished.written,
            )?;
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
    let detect = detect_config(args.output.config.as_deref())?;
    let files = record_files(&args.records)?;
    faultline_engine::check_records(&files)?;
    // report writes no records and no quarantine: those of an earlier
    // analyze in the same directory stay (they are often this run's input).
    let set = OutputSet::begin(
        &args.output.out,
        &formats(&args.output).outputs(),
        &[
            "records.parquet",
            "records",
            "operations.parquet",
            "quarantine.jsonl",
        ],
        &args.records,
    )?;
    let prices = crate::analyze::price_table(args.prices.prices.as_deref())?;
    let mut progress = Progress::new(quiet);
    let (analysis, read) = read_records(
        &files,
        &args.filter.filter(),
        &detect,
        args.output.window,
        &prices,
        &mut progress,
    )?;
    finish(
        &args.output,
        set,
        quiet,
        &detect,
        (analysis, &read),
        &[],
        &progress,
    )
}

fn print_summary(
    out: &mut impl Write,
    read: &Read,
    tally: &Tally,
    operations: Option<&OperationStats>,
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
    if let Some(ops) = operations {
        writeln!(
            out,
            "requests (calls grouped with their retries): {}, failed after retries {}, retried {}, fell back {}",
            ops.operations(),
            ops.failed_operations(),
            ops.retried(),
            ops.fell_back()
        )?;
    }
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
