//! Aggregation and report writing (rollups, incidents, parquet, markdown, HTML, JSON).
//!
//! The polars-based writers land here; until then the crate only re-exports the
//! record type that flows into it.

pub use faultline_classify::Record;
