//! The normalized record: one LLM API call, whatever format it was logged in.

use std::fmt;

use crate::text::Shared;

/// The log format a line was recognised as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Format {
    /// A flat structured-logging event (structlog, pino, zap, slog...).
    FlatEvent,
    /// `{"request": {...}, "response": {...}}` with the provider's own body.
    Envelope,
    /// LiteLLM's standard logging payload.
    LiteLlm,
    /// An OpenTelemetry GenAI span or log record (OTLP JSON or flattened).
    OtelGenAi,
}

impl Format {
    /// Every format, in a stable order: the order of declaration.
    pub const ALL: [Format; 4] = [
        Format::FlatEvent,
        Format::Envelope,
        Format::LiteLlm,
        Format::OtelGenAi,
    ];

    /// The format's place in [`Format::ALL`], which lists the variants in
    /// the order they are declared.
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The stable snake_case name used in outputs.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Format::FlatEvent => "flat_event",
            Format::Envelope => "envelope",
            Format::LiteLlm => "litellm",
            Format::OtelGenAi => "otel_genai",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The shape of the provider error body a record carried, when one was seen.
///
/// This is evidence for the classifier's "error body shape" provider rule; it
/// names the envelope, not the provider (many APIs copy OpenAI's shape).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BodyShape {
    /// `{"error": {"message", "type", "param", "code"}}`.
    OpenAi,
    /// `{"type": "error", "error": {"type", "message"}, "request_id"}`.
    Anthropic,
    /// `{"error": {"code": <int>, "message", "status": "<GRPC_STATUS>"}}`, also as a one-element array.
    Google,
    /// `{"message": ...}` with the exception name in `x-amzn-ErrorType`.
    Bedrock,
    /// `{"object": "error", "message", "type", "code"}`.
    Mistral,
    /// `{"error": {"code": <int>, "message", "metadata"}}`.
    OpenRouter,
    /// A text body or an SDK's string rendering of the error.
    Text,
}

impl BodyShape {
    /// The stable snake_case name used in outputs.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            BodyShape::OpenAi => "openai",
            BodyShape::Anthropic => "anthropic",
            BodyShape::Google => "google",
            BodyShape::Bedrock => "bedrock",
            BodyShape::Mistral => "mistral",
            BodyShape::OpenRouter => "openrouter",
            BodyShape::Text => "text",
        }
    }
}

/// What tied a call to the other attempts of one operation (one user
/// request, however many times it was sent), in the order it is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum GroupedBy {
    /// An OpenTelemetry trace: GenAI spans of one trace under one parent.
    Trace,
    /// LiteLLM's `trace_id`, which its Router keeps across the retries and
    /// fallbacks of one call.
    LiteLlmCall,
    /// A key the client sets once per operation and repeats on each retry:
    /// `Idempotency-Key` (as Stripe-style APIs and gateways take it), an
    /// `operation_id` or a client request id.
    IdempotencyKey,
    /// The same request id on several attempts.
    RequestId,
    /// No id: a logged attempt number (`attempt`, `x-stainless-retry-count`)
    /// following a failed attempt of the same service in the same file.
    Heuristic,
    /// Nothing ties the call to another: it is an operation by itself.
    Single,
    /// The operation id a row of records.parquet holds: how `faultline
    /// report` groups the calls read back (an earlier run grouped them).
    Recorded,
}

impl GroupedBy {
    /// Every grouping, most trusted first.
    pub const ALL: [GroupedBy; 7] = [
        GroupedBy::Trace,
        GroupedBy::LiteLlmCall,
        GroupedBy::IdempotencyKey,
        GroupedBy::RequestId,
        GroupedBy::Heuristic,
        GroupedBy::Single,
        GroupedBy::Recorded,
    ];

    /// The stable snake_case name used in outputs.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            GroupedBy::Trace => "trace",
            GroupedBy::LiteLlmCall => "litellm_call",
            GroupedBy::IdempotencyKey => "idempotency_key",
            GroupedBy::RequestId => "request_id",
            GroupedBy::Heuristic => "heuristic",
            GroupedBy::Single => "single",
            GroupedBy::Recorded => "recorded",
        }
    }

    /// The grouping named `name` ([`GroupedBy::as_str`]).
    #[must_use]
    pub fn from_name(name: &str) -> Option<GroupedBy> {
        GroupedBy::ALL.into_iter().find(|g| g.as_str() == name)
    }
}

/// The id a call shares with the other attempts of its operation: a hash of
/// the logged id (the text itself is not kept), and what the id was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OperationKey {
    pub by: GroupedBy,
    pub hash: u64,
}

impl OperationKey {
    /// The key of the id `text`, logged as `by` says.
    #[must_use]
    pub fn of(by: GroupedBy, text: &str) -> OperationKey {
        OperationKey {
            by,
            hash: stable_hash(text.as_bytes()),
        }
    }
}

/// FNV-1a, 64 bits, then a finalizing mix: the same value on every
/// platform and version, so that ids derived from it are stable.
#[must_use]
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix64(h)
}

/// SplitMix64's finalizer: spreads every input bit over the output.
#[must_use]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Text that is short in practice, such as a request id: held inline up to
/// 36 bytes (OpenAI's `req_` and 32 hex digits, Anthropic's `req_` ids, a
/// UUID), on the heap beyond. Logs carry one request id per call, so this
/// saves an allocation and a free per call. It derefs to `str`.
pub type ShortText = smallstr::SmallString<[u8; 36]>;

