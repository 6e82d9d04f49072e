//! `records.parquet`: every classified call, streamed out in row groups.
//!
//! Workers gather rows as columns ([`RecordColumns`]). The low-cardinality
//! texts (file, service, model, cause, action...) are kept there as a code
//! per row into the batch's own short list of distinct values. The writer
//! merges those lists into each row group's dictionary (work per distinct
//! value, not per row) and writes the dictionary-encoded pages from the
//! codes (`pages`), where a column of plain strings would be copied, then
//! hashed twice per row (once to estimate its cardinality, once to build
//! the dictionary). The file's schema still says plain strings: readers see
//! the same columns either way.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use faultline_classify::{Cause, Classification};
use faultline_ingest::Record;
use polars::io::parquet::write::{get_encodings, BatchedWriter};
use polars::prelude::*;
use polars_arrow::array::{Array, BooleanArray, MutableBinaryViewArray, PrimitiveArray};
use polars_arrow::bitmap::{Bitmap, MutableBitmap};
use polars_arrow::datatypes::ArrowDataType;
use polars_arrow::types::NativeType;
use polars_core::runtime::RAYON;
use polars_parquet::write::{
    Encoding, ParquetType, StatisticsOptions, Version, WriteOptions, ZstdLevel,
};
use rayon::prelude::*;

use crate::cat::Cat;
use crate::pages::{dictionary_column, encode, id_column, CodedPart};
use crate::Error;

/// Rows per row group.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// How a column is held while rows gather, and so which type it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ts,
    U64,
    U16,
    OptU16,
    OptU32,
    OptF64,
    Bool,
    OptBool,
    /// Low-cardinality text: codes into a list of distinct values.
    Cat,
    /// Text that rarely repeats (request ids, messages).
    Text,
    /// An operation id, held as its number and written as `op_` and 16
    /// hex digits.
    OpId,
}

impl Kind {
    fn dtype(self) -> DataType {
        match self {
            Kind::Ts => DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC)),
            Kind::U64 => DataType::UInt64,
            Kind::U16 | Kind::OptU16 => DataType::UInt16,
            Kind::OptU32 => DataType::UInt32,
            Kind::OptF64 => DataType::Float64,
            Kind::Bool | Kind::OptBool => DataType::Boolean,
            Kind::Cat | Kind::Text | Kind::OpId => DataType::String,
        }
    }
}

/// The columns of `records.parquet`, in order: the contract dashboards read
/// (docs/schema.md documents each). [`RecordColumns::column`] gives the data
/// of each, in the same order.
const COLUMNS: [(&str, Kind); 33] = [
    ("ts", Kind::Ts),
    ("source_file", Kind::Cat),
    ("source_line", Kind::U64),
    ("byte_offset", Kind::U64),
    ("format", Kind::Cat),
    ("request_id", Kind::Text),
    ("service", Kind::Cat),
    ("provider", Kind::Cat),
    ("provider_source", Kind::Cat),
    ("model", Kind::Cat),
    ("host", Kind::Cat),
    ("key_fp", Kind::Cat),
    ("http_status", Kind::OptU16),
    ("error_type", Kind::Cat),
    ("error_code", Kind::Cat),
    ("error_message", Kind::Text),
    ("latency_ms", Kind::OptF64),
    ("prompt_tokens", Kind::OptU32),
    ("completion_tokens", Kind::OptU32),
    ("max_tokens", Kind::OptU32),
    ("attempt", Kind::OptU16),
    ("stream", Kind::OptBool),
    ("timeout_ms", Kind::OptU32),
    ("empty_response", Kind::Bool),
    ("retry_after_s", Kind::OptF64),
    ("status_class", Kind::Cat),
    ("cause", Kind::Cat),
    ("retryable", Kind::Bool),
    ("action", Kind::Cat),
    ("escalation", Kind::Cat),
    ("rule", Kind::Cat),
    ("secrets_found", Kind::U16),
    ("operation_id", Kind::OpId),
];

