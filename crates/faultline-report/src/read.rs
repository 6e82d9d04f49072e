//! `records.parquet` files as a source: lazily scanned for the aggregates,
//! or read back row by row as records and outcomes, so that `faultline
//! report` can detect incidents again over earlier output.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};

use faultline_classify::{Cause, Provider, StatusClass};
use faultline_ingest::{Record, Shared, ShortText};
use polars::prelude::*;
use polars_arrow::array::StaticArray;

use crate::records::records_schema;
use crate::{Error, FastHash, Filter};

/// Rows decoded at a time: one row group of what [`crate::RecordsWriter`] writes.
const BATCH_ROWS: usize = 128 * 1024;

/// The columns read back, all of them part of the documented schema.
const COLUMNS: [&str; 21] = [
    "ts",
    "source_file",
    "source_line",
    "format",
    "request_id",
    "service",
    "provider",
    "model",
    "key_fp",
    "http_status",
    "error_type",
    "error_message",
    "latency_ms",
    "prompt_tokens",
    "completion_tokens",
    "attempt",
    "empty_response",
    "status_class",
    "cause",
    "secrets_found",
    "byte_offset",
];

/// How a call ended, as `records.parquet` stored it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The provider.
    pub provider: Provider,
    /// The status class.
    pub status_class: StatusClass,
    /// The cause.
    pub cause: Cause,
    /// The record's `format` column (`flat`, `envelope`, ...), if any.
    pub format: Option<Arc<str>>,
    /// The operation the call was an attempt of (`operation_id`, as its
    /// number); `None` in files written before the column existed.
    pub operation_id: Option<u64>,
}

/// Read when the file has it: records files written before operations
/// existed do not.
const OPERATION_ID: &str = "operation_id";

/// One or more `records.parquet` files read as one table, optionally
/// filtered: what every aggregate and [`RecordSet::for_each`] read. Rows are
/// read a row group at a time, so memory stays bounded whatever the size.
#[derive(Debug, Clone)]
pub struct RecordSet {
    paths: Vec<PathBuf>,
    filter: Option<Expr>,
}

impl RecordSet {
    /// A reader over `paths`, every row.
    #[must_use]
    pub fn new(paths: &[PathBuf]) -> RecordSet {
        RecordSet {
            paths: paths.to_vec(),
            filter: None,
        }
    }

    /// Only the rows `filter` keeps (checked on the columns, before the
    /// rows are built).
    #[must_use]
    pub fn with_filter(mut self, filter: &Filter) -> RecordSet {
        self.filter = filter.expr();
        self
    }

