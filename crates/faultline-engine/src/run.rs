//! Reading logs: inputs in; records.parquet, the quarantine and an
//! [`Analysis`] of every kept call out.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use anyhow::{Context, Result};
use faultline_classify::{Classifier, RuleSet};
use faultline_incidents::DetectConfig;
use faultline_ingest::{discover, BadLine, IngestOptions, Ingester, Input, Summary};
use faultline_report::{
    Error as ReportError, OperationColumns, OperationsWriter, PartitionedWriter, RecordColumns,
    RecordsWriter,
};
use serde_json::{json, Value};

use crate::analysis::Analysis;
use crate::files::{Atomic, Staged, StagedDir};
use crate::operations::Grouper;
use crate::prices::Prices;
use crate::progress::Progress;
use crate::read::Read;
use crate::stage::{Classified, ClassifyStage};
use faultline_report::Filter;

/// How a run reads, classifies and keeps calls.
#[derive(Debug)]
pub struct Settings {
    pub ingest: IngestOptions,
    /// The classification rules (defaults, then the user's).
    pub rules: RuleSet,
    pub filter: Filter,
    pub detect: DetectConfig,
    /// Width of a rollup window, in milliseconds.
    pub window_ms: i64,
    /// List prices, for failed calls whose log states no cost.
    pub prices: Prices,
}

/// What a run reads.
pub enum Source<'a> {
    /// Files, directories and globs (`-` for stdin), but the files `skip`
    /// names (the run's own outputs).
    Logs {
        inputs: &'a [PathBuf],
        skip: &'a dyn Fn(&Path) -> bool,
    },
    /// Logs held in memory, by name (the built-in sample day).
    Embedded(&'a [(String, Vec<u8>)]),
}

impl std::fmt::Debug for Source<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Logs { inputs, .. } => f.debug_struct("Logs").field("inputs", inputs).finish(),
            Source::Embedded(files) => f.debug_tuple("Embedded").field(&files.len()).finish(),
        }
    }
}

/// Where the classified calls go.
#[derive(Debug, Clone)]
pub enum RecordsTarget {
    /// One parquet file.
    File(PathBuf),
    /// A directory with one `date=YYYY-MM-DD/` partition per UTC day.
    ByDate(PathBuf),
}

/// What the writer thread is handed, in input order.
enum Rows {
    Records(Box<RecordColumns>),
    Operations(Box<OperationColumns>),
}

/// The records writer of either target, on the writer thread.
enum Sink {
    File(Box<RecordsWriter>),
    ByDate(PartitionedWriter),
}

impl Sink {
    fn write(&mut self, columns: RecordColumns) -> Result<(), ReportError> {
        match self {
            Sink::File(w) => w.write(columns),
            Sink::ByDate(w) => w.write(columns),
        }
    }

    /// Finishes the files; returns the rows written.
    fn finish(self) -> Result<u64, ReportError> {
        match self {
            Sink::File(w) => w.finish(),
            Sink::ByDate(w) => w.finish(),
        }
    }
}

/// What reading left: the analysis of the kept calls, and what was read.
#[derive(Debug)]
pub struct Logs {
    pub analysis: Analysis,
    pub read: Read,
    /// Whether any input was read, even in part (an empty file counts): a
    /// run that read none should write nothing.
    pub read_any: bool,
}

