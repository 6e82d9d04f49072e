//! Ingest: LLM API call logs in, normalized [`Record`]s out.
//!
//! The roles of the types:
//!
//! - [`discover`] expands command-line arguments (files, directories, globs,
//!   `-`) into [`Input`]s in a stable order.
//! - An [`Ingester`], built from [`IngestOptions`], reads each input
//!   (memory-mapped when plain, streamed through gzip or zstd when compressed,
//!   detected by magic bytes), cuts it into chunks at newlines, parses the
//!   chunks in parallel and hands back ordered [`Batch`]es.
//! - Each line becomes one [`Record`] (an OTLP export line may hold several),
//!   whatever [`Format`] it was logged in; API keys are replaced by a keyed
//!   fingerprint and redacted from every text field. The OpenTelemetry spans
//!   of one call (an SDK's HTTP request span under the GenAI span, a second
//!   instrumentation's span of the same call) become one record, within the
//!   piece of input a worker reads ([`Counts::child_spans`],
//!   [`Counts::duplicate_spans`]).
//! - A line that cannot become a record is a [`BadLine`] with file, line,
//!   byte offset, [`Reason`] and a redacted excerpt. It is counted in the
//!   [`Summary`], never dropped silently, and never stops the run. Only I/O
//!   failures stop an input ([`Error`]), and the other inputs still run.
//!
//! Records come out in input order whatever the thread count or chunk size.
//!
//! ```
//! use faultline_ingest::{IngestOptions, Ingester, Reason};
//!
//! let log = br#"{"ts":"2025-03-01T10:00:00Z","provider":"anthropic","model":"claude-sonnet-4","status_code":529,"error":{"type":"overloaded_error","message":"Overloaded"}}
//! {"ts":"2025-03-01T10:00:01Z","provider":"openai","model":"gpt-4o","status_code":200,"latency_ms":812}
//! {"ts": not json
//! "#;
//! let ingester = Ingester::new(IngestOptions::default()).unwrap();
//! let mut records = Vec::new();
//! let mut bad = Vec::new();
//! let summary = ingester.ingest_bytes("app.jsonl", log, &mut |batch| {
//!     records.extend(batch.records);
//!     bad.extend(batch.bad_lines);
//! });
//! assert_eq!(summary.counts.records, 2);
//! assert_eq!(records[0].http_status, Some(529));
//! assert_eq!(records[0].error_type.as_deref(), Some("overloaded_error"));
//! assert_eq!((bad[0].line, bad[0].reason), (3, Reason::InvalidJson));
//! ```

mod error;
mod ingest;
mod input;
mod json;
mod mmap;
mod normalize;
mod quarantine;
mod record;
mod secret;
mod spans;
mod text;
mod time;
mod view;

pub use crate::error::Error;
pub use crate::ingest::{
    Batch, Compression, Counts, FileSummary, Identity, IngestOptions, Ingester, Stage, Summary,
    LIVE_AGE,
};
pub use crate::input::{discover, Input};
#[cfg(fuzzing)]
pub use crate::json::scanners_agree;
pub use crate::quarantine::{BadLine, Reason, EXCERPT_BYTES};
pub use crate::record::{
    mix64, stable_hash, BodyShape, Format, GroupedBy, HttpAttempts, OperationKey, Record, ShortText,
};
pub use crate::secret::{count_secrets, redact, Fingerprinter, DEFAULT_FINGERPRINT_KEY, REDACTED};
pub use crate::text::{Shared, INTERN_BUDGET};

/// Reproducible draws and made-up key material for the unit tests.
#[cfg(test)]
mod testing {
    /// Key material that looks random, made here so that the source holds
    /// no key-shaped literal.
    pub(crate) fn noise(len: usize) -> String {
        "Zq8v2LmN4pR7sT1uW3xY5bKc9dHf6gJe"
            .chars()
            .cycle()
            .take(len)
            .collect()
    }

    /// Draws below `n` from a xorshift sequence started at `seed`.
    pub(crate) fn draws(mut seed: u64) -> impl FnMut(u64) -> u64 {
        move |n| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        }
    }
}