    /// Checks that every file is a records file faultline can read: each
    /// column it needs is there with its documented type.
    pub fn check(&self) -> Result<(), Error> {
        let expected = records_schema();
        for path in &self.paths {
            let not_records = |reason: String| Error::NotRecords {
                path: path.clone(),
                reason,
            };
            let schema = scan_one(path)?
                .collect_schema()
                .map_err(|e| not_records(e.to_string()))?;
            for name in COLUMNS {
                let want = expected.get(name).cloned().unwrap_or(DataType::Null);
                match schema.get(name) {
                    None => return Err(not_records(format!("no column {name:?}"))),
                    Some(got) if !same_type(got, &want) => {
                        return Err(not_records(format!(
                            "column {name:?} is {got}, expected {want}"
                        )))
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }

    /// The files.
    #[must_use]
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// Calls `f` with every row, file by file in order; returns the rows read.
    ///
    /// Batches are decoded on a thread of their own while the rows of the
    /// batch before are handed to `f`: the two take about as long. The
    /// decoded batch waits for the one before to be done, so memory holds
    /// two batches at most.
    pub fn for_each(&self, mut f: impl FnMut(&Record, &Outcome)) -> Result<u64, Error> {
        self.check()?;
        let mut strings = Strings::default();
        let mut rows = 0u64;
        std::thread::scope(|scope| {
            let (batches, decoded) = mpsc::sync_channel::<Result<(&Path, DataFrame), Error>>(0);
            scope.spawn(move || {
                // Stops after the first error, or when the rows are no
                // longer wanted (the receiver is gone).
                for path in &self.paths {
                    for frame in self.batches(path) {
                        let failed = frame.is_err();
                        if batches.send(frame.map(|f| (&**path, f))).is_err() || failed {
                            return;
                        }
                    }
                }
            });
            for batch in decoded {
                let (path, frame) = batch?;
                rows += read_batch(path, &frame, &mut strings, &mut f)?;
            }
            Ok(rows)
        })
    }

    /// Folds the rows into one `P` per batch (from `start`, each row added by
    /// `row`) on `threads` workers, and hands each batch's `P` to `done` in
    /// the order of the batches; returns the rows read. This thread decodes
    /// the batches meanwhile: at most `threads` + 1 batches are held.
    pub fn fold<P: Send>(
        &self,
        threads: usize,
        start: impl Fn() -> P + Sync,
        row: impl Fn(&mut P, &Record, &Outcome) + Sync,
        mut done: impl FnMut(P),
    ) -> Result<u64, Error> {
        self.check()?;
        let (work, todo) = mpsc::sync_channel::<(usize, &Path, DataFrame)>(0);
        let (results, folded) = mpsc::channel::<(usize, Result<(P, u64), Error>)>();
        let todo = std::sync::Mutex::new(todo);
        std::thread::scope(|scope| {
            // Owned here, so that an early return hangs up and the workers,
            // waiting for work, stop.
            let work = work;
            for _ in 0..threads.max(1) {
                let (todo, results, start, row) = (&todo, results.clone(), &start, &row);
                scope.spawn(move || {
                    let mut strings = Strings::default();
                    // Until the batches end, or nobody waits for results.
                    while let Ok(Ok((at, path, frame))) = todo.lock().map(|t| t.recv()) {
                        let mut part = start();
                        let read = read_batch(path, &frame, &mut strings, &mut |rec, outcome| {
                            row(&mut part, rec, outcome);
                        });
                        if results.send((at, read.map(|rows| (part, rows)))).is_err() {
                            return;
                        }
                    }
                });
            }
            drop(results);
            // Parts that came back before the ones ahead of them.
            let mut early = BTreeMap::new();
            let (mut next, mut rows) = (0, 0);
            let mut take = |at: usize, read: Result<(P, u64), Error>| -> Result<(), Error> {
                early.insert(at, read);
                while let Some(read) = early.remove(&next) {
                    let (part, n) = read?;
                    done(part);
                    rows += n;
                    next += 1;
                }
                Ok(())
            };
            let mut sent = 0;
            for path in &self.paths {
                for frame in self.batches(path) {
                    work.send((sent, path, frame?))
                        .map_err(|_| Error::NotRecords {
                            path: path.clone(),
                            reason: "the reading threads stopped".to_owned(),
                        })?;
                    sent += 1;
                    while let Ok((at, read)) = folded.try_recv() {
                        take(at, read)?;
                    }
                }
            }
            drop(work);
            for (at, read) in folded {
                take(at, read)?;
            }
            Ok(rows)
        })
    }

    /// The batches of `path`, decoded one at a time.
    fn batches<'p>(
        &'p self,
        path: &'p Path,
    ) -> impl Iterator<Item = Result<DataFrame, Error>> + 'p {
        let total = (|| -> Result<u64, Error> {
            Ok(scan_one(path)?
                .select([len().cast(DataType::UInt64).alias("n")])
                .collect()?
                .column("n")?
                .u64()?
                .get(0)
                .unwrap_or(0))
        })();
        let has_ids = scan_one(path)
            .and_then(|mut scan| Ok(scan.collect_schema()?))
            .is_ok_and(|schema| schema.get(OPERATION_ID) == Some(&DataType::String));
        let (total, error) = match total {
            Ok(total) => (total, None),
            Err(e) => (0, Some(e)),
        };
        let decoded = (0..total).step_by(BATCH_ROWS).map(move |offset| {
            let mut batch = scan_one(path)?.slice(offset as i64, BATCH_ROWS as IdxSize);
            if let Some(filter) = &self.filter {
                batch = batch.filter(filter.clone());
            }
            let mut columns: Vec<Expr> = COLUMNS.map(col).into();
            if has_ids {
                columns.push(col(OPERATION_ID));
            }
            Ok(batch.select(columns).collect()?)
        });
        error.map(Err).into_iter().chain(decoded)
    }
}

fn scan_one(path: &Path) -> Result<LazyFrame, Error> {
    let name = path.to_string_lossy();
    let mut args = ScanArgsParquet::default();
    // A partition's `date=...` directory is not a column: ts holds the time.
    args.hive_options.enabled = Some(false);
    args.glob = false;
    Ok(LazyFrame::scan_parquet(
        PlRefPath::from(name.as_ref()),
        args,
    )?)
}

/// Datetimes match whatever their zone (a file written without one still
/// holds UTC milliseconds); other types must be equal.
fn same_type(got: &DataType, want: &DataType) -> bool {
    match (got, want) {
        (DataType::Datetime(a, _), DataType::Datetime(b, _)) => a == b,
        _ => got == want,
    }
}

/// One shared copy of each distinct text read, as ingest makes them, so
/// that scopes compare and clone cheaply. Every text of every row is looked
/// up: hashed with the standard hasher, this was a fifth of a report run.
struct Interner<T>(HashMap<String, T, FastHash>);

impl<T> Default for Interner<T> {
    fn default() -> Self {
        Interner(HashMap::default())
    }
}

impl<T: Clone + for<'a> From<&'a str>> Interner<T> {
    fn get(&mut self, text: Option<&str>) -> Option<T> {
        let text = text?;
        if let Some(shared) = self.0.get(text) {
            return Some(shared.clone());
        }
        let shared = T::from(text);
        self.0.insert(text.to_owned(), shared.clone());
        Some(shared)
    }
}

/// The interners of a read: `Arc<str>` for formats and causes, [`Shared`]
/// for the record's file, service, model and key fingerprint.
#[derive(Default)]
struct Strings {
    counted: Interner<Arc<str>>,
    texts: Interner<Shared>,
}

/// A column's last text and what it was interned as: a column mostly holds
/// one value for long runs of rows, found again by one compare instead of
/// a hash and a lookup.
struct Last<'a, T> {
    text: Option<&'a str>,
    value: Option<T>,
}

impl<T> Default for Last<'_, T> {
    fn default() -> Self {
        Last {
            text: None,
            value: None,
        }
    }
}

