//! Ingest and classify: inputs in, `records.parquet` and the quarantine out,
//! with the counters and the incident collector that the reports need. Shared
//! by `analyze` and `classify`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use anyhow::{Context, Result};
use faultline_classify::bound::{Bounded, OTHER};
use faultline_classify::incidents::{Collector, DetectConfig};
use faultline_classify::{Classifier, Provider, StatusClass};
use faultline_ingest::{
    discover, BadLine, Batch, Format, IngestOptions, Ingester, Input, Record, Stage, Summary,
};
use faultline_report::{
    Error as ReportError, PartitionedWriter, RecordColumns, RecordsWriter, Rollups,
};
use serde_json::{json, Value};

use crate::filter::Filter;
use crate::output::{Atomic, Staged, StagedDir};
use crate::progress::Progress;
use crate::IngestArgs;

/// Size of the built-in sample day analyzed when no input is given.
pub(crate) const SAMPLE_BYTES: u64 = 24 << 20;

/// Classifies, filters and tallies each batch on the worker threads; only
/// the small tallies, the built columns and the bad lines come back.
struct ClassifyStage<'c> {
    classifier: &'c Classifier,
    detect: &'c DetectConfig,
    filter: &'c Filter,
    window_ms: i64,
}

/// What each batch hands back.
struct Classified {
    tally: Tally,
    collector: Collector,
    rollups: Rollups,
    /// The batch's rows of records.parquet, built here so that the writer
    /// thread only encodes.
    records: RecordColumns,
    bad_lines: Vec<BadLine>,
    /// Calls read (kept or not) and how far into which input the batch reached.
    read: usize,
    reached: Option<(Arc<str>, u64)>,
}

impl Stage for ClassifyStage<'_> {
    type Output = Classified;

    fn process(&self, batch: Batch) -> Classified {
        let mut tally = Tally::default();
        let mut collector = Collector::new(self.detect);
        let mut rollups = Rollups::new(self.window_ms);
        let mut columns = RecordColumns::with_capacity(batch.records.len());
        let mut kinds = Kinds::default();
        for rec in &batch.records {
            let class = self.classifier.classify(rec);
            if !self.filter.keeps(rec, class.provider) {
                tally.filtered_out += 1;
                continue;
            }
            kinds.add((
                class.provider,
                class.status_class,
                family(rec.http_status),
                rec.format,
            ));
            tally.add_details(rec, class.status_class, &class.cause);
            collector.add(rec, &class);
            rollups.add(rec, class.provider, class.status_class);
            columns.push(rec, &class);
        }
        kinds.fold_into(&mut tally);
        let last_record = batch
            .records
            .last()
            .map(|r| (Arc::from(r.source_file.as_str()), r.byte_offset));
        let last_bad = batch
            .bad_lines
            .last()
            .map(|b| (Arc::clone(&b.file), b.offset));
        Classified {
            tally,
            collector,
            rollups,
            records: columns,
            read: batch.records.len(),
            reached: match (last_record, last_bad) {
                (Some(a), Some(b)) => Some(if a.1 >= b.1 { a } else { b }),
                (a, b) => a.or(b),
            },
            bad_lines: batch.bad_lines,
        }
    }

    fn rebase(&self, out: &mut Classified, lines: u64) {
        out.records.rebase_lines(lines);
        out.collector.rebase_lines(lines);
        for bad in &mut out.bad_lines {
            bad.line += lines;
        }
    }
}

/// What a run keeps of the records while they stream past.
#[derive(Default)]
pub(crate) struct Tally {
    pub by_status: BTreeMap<&'static str, u64>,
    pub by_provider: BTreeMap<&'static str, u64>,
    pub by_class: BTreeMap<&'static str, u64>,
    pub by_cause: BTreeMap<String, u64>,
    pub by_format: BTreeMap<String, u64>,
    /// Failed calls no rule explained, by message: what users write rules
    /// for. Past the bound on distinct values, new messages count as `(other)`.
    pub unknown_messages: BTreeMap<String, u64>,
    unknown_bound: Bounded,
    pub empty_responses: u64,
    pub with_error: u64,
    /// Calls left out by --since, --until, --provider or --service.
    pub filtered_out: u64,
}

