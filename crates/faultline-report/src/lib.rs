//! Reports: parquet tables for dashboards, and a markdown report for people.
//!
//! The roles of the types:
//!
//! - [`RecordColumns`] gathers classified records as columns on the worker
//!   that parsed them; [`RecordsWriter`] streams them into `records.parquet`
//!   a row group at a time, so memory does not grow with the input.
//! - [`Rollups`] aggregates the calls while they stream past, per batch and
//!   merged in any order: the `rollups.parquet` frame, the provider table
//!   and the [`Charts`], with latency percentiles from mergeable
//!   [`Sketch`]es, so that nothing reads `records.parquet` back.
//! - [`incidents_frame`] turns detected incidents into a table.
//! - [`markdown`] and [`html`] write the postmortem-ready report from a
//!   [`Report`]: an [`Overview`] of the run, the provider table, the
//!   incidents and the charts.
//! - [`RecordSet`] reads `records.parquet` files (and partitions) back as
//!   records, optionally filtered, so that several days of earlier output
//!   can be reported together.

mod cat;
mod charts;
mod filter;
mod html;
pub mod inert;
mod markdown;
mod operations;
mod pages;
mod read;
mod records;
mod report;
mod rollup;
mod sketch;
mod tables;
mod text;

/// Helpers of the unit tests.
#[cfg(test)]
mod testing {
    /// A seeded xorshift generator: `next(n)` is a number below `n`, the same
    /// ones every run.
    pub(crate) fn numbers(seed: u64) -> impl FnMut(u64) -> u64 {
        let mut state = seed;
        move |n| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        }
    }
}

use std::path::PathBuf;

/// The hasher of the crate's maps keyed by texts and small keys: not
/// DoS-resistant, and not needed to be (keys come from one run's logs).
pub(crate) type FastHash = foldhash::fast::RandomState;

pub use crate::charts::{bucket_width, Charts, ProviderSeries, MAX_BUCKETS};
pub use crate::filter::Filter;
pub use crate::html::{esc, html};
pub use crate::markdown::markdown;
pub use crate::operations::{
    operation_id, operations_schema, parse_operation_id, Operation, OperationColumns,
    OperationsWriter, SingleRow, OPERATIONS_ROW_GROUP,
};
pub use crate::read::{Outcome, RecordSet};
pub use crate::records::{records_schema, PartitionedWriter, RecordColumns, RecordsWriter};
pub use crate::report::{BehaviourLine, OperationRates, OperationsOverview, Overview, Report};
pub use crate::rollup::{Rollups, DEFAULT_WINDOW_MS};
pub use crate::sketch::{Sketch, RELATIVE_ACCURACY};
pub use crate::tables::{write_incidents, ProviderRow};
pub use faultline_classify::Record;

/// A report that could not be built or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be created or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A parquet file is not a `records.parquet` faultline wrote.
    #[error("{}: not a faultline records file: {reason}", path.display())]
    NotRecords {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// polars refused a frame or a query.
    #[error("{0}")]
    Polars(#[from] polars::error::PolarsError),
}