/// The columns of `records.parquet`, in order, with their types. This is the
/// contract dashboards read (docs/schema.md documents each column). Text
/// columns are plain strings; the low-cardinality ones are stored
/// dictionary-encoded, which readers do not see in the schema.
#[must_use]
pub fn records_schema() -> Schema {
    COLUMNS
        .iter()
        .map(|&(name, kind)| (name.into(), kind.dtype()))
        .collect()
}

/// Casts every column of `frame` to the type `schema` gives it.
pub(crate) fn cast_to(frame: DataFrame, schema: &Schema) -> Result<DataFrame, Error> {
    let height = frame.height();
    let columns = frame
        .into_columns()
        .into_iter()
        .map(|column| match schema.get(column.name()) {
            Some(dtype) if column.dtype() != dtype => column.cast(dtype),
            _ => Ok(column),
        })
        .collect::<PolarsResult<Vec<_>>>()?;
    Ok(DataFrame::new(height, columns)?)
}

/// A text column: the values back to back, where each row ends, and which
/// rows have none.
#[derive(Clone, Default)]
struct Text {
    bytes: String,
    ends: Vec<usize>,
    missing: Vec<bool>,
}

impl Text {
    fn with_capacity(rows: usize) -> Text {
        Text {
            bytes: String::new(),
            ends: Vec::with_capacity(rows),
            missing: Vec::with_capacity(rows),
        }
    }

    fn push(&mut self, value: Option<&str>) {
        self.bytes.push_str(value.unwrap_or_default());
        self.ends.push(self.bytes.len());
        self.missing.push(value.is_none());
    }

    fn get(&self, row: usize) -> Option<&str> {
        if self.missing[row] {
            return None;
        }
        let start = if row == 0 { 0 } else { self.ends[row - 1] };
        Some(&self.bytes[start..self.ends[row]])
    }

    fn select(&self, rows: &[usize]) -> Text {
        let mut out = Text::with_capacity(rows.len());
        for &row in rows {
            out.push(self.get(row));
        }
        out
    }
}

/// Classified records as columns: filled on the worker that parsed them,
/// written by [`RecordsWriter`] or [`PartitionedWriter`].
#[derive(Clone)]
pub struct RecordColumns {
    ts: Vec<i64>,
    source_file: Cat,
    source_line: Vec<u64>,
    byte_offset: Vec<u64>,
    format: Cat,
    request_id: Text,
    service: Cat,
    provider: Cat,
    provider_source: Cat,
    model: Cat,
    host: Cat,
    key_fp: Cat,
    http_status: Vec<Option<u16>>,
    error_type: Cat,
    error_code: Cat,
    error_message: Text,
    latency_ms: Vec<Option<f64>>,
    prompt_tokens: Vec<Option<u32>>,
    completion_tokens: Vec<Option<u32>>,
    max_tokens: Vec<Option<u32>>,
    attempt: Vec<Option<u16>>,
    stream: Vec<Option<bool>>,
    timeout_ms: Vec<Option<u32>>,
    empty_response: Vec<bool>,
    retry_after_s: Vec<Option<f64>>,
    status_class: Cat,
    cause: Cat,
    retryable: Vec<bool>,
    action: Cat,
    escalation: Cat,
    rule: Cat,
    secrets_found: Vec<u16>,
    /// Filled in input order by [`RecordColumns::set_operation`], once the
    /// calls before a row have been seen.
    operation_id: Vec<u64>,
}

impl std::fmt::Debug for RecordColumns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordColumns")
            .field("rows", &self.len())
            .finish_non_exhaustive()
    }
}

impl Default for RecordColumns {
    fn default() -> Self {
        RecordColumns::with_capacity(0)
    }
}

