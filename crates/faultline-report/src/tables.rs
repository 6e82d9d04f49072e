//! The provider table's row, the incident table, and writing frames as parquet.

use std::fs::File;
use std::path::Path;

use faultline_incidents::Incident;
use polars::prelude::*;

use crate::records::cast_to;
use crate::Error;

pub(crate) fn ts_type() -> DataType {
    DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
}

/// One provider's line in the report.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderRow {
    /// The provider.
    pub provider: String,
    /// Calls.
    pub requests: u64,
    /// Failed calls.
    pub errors: u64,
    /// Latency percentiles, ms (None when no latency was logged).
    pub p50_ms: Option<f64>,
    /// 95th percentile.
    pub p95_ms: Option<f64>,
    /// The most frequent failure class and its count.
    pub top_failure: Option<(String, u64)>,
    /// First and last call, ms since the epoch.
    pub first_ms: i64,
    /// Last call.
    pub last_ms: i64,
}

/// Writes `incidents.parquet` at `path`: one row per incident, in the
/// order given.
pub fn write_incidents(incidents: &[Incident], path: &Path) -> Result<(), Error> {
    write_parquet(&mut incidents_frame(incidents)?, path)
}

/// The incidents as a table (`incidents.parquet`), in the order given.
pub(crate) fn incidents_frame(incidents: &[Incident]) -> Result<DataFrame, Error> {
    fn text<'a>(
        incidents: &'a [Incident],
        f: impl Fn(&'a Incident) -> Option<&'a str>,
    ) -> Vec<Option<&'a str>> {
        incidents.iter().map(f).collect()
    }
    let evidence: Vec<Series> = incidents
        .iter()
        .map(|i| {
            Series::new(
                "".into(),
                i.evidence.iter().map(String::as_str).collect::<Vec<_>>(),
            )
        })
        .collect();
    let columns = vec![
        Column::new("id".into(), text(incidents, |i| Some(&i.id))),
        Column::new(
            "pattern".into(),
            text(incidents, |i| Some(i.pattern.as_str())),
        ),
        Column::new(
            "severity".into(),
            text(incidents, |i| Some(i.severity.as_str())),
        ),
        Column::new(
            "provider".into(),
            text(incidents, |i| {
                i.provider.map(faultline_classify::Provider::as_str)
            }),
        ),
        Column::new("model".into(), text(incidents, |i| i.model.as_deref())),
        Column::new("service".into(), text(incidents, |i| i.service.as_deref())),
        Column::new("key_fp".into(), text(incidents, |i| i.key_fp.as_deref())),
        Column::new("cause".into(), text(incidents, |i| i.cause.as_deref())),
        Column::new(
            "start".into(),
            incidents.iter().map(|i| i.start_ms).collect::<Vec<_>>(),
        ),
        Column::new(
            "end".into(),
            incidents.iter().map(|i| i.end_ms).collect::<Vec<_>>(),
        ),
        Column::new(
            "duration_s".into(),
            incidents
                .iter()
                .map(Incident::duration_s)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "requests".into(),
            incidents.iter().map(|i| i.requests).collect::<Vec<_>>(),
        ),
        Column::new(
            "errors".into(),
            incidents.iter().map(|i| i.errors).collect::<Vec<_>>(),
        ),
        Column::new(
            "error_rate".into(),
            incidents
                .iter()
                .map(Incident::error_rate)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "peak_rate".into(),
            incidents.iter().map(|i| i.peak_rate).collect::<Vec<_>>(),
        ),
        Column::new("summary".into(), text(incidents, |i| Some(&i.summary))),
        Column::new("action".into(), text(incidents, |i| Some(&i.action))),
        Column::new(
            "escalation".into(),
            text(incidents, |i| Some(&i.escalation)),
        ),
        Column::new("evidence".into(), {
            let mut list: ListChunked = evidence.into_iter().map(Some).collect();
            list.rename("evidence".into());
            list.into_series()
        }),
        names(incidents, "models", |i| &i.models),
        names(incidents, "services", |i| &i.services),
        names(incidents, "keys", |i| &i.keys),
    ];
    let frame = DataFrame::new(incidents.len(), columns)?;
    let schema = Schema::from_iter([
        ("start".into(), ts_type()),
        ("end".into(), ts_type()),
        (
            "evidence".into(),
            DataType::List(Box::new(DataType::String)),
        ),
        ("models".into(), DataType::List(Box::new(DataType::String))),
        (
            "services".into(),
            DataType::List(Box::new(DataType::String)),
        ),
        ("keys".into(), DataType::List(Box::new(DataType::String))),
    ]);
    cast_to(frame, &schema)
}

/// A list column of the models, services or keys each incident touched,
/// busiest first.
fn names(
    incidents: &[Incident],
    name: &str,
    list: impl Fn(&Incident) -> &[faultline_incidents::Touched],
) -> Column {
    let mut column: ListChunked = incidents
        .iter()
        .map(|i| {
            Some(Series::new(
                "".into(),
                list(i).iter().map(|t| &*t.name).collect::<Vec<&str>>(),
            ))
        })
        .collect();
    column.rename(name.into());
    column.into_series().into()
}

/// Writes `frame` to `path` (zstd-compressed parquet). Every timestamp is
/// declared UTC in the file's schema, as in `records.parquet`.
pub(crate) fn write_parquet(frame: &mut DataFrame, path: &Path) -> Result<(), Error> {
    let file = File::create(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let schema: Schema = frame
        .schema()
        .iter()
        .map(|(name, dtype)| {
            let dtype = match dtype {
                DataType::Datetime(unit, _) => DataType::Datetime(*unit, Some(TimeZone::UTC)),
                other => other.clone(),
            };
            (name.clone(), dtype)
        })
        .collect();
    frame.rechunk_mut();
    let mut writer = ParquetWriter::new(file)
        .with_compression(ParquetCompression::Zstd(None))
        .batched(&schema)?;
    writer.write_batch(frame)?;
    writer.finish()?;
    Ok(())
}