/// One LLM API call, normalized from any supported log format.
///
/// Strings are owned and already redacted: no API key or bearer token survives
/// in any field. The low-cardinality ones (service, provider, model, host, key
/// fingerprint) are [`Shared`] texts, interned. The key identity is kept only as [`Record::key_fp`], a keyed
/// fingerprint.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Record {
    /// Start of the call, milliseconds since the Unix epoch (UTC).
    pub ts_ms: i64,
    /// The file the line came from (`-` for standard input).
    pub source_file: Shared,
    /// 1-based line number in the (decompressed) file.
    pub source_line: u64,
    /// Byte offset of the line in the (decompressed) file.
    pub byte_offset: u64,
    /// The format the line was recognised as.
    pub format: Option<Format>,
    /// `x-request-id`, `request-id`, `id`, ...
    pub request_id: Option<ShortText>,
    /// The calling service or application.
    pub service: Option<Shared>,
    /// The provider as the log names it (`openai`, `anthropic`, `bedrock`, ...), unnormalized.
    pub provider_hint: Option<Shared>,
    /// The requested model (the response model when no request model was logged).
    pub model: Option<Shared>,
    /// The API host, e.g. `api.openai.com`.
    pub host: Option<Shared>,
    /// Keyed fingerprint of the API key or key id (`kf_` + 16 hex digits).
    pub key_fp: Option<Shared>,
    /// HTTP status of the response; `None` when no response came back.
    pub http_status: Option<u16>,
    /// The provider's (or client's) error type string.
    pub error_type: Option<String>,
    /// The provider's error code string.
    pub error_code: Option<String>,
    /// The error message, redacted.
    pub error_message: Option<String>,
    /// The shape of the provider error body, when one was seen.
    pub body_shape: Option<BodyShape>,
    /// Call latency in milliseconds.
    pub latency_ms: Option<f64>,
    /// Prompt (input) tokens.
    pub prompt_tokens: Option<u32>,
    /// Completion (output) tokens.
    pub completion_tokens: Option<u32>,
    /// Requested `max_tokens`.
    pub max_tokens: Option<u32>,
    /// Retry number, 0 = first try.
    pub attempt: Option<u16>,
    /// Whether the call streamed.
    pub stream: Option<bool>,
    /// Client timeout in milliseconds, when logged.
    pub timeout_ms: Option<u32>,
    /// A 2xx response with no choices or no content.
    pub empty_response: bool,
    /// Retry-After in seconds, from a header or the body.
    pub retry_after_s: Option<f64>,
    /// Number of plaintext key-shaped strings found in the line (never reproduced).
    pub secrets_found: u16,
    /// What ties the call to the other attempts of its operation, when the
    /// line holds an id for it.
    pub operation_key: Option<OperationKey>,
    /// What the call cost in US dollars, as the log states it (LiteLLM's
    /// `response_cost`, a `cost_usd` field).
    pub cost_usd: Option<f64>,
    /// The HTTP requests the call made, when its log shows more than one:
    /// an SDK's own retries, as the HTTP client spans under one GenAI span.
    pub http_attempts: Option<HttpAttempts>,
}

/// The HTTP requests behind one call, when there were several (all but the
/// last failed: SDKs retry only failures).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpAttempts {
    /// Requests sent, the last one included.
    pub count: u16,
    /// The status of the first request; `None` when it got no response (a
    /// timeout, a refused connection).
    pub first_status: Option<u16>,
    /// Start of the last request (ms since the epoch), when logged.
    pub last_start_ms: Option<i64>,
}

impl Record {
    /// A record of the line at `source_line` (`byte_offset`) of
    /// `source_file`, every other field empty.
    ///
    /// The same as `Record { source_file, source_line, byte_offset,
    /// ..Record::default() }`, without building a default file name first.
    #[must_use]
    pub fn at(source_file: Shared, source_line: u64, byte_offset: u64) -> Record {
        Record {
            ts_ms: 0,
            source_file,
            source_line,
            byte_offset,
            format: None,
            request_id: None,
            service: None,
            provider_hint: None,
            model: None,
            host: None,
            key_fp: None,
            http_status: None,
            error_type: None,
            error_code: None,
            error_message: None,
            body_shape: None,
            latency_ms: None,
            prompt_tokens: None,
            completion_tokens: None,
            max_tokens: None,
            attempt: None,
            stream: None,
            timeout_ms: None,
            empty_response: false,
            retry_after_s: None,
            secrets_found: 0,
            operation_key: None,
            cost_usd: None,
            http_attempts: None,
        }
    }
}

/// Fills `slot` with `value` unless an earlier field already did: the first
/// field of a record's aliases to be read wins.
pub(crate) fn set_if_none<T>(slot: &mut Option<T>, value: Option<T>) {
    if slot.is_none() {
        *slot = value;
    }
}

#[cfg(test)]
mod tests {
    use super::Format;

    #[test]
    fn each_format_counts_in_its_own_place() {
        for (at, format) in Format::ALL.into_iter().enumerate() {
            assert_eq!(format.index(), at, "{format}");
        }
    }
}
