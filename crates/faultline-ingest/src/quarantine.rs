//! Bad lines: why a line could not become a record, and where it was.

use std::fmt;
use std::sync::Arc;

/// Why a line was quarantined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Reason {
    /// The line is not valid JSON.
    InvalidJson,
    /// The last line of the input ends mid-value (a cut-off write).
    TruncatedLine,
    /// The line is not valid UTF-8.
    InvalidUtf8,
    /// Valid JSON, but not an object.
    NotAnObject,
    /// Nested deeper than the parser's limit.
    TooDeep,
    /// Longer than the configured maximum line size.
    LineTooLong,
    /// No timestamp field.
    MissingTimestamp,
    /// A timestamp field that is not a date or epoch number.
    BadTimestamp,
    /// A timestamp before 2000 or after 2100.
    TimestampOutOfRange,
    /// A JSON object with none of the fields of an LLM API call.
    NotACall,
}

impl Reason {
    /// Every reason, in a stable order.
    pub const ALL: [Reason; 10] = [
        Reason::InvalidJson,
        Reason::TruncatedLine,
        Reason::InvalidUtf8,
        Reason::NotAnObject,
        Reason::TooDeep,
        Reason::LineTooLong,
        Reason::MissingTimestamp,
        Reason::BadTimestamp,
        Reason::TimestampOutOfRange,
        Reason::NotACall,
    ];

    /// The stable snake_case name used in outputs.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidJson => "invalid_json",
            Reason::TruncatedLine => "truncated_line",
            Reason::InvalidUtf8 => "invalid_utf8",
            Reason::NotAnObject => "not_an_object",
            Reason::TooDeep => "too_deep",
            Reason::LineTooLong => "line_too_long",
            Reason::MissingTimestamp => "missing_timestamp",
            Reason::BadTimestamp => "bad_timestamp",
            Reason::TimestampOutOfRange => "timestamp_out_of_range",
            Reason::NotACall => "not_a_call",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One quarantined line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// The file it came from (`-` for standard input).
    pub file: Arc<str>,
    /// 1-based line number.
    pub line: u64,
    /// Byte offset of the line's first byte in the (decompressed) input.
    pub offset: u64,
    /// Why it was quarantined.
    pub reason: Reason,
    /// Detail from the parser, when there is one (e.g. `expected value at column 7`).
    pub detail: Option<String>,
    /// The start of the line, lossily decoded and redacted; at most [`EXCERPT_BYTES`] bytes.
    pub excerpt: String,
}

/// The most bytes of a bad line that are kept as its excerpt.
pub const EXCERPT_BYTES: usize = 200;

/// The line's first bytes as text, redacted, cut at a character boundary.
pub(crate) fn excerpt(line: &[u8]) -> String {
    let mut end = line.len().min(EXCERPT_BYTES);
    let text = loop {
        match std::str::from_utf8(&line[..end]) {
            Ok(text) => break std::borrow::Cow::Borrowed(text),
            // A cut through a multi-byte character: step back to its start.
            Err(e) if e.error_len().is_none() => end = e.valid_up_to(),
            Err(_) => break String::from_utf8_lossy(&line[..end]),
        }
    };
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    crate::secret::redact(&text).into_owned()
}
