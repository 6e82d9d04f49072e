//! Classification of normalized records: provider, status class, cause, action,
//! and the incident detectors that run over classified records.
//!
//! The rule engine lands here; until then the crate only re-exports the
//! normalized record it will consume.

pub use faultline_ingest::Record;
