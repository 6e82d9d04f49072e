//! `operations.parquet`: one row per operation (one request of a caller,
//! however many attempts it took), streamed out in row groups.

use std::fs::File;
use std::path::Path;

use faultline_classify::{Provider, StatusClass};
use faultline_ingest::{GroupedBy, Shared};
use polars::io::parquet::write::BatchedWriter;
use polars::prelude::*;
use polars_arrow::array::{Array, BooleanArray, PrimitiveArray};
use polars_arrow::bitmap::MutableBitmap;
use polars_arrow::datatypes::ArrowDataType;
use polars_arrow::types::NativeType;
use polars_core::runtime::RAYON;
use polars_parquet::parquet::metadata::Descriptor;
use polars_parquet::write::{
    CompressedPage, Encoding, ParquetType, StatisticsOptions, Version, WriteOptions, ZstdLevel,
};
use rayon::prelude::*;
use smallvec::SmallVec;

use crate::cat::Cat;
use crate::pages::{dictionary_column, dictionary_list_column, encode, id_column, CodedPart};
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

/// The number of an operation id as outputs write it (`op_` and 16 hex
/// digits).
#[must_use]
pub fn parse_operation_id(text: &str) -> Option<u64> {
    let hex = text.strip_prefix("op_")?;
    (hex.len() == 16)
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
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
/// group: no row is held as a struct of its own, and texts are held as
/// codes ([`Cat`]), found by address.
#[derive(Clone, Default)]
pub struct OperationColumns {
    id: Vec<u64>,
    grouped_by: Cat,
    service: Cat,
    key_fp: Cat,
    start: Vec<i64>,
    end: Vec<i64>,
    attempts: Vec<u32>,
    /// The providers of every row back to back, and where each row's end.
    providers: Cat,
    provider_ends: Vec<u32>,
    models: Cat,
    model_ends: Vec<u32>,
    fallback: Vec<bool>,
    final_class: Cat,
    succeeded: Vec<bool>,
    first_error: Cat,
    time_lost: Vec<Option<i64>>,
    wasted_prompt: Vec<u64>,
    wasted_completion: Vec<u64>,
    wasted_cost: Vec<Option<f64>>,
}

impl std::fmt::Debug for OperationColumns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperationColumns")
            .field("rows", &self.len())
            .finish_non_exhaustive()
    }
}

