//! Aggregates over `records.parquet`, and the incident table.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use faultline_classify::incidents::Incident;
use polars::prelude::*;

use crate::read::RecordSet;
use crate::records::cast_to;
use crate::Error;

/// Default rollup window: one minute.
pub const DEFAULT_WINDOW_MS: i64 = 60_000;

/// Runs a query. The in-memory engine holds the scanned columns (about 0.6 GB
/// per GiB of logs for the rollups); polars' streaming engine did not lower
/// that for these quantile aggregations (measured), so per-window latency
/// sketches built during the stream are the way to bound it.
pub(crate) fn collect(frame: LazyFrame) -> Result<DataFrame, Error> {
    Ok(frame.collect()?)
}

pub(crate) fn ts_type() -> DataType {
    DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
}

/// Failed calls: every class but `ok`.
pub(crate) fn failed() -> Expr {
    col("status_class").neq(lit("ok"))
}

pub(crate) fn latency(q: f64, name: &str) -> Expr {
    col("latency_ms")
        .quantile(lit(q), QuantileMethod::Linear)
        .alias(name)
}

/// `rollups.parquet`: per window x provider x model x service x
/// status_class: requests, errors, error rate, latency p50/p95/p99 and token
/// sums, sorted by window then keys.
pub fn rollups(records: &RecordSet, window_ms: i64) -> Result<DataFrame, Error> {
    let window_ms = window_ms.max(1);
    let keys = ["provider", "model", "service", "status_class"];
    let frame = collect(
        records
            .scan()?
            .with_column(
                (col("ts").cast(DataType::Int64).floor_div(lit(window_ms)) * lit(window_ms))
                    .cast(ts_type())
                    .alias("window_start"),
            )
            .group_by([
                col("window_start"),
                col("provider"),
                col("model"),
                col("service"),
                col("status_class"),
            ])
            .agg([
                len().cast(DataType::UInt64).alias("requests"),
                failed().cast(DataType::UInt64).sum().alias("errors"),
                latency(0.5, "latency_p50_ms"),
                latency(0.95, "latency_p95_ms"),
                latency(0.99, "latency_p99_ms"),
                col("prompt_tokens")
                    .cast(DataType::UInt64)
                    .sum()
                    .alias("prompt_tokens"),
                col("completion_tokens")
                    .cast(DataType::UInt64)
                    .sum()
                    .alias("completion_tokens"),
            ])
            .with_column(
                (col("errors").cast(DataType::Float64) / col("requests").cast(DataType::Float64))
                    .alias("error_rate"),
            )
            .sort_by_exprs(
                std::iter::once(col("window_start"))
                    .chain(keys.iter().map(|k| col(*k)))
                    .collect::<Vec<_>>(),
                SortMultipleOptions::default().with_nulls_last(true),
            )
            .select([
                col("window_start"),
                col("provider"),
                col("model"),
                col("service"),
                col("status_class"),
                col("requests"),
                col("errors"),
                col("error_rate"),
                col("latency_p50_ms"),
                col("latency_p95_ms"),
                col("latency_p99_ms"),
                col("prompt_tokens"),
                col("completion_tokens"),
            ]),
    )?;
    Ok(frame)
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

/// Per provider: calls, failures, latency percentiles and the most frequent
/// failure class, busiest provider first.
pub fn provider_table(records: &RecordSet) -> Result<Vec<ProviderRow>, Error> {
    let totals = collect(
        records
            .scan()?
            .group_by([col("provider")])
            .agg([
                len().cast(DataType::UInt64).alias("requests"),
                failed().cast(DataType::UInt64).sum().alias("errors"),
                latency(0.5, "p50"),
                latency(0.95, "p95"),
                col("ts").cast(DataType::Int64).min().alias("first"),
                col("ts").cast(DataType::Int64).max().alias("last"),
            ])
            .sort_by_exprs(
                [col("requests"), col("provider")],
                SortMultipleOptions::default().with_order_descending_multi([true, false]),
            ),
    )?;
    let classes = collect(
        records
            .scan()?
            .filter(failed())
            .group_by([col("provider"), col("status_class")])
            .agg([len().cast(DataType::UInt64).alias("n")]),
    )?;
    let mut top: BTreeMap<String, (String, u64)> = BTreeMap::new();
    let (cp, cc, cn) = (
        classes.column("provider")?.str()?.clone(),
        classes.column("status_class")?.str()?.clone(),
        classes.column("n")?.u64()?.clone(),
    );
    for i in 0..classes.height() {
        let (Some(p), Some(c), Some(n)) = (cp.get(i), cc.get(i), cn.get(i)) else {
            continue;
        };
        let entry = top.entry(p.to_owned()).or_insert_with(|| (c.to_owned(), n));
        if n > entry.1 || (n == entry.1 && c < entry.0.as_str()) {
            *entry = (c.to_owned(), n);
        }
    }
    let provider = totals.column("provider")?.str()?.clone();
    let requests = totals.column("requests")?.u64()?.clone();
    let errors = totals.column("errors")?.u64()?.clone();
    let p50 = totals.column("p50")?.f64()?.clone();
    let p95 = totals.column("p95")?.f64()?.clone();
    let first = totals.column("first")?.i64()?.clone();
    let last = totals.column("last")?.i64()?.clone();
    Ok((0..totals.height())
        .map(|i| {
            let name = provider.get(i).unwrap_or("other").to_owned();
            ProviderRow {
                top_failure: top.get(&name).cloned(),
                provider: name,
                requests: requests.get(i).unwrap_or(0),
                errors: errors.get(i).unwrap_or(0),
                p50_ms: p50.get(i),
                p95_ms: p95.get(i),
                first_ms: first.get(i).unwrap_or(0),
                last_ms: last.get(i).unwrap_or(0),
            }
        })
        .collect())
}

/// The incidents as a table (`incidents.parquet`), in the order given.
pub fn incidents_frame(incidents: &[Incident]) -> Result<DataFrame, Error> {
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
    ];
    let frame = DataFrame::new(incidents.len(), columns)?;
    let schema = Schema::from_iter([
        ("start".into(), ts_type()),
        ("end".into(), ts_type()),
        (
            "evidence".into(),
            DataType::List(Box::new(DataType::String)),
        ),
    ]);
    cast_to(frame, &schema)
}

/// Writes `frame` to `path` (zstd-compressed parquet). Every timestamp is
/// declared UTC in the file's schema, as in `records.parquet`.
pub fn write_parquet(frame: &mut DataFrame, path: &Path) -> Result<(), Error> {
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