impl Tally {
    /// Counts `n` calls of one provider, class and HTTP status family.
    fn count(&mut self, provider: Provider, class: StatusClass, family: usize, n: u64) {
        *self.by_provider.entry(provider.as_str()).or_default() += n;
        *self.by_class.entry(class.as_str()).or_default() += n;
        *self.by_status.entry(FAMILIES[family]).or_default() += n;
    }

    /// What a call adds besides its provider, class, status family and
    /// format (which a [`Kinds`] counts).
    pub(crate) fn add_details(&mut self, rec: &Record, class: StatusClass, cause: &str) {
        if class != StatusClass::Ok {
            add_count(&mut self.by_cause, cause, 1);
        }
        if cause == "unknown" {
            let message = match rec.error_message.as_deref().or(rec.error_type.as_deref()) {
                Some(text) => text.chars().take(200).collect(),
                None => match rec.http_status {
                    Some(status) => format!("(HTTP {status}, no message)"),
                    None => "(no status, no message)".to_owned(),
                },
            };
            *self.unknown_messages.entry(message).or_default() += 1;
        }
        self.empty_responses += u64::from(rec.empty_response);
        self.with_error += u64::from(rec.error_message.is_some() || rec.error_type.is_some());
    }

    /// Counts a kept call's log format.
    pub(crate) fn format(&mut self, name: &str) {
        add_count(&mut self.by_format, name, 1);
    }

    pub(crate) fn merge(&mut self, other: Tally) {
        fn sum<K: Ord>(into: &mut BTreeMap<K, u64>, from: BTreeMap<K, u64>) {
            for (key, n) in from {
                *into.entry(key).or_default() += n;
            }
        }
        sum(&mut self.by_status, other.by_status);
        sum(&mut self.by_provider, other.by_provider);
        sum(&mut self.by_class, other.by_class);
        sum(&mut self.by_cause, other.by_cause);
        sum(&mut self.by_format, other.by_format);
        for (message, n) in other.unknown_messages {
            let message = if self.unknown_bound.keeps(&message) {
                message
            } else {
                OTHER.to_owned()
            };
            *self.unknown_messages.entry(message).or_default() += n;
        }
        self.empty_responses += other.empty_responses;
        self.with_error += other.with_error;
        self.filtered_out += other.filtered_out;
    }

    /// Calls kept.
    pub(crate) fn records(&self) -> u64 {
        self.by_class.values().sum()
    }
}

/// HTTP status families, as `summary.json` names them.
const FAMILIES: [&str; 5] = ["2xx", "4xx", "5xx", "other", "no_response"];

/// The index in [`FAMILIES`] of a call's status.
pub(crate) fn family(status: Option<u16>) -> usize {
    match status {
        Some(200..=299) => 0,
        Some(400..=499) => 1,
        Some(500..=599) => 2,
        Some(_) => 3,
        None => 4,
    }
}

/// Adds `n` to `name`'s count, allocating the key only the first time.
fn add_count(counts: &mut BTreeMap<String, u64>, name: &str, n: u64) {
    match counts.get_mut(name) {
        Some(count) => *count += n,
        None => {
            counts.insert(name.to_owned(), n);
        }
    }
}

/// Provider, class, status family (index in [`FAMILIES`]) and format.
pub(crate) type Kind = (Provider, StatusClass, usize, Option<Format>);

/// Calls of a batch by provider, class, status family and format: one
/// comparison of small values per call, folded into the string-keyed maps
/// of a [`Tally`] once per batch.
#[derive(Default)]
pub(crate) struct Kinds {
    counts: Vec<(Kind, u64)>,
    last: usize,
}