/// One column of an [`OperationColumns`], by how it is written.
enum Col<'a> {
    Id(&'a [u64]),
    Ts(&'a [i64]),
    U32(&'a [u32]),
    U64(&'a [u64]),
    OptI64(&'a [Option<i64>]),
    OptF64(&'a [Option<f64>]),
    Bool(&'a [bool]),
    Cat(&'a Cat),
    List(&'a Cat, &'a [u32]),
}

impl OperationColumns {
    /// Room for `rows` rows before any buffer grows.
    #[must_use]
    pub fn with_capacity(rows: usize) -> OperationColumns {
        let cat = || Cat::with_capacity(rows);
        OperationColumns {
            id: Vec::with_capacity(rows),
            grouped_by: cat(),
            service: cat(),
            key_fp: cat(),
            start: Vec::with_capacity(rows),
            end: Vec::with_capacity(rows),
            attempts: Vec::with_capacity(rows),
            providers: cat(),
            provider_ends: Vec::with_capacity(rows),
            models: cat(),
            model_ends: Vec::with_capacity(rows),
            fallback: Vec::with_capacity(rows),
            final_class: cat(),
            succeeded: Vec::with_capacity(rows),
            first_error: cat(),
            time_lost: Vec::with_capacity(rows),
            wasted_prompt: Vec::with_capacity(rows),
            wasted_completion: Vec::with_capacity(rows),
            wasted_cost: Vec::with_capacity(rows),
        }
    }

    /// Appends one operation.
    pub fn push(&mut self, op: &Operation) {
        self.id.push(op.id);
        self.grouped_by.push_static(op.grouped_by.as_str());
        self.service.push_text(op.service.as_ref());
        self.key_fp.push_text(op.key_fp.as_ref());
        self.start.push(op.start_ms);
        self.end.push(op.end_ms);
        self.attempts.push(op.attempts);
        for provider in &op.providers {
            self.providers.push_static(provider.as_str());
        }
        self.provider_ends.push(self.providers.codes.len() as u32);
        for model in &op.models {
            self.models.push_text(Some(model));
        }
        self.model_ends.push(self.models.codes.len() as u32);
        self.fallback.push(op.fell_back());
        self.final_class.push_static(op.final_class.as_str());
        self.succeeded.push(op.succeeded());
        match op.first_error {
            Some(class) => self.first_error.push_static(class.as_str()),
            None => self.first_error.push(None),
        }
        self.time_lost.push(op.time_lost_ms());
        self.wasted_prompt.push(op.wasted_prompt_tokens);
        self.wasted_completion.push(op.wasted_completion_tokens);
        self.wasted_cost.push(op.wasted_cost_usd);
    }

    /// Appends an operation of one attempt that succeeded: the same row
    /// [`OperationColumns::push`] writes for it.
    pub fn push_single(&mut self, row: SingleRow<'_>) {
        self.id.push(row.id);
        self.grouped_by.push_static(row.grouped_by.as_str());
        self.service.push_text(row.service);
        self.key_fp.push_text(row.key_fp);
        self.start.push(row.start_ms);
        self.end.push(row.end_ms);
        self.attempts.push(1);
        self.providers.push_static(row.provider.as_str());
        self.provider_ends.push(self.providers.codes.len() as u32);
        if row.model.is_some() {
            self.models.push_text(row.model);
        }
        self.model_ends.push(self.models.codes.len() as u32);
        self.fallback.push(false);
        self.final_class.push_static(row.class.as_str());
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

    /// Column `i` of [`operations_schema`].
    fn column(&self, i: usize) -> Col<'_> {
        match i {
            0 => Col::Id(&self.id),
            1 => Col::Cat(&self.grouped_by),
            2 => Col::Cat(&self.service),
            3 => Col::Cat(&self.key_fp),
            4 => Col::Ts(&self.start),
            5 => Col::Ts(&self.end),
            6 => Col::U32(&self.attempts),
            7 => Col::List(&self.providers, &self.provider_ends),
            8 => Col::List(&self.models, &self.model_ends),
            9 => Col::Bool(&self.fallback),
            10 => Col::Cat(&self.final_class),
            11 => Col::Bool(&self.succeeded),
            12 => Col::Cat(&self.first_error),
            13 => Col::OptI64(&self.time_lost),
            14 => Col::U64(&self.wasted_prompt),
            15 => Col::U64(&self.wasted_completion),
            _ => Col::OptF64(&self.wasted_cost),
        }
    }
}

/// Streams operations into one parquet file, a row group at a time. The
/// pages are made here, a column per thread: text and lists from their
/// codes (`pages`), numbers by polars-parquet from arrays that borrow
/// nothing but a copy of the rows' values.
pub struct OperationsWriter {
    writer: BatchedWriter<File>,
    /// Arrow type, parquet type and leaf of each column.
    dtypes: Vec<ArrowDataType>,
    types: Vec<ParquetType>,
    leaves: Vec<Descriptor>,
    options: WriteOptions,
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
        // Level 1, as records.parquet: the ids are random, and a higher
        // level spends its time on them for nothing.
        let compression = ParquetCompression::Zstd(ZstdLevel::try_new(1).ok());
        let schema = operations_schema();
        let arrow = schema.to_arrow(CompatLevel::newest());
        let mut writer = ParquetWriter::new(file)
            .with_compression(compression)
            .batched(&schema)?;
        let types = writer.parquet_schema().fields().to_vec();
        let leaves = writer
            .parquet_schema()
            .columns()
            .iter()
            .map(|column| column.descriptor.clone())
            .collect();
        Ok(OperationsWriter {
            dtypes: arrow.iter_values().map(|f| f.dtype.clone()).collect(),
            types,
            leaves,
            // Every column has its least and greatest value (see
            // records.parquet for why ids do too).
            options: WriteOptions {
                statistics: StatisticsOptions::default(),
                compression: compression.into(),
                version: Version::V1,
                data_page_size: None,
            },
            writer,
            written: 0,
        })
    }

    /// Writes `rows` as one row group.
    pub fn write(&mut self, rows: &OperationColumns) -> Result<(), Error> {
        if rows.is_empty() {
            return Ok(());
        }
        let pages = RAYON.install(|| {
            (0..self.types.len())
                .into_par_iter()
                .map(|i| self.column_pages(rows, i))
                .collect::<PolarsResult<Vec<_>>>()
        })?;
        self.writer.write_row_group(rows.len() as u64, &pages)?;
        self.written += rows.len() as u64;
        Ok(())
    }

    /// The pages of column `i` of `rows`.
    fn column_pages(&self, rows: &OperationColumns, i: usize) -> PolarsResult<Vec<CompressedPage>> {
        let dtype = &self.dtypes[i];
        let leaf = &self.leaves[i];
        let plain = [Encoding::Plain];
        // Times and counts climb or repeat by small steps.
        let delta = [Encoding::DeltaBinaryPacked];
        let (array, encoding): (Box<dyn Array>, &[Encoding]) = match rows.column(i) {
            Col::Cat(cat) => {
                let part = CodedPart {
                    codes: &cat.codes,
                    values: &cat.values,
                };
                return dictionary_column(&[part], &leaf.primitive_type, self.options);
            }
            Col::List(cat, ends) => {
                return dictionary_list_column(&cat.codes, ends, &cat.values, leaf, self.options);
            }
            Col::Id(ids) => return id_column(&[ids], &leaf.primitive_type, self.options),
            Col::Ts(values) => (primitive(dtype, values), &delta),
            Col::U64(values) => (primitive(dtype, values), &delta),
            Col::U32(values) => (primitive(dtype, values), &plain),
            Col::OptI64(values) => (optional(dtype, values), &delta),
            Col::OptF64(values) => (optional(dtype, values), &plain),
            Col::Bool(values) => {
                let bits: MutableBitmap = values.iter().copied().collect();
                let array = BooleanArray::new(dtype.clone(), bits.into(), None);
                (array.boxed(), &plain)
            }
        };
        encode(
            array.as_ref(),
            &self.types[i],
            self.options,
            encoding,
            false,
        )
    }

    /// Writes the file's footer (a file of no operations still has the
    /// schema); returns the rows written.
    pub fn finish(self) -> Result<u64, Error> {
        self.writer.finish()?;
        Ok(self.written)
    }
}

fn primitive<T: NativeType>(dtype: &ArrowDataType, values: &[T]) -> Box<dyn Array> {
    PrimitiveArray::new(dtype.clone(), values.to_vec().into(), None).boxed()
}

fn optional<T: NativeType>(dtype: &ArrowDataType, values: &[Option<T>]) -> Box<dyn Array> {
    let valid: MutableBitmap = values.iter().map(Option::is_some).collect();
    let values: Vec<T> = values.iter().map(|v| v.unwrap_or_default()).collect();
    PrimitiveArray::new(dtype.clone(), values.into(), Some(valid.into())).boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_classify::Provider;

    fn retried() -> Operation {
        Operation {
            id: 0x0123_4567_89ab_cdef,
            grouped_by: GroupedBy::Trace,
            service: Some(Shared::from("checkout")),
            key_fp: None,
            start_ms: 1_700_000_000_000,
            last_start_ms: 1_700_000_004_000,
            end_ms: 1_700_000_005_000,
            attempts: 3,
            providers: [Provider::OpenAi, Provider::Anthropic]
                .into_iter()
                .collect(),
            models: [Shared::from("gpt-4o"), Shared::from("claude-sonnet-4")]
                .into_iter()
                .collect(),
            final_class: StatusClass::Ok,
            first_error: Some(StatusClass::RateLimit),
            wasted_prompt_tokens: 1200,
            wasted_completion_tokens: 0,
            wasted_cost_usd: None,
        }
    }

    fn single(id: u64, model: Option<&Shared>) -> SingleRow<'_> {
        SingleRow {
            id,
            grouped_by: GroupedBy::Single,
            service: None,
            key_fp: None,
            start_ms: 1_700_000_010_000,
            end_ms: 1_700_000_010_900,
            provider: Provider::Gemini,
            model,
            class: StatusClass::Ok,
        }
    }

    fn written(groups: &[&OperationColumns]) -> DataFrame {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("operations.parquet");
        let mut writer = OperationsWriter::create(&path).unwrap();
        for group in groups {
            writer.write(group).unwrap();
        }
        writer.finish().unwrap();
        ParquetReader::new(File::open(&path).unwrap())
            .finish()
            .unwrap()
    }

    fn texts(frame: &DataFrame, name: &str) -> Vec<Option<String>> {
        let column = frame.column(name).unwrap().str().unwrap().clone();
        (0..column.len())
            .map(|i| column.get(i).map(str::to_owned))
            .collect()
    }

    fn lists(frame: &DataFrame, name: &str) -> Vec<Vec<String>> {
        let column = frame.column(name).unwrap().list().unwrap().clone();
        (0..column.len())
            .map(|i| {
                let row = column.get_as_series(i).unwrap();
                let row = row.str().unwrap();
                (0..row.len())
                    .map(|j| row.get(j).unwrap().to_owned())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn operations_read_back_as_they_were_pushed_across_row_groups() {
        let model = Shared::from("gemini-2.5-flash");
        let mut first = OperationColumns::default();
        first.push(&retried());
        first.push_single(single(1, Some(&model)));
        let mut second = OperationColumns::default();
        second.push_single(single(2, None));
        let mut no_model = retried();
        no_model.models.clear();
        no_model.providers.truncate(1);
        second.push(&no_model);
        let frame = written(&[&first, &second]);

        assert_eq!(frame.schema().as_ref(), &operations_schema());
        assert_eq!(
            texts(&frame, "operation_id"),
            [
                Some("op_0123456789abcdef".to_owned()),
                Some("op_0000000000000001".to_owned()),
                Some("op_0000000000000002".to_owned()),
                Some("op_0123456789abcdef".to_owned()),
            ]
        );
        assert_eq!(
            lists(&frame, "providers"),
            [
                vec!["openai".to_owned(), "anthropic".to_owned()],
                vec!["gemini".to_owned()],
                vec!["gemini".to_owned()],
                vec!["openai".to_owned()],
            ]
        );
        assert_eq!(
            lists(&frame, "models"),
            [
                vec!["gpt-4o".to_owned(), "claude-sonnet-4".to_owned()],
                vec!["gemini-2.5-flash".to_owned()],
                vec![],
                vec![],
            ]
        );
        assert_eq!(
            texts(&frame, "service"),
            [Some("checkout".into()), None, None, Some("checkout".into())]
        );
        assert_eq!(
            texts(&frame, "first_error_class"),
            [
                Some("rate_limit".into()),
                None,
                None,
                Some("rate_limit".into())
            ]
        );
        let lost: Vec<Option<i64>> = frame
            .column("time_lost_ms")
            .unwrap()
            .i64()
            .map(|c| (0..c.len()).map(|i| c.get(i)).collect())
            .unwrap();
        assert_eq!(lost, [Some(4000), None, None, Some(4000)]);
        let cost: Vec<Option<f64>> = frame
            .column("wasted_cost_usd")
            .unwrap()
            .f64()
            .map(|c| (0..c.len()).map(|i| c.get(i)).collect())
            .unwrap();
        assert_eq!(cost, [None, Some(0.0), Some(0.0), None]);
        let fallback: Vec<Option<bool>> = frame
            .column("fallback")
            .unwrap()
            .bool()
            .map(|c| (0..c.len()).map(|i| c.get(i)).collect())
            .unwrap();
        assert_eq!(
            fallback,
            [Some(true), Some(false), Some(false), Some(false)]
        );
    }

    #[test]
    fn a_single_row_is_the_row_its_operation_would_be() {
        let model = Shared::from("gemini-2.5-flash");
        let mut pushed = OperationColumns::default();
        let mut op = Operation {
            id: 7,
            grouped_by: GroupedBy::Single,
            service: None,
            key_fp: None,
            start_ms: 1_700_000_010_000,
            last_start_ms: 1_700_000_010_000,
            end_ms: 1_700_000_010_900,
            attempts: 1,
            providers: [Provider::Gemini].into_iter().collect(),
            models: [model.clone()].into_iter().collect(),
            final_class: StatusClass::Ok,
            first_error: None,
            wasted_prompt_tokens: 0,
            wasted_completion_tokens: 0,
            wasted_cost_usd: Some(0.0),
        };
        pushed.push(&op);
        op.models.clear();
        pushed.push(&op);
        let mut singles = OperationColumns::default();
        singles.push_single(single(7, Some(&model)));
        singles.push_single(single(7, None));
        assert!(written(&[&pushed]).equals_missing(&written(&[&singles])));
    }

    #[test]
    fn a_run_of_no_operations_writes_the_schema() {
        let frame = written(&[&OperationColumns::default()]);
        assert_eq!(frame.height(), 0);
        assert_eq!(frame.schema().as_ref(), &operations_schema());
    }
}
