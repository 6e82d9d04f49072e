//! The faultline analysis as a library: logs of LLM API calls in; classified
//! records, incidents, rollups and reports out. The `faultline` command is
//! one front door to it; anything else that needs the analysis (a binding,
//! a job on another engine) drives the same calls.
//!
//! A run has two halves:
//! - [`read_logs`] reads the inputs on a pool of threads, classifies and
//!   filters each call, groups the calls into operations (a request and its
//!   retries), writes records.parquet, operations.parquet and the
//!   quarantine, and
//!   feeds every kept call to an [`Analysis`] (or [`read_records`] feeds
//!   one from records.parquet files of earlier runs);
//! - [`Analysis::finish`] detects incidents and writes the rollups, the
//!   incidents and the reports.
//!
//! An [`Analysis`] is fed per call ([`Analysis::add`]); parts built apart
//! merge exactly ([`Analysis::merge`], in input order).
//!
//! ```no_run
//! use std::path::{Path, PathBuf};
//! use faultline_engine::{
//!     read_logs, DetectConfig, Filter, Formats, IngestOptions, Prices, RecordsTarget, RuleSet,
//!     Settings, Source,
//! };
//!
//! # fn main() -> anyhow::Result<()> {
//! let settings = Settings {
//!     ingest: IngestOptions::default(),
//!     rules: RuleSet::defaults(),
//!     filter: Filter::default(),
//!     detect: DetectConfig::default(),
//!     window_ms: 60_000,
//!     prices: Prices::defaults(),
//! };
//! let out = Path::new("faultline-out");
//! std::fs::create_dir_all(out)?;
//! let inputs = [PathBuf::from("logs/")];
//! let logs = read_logs(
//!     &settings,
//!     &Source::Logs { inputs: &inputs, skip: &|_| false },
//!     &RecordsTarget::File(out.join("records.parquet")),
//!     Some(&out.join("operations.parquet")),
//!     &out.join("quarantine.jsonl"),
//!     &mut (),
//! )?;
//! let formats = Formats { md: true, html: true, json: true };
//! let finished = logs.analysis.finish(
//!     &logs.read,
//!     &settings.detect,
//!     formats,
//!     out,
//!     &["records.parquet", "operations.parquet", "quarantine.jsonl"],
//!     &(),
//! )?;
//! for incident in &finished.incidents {
//!     println!("[{}] {}", incident.severity, incident.summary);
//! }
//! # Ok(())
//! # }
//! ```

mod analysis;
mod behaviour;
pub mod files;
mod operations;
mod outputs;
mod prices;
mod progress;
mod read;
mod records;
mod run;
mod stage;
mod tally;

pub use crate::analysis::Analysis;
pub use crate::behaviour::{Behaviour, BehaviourRow, Misstep};
pub use crate::operations::{OperationStats, JOIN_WINDOW_MS, MAX_OPEN};
pub use crate::outputs::{incident_json, top_unknown, Finished, Formats, OUTPUTS};
pub use crate::prices::{Price, Prices};
pub use crate::progress::Progress;
pub use crate::read::Read;
pub use crate::records::{check_records, read_records};
pub use crate::run::{read_logs, Logs, RecordsTarget, Settings, Source, OPERATIONS};
pub use crate::tally::Tally;
// What a caller needs to fill [`Settings`] and read [`Finished`], without
// naming the crates below.
pub use faultline_classify::RuleSet;
pub use faultline_incidents::{DetectConfig, Incident, Pattern, Severity};
pub use faultline_ingest::IngestOptions;
pub use faultline_report::Filter;