/// Reads `source`, classifies and filters each call, writes the kept ones
/// to `target`, the operations they were grouped into to `operations`
/// (when given), and the bad lines to `quarantine` (each renamed into
/// place only when complete), and returns their analysis.
pub fn read_logs(
    settings: &Settings,
    source: &Source<'_>,
    target: &RecordsTarget,
    operations_path: Option<&Path>,
    quarantine_path: &Path,
    progress: &mut dyn Progress,
) -> Result<Logs> {
    let started = Instant::now();
    let ingester = Ingester::new(settings.ingest.clone())?;
    let classifier = Classifier::new(settings.rules.clone());

    let (dir, name) = split(quarantine_path)?;
    let mut quarantine = Atomic::create(dir, name)?;
    let (staged_file, staged_dir, records) = match target {
        RecordsTarget::File(path) => {
            let (dir, name) = split(path)?;
            let staged = Staged::new(dir, name);
            let writer = RecordsWriter::create(staged.path())?;
            (Some(staged), None, Sink::File(Box::new(writer)))
        }
        RecordsTarget::ByDate(dir) => {
            let staged = StagedDir::new(dir);
            let writer = PartitionedWriter::create(staged.path())?;
            (None, Some(staged), Sink::ByDate(writer))
        }
    };
    let (operations_staged, operations) = match operations_path {
        Some(path) => {
            let (dir, name) = split(path)?;
            let staged = Staged::new(dir, name);
            let writer = OperationsWriter::create(staged.path())?;
            (Some(staged), Some(writer))
        }
        None => (None, None),
    };
    let mut grouper = Grouper::new(&settings.prices, operations.is_some());
    let mut analysis = Analysis::new(&settings.detect, settings.window_ms);
    let mut write_error = None;
    let stage = ClassifyStage {
        classifier: &classifier,
        detect: &settings.detect,
        filter: &settings.filter,
        window_ms: settings.window_ms,
    };

    // records.parquet is encoded on its own thread, overlapping the parse;
    // the bounded channel keeps at most a few batches in flight.
    let (batches, received) = mpsc::sync_channel::<Rows>(4);
    let (summary, input_errors, written) = std::thread::scope(|scope| {
        let writer = scope.spawn(move || {
            let mut records = records;
            let mut operations = operations;
            for rows in received {
                match rows {
                    Rows::Records(batch) => records.write(*batch)?,
                    Rows::Operations(batch) => {
                        if let Some(operations) = &mut operations {
                            operations.write(&batch)?;
                        }
                    }
                }
            }
            if let Some(operations) = operations {
                operations.finish()?;
            }
            records.finish()
        });
        let mut on_output = |out: Classified| {
            progress.batch(
                out.analysis.calls(),
                out.reached.as_ref().map(|(f, o)| (f, *o)),
            );
            analysis.merge(out.analysis);
            let mut records = out.records;
            grouper.add(&out.attempts, |row, id| records.set_operation(row, id));
            // A failed writer has hung up; its error comes from join below.
            let _ = batches.send(Rows::Records(Box::new(records)));
            if let Some(done) = grouper.take_done(false) {
                let _ = batches.send(Rows::Operations(Box::new(done)));
            }
            for bad in &out.bad_lines {
                if write_error.is_none() {
                    if let Err(e) = writeln!(quarantine, "{}", quarantine_line(bad)) {
                        write_error = Some(e);
                    }
                }
            }
        };
        let (summary, input_errors) = match source {
            Source::Embedded(files) => {
                let mut summary = Summary::default();
                for (name, bytes) in *files {
                    let file = ingester.ingest_bytes_staged(name, bytes, &stage, &mut on_output);
                    summary.totals.add(&file.counts);
                    summary.files.push(file);
                }
                (summary, Vec::new())
            }
            Source::Logs { inputs, skip } => {
                let (mut inputs, errors) = discover(inputs);
                inputs.retain(|input| match input {
                    Input::File(path) if skip(path) => {
                        tracing::warn!(file = %path.display(), "skipped: an output of this run");
                        false
                    }
                    _ => true,
                });
                (
                    ingester.ingest_staged(&inputs, &stage, &mut on_output),
                    errors,
                )
            }
        };
        grouper.close_all();
        if let Some(done) = grouper.take_done(true) {
            let _ = batches.send(Rows::Operations(Box::new(done)));
        }
        drop(batches);
        let written = writer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (summary, input_errors, written)
    });
    if let Some(e) = write_error {
        return Err(e).context(format!("cannot write {}", quarantine_path.display()));
    }
    quarantine.commit()?;
    written.with_context(|| {
        let dest = match target {
            RecordsTarget::File(path) | RecordsTarget::ByDate(path) => path,
        };
        format!("cannot write {}", dest.display())
    })?;
    if let Some(staged) = staged_file {
        staged.commit()?;
    }
    if let Some(staged) = operations_staged {
        staged.commit()?;
    }
    if let Some(staged) = staged_dir {
        staged.commit()?;
    }
    tracing::info!(
        seconds = started.elapsed().as_secs_f64(),
        records = summary.totals.records,
        bytes = summary.totals.bytes,
        "read and classified"
    );

    analysis.operations = Some(grouper.stats);
    let sample = matches!(source, Source::Embedded(_));
    let mut problems: Vec<String> = input_errors.iter().map(ToString::to_string).collect();
    problems.extend(summary.errors().map(ToString::to_string));
    let read_any = sample
        || summary
            .files
            .iter()
            .any(|f| f.error.is_none() || f.counts.lines > 0 || f.counts.bytes > 0);
    Ok(Logs {
        analysis,
        read: Read::of_logs(&summary, problems, sample, ingester.threads(), started),
        read_any,
    })
}

/// The file of operations in an output directory.
pub const OPERATIONS: &str = "operations.parquet";

/// A file path as (directory, file name), for the temp-then-rename writers.
fn split(path: &Path) -> Result<(&Path, &str)> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} is not a file name", path.display()))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    Ok((dir, name))
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