/// One column of a [`RecordColumns`], as [`Kind`] says it is held.
#[derive(Clone, Copy)]
enum Col<'a> {
    Ts(&'a [i64]),
    U64(&'a [u64]),
    U16(&'a [u16]),
    OptU16(&'a [Option<u16>]),
    OptU32(&'a [Option<u32>]),
    OptF64(&'a [Option<f64>]),
    Bool(&'a [bool]),
    OptBool(&'a [Option<bool>]),
    Cat(&'a Cat),
    Text(&'a Text),
    OpId(&'a [u64]),
}

#[cfg(test)]
impl Col<'_> {
    fn kind(self) -> Kind {
        match self {
            Col::Ts(_) => Kind::Ts,
            Col::U64(_) => Kind::U64,
            Col::U16(_) => Kind::U16,
            Col::OptU16(_) => Kind::OptU16,
            Col::OptU32(_) => Kind::OptU32,
            Col::OptF64(_) => Kind::OptF64,
            Col::Bool(_) => Kind::Bool,
            Col::OptBool(_) => Kind::OptBool,
            Col::Cat(_) => Kind::Cat,
            Col::Text(_) => Kind::Text,
            Col::OpId(_) => Kind::OpId,
        }
    }
}

impl RecordColumns {
    /// Room for `rows` rows before any buffer grows.
    #[must_use]
    pub fn with_capacity(rows: usize) -> RecordColumns {
        let cat = || Cat::with_capacity(rows);
        RecordColumns {
            ts: Vec::with_capacity(rows),
            source_file: cat(),
            source_line: Vec::with_capacity(rows),
            byte_offset: Vec::with_capacity(rows),
            format: cat(),
            request_id: Text::with_capacity(rows),
            service: cat(),
            provider: cat(),
            provider_source: cat(),
            model: cat(),
            host: cat(),
            key_fp: cat(),
            http_status: Vec::with_capacity(rows),
            error_type: cat(),
            error_code: cat(),
            error_message: Text::with_capacity(rows),
            latency_ms: Vec::with_capacity(rows),
            prompt_tokens: Vec::with_capacity(rows),
            completion_tokens: Vec::with_capacity(rows),
            max_tokens: Vec::with_capacity(rows),
            attempt: Vec::with_capacity(rows),
            stream: Vec::with_capacity(rows),
            timeout_ms: Vec::with_capacity(rows),
            empty_response: Vec::with_capacity(rows),
            retry_after_s: Vec::with_capacity(rows),
            status_class: cat(),
            cause: cat(),
            retryable: Vec::with_capacity(rows),
            action: cat(),
            escalation: cat(),
            rule: cat(),
            secrets_found: Vec::with_capacity(rows),
            operation_id: Vec::with_capacity(rows),
        }
    }

    /// Adds `lines` to every row's `source_line` (rows numbered within
    /// their piece of the input, see `faultline_ingest::Stage`).
    pub fn rebase_lines(&mut self, lines: u64) {
        for line in &mut self.source_line {
            *line += lines;
        }
    }

    /// Appends one classified record.
    pub fn push(&mut self, rec: &Record, class: &Classification) {
        self.ts.push(rec.ts_ms);
        self.source_file.push_text(Some(&rec.source_file));
        self.source_line.push(rec.source_line);
        self.byte_offset.push(rec.byte_offset);
        match rec.format {
            Some(format) => self.format.push_static(format.as_str()),
            None => self.format.push(None),
        }
        self.request_id.push(rec.request_id.as_deref());
        self.service.push_text(rec.service.as_ref());
        self.provider.push_static(class.provider.as_str());
        self.provider_source
            .push_static(class.provider_source.as_str());
        self.model.push_text(rec.model.as_ref());
        self.host.push_text(rec.host.as_ref());
        self.key_fp.push_text(rec.key_fp.as_ref());
        self.http_status.push(rec.http_status);
        self.error_type.push(rec.error_type.as_deref());
        self.error_code.push(rec.error_code.as_deref());
        self.error_message.push(rec.error_message.as_deref());
        self.latency_ms.push(rec.latency_ms);
        self.prompt_tokens.push(rec.prompt_tokens);
        self.completion_tokens.push(rec.completion_tokens);
        self.max_tokens.push(rec.max_tokens);
        self.attempt.push(rec.attempt);
        self.stream.push(rec.stream);
        self.timeout_ms.push(rec.timeout_ms);
        self.empty_response.push(rec.empty_response);
        self.retry_after_s.push(rec.retry_after_s);
        self.status_class.push_static(class.status_class.as_str());
        match &class.cause {
            Cause::Builtin(name) => self.cause.push_static(name),
            Cause::Shared(name) => self.cause.push_shared(Some(name)),
        }
        self.retryable.push(class.retryable);
        self.action.push_static(class.action);
        self.escalation.push_static(class.escalation);
        self.rule.push_shared(class.rule.as_ref());
        self.secrets_found.push(rec.secrets_found);
        self.operation_id.push(0);
    }

    /// The rows' operation ids (0 until set).
    #[must_use]
    pub fn operation_ids(&self) -> &[u64] {
        &self.operation_id
    }

    /// Sets the operation id of row `row`.
    pub fn set_operation(&mut self, row: usize, id: u64) {
        self.operation_id[row] = id;
    }

    /// Rows held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    /// True when no row is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// Column `i` of [`COLUMNS`].
    fn column(&self, i: usize) -> Col<'_> {
        match i {
            0 => Col::Ts(&self.ts),
            1 => Col::Cat(&self.source_file),
            2 => Col::U64(&self.source_line),
            3 => Col::U64(&self.byte_offset),
            4 => Col::Cat(&self.format),
            5 => Col::Text(&self.request_id),
            6 => Col::Cat(&self.service),
            7 => Col::Cat(&self.provider),
            8 => Col::Cat(&self.provider_source),
            9 => Col::Cat(&self.model),
            10 => Col::Cat(&self.host),
            11 => Col::Cat(&self.key_fp),
            12 => Col::OptU16(&self.http_status),
            13 => Col::Cat(&self.error_type),
            14 => Col::Cat(&self.error_code),
            15 => Col::Text(&self.error_message),
            16 => Col::OptF64(&self.latency_ms),
            17 => Col::OptU32(&self.prompt_tokens),
            18 => Col::OptU32(&self.completion_tokens),
            19 => Col::OptU32(&self.max_tokens),
            20 => Col::OptU16(&self.attempt),
            21 => Col::OptBool(&self.stream),
            22 => Col::OptU32(&self.timeout_ms),
            23 => Col::Bool(&self.empty_response),
            24 => Col::OptF64(&self.retry_after_s),
            25 => Col::Cat(&self.status_class),
            26 => Col::Cat(&self.cause),
            27 => Col::Bool(&self.retryable),
            28 => Col::Cat(&self.action),
            29 => Col::Cat(&self.escalation),
            30 => Col::Cat(&self.rule),
            31 => Col::U16(&self.secrets_found),
            _ => Col::OpId(&self.operation_id),
        }
    }

    /// The rows at `rows` (ascending), as a batch of their own.
    fn select(&self, rows: &[usize]) -> RecordColumns {
        fn pick<T: Copy>(values: &[T], rows: &[usize]) -> Vec<T> {
            rows.iter().map(|&row| values[row]).collect()
        }
        RecordColumns {
            ts: pick(&self.ts, rows),
            source_file: self.source_file.select(rows),
            source_line: pick(&self.source_line, rows),
            byte_offset: pick(&self.byte_offset, rows),
            format: self.format.select(rows),
            request_id: self.request_id.select(rows),
            service: self.service.select(rows),
            provider: self.provider.select(rows),
            provider_source: self.provider_source.select(rows),
            model: self.model.select(rows),
            host: self.host.select(rows),
            key_fp: self.key_fp.select(rows),
            http_status: pick(&self.http_status, rows),
            error_type: self.error_type.select(rows),
            error_code: self.error_code.select(rows),
            error_message: self.error_message.select(rows),
            latency_ms: pick(&self.latency_ms, rows),
            prompt_tokens: pick(&self.prompt_tokens, rows),
            completion_tokens: pick(&self.completion_tokens, rows),
            max_tokens: pick(&self.max_tokens, rows),
            attempt: pick(&self.attempt, rows),
            stream: pick(&self.stream, rows),
            timeout_ms: pick(&self.timeout_ms, rows),
            empty_response: pick(&self.empty_response, rows),
            retry_after_s: pick(&self.retry_after_s, rows),
            status_class: self.status_class.select(rows),
            cause: self.cause.select(rows),
            retryable: pick(&self.retryable, rows),
            action: self.action.select(rows),
            escalation: self.escalation.select(rows),
            rule: self.rule.select(rows),
            secrets_found: pick(&self.secrets_found, rows),
            operation_id: pick(&self.operation_id, rows),
        }
    }
}

/// Rows `range` of a batch: part of a row group.
type Part<'a> = (&'a RecordColumns, Range<usize>);

/// Column `i` of the rows `parts` as one arrow array of type `dtype` (a
/// dictionary of `dtype` for [`Kind::Cat`] columns).
fn assemble(parts: &[Part<'_>], i: usize, dtype: &ArrowDataType) -> Box<dyn Array> {
    let rows = parts.iter().map(|(_, range)| range.len()).sum();
    match COLUMNS[i].1 {
        Kind::Ts => dense(parts, rows, dtype, |b| match b.column(i) {
            Col::Ts(v) => v,
            _ => &[],
        }),
        Kind::U64 => dense(parts, rows, dtype, |b| match b.column(i) {
            Col::U64(v) => v,
            _ => &[],
        }),
        Kind::U16 => dense(parts, rows, dtype, |b| match b.column(i) {
            Col::U16(v) => v,
            _ => &[],
        }),
        Kind::OptU16 => optional(parts, rows, dtype, |b| match b.column(i) {
            Col::OptU16(v) => v,
            _ => &[],
        }),
        Kind::OptU32 => optional(parts, rows, dtype, |b| match b.column(i) {
            Col::OptU32(v) => v,
            _ => &[],
        }),
        Kind::OptF64 => optional(parts, rows, dtype, |b| match b.column(i) {
            Col::OptF64(v) => v,
            _ => &[],
        }),
        Kind::Bool => {
            let values: MutableBitmap = parts
                .iter()
                .flat_map(|(b, range)| match b.column(i) {
                    Col::Bool(v) => &v[range.clone()],
                    _ => &[],
                })
                .copied()
                .collect();
            BooleanArray::new(dtype.clone(), values.into(), None).boxed()
        }
        Kind::OptBool => {
            let values: BooleanArray = parts
                .iter()
                .flat_map(|(b, range)| match b.column(i) {
                    Col::OptBool(v) => &v[range.clone()],
                    _ => &[],
                })
                .copied()
                .collect();
            values.boxed()
        }
        // Written from the codes by `pages::dictionary_column`.
        Kind::Cat => unreachable!("dictionary columns are not assembled"),
        Kind::Text => {
            let mut out = MutableBinaryViewArray::<str>::with_capacity(rows);
            for (b, range) in parts {
                if let Col::Text(text) = b.column(i) {
                    for row in range.clone() {
                        out.push(text.get(row));
                    }
                }
            }
            out.freeze_with_dtype(dtype.clone()).boxed()
        }
        // Written from the numbers by `pages::id_column`.
        Kind::OpId => unreachable!("id columns are not assembled"),
    }
}

fn dense<'b, T: NativeType>(
    parts: &[Part<'b>],
    rows: usize,
    dtype: &ArrowDataType,
    values: impl Fn(&'b RecordColumns) -> &'b [T],
) -> Box<dyn Array> {
    let mut out = Vec::with_capacity(rows);
    for (batch, range) in parts {
        out.extend_from_slice(&values(batch)[range.clone()]);
    }
    PrimitiveArray::new(dtype.clone(), out.into(), None).boxed()
}

fn optional<'b, T: NativeType>(
    parts: &[Part<'b>],
    rows: usize,
    dtype: &ArrowDataType,
    values: impl Fn(&'b RecordColumns) -> &'b [Option<T>],
) -> Box<dyn Array> {
    let mut out = Vec::with_capacity(rows);
    let mut validity: Option<MutableBitmap> = None;
    for (batch, range) in parts {
        let values = &values(batch)[range.clone()];
        // Whole slices at a time: a bit pushed per row cost more than the copy.
        if validity.is_none() && values.iter().any(Option::is_none) {
            validity = Some(all_valid(out.len(), rows));
        }
        if let Some(valid) = &mut validity {
            valid.extend_from_trusted_len_iter(values.iter().map(Option::is_some));
        }
        out.extend(values.iter().map(|v| v.unwrap_or_default()));
    }
    PrimitiveArray::new(dtype.clone(), out.into(), validity.map(Bitmap::from)).boxed()
}

/// A validity bitmap with room for `rows`, its first `len` bits set.
fn all_valid(len: usize, rows: usize) -> MutableBitmap {
    let mut valid = MutableBitmap::with_capacity(rows);
    valid.extend_constant(len, true);
    valid
}

/// Streams record batches into one parquet file, a row group at a time.
pub struct RecordsWriter {
    writer: BatchedWriter<File>,
    /// Arrow type of each column (values type for dictionary columns).
    dtypes: Vec<ArrowDataType>,
    /// Parquet type of each column.
    types: Vec<ParquetType>,
    encodings: Vec<Vec<Encoding>>,
    /// Per column: statistics and compression.
    options: Vec<WriteOptions>,
    /// Batches not yet wholly written; the first one from row `start` on.
    pending: VecDeque<RecordColumns>,
    start: usize,
    pending_rows: usize,
    rows: u64,
}

impl std::fmt::Debug for RecordsWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordsWriter")
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl RecordsWriter {
    /// Starts `path` (the caller renames it into place when finished).
    pub fn create(path: &Path) -> Result<RecordsWriter, Error> {
        let file = File::create(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let compression = ParquetCompression::Zstd(ZstdLevel::try_new(1).ok());
        let schema = records_schema();
        let arrow = schema.to_arrow(CompatLevel::newest());
        let mut writer = ParquetWriter::new(file)
            .with_compression(compression)
            .batched(&schema)?;
        let types = writer.parquet_schema().fields().to_vec();
        Ok(RecordsWriter {
            dtypes: arrow.iter_values().map(|f| f.dtype.clone()).collect(),
            encodings: get_encodings(&arrow)
                .iter()
                .zip(COLUMNS)
                .map(|(default, (name, kind))| match (name, kind) {
                    // Times, line numbers and offsets climb by small steps:
                    // stored as deltas they take a few bits a row, and the
                    // compressor has an eighth of the bytes to go through.
                    (_, Kind::Ts | Kind::U64) => vec![Encoding::DeltaBinaryPacked],
                    ("prompt_tokens" | "completion_tokens", _) => {
                        vec![Encoding::DeltaBinaryPacked]
                    }
                    // Nearly one id per call: a dictionary never pays, and
                    // finding that out costs a hash of every id per group.
                    // Floats are never dictionary-encoded by polars-parquet
                    // (it cannot pack them), but asked for a dictionary it
                    // first hashes every value to estimate how many differ.
                    ("request_id" | "operation_id", _) | (_, Kind::OptF64) => {
                        vec![Encoding::Plain]
                    }
                    _ => default.clone(),
                })
                .collect(),
            types,
            options: COLUMNS
                .iter()
                .map(|_| WriteOptions {
                    // Every column has its least and greatest value, ids too,
                    // though those of random ids let a reader skip nothing:
                    // with a null count but no bounds, DuckDB 2.0 skips every
                    // row of a row group when it filters the column by
                    // equality (`where request_id = '...'` found nothing).
                    statistics: StatisticsOptions::default(),
                    // What ParquetWriter uses for these settings.
                    compression: compression.into(),
                    version: Version::V1,
                    data_page_size: None,
                })
                .collect(),
            writer,
            pending: VecDeque::new(),
            start: 0,
            pending_rows: 0,
            rows: 0,
        })
    }

    /// Appends rows; a row group is written each time 131,072 rows
    /// (`ROW_GROUP_ROWS`) have gathered.
    ///
    /// Row groups hold exactly that many rows (the last one fewer), whatever
    /// the sizes of the batches that brought them: batches follow the
    /// input's chunks, and the file must not depend on how the input was cut
    /// (chunk size, read path, threads).
    pub fn write(&mut self, columns: RecordColumns) -> Result<(), Error> {
        if columns.is_empty() {
            return Ok(());
        }
        self.rows += columns.len() as u64;
        self.pending_rows += columns.len();
        self.pending.push_back(columns);
        while self.pending_rows >= ROW_GROUP_ROWS {
            self.write_group(ROW_GROUP_ROWS)?;
        }
        Ok(())
    }

    /// Writes the next `rows` pending rows as one row group.
    fn write_group(&mut self, rows: usize) -> Result<(), Error> {
        let mut parts: Vec<Part<'_>> = Vec::new();
        let mut start = self.start;
        let mut left = rows;
        for batch in &self.pending {
            if left == 0 {
                break;
            }
            let end = batch.len().min(start + left);
            parts.push((batch, start..end));
            left -= end - start;
            start = 0;
        }
        let pages = RAYON.install(|| {
            (0..COLUMNS.len())
                .into_par_iter()
                .map(|i| {
                    let leaf = match &self.types[i] {
                        ParquetType::PrimitiveType(type_) => Some(type_),
                        ParquetType::GroupType { .. } => None,
                    };
                    if COLUMNS[i].1 == Kind::OpId {
                        let Some(type_) = leaf else {
                            polars_bail!(ComputeError: "column {} is not a leaf", COLUMNS[i].0);
                        };
                        let ids: Vec<&[u64]> = parts
                            .iter()
                            .map(|(batch, range)| match batch.column(i) {
                                Col::OpId(ids) => &ids[range.clone()],
                                _ => &[],
                            })
                            .collect();
                        return id_column(&ids, type_, self.options[i]);
                    }
                    if COLUMNS[i].1 == Kind::Cat {
                        let Some(type_) = leaf else {
                            polars_bail!(ComputeError: "column {} is not a leaf", COLUMNS[i].0);
                        };
                        let coded: Vec<CodedPart<'_>> = parts
                            .iter()
                            .filter_map(|(batch, range)| match batch.column(i) {
                                Col::Cat(cat) => Some(CodedPart {
                                    codes: &cat.codes[range.clone()],
                                    values: &cat.values,
                                }),
                                _ => None,
                            })
                            .collect();
                        return dictionary_column(&coded, type_, self.options[i]);
                    }
                    let array = assemble(&parts, i, &self.dtypes[i]);
                    encode(
                        array.as_ref(),
                        &self.types[i],
                        self.options[i],
                        &self.encodings[i],
                        COLUMNS[i].0 == "request_id",
                    )
                })
                .collect::<PolarsResult<Vec<_>>>()
        })?;
        // Drop the batches written to their end; the next group starts where
        // the last part stopped short, if it did.
        let (done, next) = match parts.last() {
            Some((batch, range)) if range.end < batch.len() => (parts.len() - 1, range.end),
            _ => (parts.len(), 0),
        };
        self.pending.drain(..done);
        self.start = next;
        self.pending_rows -= rows;
        self.writer.write_row_group(rows as u64, &pages)?;
        Ok(())
    }

    /// Writes what is pending and the footer; returns the rows written.
    pub fn finish(mut self) -> Result<u64, Error> {
        if self.pending_rows > 0 {
            self.write_group(self.pending_rows)?;
        }
        self.writer.finish()?;
        Ok(self.rows)
    }
}

/// Date partitions a [`PartitionedWriter`] keeps open at once. Logs arrive
/// roughly in time order, so few dates are live together; a date that comes
/// back after its writer was closed starts its next part file.
const OPEN_PARTITIONS: usize = 8;

/// Streams record batches into a hive-style layout, one directory per UTC
/// day: `DIR/date=2026-03-10/part-00000.parquet`. Memory stays bounded: at
/// most 8 (`OPEN_PARTITIONS`) writers are open, each holding less than a row
/// group.
pub struct PartitionedWriter {
    dir: PathBuf,
    /// Open writers by day (days since the epoch), with their last use.
    open: BTreeMap<i64, (RecordsWriter, u64)>,
    /// Part files started per day.
    parts: BTreeMap<i64, u32>,
    rows: u64,
    tick: u64,
}

impl std::fmt::Debug for PartitionedWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionedWriter")
            .field("dir", &self.dir)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl PartitionedWriter {
    /// Writes under `dir` (created; the caller renames it into place).
    pub fn create(dir: &Path) -> Result<PartitionedWriter, Error> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(PartitionedWriter {
            dir: dir.to_path_buf(),
            open: BTreeMap::new(),
            parts: BTreeMap::new(),
            rows: 0,
            tick: 0,
        })
    }

    /// Appends rows, each to its day's partition.
    pub fn write(&mut self, columns: RecordColumns) -> Result<(), Error> {
        if columns.is_empty() {
            return Ok(());
        }
        let days: Vec<i64> = columns.ts.iter().map(|ts| ts.div_euclid(DAY_MS)).collect();
        let first = days[0];
        if days.iter().all(|&d| d == first) {
            return self.write_day(first, columns);
        }
        let mut by_day: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
        for (row, day) in days.into_iter().enumerate() {
            by_day.entry(day).or_default().push(row);
        }
        for (day, rows) in by_day {
            self.write_day(day, columns.select(&rows))?;
        }
        Ok(())
    }

    fn write_day(&mut self, day: i64, columns: RecordColumns) -> Result<(), Error> {
        self.tick += 1;
        self.rows += columns.len() as u64;
        if !self.open.contains_key(&day) {
            if self.open.len() >= OPEN_PARTITIONS {
                let oldest = self
                    .open
                    .iter()
                    .min_by_key(|(_, (_, used))| *used)
                    .map(|(day, _)| *day);
                if let Some((writer, _)) = oldest.and_then(|d| self.open.remove(&d)) {
                    writer.finish()?;
                }
            }
            let part = self.parts.entry(day).or_insert(0);
            let dir = self.dir.join(format!("date={}", day_text(day)));
            std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
                path: dir.clone(),
                source,
            })?;
            let path = dir.join(format!("part-{part:05}.parquet"));
            *part += 1;
            let writer = RecordsWriter::create(&path)?;
            self.open.insert(day, (writer, 0));
        }
        if let Some((writer, used)) = self.open.get_mut(&day) {
            *used = self.tick;
            writer.write(columns)?;
        }
        Ok(())
    }

    /// Finishes every open file; returns the rows written.
    pub fn finish(self) -> Result<u64, Error> {
        for (_, (writer, _)) in self.open {
            writer.finish()?;
        }
        Ok(self.rows)
    }
}

const DAY_MS: i64 = 86_400_000;

/// `2026-03-10` for a day number since the epoch.
fn day_text(day: i64) -> String {
    chrono::DateTime::from_timestamp_millis(day * DAY_MS)
        .map_or_else(|| day.to_string(), |t| t.format("%Y-%m-%d").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_is_held_as_its_schema_entry_says() {
        let columns = RecordColumns::default();
        for (i, (name, kind)) in COLUMNS.iter().enumerate() {
            assert_eq!(columns.column(i).kind(), *kind, "column {i} ({name})");
        }
    }
}
