//! `operations.parquet`: one row per operation (one request of a caller,
//! however many attempts it took), streamed out in row groups.

use std::fs::File;
use std::path::Path;

use faultline_classify::{Provider, StatusClass};
use faultline_ingest::{GroupedBy, Shared};
use polars::io::parquet::write::BatchedWriter;
use polars::prelude::*;
use polars_arrow::array::{Array, ListArray, MutableBinaryViewArray};
use polars_arrow::datatypes::{ArrowDataType, Field};
use polars_arrow::offset::OffsetsBuffer;
use polars_parquet::write::ZstdLevel;
use smallvec::SmallVec;

use crate::records::cast_to;
use crate::tables::ts_type;
use crate::Error;

/// Rows per row group: [`OperationColumns`] are handed to the writer this
/// many at a time (the last ones fewer), each one a row group.
pub const OPERATIONS_ROW_GROUP: usize = 128 * 1024;

/// One operation as a row of `operations.parquet` (docs/schema.md).
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// The id every attempt's row in records.parquet carries
    /// (`op_` and 16 hex digits).
    pub id: u64,
    pub grouped_by: GroupedBy,
    pub service: Option<Shared>,
    /// The key fingerprint of the first attempt.
    pub key_fp: Option<Shared>,
    /// Start of the first attempt (ms since the epoch).
    pub start_ms: i64,
    /// Start of the last attempt.
    pub last_start_ms: i64,
    /// End of the latest attempt (its start when it has no latency).
    pub end_ms: i64,
    pub attempts: u32,
    /// Providers tried, each once, in the order first tried.
    pub providers: SmallVec<[Provider; 2]>,
    /// Models tried, each once, in the order first tried.
    pub models: SmallVec<[Shared; 2]>,
    /// Status class of the last attempt.
    pub final_class: StatusClass,
    /// Status class of the first failed attempt.
    pub first_error: Option<StatusClass>,
    /// Tokens of the failed attempts.
    pub wasted_prompt_tokens: u64,
    pub wasted_completion_tokens: u64,
    /// Logged cost of the failed attempts; `None` when one of them logged
    /// none (or a price it could not be given).
    pub wasted_cost_usd: Option<f64>,
}

impl Operation {
    /// Whether the operation ended in a successful attempt.
    #[must_use]
    pub fn succeeded(&self) -> bool {
        self.final_class == StatusClass::Ok
    }

    /// More than one provider or model was tried.
    #[must_use]
    pub fn fell_back(&self) -> bool {
        self.providers.len() > 1 || self.models.len() > 1
    }

    /// From the start of the operation to the start of its last attempt;
    /// `None` for one attempt.
    #[must_use]
    pub fn time_lost_ms(&self) -> Option<i64> {
        (self.attempts > 1).then_some(self.last_start_ms.saturating_sub(self.start_ms))
    }
}

/// An operation id as outputs write it.
#[must_use]
pub fn operation_id(id: u64) -> String {
    operation_id_into(id, &mut [0u8; 19]).to_owned()
}

/// Writes an operation id into `buf` (19 bytes), without allocating.
pub(crate) fn operation_id_into(id: u64, buf: &mut [u8; 19]) -> &str {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    buf[..3].copy_from_slice(b"op_");
    for i in 0..16 {
        buf[3 + i] = HEX[((id >> (60 - 4 * i)) & 0xf) as usize];
    }
    // Only ASCII was written.
    std::str::from_utf8(buf).unwrap_or_default()
}

/// The columns of `operations.parquet`, in order, with their types.
#[must_use]
pub fn operations_schema() -> Schema {
    let list = || DataType::List(Box::new(DataType::String));
    Schema::from_iter([
        ("operation_id".into(), DataType::String),
        ("grouped_by".into(), DataType::String),
        ("service".into(), DataType::String),
        ("key_fp".into(), DataType::String),
        ("start".into(), ts_type()),
        ("end".into(), ts_type()),
        ("attempts".into(), DataType::UInt32),
        ("providers".into(), list()),
        ("models".into(), list()),
        ("fallback".into(), DataType::Boolean),
        ("final_status_class".into(), DataType::String),
        ("succeeded".into(), DataType::Boolean),
        ("first_error_class".into(), DataType::String),
        ("time_lost_ms".into(), DataType::Int64),
        ("wasted_prompt_tokens".into(), DataType::UInt64),
        ("wasted_completion_tokens".into(), DataType::UInt64),
        ("wasted_cost_usd".into(), DataType::Float64),
    ])
}