impl Kinds {
    pub(crate) fn add(&mut self, kind: Kind) {
        if let Some((k, n)) = self.counts.get_mut(self.last) {
            if *k == kind {
                *n += 1;
                return;
            }
        }
        self.last = if let Some(i) = self.counts.iter().position(|(k, _)| *k == kind) {
            i
        } else {
            self.counts.push((kind, 0));
            self.counts.len() - 1
        };
        self.counts[self.last].1 += 1;
    }

    pub(crate) fn fold_into(self, tally: &mut Tally) {
        for ((provider, class, family, format), n) in self.counts {
            tally.count(provider, class, family, n);
            if let Some(format) = format {
                add_count(&mut tally.by_format, format.as_str(), n);
            }
        }
    }
}

/// Where the classified calls go.
pub(crate) enum RecordsTarget {
    /// One parquet file.
    File(PathBuf),
    /// A directory with one `date=YYYY-MM-DD/` partition per UTC day.
    ByDate(PathBuf),
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

/// What ingest leaves for the reports.
pub(crate) struct Ingested {
    pub summary: Summary,
    pub tally: Tally,
    pub collector: Collector,
    pub rollups: Rollups,
    /// Inputs that could not be read (or only in part), with the reason.
    pub problems: Vec<String>,
    /// True when the built-in sample day was read.
    pub sample: bool,
    pub threads: usize,
    pub started: Instant,
}

/// Reads every input (or the built-in sample day when there is none) but
/// the files `skip` names (the run's own outputs), classifies and filters
/// each call, writes the kept ones to `target` and the bad lines to
/// `quarantine_path` (both renamed into place only when complete).
#[allow(clippy::too_many_arguments)]
pub(crate) fn ingest(
    args: &IngestArgs,
    inputs: &[PathBuf],
    skip: &dyn Fn(&Path) -> bool,
    filter: &Filter,
    detect: &DetectConfig,
    window_ms: i64,
    (target, quarantine_path): (&RecordsTarget, &Path),
    progress: &mut Progress,
) -> Result<Ingested> {
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
    let mut tally = Tally::default();
    let mut collector = Collector::new(detect);
    let mut rollups = Rollups::new(window_ms);
    let mut write_error = None;
    let stage = ClassifyStage {
        classifier: &classifier,
        detect,
        filter,
        window_ms,
    };
    let sample = inputs.is_empty();

    // records.parquet is encoded on its own thread, overlapping the parse;
    // the bounded channel keeps at most a few batches in flight.
    let (batches, received) = mpsc::sync_channel::<RecordColumns>(4);
    let (summary, input_errors, written) = std::thread::scope(|scope| {
        let writer = scope.spawn(move || {
            let mut records = records;
            for batch in received {
                records.write(batch)?;
            }
            records.finish()
        });
        let mut on_output = |out: Classified| {
            progress.batch(out.read, out.reached.as_ref().map(|(f, o)| (f, *o)));
            tally.merge(out.tally);
            collector.merge(out.collector);
            rollups.merge(out.rollups);
            // A failed writer has hung up; its error comes from join below.
            let _ = batches.send(out.records);
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
        };
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
    if let Some(staged) = staged_dir {
        staged.commit()?;
    }
    tracing::info!(
        seconds = started.elapsed().as_secs_f64(),
        records = summary.totals.records,
        bytes = summary.totals.bytes,
        "read and classified"
    );

    let mut problems: Vec<String> = input_errors.iter().map(ToString::to_string).collect();
    problems.extend(summary.errors().map(ToString::to_string));
    Ok(Ingested {
        summary,
        tally,
        collector,
        rollups,
        problems,
        sample,
        threads: ingester.threads(),
        started,
    })
}

impl Ingested {
    /// Whether any input was read, even in part (an empty file counts): a
    /// run that read none writes nothing.
    pub(crate) fn read_any(&self) -> bool {
        self.sample
            || self
                .summary
                .files
                .iter()
                .any(|f| f.error.is_none() || f.counts.lines > 0 || f.counts.bytes > 0)
    }
}

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
