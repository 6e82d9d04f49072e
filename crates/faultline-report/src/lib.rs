//! Reports: parquet tables for dashboards, and a markdown report for people.
//!
//! The roles of the types:
//!
//! - [`RecordColumns`] gathers classified records as columns on the worker
//!   that parsed them; [`RecordsWriter`] streams them into `records.parquet`
//!   a row group at a time, so memory does not grow with the input.
//! - [`rollups`] and [`provider_table`] aggregate `records.parquet` with
//!   polars (a lazy scan: only the needed columns are read).
//! - [`incidents_frame`] turns detected incidents into a table.
//! - [`markdown`] writes the postmortem-ready report from an [`Overview`],
//!   the provider table and the incidents.

mod markdown;
mod records;
mod tables;

use std::path::PathBuf;

pub use crate::markdown::{markdown, Overview};
pub use crate::records::{records_schema, RecordColumns, RecordsWriter};
pub use crate::tables::{
    incidents_frame, provider_table, rollups, write_parquet, ProviderRow, DEFAULT_WINDOW_MS,
};
pub use faultline_classify::Record;
pub use polars::prelude::DataFrame;

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
    /// polars refused a frame or a query.
    #[error("{0}")]
    Polars(#[from] polars::error::PolarsError),
}