/// An operation of one attempt that succeeded: the row most operations
/// are, pushed without an [`Operation`] built first.
#[derive(Debug, Clone, Copy)]
pub struct SingleRow<'a> {
    pub id: u64,
    pub grouped_by: GroupedBy,
    pub service: Option<&'a Shared>,
    pub key_fp: Option<&'a Shared>,
    pub start_ms: i64,
    pub end_ms: i64,
    pub provider: Provider,
    pub model: Option<&'a Shared>,
    pub class: StatusClass,
}

/// Operations as columns, gathered as they close, written as one row
/// group: no row is held as a struct of its own.
#[derive(Debug, Default)]
pub struct OperationColumns {
    id: Vec<u64>,
    grouped_by: Vec<&'static str>,
    service: Vec<Option<Shared>>,
    key_fp: Vec<Option<Shared>>,
    start: Vec<i64>,
    end: Vec<i64>,
    attempts: Vec<u32>,
    providers: Vec<&'static str>,
    provider_ends: Vec<i64>,
    models: Vec<Shared>,
    model_ends: Vec<i64>,
    fallback: Vec<bool>,
    final_class: Vec<&'static str>,
    succeeded: Vec<bool>,
    first_error: Vec<Option<&'static str>>,
    time_lost: Vec<Option<i64>>,
    wasted_prompt: Vec<u64>,
    wasted_completion: Vec<u64>,
    wasted_cost: Vec<Option<f64>>,
}

impl OperationColumns {
    /// Appends one operation.
    pub fn push(&mut self, op: &Operation) {
        self.id.push(op.id);
        self.grouped_by.push(op.grouped_by.as_str());
        self.service.push(op.service.clone());
        self.key_fp.push(op.key_fp.clone());
        self.start.push(op.start_ms);
        self.end.push(op.end_ms);
        self.attempts.push(op.attempts);
        self.providers
            .extend(op.providers.iter().map(|p| p.as_str()));
        self.provider_ends.push(self.providers.len() as i64);
        self.models.extend(op.models.iter().cloned());
        self.model_ends.push(self.models.len() as i64);
        self.fallback.push(op.fell_back());
        self.final_class.push(op.final_class.as_str());
        self.succeeded.push(op.succeeded());
        self.first_error
            .push(op.first_error.map(StatusClass::as_str));
        self.time_lost.push(op.time_lost_ms());
        self.wasted_prompt.push(op.wasted_prompt_tokens);
        self.wasted_completion.push(op.wasted_completion_tokens);
        self.wasted_cost.push(op.wasted_cost_usd);
    }

    /// Appends an operation of one attempt that succeeded: the same row
    /// [`OperationColumns::push`] writes for it.
    pub fn push_single(&mut self, row: SingleRow<'_>) {
        self.id.push(row.id);
        self.grouped_by.push(row.grouped_by.as_str());
        self.service.push(row.service.cloned());
        self.key_fp.push(row.key_fp.cloned());
        self.start.push(row.start_ms);
        self.end.push(row.end_ms);
        self.attempts.push(1);
        self.providers.push(row.provider.as_str());
        self.provider_ends.push(self.providers.len() as i64);
        if let Some(model) = row.model {
            self.models.push(model.clone());
        }
        self.model_ends.push(self.models.len() as i64);
        self.fallback.push(false);
        self.final_class.push(row.class.as_str());
        self.succeeded.push(true);
        self.first_error.push(None);
        self.time_lost.push(None);
        self.wasted_prompt.push(0);
        self.wasted_completion.push(0);
        self.wasted_cost.push(Some(0.0));
    }

