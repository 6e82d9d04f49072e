//! The time series behind the HTML report's charts, aggregated from
//! `records.parquet` into at most [`MAX_BUCKETS`] buckets.

use std::collections::BTreeMap;

use polars::prelude::*;

use crate::read::RecordSet;
use crate::tables::{collect, latency};
use crate::Error;

/// Upper bound on the points of a chart: enough to see a five-minute burst in
/// a day, few enough for a page that opens instantly.
pub const MAX_BUCKETS: i64 = 300;

/// Bucket widths a chart may use, smallest first: widths a reader can name.
const WIDTHS_MS: [i64; 12] = [
    60_000,
    2 * 60_000,
    5 * 60_000,
    10 * 60_000,
    15 * 60_000,
    30 * 60_000,
    3_600_000,
    3 * 3_600_000,
    6 * 3_600_000,
    12 * 3_600_000,
    86_400_000,
    7 * 86_400_000,
];

/// Calls and failed calls of one provider, per bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderSeries {
    /// The provider.
    pub provider: String,
    /// Calls per bucket.
    pub requests: Vec<u64>,
    /// Failed calls per bucket.
    pub errors: Vec<u64>,
}

/// Every series the report draws, on one time axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Charts {
    /// Width of a bucket, ms.
    pub bucket_ms: i64,
    /// Start of the first bucket, ms since the epoch.
    pub start_ms: i64,
    /// Number of buckets.
    pub buckets: usize,
    /// Per provider, busiest first.
    pub providers: Vec<ProviderSeries>,
    /// Failed calls per status class and bucket, most frequent class first.
    pub failures_by_class: Vec<(String, Vec<u64>)>,
    /// Latency p50, p95 and p99 over all calls, per bucket (None where no
    /// call logged a latency).
    pub latency: [Vec<Option<f64>>; 3],
}

impl Charts {
    /// Start of bucket `i`, ms since the epoch.
    #[must_use]
    pub fn bucket_start(&self, i: usize) -> i64 {
        self.start_ms + self.bucket_ms * i as i64
    }

    /// End of the last bucket.
    #[must_use]
    pub fn end_ms(&self) -> i64 {
        self.bucket_start(self.buckets)
    }
}

/// The narrowest named width that draws `first_ms..=last_ms` in at most
/// [`MAX_BUCKETS`] buckets.
#[must_use]
pub fn bucket_width(first_ms: i64, last_ms: i64) -> i64 {
    let span = last_ms.saturating_sub(first_ms).max(0);
    WIDTHS_MS
        .iter()
        .copied()
        .find(|w| span / w < MAX_BUCKETS)
        .unwrap_or_else(|| (span / MAX_BUCKETS).max(1) + 1)
}

/// Aggregates the records of `first_ms..=last_ms` (from the provider table)
/// into chart series: two lazy scans that read four columns.
pub fn charts(records: &RecordSet, first_ms: i64, last_ms: i64) -> Result<Charts, Error> {
    let bucket_ms = bucket_width(first_ms, last_ms);
    let start_ms = first_ms.div_euclid(bucket_ms) * bucket_ms;
    let buckets = usize::try_from((last_ms - start_ms) / bucket_ms + 1).unwrap_or(1);
    let bucket = || {
        (col("ts").cast(DataType::Int64) - lit(start_ms))
            .floor_div(lit(bucket_ms))
            .alias("bucket")
    };

    let counts = collect(
        records
            .scan()?
            .group_by([bucket(), col("provider"), col("status_class")])
            .agg([len().cast(DataType::UInt64).alias("n")]),
    )?;
    let index = counts.column("bucket")?.i64()?.clone();
    let provider = counts.column("provider")?.str()?.clone();
    let class = counts.column("status_class")?.str()?.clone();
    let n = counts.column("n")?.u64()?.clone();
    let mut by_provider: BTreeMap<String, (Vec<u64>, Vec<u64>)> = BTreeMap::new();
    let mut by_class: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for row in 0..counts.height() {
        let (Some(i), Some(n)) = (index.get(row), n.get(row)) else {
            continue;
        };
        let Some(i) = usize::try_from(i).ok().filter(|&i| i < buckets) else {
            continue;
        };
        let provider = provider.get(row).unwrap_or("other");
        let class = class.get(row).unwrap_or("unknown");
        let series = by_provider
            .entry(provider.to_owned())
            .or_insert_with(|| (vec![0; buckets], vec![0; buckets]));
        series.0[i] += n;
        if class != "ok" {
            series.1[i] += n;
            by_class
                .entry(class.to_owned())
                .or_insert_with(|| vec![0; buckets])[i] += n;
        }
    }
    let mut providers: Vec<ProviderSeries> = by_provider
        .into_iter()
        .map(|(provider, (requests, errors))| ProviderSeries {
            provider,
            requests,
            errors,
        })
        .collect();
    providers.sort_by_key(|p| std::cmp::Reverse(p.requests.iter().sum::<u64>()));
    let mut failures_by_class: Vec<(String, Vec<u64>)> = by_class.into_iter().collect();
    failures_by_class.sort_by_key(|(_, n)| std::cmp::Reverse(n.iter().sum::<u64>()));

    let latencies = collect(
        records
            .scan()?
            .filter(col("latency_ms").is_not_null())
            .group_by([bucket()])
            .agg([
                latency(0.5, "p50"),
                latency(0.95, "p95"),
                latency(0.99, "p99"),
            ]),
    )?;
    let index = latencies.column("bucket")?.i64()?.clone();
    let mut latency_series = [
        vec![None; buckets],
        vec![None; buckets],
        vec![None; buckets],
    ];
    for (q, name) in ["p50", "p95", "p99"].iter().enumerate() {
        let values = latencies.column(name)?.f64()?.clone();
        for row in 0..latencies.height() {
            let Some(i) = index
                .get(row)
                .and_then(|i| usize::try_from(i).ok())
                .filter(|&i| i < buckets)
            else {
                continue;
            };
            latency_series[q][i] = values.get(row);
        }
    }
    Ok(Charts {
        bucket_ms,
        start_ms,
        buckets,
        providers,
        failures_by_class,
        latency: latency_series,
    })
}
