//! `records.parquet`: every classified call, streamed out in row groups.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use faultline_classify::Classification;
use faultline_ingest::Record;
use polars::io::parquet::write::BatchedWriter;
use polars::prelude::*;

use crate::Error;

/// Rows buffered before a row group is written.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// The columns of `records.parquet`, in order, with their types. This is the
/// contract dashboards read (docs/schema.md documents each column). The
/// low-cardinality strings (`cat` here) are plain strings in memory; the
/// parquet writer stores a column dictionary-encoded whenever its values
/// repeat, which these do. (Categoricals would cost a global hash lookup per
/// value for the same file.)
#[must_use]
pub fn records_schema() -> Schema {
    let cat = DataType::String;
    let ts = DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC));
    Schema::from_iter([
        ("ts".into(), ts),
        ("source_file".into(), cat.clone()),
        ("source_line".into(), DataType::UInt64),
        ("byte_offset".into(), DataType::UInt64),
        ("format".into(), cat.clone()),
        ("request_id".into(), DataType::String),
        ("service".into(), cat.clone()),
        ("provider".into(), cat.clone()),
        ("provider_source".into(), cat.clone()),
        ("model".into(), cat.clone()),
        ("host".into(), cat.clone()),
        ("key_fp".into(), cat.clone()),
        ("http_status".into(), DataType::UInt16),
        ("error_type".into(), cat.clone()),
        ("error_code".into(), cat.clone()),
        ("error_message".into(), DataType::String),
        ("latency_ms".into(), DataType::Float64),
        ("prompt_tokens".into(), DataType::UInt32),
        ("completion_tokens".into(), DataType::UInt32),
        ("max_tokens".into(), DataType::UInt32),
        ("attempt".into(), DataType::UInt16),
        ("stream".into(), DataType::Boolean),
        ("timeout_ms".into(), DataType::UInt32),
        ("empty_response".into(), DataType::Boolean),
        ("retry_after_s".into(), DataType::Float64),
        ("status_class".into(), cat.clone()),
        ("cause".into(), cat.clone()),
        ("retryable".into(), DataType::Boolean),
        ("action".into(), cat.clone()),
        ("escalation".into(), cat.clone()),
        ("rule".into(), cat),
        ("secrets_found".into(), DataType::UInt16),
    ])
}

/// Classified records as columns: filled on the worker that parsed them,
/// written by [`RecordsWriter`]. Strings are copied once, straight into the
/// arrow buffers the frame is made of.
pub struct RecordColumns {
    ts: Vec<i64>,
    source_file: StringChunkedBuilder,
    source_line: Vec<u64>,
    byte_offset: Vec<u64>,
    format: StringChunkedBuilder,
    request_id: StringChunkedBuilder,
    service: StringChunkedBuilder,
    provider: StringChunkedBuilder,
    provider_source: StringChunkedBuilder,
    model: StringChunkedBuilder,
    host: StringChunkedBuilder,
    key_fp: StringChunkedBuilder,
    http_status: Vec<Option<u16>>,
    error_type: StringChunkedBuilder,
    error_code: StringChunkedBuilder,
    error_message: StringChunkedBuilder,
    latency_ms: Vec<Option<f64>>,
    prompt_tokens: Vec<Option<u32>>,
    completion_tokens: Vec<Option<u32>>,
    max_tokens: Vec<Option<u32>>,
    attempt: Vec<Option<u16>>,
    stream: Vec<Option<bool>>,
    timeout_ms: Vec<Option<u32>>,
    empty_response: Vec<bool>,
    retry_after_s: Vec<Option<f64>>,
    status_class: StringChunkedBuilder,
    cause: StringChunkedBuilder,
    retryable: Vec<bool>,
    action: StringChunkedBuilder,
    escalation: StringChunkedBuilder,
    rule: StringChunkedBuilder,
    secrets_found: Vec<u16>,
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

impl RecordColumns {
    /// Room for `rows` rows before any buffer grows.
    #[must_use]
    pub fn with_capacity(rows: usize) -> RecordColumns {
        let text = |name: &str| StringChunkedBuilder::new(name.into(), rows);
        RecordColumns {
            ts: Vec::with_capacity(rows),
            source_file: text("source_file"),
            source_line: Vec::with_capacity(rows),
            byte_offset: Vec::with_capacity(rows),
            format: text("format"),
            request_id: text("request_id"),
            service: text("service"),
            provider: text("provider"),
            provider_source: text("provider_source"),
            model: text("model"),
            host: text("host"),
            key_fp: text("key_fp"),
            http_status: Vec::with_capacity(rows),
            error_type: text("error_type"),
            error_code: text("error_code"),
            error_message: text("error_message"),
            latency_ms: Vec::with_capacity(rows),
            prompt_tokens: Vec::with_capacity(rows),
            completion_tokens: Vec::with_capacity(rows),
            max_tokens: Vec::with_capacity(rows),
            attempt: Vec::with_capacity(rows),
            stream: Vec::with_capacity(rows),
            timeout_ms: Vec::with_capacity(rows),
            empty_response: Vec::with_capacity(rows),
            retry_after_s: Vec::with_capacity(rows),
            status_class: text("status_class"),
            cause: text("cause"),
            retryable: Vec::with_capacity(rows),
            action: text("action"),
            escalation: text("escalation"),
            rule: text("rule"),
            secrets_found: Vec::with_capacity(rows),
        }
    }

