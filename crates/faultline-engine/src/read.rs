//! What a run read: its inputs, their sizes and bad lines, and the inputs
//! it could not read. summary.json, the terminal summary and the report's
//! data-quality section print it.

use std::collections::BTreeMap;
use std::time::Instant;

use faultline_ingest::{FileSummary, Summary};
use serde_json::{json, Value};

/// What was read.
#[derive(Debug, Clone)]
pub struct Read {
    /// One JSON object per input (as summary.json lists them).
    pub inputs: Vec<Value>,
    pub bytes: u64,
    pub lines: u64,
    pub blank_lines: u64,
    pub bad_lines: u64,
    pub bad_by_reason: BTreeMap<String, u64>,
    pub lines_with_secrets: u64,
    /// HTTP spans read into their call's record, and those whose call was
    /// not found near them.
    pub child_spans: u64,
    pub child_spans_unjoined: u64,
    pub duplicate_spans: u64,
    /// Inputs that could not be read (or only in part), with the reason.
    pub problems: Vec<String>,
    /// True when the built-in sample day was read.
    pub sample: bool,
    pub threads: usize,
    pub started: Instant,
}

impl Read {
    /// What ingest's `summary` says was read, with the inputs that could
    /// not be found (`problems`).
    #[must_use]
    pub fn of_logs(
        summary: &Summary,
        problems: Vec<String>,
        sample: bool,
        threads: usize,
        started: Instant,
    ) -> Read {
        let totals = &summary.totals;
        Read {
            inputs: summary.files.iter().map(file_json).collect(),
            bytes: totals.bytes,
            lines: totals.lines,
            blank_lines: totals.blank_lines,
            bad_lines: totals.bad_lines,
            bad_by_reason: totals
                .bad_by_reason
                .iter()
                .map(|(reason, n)| (reason.as_str().to_owned(), *n))
                .collect(),
            lines_with_secrets: totals.lines_with_secrets,
            child_spans: totals.child_spans,
            child_spans_unjoined: totals.child_spans_unjoined,
            duplicate_spans: totals.duplicate_spans,
            problems,
            sample,
            threads,
            started,
        }
    }

    /// Records files read back: each file's name and size, `rows` records,
    /// `with_secrets` of them from lines that held a plaintext secret.
    #[must_use]
    pub fn of_records(
        files: &[std::path::PathBuf],
        rows: u64,
        with_secrets: u64,
        started: Instant,
    ) -> Read {
        let size = |p: &std::path::PathBuf| std::fs::metadata(p).map_or(0, |m| m.len());
        Read {
            inputs: files
                .iter()
                .map(|p| json!({"name": p.display().to_string(), "bytes": size(p)}))
                .collect(),
            bytes: files.iter().map(size).sum(),
            lines: rows,
            blank_lines: 0,
            bad_lines: 0,
            bad_by_reason: BTreeMap::new(),
            lines_with_secrets: with_secrets,
            child_spans: 0,
            child_spans_unjoined: 0,
            duplicate_spans: 0,
            problems: Vec::new(),
            sample: false,
            threads: 0,
            started,
        }
    }
}

fn file_json(file: &FileSummary) -> Value {
    json!({
        "name": file.name,
        "compression": file.compression.as_str(),
        "memory_mapped": file.mapped,
        "bytes": file.counts.bytes,
        "lines": file.counts.lines,
        "records": file.counts.records,
        "bad_lines": file.counts.bad_lines,
        "error": file.error.as_ref().map(ToString::to_string),
    })
}
