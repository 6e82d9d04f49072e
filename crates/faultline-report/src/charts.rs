//! The time series behind the HTML report's charts, in at most
//! [`MAX_BUCKETS`] buckets (built by [`crate::Rollups::charts`]).

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
