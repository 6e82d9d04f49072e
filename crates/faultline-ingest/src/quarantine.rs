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

/// How far past the excerpt a line is read before it is redacted: a key
/// that starts in the excerpt and runs past its end is recognized whole,
/// and the excerpt is cut from the redacted text.
const EXCERPT_LOOKAHEAD: usize = 1024;

/// The line's first bytes as text, redacted, cut at a character boundary.
///
/// The text is redacted as [`crate::secret::redact`] does for any text,
/// which also finds keys behind JSON escapes (`\u0073k-...`) or
/// percent-encoding, and the values of credential-named fields (`"api_key":
/// "..."`), since a bad line's key was never read into a field and
/// fingerprinted.
pub(crate) fn excerpt(line: &[u8]) -> String {
    let head = text_of(line, EXCERPT_BYTES);
    let wide = text_of(line, EXCERPT_BYTES + EXCERPT_LOOKAHEAD);
    match crate::secret::redact(&wide) {
        // Nothing to hide in the wider text: the excerpt is its first bytes,
        // still redacted on their own in case the cut made a key's shape.
        std::borrow::Cow::Borrowed(_) => crate::secret::redact(&head).into_owned(),
        std::borrow::Cow::Owned(clean) => {
            let mut end = clean.len().min(EXCERPT_BYTES);
            while !clean.is_char_boundary(end) {
                end -= 1;
            }
            clean[..end].to_owned()
        }
    }
}

/// The first `max` bytes of `line` as text, cut at a character boundary,
/// control characters turned into spaces.
fn text_of(line: &[u8], max: usize) -> String {
    let mut end = line.len().min(max);
    let text = loop {
        match std::str::from_utf8(&line[..end]) {
            Ok(text) => break std::borrow::Cow::Borrowed(text),
            // A cut through a multi-byte character: step back to its start.
            Err(e) if e.error_len().is_none() => end = e.valid_up_to(),
            Err(_) => break String::from_utf8_lossy(&line[..end]),
        }
    };
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::noise;

    #[test]
    fn an_escaped_or_encoded_key_in_a_bad_line_is_redacted_in_its_excerpt() {
        let body = noise(32);
        for line in [
            format!(r#"{{"ts":1,"error":"Incorrect API key provided: \u0073k-proj-{body}"#),
            format!(r#"{{"ts":1,"url":"https://x/v1?k=sk%2Dproj%2D{body}","#),
        ] {
            let out = excerpt(line.as_bytes());
            assert!(!out.contains(&body[..12]), "{out}");
            assert!(out.contains(crate::secret::REDACTED), "{out}");
        }
    }

    #[test]
    fn an_opaque_key_under_a_credential_name_is_redacted_in_its_excerpt() {
        let key = noise(40);
        for line in [
            format!(r#"{{"ts":1,"api_key":"{key}","oops""#),
            format!(r#"{{"ts":1,"headers":{{"x-api-key": "{key}"}}"#),
            format!(r#"{{"ts":1,"body":"{{\"password\":\"{key}\"}}","#),
            format!("ts=1 client_secret={key} level=error"),
        ] {
            let out = excerpt(line.as_bytes());
            assert!(!out.contains(&key[..12]), "{out}");
        }
        // Counts keep their values.
        let line = r#"{"ts":1,"prompt_tokens":12,"max_tokens":"4096","#;
        assert_eq!(excerpt(line.as_bytes()), line);
    }

    #[test]
    fn a_key_cut_by_the_excerpt_end_is_redacted_whole() {
        // The key starts 23 bytes before the cut: too few for its shape.
        let key = format!("ghp_{}", noise(36));
        let pad = "x".repeat(EXCERPT_BYTES - 30);
        let line = format!(r#"{{"m":"{pad} {key} more"#);
        let out = excerpt(line.as_bytes());
        assert!(out.len() <= EXCERPT_BYTES);
        assert!(!out.contains(&key[..8]), "{out}");
        // A line with nothing to hide keeps its first bytes.
        let line = format!(r#"{{"m":"{pad} é{}"#, "y".repeat(300));
        let out = excerpt(line.as_bytes());
        assert!(line.starts_with(&out) && out.len() <= EXCERPT_BYTES);
    }
}