    /// Appends one classified record.
    pub fn push(&mut self, rec: &Record, class: &Classification) {
        self.ts.push(rec.ts_ms);
        self.source_file.append_value(&*rec.source_file);
        self.source_line.push(rec.source_line);
        self.byte_offset.push(rec.byte_offset);
        self.format
            .append_option(rec.format.map(faultline_ingest::Format::as_str));
        self.request_id.append_option(rec.request_id.as_deref());
        self.service.append_option(rec.service.as_deref());
        self.provider.append_value(class.provider.as_str());
        self.provider_source
            .append_value(class.provider_source.as_str());
        self.model.append_option(rec.model.as_deref());
        self.host.append_option(rec.host.as_deref());
        self.key_fp.append_option(rec.key_fp.as_deref());
        self.http_status.push(rec.http_status);
        self.error_type.append_option(rec.error_type.as_deref());
        self.error_code.append_option(rec.error_code.as_deref());
        self.error_message
            .append_option(rec.error_message.as_deref());
        self.latency_ms.push(rec.latency_ms);
        self.prompt_tokens.push(rec.prompt_tokens);
        self.completion_tokens.push(rec.completion_tokens);
        self.max_tokens.push(rec.max_tokens);
        self.attempt.push(rec.attempt);
        self.stream.push(rec.stream);
        self.timeout_ms.push(rec.timeout_ms);
        self.empty_response.push(rec.empty_response);
        self.retry_after_s.push(rec.retry_after_s);
        self.status_class.append_value(class.status_class.as_str());
        self.cause.append_value(&*class.cause);
        self.retryable.push(class.retryable);
        self.action.append_value(class.action);
        self.escalation.append_value(class.escalation);
        self.rule.append_option(class.rule.as_deref());
        self.secrets_found.push(rec.secrets_found);
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

    /// The rows as a frame with [`records_schema`].
    pub fn into_frame(self) -> Result<DataFrame, Error> {
        fn text(builder: StringChunkedBuilder) -> Column {
            builder.finish().into_column()
        }
        let height = self.len();
        let ts = Int64Chunked::from_vec("ts".into(), self.ts)
            .into_datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
            .into_column();
        let columns = vec![
            ts,
            text(self.source_file),
            Column::new("source_line".into(), self.source_line),
            Column::new("byte_offset".into(), self.byte_offset),
            text(self.format),
            text(self.request_id),
            text(self.service),
            text(self.provider),
            text(self.provider_source),
            text(self.model),
            text(self.host),
            text(self.key_fp),
            Column::new("http_status".into(), self.http_status),
            text(self.error_type),
            text(self.error_code),
            text(self.error_message),
            Column::new("latency_ms".into(), self.latency_ms),
            Column::new("prompt_tokens".into(), self.prompt_tokens),
            Column::new("completion_tokens".into(), self.completion_tokens),
            Column::new("max_tokens".into(), self.max_tokens),
            Column::new("attempt".into(), self.attempt),
            Column::new("stream".into(), self.stream),
            Column::new("timeout_ms".into(), self.timeout_ms),
            Column::new("empty_response".into(), self.empty_response),
            Column::new("retry_after_s".into(), self.retry_after_s),
            text(self.status_class),
            text(self.cause),
            Column::new("retryable".into(), self.retryable),
            text(self.action),
            text(self.escalation),
            text(self.rule),
            Column::new("secrets_found".into(), self.secrets_found),
        ];
        Ok(DataFrame::new(height, columns)?)
    }
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

/// Streams record frames into one parquet file, a row group at a time.
pub struct RecordsWriter {
    writer: BatchedWriter<File>,
    pending: Option<DataFrame>,
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
        let writer = ParquetWriter::new(file)
            .with_compression(ParquetCompression::Zstd(None))
            .batched(&records_schema())?;
        Ok(RecordsWriter {
            writer,
            pending: None,
            rows: 0,
        })
    }

    /// Appends rows (a frame from [`RecordColumns::into_frame`]); a row group
    /// is written each time 131,072 rows (`ROW_GROUP_ROWS`) have gathered.
    ///
    /// Row groups hold exactly that many rows (the last one fewer), whatever
    /// the sizes of the frames that brought them: frames follow the input's
    /// chunks, and the file must not depend on how the input was cut (chunk
    /// size, read path, threads).
    pub fn write(&mut self, frame: DataFrame) -> Result<(), Error> {
        if frame.height() == 0 {
            return Ok(());
        }
        self.rows += frame.height() as u64;
        let mut pending = match self.pending.take() {
            Some(mut pending) => {
                pending.vstack_mut_owned(frame)?;
                pending
            }
            None => frame,
        };
        while pending.height() >= ROW_GROUP_ROWS {
            let rest = pending.slice(ROW_GROUP_ROWS as i64, pending.height() - ROW_GROUP_ROWS);
            let mut group = pending.slice(0, ROW_GROUP_ROWS);
            group.rechunk_mut();
            self.writer.write_batch(&group)?;
            pending = rest;
        }
        self.pending = (pending.height() > 0).then_some(pending);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Error> {
        if let Some(mut frame) = self.pending.take() {
            frame.rechunk_mut();
            self.writer.write_batch(&frame)?;
        }
        Ok(())
    }

    /// Writes what is pending and the footer; returns the rows written.
    pub fn finish(mut self) -> Result<u64, Error> {
        self.flush()?;
        self.writer.finish()?;
        Ok(self.rows)
    }
}

/// Date partitions a [`PartitionedWriter`] keeps open at once. Logs arrive
/// roughly in time order, so few dates are live together; a date that comes
/// back after its writer was closed starts its next part file.
const OPEN_PARTITIONS: usize = 8;

/// Streams record frames into a hive-style layout, one directory per UTC
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
    pub fn write(&mut self, frame: DataFrame) -> Result<(), Error> {
        if frame.height() == 0 {
            return Ok(());
        }
        let days: Vec<i64> = frame
            .column("ts")?
            .cast(&DataType::Int64)?
            .i64()?
            .iter()
            .map(|ts| ts.unwrap_or(0).div_euclid(DAY_MS))
            .collect();
        let first = days[0];
        if days.iter().all(|&d| d == first) {
            return self.write_day(first, frame);
        }
        let distinct: std::collections::BTreeSet<i64> = days.iter().copied().collect();
        for day in distinct {
            let mask: BooleanChunked = days.iter().map(|&d| d == day).collect();
            self.write_day(day, frame.filter(&mask)?)?;
        }
        Ok(())
    }

    fn write_day(&mut self, day: i64, frame: DataFrame) -> Result<(), Error> {
        self.tick += 1;
        self.rows += frame.height() as u64;
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
            writer.write(frame)?;
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
