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

use crate::tables::ts_type;
use crate::Error;

/// Rows per row group.
const ROW_GROUP_ROWS: usize = 128 * 1024;

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
    pub providers: Vec<Provider>,
    /// Models tried, each once, in the order first tried.
    pub models: Vec<Shared>,
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
        (self.attempts > 1).then_some(self.last_start_ms - self.start_ms)
    }
}

/// An operation id as outputs write it.
#[must_use]
pub fn operation_id(id: u64) -> String {
    format!("op_{id:016x}")
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

/// Streams operations into one parquet file, a row group at a time.
pub struct OperationsWriter {
    writer: BatchedWriter<File>,
    rows: Vec<Operation>,
    written: u64,
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
        let writer = ParquetWriter::new(file)
            .with_compression(ParquetCompression::Zstd(None))
            .batched(&operations_schema())?;
        Ok(OperationsWriter {
            writer,
            rows: Vec::new(),
            written: 0,
        })
    }

    /// Takes finished operations, in the order they finished.
    pub fn write(&mut self, operations: Vec<Operation>) -> Result<(), Error> {
        if self.rows.is_empty() {
            self.rows = operations;
        } else {
            self.rows.extend(operations);
        }
        while self.rows.len() >= ROW_GROUP_ROWS {
            let rest = self.rows.split_off(ROW_GROUP_ROWS);
            let group = std::mem::replace(&mut self.rows, rest);
            self.flush(&group)?;
        }
        Ok(())
    }

    /// Writes what is left and the file's footer; returns the rows written.
    pub fn finish(mut self) -> Result<u64, Error> {
        let rows = std::mem::take(&mut self.rows);
        if !rows.is_empty() || self.written == 0 {
            self.flush(&rows)?;
        }
        self.writer.finish()?;
        Ok(self.written)
    }

    fn flush(&mut self, rows: &[Operation]) -> Result<(), Error> {
        let frame = frame(rows)?;
        self.writer.write_batch(&frame)?;
        self.written += rows.len() as u64;
        Ok(())
    }
}

/// The rows as a frame of [`operations_schema`].
fn frame(rows: &[Operation]) -> Result<DataFrame, Error> {
    fn text<'a>(rows: &'a [Operation], f: impl Fn(&'a Operation) -> Option<&'a str>) -> Column {
        Column::new("".into(), rows.iter().map(f).collect::<Vec<_>>())
    }
    let mut ids = MutableBinaryViewArray::<str>::with_capacity(rows.len());
    let mut buf = [0u8; 19];
    for op in rows {
        ids.push_value(operation_id_into(op.id, &mut buf));
    }
    let columns = vec![
        Series::from_arrow("".into(), ids.freeze().boxed())?.into(),
        text(rows, |op| Some(op.grouped_by.as_str())),
        text(rows, |op| op.service.as_deref()),
        text(rows, |op| op.key_fp.as_deref()),
        Column::new(
            "".into(),
            rows.iter().map(|op| op.start_ms).collect::<Vec<_>>(),
        ),
        Column::new(
            "".into(),
            rows.iter().map(|op| op.end_ms).collect::<Vec<_>>(),
        ),
        Column::new(
            "".into(),
            rows.iter().map(|op| op.attempts).collect::<Vec<_>>(),
        ),
        list(rows, |op, out| {
            for p in &op.providers {
                out.push_value(p.as_str());
            }
        })?,
        list(rows, |op, out| {
            for m in &op.models {
                out.push_value(m.as_str());
            }
        })?,
        Column::new(
            "".into(),
            rows.iter().map(Operation::fell_back).collect::<Vec<_>>(),
        ),
        text(rows, |op| Some(op.final_class.as_str())),
        Column::new(
            "".into(),
            rows.iter().map(Operation::succeeded).collect::<Vec<_>>(),
        ),
        text(rows, |op| op.first_error.map(StatusClass::as_str)),
        Column::new(
            "".into(),
            rows.iter().map(Operation::time_lost_ms).collect::<Vec<_>>(),
        ),
        Column::new(
            "".into(),
            rows.iter()
                .map(|op| op.wasted_prompt_tokens)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "".into(),
            rows.iter()
                .map(|op| op.wasted_completion_tokens)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "".into(),
            rows.iter().map(|op| op.wasted_cost_usd).collect::<Vec<_>>(),
        ),
    ];
    let schema = operations_schema();
    let columns = columns
        .into_iter()
        .zip(schema.iter())
        .map(|(column, (name, dtype))| {
            let mut column = if column.dtype() == dtype {
                column
            } else {
                column.cast(dtype)?
            };
            column.rename(name.clone());
            Ok(column)
        })
        .collect::<Result<Vec<_>, PolarsError>>()?;
    Ok(DataFrame::new(rows.len(), columns)?)
}

/// A list-of-strings column, each row's items pushed by `items`: one arrow
/// array for the whole batch, not a series per row.
fn list(
    rows: &[Operation],
    items: impl Fn(&Operation, &mut MutableBinaryViewArray<str>),
) -> Result<Column, Error> {
    let mut values = MutableBinaryViewArray::<str>::new();
    let mut offsets = Vec::with_capacity(rows.len() + 1);
    offsets.push(0i64);
    for op in rows {
        items(op, &mut values);
        offsets.push(values.len() as i64);
    }
    let values = values.freeze();
    let dtype = ArrowDataType::LargeList(Box::new(Field::new(
        "item".into(),
        values.dtype().clone(),
        true,
    )));
    // The offsets start at 0 and never decrease.
    let offsets = OffsetsBuffer::try_from(offsets)?;
    let array = ListArray::<i64>::new(dtype, offsets, values.boxed(), None);
    Ok(Series::from_arrow("".into(), array.boxed())?.into())
}