impl<'a, T: Clone + for<'b> From<&'b str>> Last<'a, T> {
    fn get(&mut self, text: Option<&'a str>, interner: &mut Interner<T>) -> Option<T> {
        if text != self.text {
            self.value = interner.get(text);
            self.text = text;
        }
        self.value.clone()
    }
}

/// The [`Last`] text of each interned column of a batch.
#[derive(Default)]
struct LastTexts<'a> {
    file: Last<'a, Shared>,
    service: Last<'a, Shared>,
    model: Last<'a, Shared>,
    key_fp: Last<'a, Shared>,
    cause: Last<'a, Arc<str>>,
    format: Last<'a, Arc<str>>,
}

/// A column of a batch (not empty) as one chunk.
fn one<T: PolarsDataType>(column: &ChunkedArray<T>) -> ChunkedArray<T> {
    column.rechunk().into_owned()
}

fn read_batch(
    path: &Path,
    frame: &DataFrame,
    strings: &mut Strings,
    f: &mut impl FnMut(&Record, &Outcome),
) -> Result<u64, Error> {
    if frame.height() == 0 {
        return Ok(0);
    }
    let text = |name: &str| -> Result<StringChunked, Error> { Ok(one(frame.column(name)?.str()?)) };
    let ts = one(frame.column("ts")?.cast(&DataType::Int64)?.i64()?);
    let (file, format, request_id, service, provider, model, key_fp) = (
        text("source_file")?,
        text("format")?,
        text("request_id")?,
        text("service")?,
        text("provider")?,
        text("model")?,
        text("key_fp")?,
    );
    let (error_type, error_message, class, cause) = (
        text("error_type")?,
        text("error_message")?,
        text("status_class")?,
        text("cause")?,
    );
    let line = one(frame.column("source_line")?.u64()?);
    let offset = one(frame.column("byte_offset")?.u64()?);
    let status = one(frame.column("http_status")?.u16()?);
    let latency = one(frame.column("latency_ms")?.f64()?);
    let prompt = one(frame.column("prompt_tokens")?.u32()?);
    let completion = one(frame.column("completion_tokens")?.u32()?);
    let attempt = one(frame.column("attempt")?.u16()?);
    let empty = one(frame.column("empty_response")?.bool()?);
    let secrets = one(frame.column("secrets_found")?.u16()?);
    let operation = match frame.column(OPERATION_ID) {
        Ok(column) => Some(one(column.str()?)),
        Err(_) => None,
    };
    let operation = operation.as_ref().map(ChunkedArray::downcast_as_array);
    // Rows are read from each column's one arrow array: `ChunkedArray::get`
    // looks for the chunk of every row, and was a third of a report run.
    let (ts, file, format, request_id, service, provider, model, key_fp) = (
        ts.downcast_as_array(),
        file.downcast_as_array(),
        format.downcast_as_array(),
        request_id.downcast_as_array(),
        service.downcast_as_array(),
        provider.downcast_as_array(),
        model.downcast_as_array(),
        key_fp.downcast_as_array(),
    );
    let (error_type, error_message, class, cause) = (
        error_type.downcast_as_array(),
        error_message.downcast_as_array(),
        class.downcast_as_array(),
        cause.downcast_as_array(),
    );
    let (line, offset, status, latency, prompt, completion, attempt, empty, secrets) = (
        line.downcast_as_array(),
        offset.downcast_as_array(),
        status.downcast_as_array(),
        latency.downcast_as_array(),
        prompt.downcast_as_array(),
        completion.downcast_as_array(),
        attempt.downcast_as_array(),
        empty.downcast_as_array(),
        secrets.downcast_as_array(),
    );
    let mut last = LastTexts::default();
    for i in 0..frame.height() {
        let record = Record {
            ts_ms: ts.get(i).unwrap_or(0),
            request_id: request_id.get(i).map(ShortText::from),
            service: last.service.get(service.get(i), &mut strings.texts),
            model: last.model.get(model.get(i), &mut strings.texts),
            key_fp: last.key_fp.get(key_fp.get(i), &mut strings.texts),
            http_status: status.get(i),
            error_type: error_type.get(i).map(str::to_owned),
            error_message: error_message.get(i).map(str::to_owned),
            latency_ms: latency.get(i),
            prompt_tokens: prompt.get(i),
            completion_tokens: completion.get(i),
            attempt: attempt.get(i),
            empty_response: empty.get(i).unwrap_or(false),
            secrets_found: secrets.get(i).unwrap_or(0),
            ..Record::at(
                last.file
                    .get(file.get(i), &mut strings.texts)
                    .unwrap_or_default(),
                line.get(i).unwrap_or(0),
                offset.get(i).unwrap_or(0),
            )
        };
        let outcome = Outcome {
            provider: provider
                .get(i)
                .and_then(Provider::parse)
                .unwrap_or(Provider::Other),
            status_class: match class.get(i).map(|c| (c, StatusClass::parse(c))) {
                Some((_, Some(class))) => class,
                other => {
                    return Err(Error::NotRecords {
                        path: path.to_path_buf(),
                        reason: format!(
                            "status_class {:?} is not one faultline writes",
                            other.map_or("null", |(c, _)| c)
                        ),
                    })
                }
            },
            cause: last
                .cause
                .get(cause.get(i), &mut strings.counted)
                .map_or(Cause::Builtin("unknown"), Cause::Shared),
            format: last.format.get(format.get(i), &mut strings.counted),
            operation_id: operation
                .and_then(|ids| ids.get(i))
                .and_then(crate::operations::parse_operation_id),
        };
        f(&record, &outcome);
    }
    Ok(frame.height() as u64)
}