    /// Rows held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.id.len()
    }

    /// True when no row is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.id.is_empty()
    }

    /// The rows as a frame of [`operations_schema`].
    fn frame(&self) -> Result<DataFrame, Error> {
        fn text<'a>(values: impl Iterator<Item = Option<&'a str>>) -> Column {
            Column::new("".into(), values.collect::<Vec<_>>())
        }
        let mut ids = MutableBinaryViewArray::<str>::with_capacity(self.len());
        let mut buf = [0u8; 19];
        for &id in &self.id {
            ids.push_value(operation_id_into(id, &mut buf));
        }
        let columns = vec![
            Series::from_arrow("".into(), ids.freeze().boxed())?.into(),
            text(self.grouped_by.iter().map(|g| Some(*g))),
            text(self.service.iter().map(Option::as_deref)),
            text(self.key_fp.iter().map(Option::as_deref)),
            Column::new("".into(), self.start.as_slice()),
            Column::new("".into(), self.end.as_slice()),
            Column::new("".into(), self.attempts.as_slice()),
            list(self.providers.iter().copied(), &self.provider_ends)?,
            list(self.models.iter().map(Shared::as_str), &self.model_ends)?,
            Column::new("".into(), self.fallback.as_slice()),
            text(self.final_class.iter().map(|c| Some(*c))),
            Column::new("".into(), self.succeeded.as_slice()),
            text(self.first_error.iter().copied()),
            Column::new("".into(), self.time_lost.as_slice()),
            Column::new("".into(), self.wasted_prompt.as_slice()),
            Column::new("".into(), self.wasted_completion.as_slice()),
            Column::new("".into(), self.wasted_cost.as_slice()),
        ];
        let schema = operations_schema();
        let columns = columns
            .into_iter()
            .zip(schema.iter_names())
            .map(|(mut column, name)| {
                column.rename(name.clone());
                column
            })
            .collect();
        cast_to(DataFrame::new(self.len(), columns)?, &schema)
    }
}

/// Streams operations into one parquet file, a row group at a time.
pub struct OperationsWriter {
    writer: BatchedWriter<File>,
    written: u64,
    groups: u64,
}

impl std::fmt::Debug for OperationsWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperationsWriter")
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl OperationsWriter {
    /// Creates (or truncates) the file at `path`.
    pub fn create(path: &Path) -> Result<OperationsWriter, Error> {
        let file = File::create(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        // Level 1, as records.parquet: the ids are random, and a higher
        // level spends its time on them for nothing.
        let writer = ParquetWriter::new(file)
            .with_compression(ParquetCompression::Zstd(ZstdLevel::try_new(1).ok()))
            .batched(&operations_schema())?;
        Ok(OperationsWriter {
            writer,
            written: 0,
            groups: 0,
        })
    }

    /// Writes `rows` as one row group.
    pub fn write(&mut self, rows: &OperationColumns) -> Result<(), Error> {
        if rows.is_empty() {
            return Ok(());
        }
        self.writer.write_batch(&rows.frame()?)?;
        self.written += rows.len() as u64;
        self.groups += 1;
        Ok(())
    }

    /// Writes the file's footer (a file of no operations still has the
    /// schema); returns the rows written.
    pub fn finish(mut self) -> Result<u64, Error> {
        if self.groups == 0 {
            self.writer
                .write_batch(&OperationColumns::default().frame()?)?;
        }
        self.writer.finish()?;
        Ok(self.written)
    }
}

/// A list-of-strings column: the values of every row back to back, and
/// where each row's end; one arrow array for the whole group.
fn list<'a>(values: impl Iterator<Item = &'a str>, ends: &[i64]) -> Result<Column, Error> {
    let mut texts = MutableBinaryViewArray::<str>::new();
    for value in values {
        texts.push_value(value);
    }
    let mut offsets = Vec::with_capacity(ends.len() + 1);
    offsets.push(0i64);
    offsets.extend_from_slice(ends);
    let texts = texts.freeze();
    let dtype = ArrowDataType::LargeList(Box::new(Field::new(
        "item".into(),
        texts.dtype().clone(),
        true,
    )));
    // The offsets start at 0 and never decrease.
    let offsets = OffsetsBuffer::try_from(offsets)?;
    let array = ListArray::<i64>::new(dtype, offsets, texts.boxed(), None);
    Ok(Series::from_arrow("".into(), array.boxed())?.into())
}
