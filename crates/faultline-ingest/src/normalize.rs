//! One line of JSON to normalized records, whatever format it was logged in.
//!
//! Detection looks at the keys of the top-level object:
//! `resourceSpans`/`resourceLogs` or `gen_ai.*` keys -> OpenTelemetry GenAI;
//! `request`/`response` -> envelope; LiteLLM's own keys -> LiteLLM;
//! anything else with call fields -> flat event.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// Short strings from the logs are looked up on every line; SipHash costs more
/// than the lookup. A cache never holds attacker-chosen keys in bulk (it stops
/// growing at [`CACHE_ENTRIES`]), so flooding it buys nothing.
type FastHash = foldhash::fast::RandomState;
use std::ops::Deref;
use std::sync::{Arc, LazyLock};

use crate::json::{self, ErrorKind, Raw};
use regex::Regex;

use crate::quarantine::Reason;
use crate::record::{BodyShape, Format, Record};
use crate::secret::{self, Fingerprinter};
use crate::spans::SpanLinks;
use crate::text::{same_text, Shared};
use crate::time::{self, TsError};
use crate::view::{as_bool, as_f64, as_str, is_empty, Obj, F};

/// How deep body parsing follows nested errors and JSON held in strings.
const MAX_BODY_DEPTH: u8 = 4;

/// Error messages longer than this are cut (at a character boundary).
const MAX_MESSAGE_CHARS: usize = 2048;

/// What normalization needs besides the line; one per chunk (not shared
/// between threads), so its caches need no locks.
#[derive(Debug)]
pub(crate) struct Ctx<'f> {
    fingerprinter: &'f Fingerprinter,
    /// Keys repeat on almost every line: hash each once per chunk.
    fingerprints: RefCell<HashMap<Box<str>, Shared, FastHash>>,
    /// Services, providers, models and hosts repeat too: one look into the
    /// process-wide interner each per chunk.
    strings: RefCell<HashMap<Box<str>, Shared, FastHash>>,
    /// The interned text last found at each of a few slots, picked from the
    /// text's length and two of its bytes. Lines in a chunk repeat the texts
    /// of the lines before, so most lookups end here, with one comparison
    /// instead of a hash and a probe of `strings`.
    recent: [Cell<&'static str>; RECENT],
    /// The last key fingerprinted and its fingerprint: a chunk's lines
    /// mostly carry the key of the line before.
    recent_key: RefCell<Last>,
    /// The last URL read for its host, and that host: the same endpoint is
    /// logged line after line.
    recent_url: RefCell<Last>,
    /// The OpenTelemetry spans of the chunk, joined when it is done.
    pub(crate) spans: RefCell<SpanLinks>,
}

/// The last text a lookup was made for, and its interned answer.
#[derive(Debug, Default)]
struct Last {
    text: String,
    answer: Option<Shared>,
}

impl Last {
    /// The answer kept for `text`, if it is the last text.
    fn answer(&self, text: &str) -> Option<Shared> {
        self.answer
            .as_ref()
            .filter(|_| same_text(&self.text, text))
            .cloned()
    }

    /// Keeps `answer` for `text` when it is interned (a counted answer may
    /// be for a text seen once).
    fn keep(&mut self, text: &str, answer: &Shared) {
        if answer.is_static() {
            self.text.clear();
            self.text.push_str(text);
            self.answer = Some(answer.clone());
        }
    }
}

/// Slots of [`Ctx::recent`] (a power of two).
const RECENT: usize = 16;

/// The slot of [`Ctx::recent`] for a text that is not empty.
fn recent_slot(text: &[u8]) -> usize {
    let (len, last, middle) = (text.len(), text[text.len() - 1], text[text.len() / 2]);
    (len.wrapping_mul(5) ^ usize::from(last) ^ (usize::from(middle) << 1)) & (RECENT - 1)
}

/// Entries a per-chunk cache holds at most; past that, values are not cached.
const CACHE_ENTRIES: usize = 4096;

impl<'f> Ctx<'f> {
    pub(crate) fn new(fingerprinter: &'f Fingerprinter) -> Ctx<'f> {
        Ctx {
            fingerprinter,
            fingerprints: RefCell::new(HashMap::with_hasher(FastHash::default())),
            strings: RefCell::new(HashMap::with_hasher(FastHash::default())),
            recent: std::array::from_fn(|_| Cell::new("")),
            recent_key: RefCell::default(),
            recent_url: RefCell::default(),
            spans: RefCell::default(),
        }
    }

    fn fingerprint(&self, key: &str) -> Shared {
        let mut recent = self.recent_key.borrow_mut();
        if let Some(fp) = recent.answer(key) {
            return fp;
        }
        let mut cache = self.fingerprints.borrow_mut();
        if let Some(fp) = cache.get_mut(key) {
            let fp = promote(fp);
            recent.keep(key, &fp);
            return fp;
        }
        let fp = Shared::from(self.fingerprinter.fingerprint(key));
        if cache.len() < CACHE_ENTRIES {
            cache.insert(Box::from(key), fp.clone());
        }
        fp
    }

    /// The host of `url` ([`host_of`]), interned.
    pub(crate) fn host(&self, url: &str) -> Option<Shared> {
        let mut recent = self.recent_url.borrow_mut();
        if let Some(host) = recent.answer(url) {
            return Some(host);
        }
        let host = self.intern(host_of(url));
        if let Some(host) = &host {
            recent.keep(url, host);
        }
        host
    }

    /// The text trimmed and shared; `None` when it is absent or blank.
    pub(crate) fn intern(&self, text: Option<Cow<'_, str>>) -> Option<Shared> {
        let text = text?;
        let text = trim(&text);
        if text.is_empty() {
            return None;
        }
        let recent = &self.recent[recent_slot(text.as_bytes())];
        if same_text(recent.get(), text) {
            return Some(Shared::Static(recent.get()));
        }
        let mut cache = self.strings.borrow_mut();
        if let Some(shared) = cache.get_mut(text) {
            let shared = promote(shared);
            if let Shared::Static(kept) = shared {
                recent.set(kept);
            }
            return Some(shared);
        }
        let shared = Shared::from(text);
        if cache.len() < CACHE_ENTRIES {
            cache.insert(Box::from(text), shared.clone());
        }
        Some(shared)
    }
}

/// A cached text seen again: interned process-wide from its second
/// sighting in a chunk, so that a text unique to one line (a per-request
/// key hash, say) never takes the interner's lock or its budget.
fn promote(cached: &mut Shared) -> Shared {
    if !cached.is_static() {
        *cached = Shared::intern(cached);
    }
    cached.clone()
}

/// Where the line sits, copied into its records.
#[derive(Debug, Clone)]
pub(crate) struct Origin<'f> {
    pub(crate) file: &'f Arc<str>,
    /// The file's name as records hold it.
    pub(crate) name: &'f Shared,
    pub(crate) line: u64,
    pub(crate) offset: u64,
}

/// A line that could not be normalized.
#[derive(Debug)]
pub(crate) struct Rejection {
    pub(crate) reason: Reason,
    pub(crate) detail: Option<String>,
}

impl From<Reason> for Rejection {
    fn from(reason: Reason) -> Self {
        Rejection {
            reason,
            detail: None,
        }
    }
}

pub(crate) fn json_rejection(err: &json::Error, at_eof_without_newline: bool) -> Rejection {
    let reason = match err.kind {
        ErrorKind::Eof if at_eof_without_newline => Reason::TruncatedLine,
        ErrorKind::NotObject => Reason::NotAnObject,
        ErrorKind::Eof | ErrorKind::Syntax => Reason::InvalidJson,
    };
    Rejection {
        reason,
        detail: Some(err.to_string()),
    }
}

/// Normalizes one line (without its newline) and appends its records to `out`.
///
/// `last_unterminated` says the line is the input's last and had no newline,
/// which turns an end-of-input parse error into [`Reason::TruncatedLine`].
pub(crate) fn normalize_line(
    line: &[u8],
    last_unterminated: bool,
    origin: &Origin<'_>,
    ctx: &Ctx<'_>,
    out: &mut Vec<Record>,
) -> Result<(), Rejection> {
    // The SIMD check says only whether; the standard one, on the rare bad
    // line, says where.
    let text = simdutf8::basic::from_utf8(line).map_err(|_| {
        let at = std::str::from_utf8(line)
            .err()
            .map_or(0, |e| e.valid_up_to());
        Rejection {
            reason: Reason::InvalidUtf8,
            detail: Some(format!("invalid utf-8 at byte {at}")),
        }
    })?;
    let mut obj = Obj::empty(text);
    let line_scan = obj
        .read_line()
        .map_err(|e| json_rejection(&e, last_unterminated))?;
    // A key written with JSON escapes (`\u002d` for `-`) shows only once decoded.
    let escaped = line_scan
        .unicode_escape()
        .unwrap_or_else(|| UNICODE_ESCAPE.find(line).is_some());
    let scan = secret::scan(line, escaped);
    let secrets = scan.keys.min(usize::from(u16::MAX)) as u16;
    let start = out.len();
    if obj.has(F::Otlp) || obj.marks.gen_ai || attributes_have_gen_ai(&obj) || is_http_span(&obj) {
        crate::otel::normalize(text, origin, ctx, out)?;
    } else {
        // Filled where it will stay: a record is a few hundred bytes, and
        // building it aside would copy it once more per line.
        out.push(base_record(origin));
        let rec = &mut out[start];
        // LiteLLM's payload always has a `response` (`{}` or null on a
        // failure) but never a `request`: its own keys decide before an
        // envelope's.
        let filled = if obj.has(F::Request) {
            rec.format = Some(Format::Envelope);
            envelope(&obj, ctx, rec)
        } else if obj.has(F::CustomLlmProvider)
            || obj.has(F::ErrorStr)
            || obj.has(F::ErrorInformation)
            || obj.has(F::LiteLlmMarker)
        {
            rec.format = Some(Format::LiteLlm);
            litellm(&obj, ctx, rec)
        } else if obj.has(F::Response) {
            rec.format = Some(Format::Envelope);
            envelope(&obj, ctx, rec)
        } else {
            rec.format = Some(Format::FlatEvent);
            flat(&obj, ctx, rec)
        };
        if let Err(reason) = filled {
            out.truncate(start);
            return Err(reason.into());
        }
    }
    // The line's keys are counted once, on its first record: an OTLP export
    // line holding many spans holds its keys once.
    if let Some(first) = out.get_mut(start) {
        first.secrets_found = secrets;
    }
    for rec in &mut out[start..] {
        if scan.shaped > 0 || escaped {
            redact_record(rec);
        }
    }
    Ok(())
}

/// For lines the tape did not read (it reports `\u` escapes itself). Built
/// once: `memmem::find` would build its searcher on every line.
static UNICODE_ESCAPE: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\\u"));

/// A span of one HTTP request under another span (an HTTP client
/// instrumentation's): a call's attempt, whose parent is the call.
fn is_http_span(obj: &Obj<'_>) -> bool {
    obj.has(F::ParentSpan)
        && obj
            .with_obj(F::Attributes, |attrs| {
                attrs.has(F::StatusCode) || attrs.has(F::Host)
            })
            .unwrap_or(false)
}

fn attributes_have_gen_ai(obj: &Obj<'_>) -> bool {
    obj.with_obj(F::Attributes, |attrs| attrs.marks.gen_ai)
        .unwrap_or(false)
}

/// `text` without surrounding whitespace, as `str::trim` gives it, with a
/// shortcut for the usual text that starts and ends with a visible ASCII
/// character (`str::trim` decodes a character at each end).
pub(crate) fn trim(text: &str) -> &str {
    let visible = |b: Option<&u8>| b.is_some_and(|&b| b > b' ' && b < 0x80);
    if visible(text.as_bytes().first()) && visible(text.as_bytes().last()) {
        text
    } else {
        text.trim()
    }
}

pub(crate) fn base_record(origin: &Origin<'_>) -> Record {
    Record::at(origin.name.clone(), origin.line, origin.offset)
}

// ---------------------------------------------------------------------------
// Field helpers shared by the formats

/// The trimmed text, as an owned `String` or [`ShortText`], when not empty.
pub(crate) fn owned<T: for<'a> From<&'a str>>(text: Option<Cow<'_, str>>) -> Option<T> {
    let text = text?;
    let trimmed = trim(&text);
    (!trimmed.is_empty()).then(|| T::from(trimmed))
}

/// A redacted, length-bounded copy of an error message.
pub(crate) fn message(text: &str) -> Option<String> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    // Redact before cutting: a key cut in two would slip past the patterns.
    let text = secret::redact(text);
    let cut = match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((at, _)) => &text[..at],
        None => &text,
    };
    Some(cut.to_owned())
}

/// Replaces key-shaped text in every text field of a record. Messages are
/// redacted as they are read; this covers the fields no one expects a key in
/// (service, model, request id, error type...), where one still turns up.
fn redact_record(rec: &mut Record) {
    fn owned<T: Deref<Target = str> + for<'a> From<&'a str>>(slot: &mut Option<T>) {
        if let Some(text) = slot {
            if let Cow::Owned(clean) = secret::redact(text) {
                *text = T::from(&clean);
            }
        }
    }
    fn shared(slot: &mut Option<Shared>) {
        if let Some(text) = slot {
            if let Cow::Owned(clean) = secret::redact(text) {
                *text = Shared::from(clean);
            }
        }
    }
    owned(&mut rec.request_id);
    owned(&mut rec.error_type);
    owned(&mut rec.error_code);
    owned(&mut rec.error_message);
    shared(&mut rec.service);
    shared(&mut rec.provider_hint);
    shared(&mut rec.model);
    shared(&mut rec.host);
}

pub(crate) fn set_if_none<T>(slot: &mut Option<T>, value: Option<T>) {
    if slot.is_none() {
        *slot = value;
    }
}

pub(crate) fn to_u32(value: Option<f64>) -> Option<u32> {
    value
        .filter(|v| *v >= 0.0 && *v <= f64::from(u32::MAX))
        .map(|v| v as u32)
}

pub(crate) fn to_u16(value: Option<f64>) -> Option<u16> {
    value
        .filter(|v| *v >= 0.0 && *v <= f64::from(u16::MAX))
        .map(|v| v as u16)
}

pub(crate) fn to_status(value: Option<f64>) -> Option<u16> {
    value
        .filter(|v| (100.0..=599.0).contains(v) && v.fract() == 0.0)
        .map(|v| v as u16)
}

/// The end of a URL's scheme, searched for once per call of [`host_of`]
/// with a searcher built once (as [`UNICODE_ESCAPE`]).
static SCHEME_END: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"://"));

/// The host of a URL, or the text itself when it is already a host.
/// Borrowed unless it has to be lower-cased.
pub(crate) fn host_of(url: &str) -> Option<Cow<'_, str>> {
    let rest = trim(url);
    // Byte searches: `str::split_once("://")` sets up a substring searcher
    // on every call, and this runs for nearly every line.
    let rest = SCHEME_END
        .find(rest.as_bytes())
        .map_or(rest, |at| &rest[at + 3..]);
    let host = memchr::memchr3(b'/', b'?', b'#', rest.as_bytes()).map_or(rest, |at| &rest[..at]);
    // Drop credentials a URL may carry (`user:key@host`).
    let host = memchr::memrchr(b'@', host.as_bytes()).map_or(host, |at| &host[at + 1..]);
    let host = trim(host);
    if host.is_empty() {
        None
    } else if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Some(Cow::Owned(host.to_ascii_lowercase()))
    } else {
        Some(Cow::Borrowed(host))
    }
}

pub(crate) fn ts_of(raw: Raw<'_>) -> Result<i64, Reason> {
    let result = match raw.get().as_bytes().first() {
        Some(b'"') => as_str(raw).map_or(Err(TsError::Unparseable), |t| time::parse_ts_str(&t)),
        Some(b'0'..=b'9') => as_f64(raw).map_or(Err(TsError::Unparseable), time::epoch_to_ms),
        _ => Err(TsError::Unparseable),
    };
    result.map_err(|e| match e {
        TsError::Unparseable => Reason::BadTimestamp,
        TsError::OutOfRange => Reason::TimestampOutOfRange,
    })
}

/// The first timestamp among `fields`; missing when none is present.
pub(crate) fn timestamp(obj: &Obj<'_>, fields: &[F]) -> Result<i64, Reason> {
    for &field in fields {
        if let Some(raw) = obj.get(field).filter(|r| r.get() != "null") {
            return ts_of(raw);
        }
    }
    Err(Reason::MissingTimestamp)
}

fn fingerprint(obj: &Obj<'_>, ctx: &Ctx<'_>) -> Option<Shared> {
    let key = obj.str(F::Key)?;
    let key = trim(&key);
    (!key.is_empty()).then(|| ctx.fingerprint(key))
}

/// Fields every format may carry at its top level.
pub(crate) fn common(obj: &Obj<'_>, ctx: &Ctx<'_>, rec: &mut Record) {
    set_if_none(&mut rec.request_id, owned(obj.str(F::RequestId)));
    set_if_none(&mut rec.service, ctx.intern(obj.str(F::Service)));
    set_if_none(&mut rec.provider_hint, ctx.intern(obj.str(F::Provider)));
    set_if_none(&mut rec.model, ctx.intern(obj.str(F::Model)));
    if rec.host.is_none() {
        rec.host = obj.str(F::Host).and_then(|url| ctx.host(&url));
    }
    set_if_none(&mut rec.key_fp, fingerprint(obj, ctx));
    set_if_none(&mut rec.http_status, to_status(obj.f64(F::StatusCode)));
    set_if_none(
        &mut rec.latency_ms,
        obj.f64(F::LatencyMs)
            .or_else(|| obj.f64(F::LatencyS).map(|s| s * 1e3)),
    );
    set_if_none(&mut rec.prompt_tokens, to_u32(obj.f64(F::PromptTokens)));
    set_if_none(
        &mut rec.completion_tokens,
        to_u32(obj.f64(F::CompletionTokens)),
    );
    set_if_none(&mut rec.max_tokens, to_u32(obj.f64(F::MaxTokens)));
    set_if_none(&mut rec.attempt, to_u16(obj.f64(F::Attempt)));
    set_if_none(&mut rec.stream, obj.get(F::Stream).and_then(as_bool));
    set_if_none(
        &mut rec.timeout_ms,
        to_u32(
            obj.f64(F::TimeoutMs)
                .or_else(|| obj.f64(F::TimeoutS).map(|s| s * 1e3)),
        ),
    );
    set_if_none(&mut rec.retry_after_s, retry_after(obj));
    obj.with_obj(F::Usage, |usage| tokens_of_usage(usage, rec));
}

/// Token counts of a `usage` object.
fn tokens_of_usage(usage: &Obj<'_>, rec: &mut Record) {
    set_if_none(&mut rec.prompt_tokens, to_u32(usage.f64(F::PromptTokens)));
    set_if_none(
        &mut rec.completion_tokens,
        to_u32(usage.f64(F::CompletionTokens)),
    );
}

fn retry_after(obj: &Obj<'_>) -> Option<f64> {
    obj.f64(F::RetryAfterMs)
        .map(|ms| ms / 1e3)
        .or_else(|| obj.f64(F::RetryAfterS))
        .filter(|s| s.is_finite() && *s >= 0.0)
}

pub(crate) fn finish(obj: &Obj<'_>, rec: &mut Record) -> Result<(), Reason> {
    if rec.model.is_none() {
        rec.model = owned(obj.str(F::ModelFallback));
    }
    let has_call_field = rec.http_status.is_some()
        || rec.model.is_some()
        || rec.provider_hint.is_some()
        || rec.host.is_some()
        || rec.error_message.is_some()
        || rec.error_type.is_some()
        || rec.empty_response;
    if has_call_field {
        Ok(())
    } else {
        Err(Reason::NotACall)
    }
}

fn mark_empty_if_2xx(rec: &mut Record, empty: bool) {
    let ok_status = rec.http_status.is_none_or(|s| (200..300).contains(&s));
    if empty && ok_status && rec.error_message.is_none() && rec.error_type.is_none() {
        rec.empty_response = true;
    }
}

// ---------------------------------------------------------------------------
// Flat event

fn flat(obj: &Obj<'_>, ctx: &Ctx<'_>, rec: &mut Record) -> Result<(), Reason> {
    rec.ts_ms = timestamp(obj, &[F::Ts, F::StartTime])?;
    common(obj, ctx, rec);
    if rec.http_status.is_none() {
        rec.http_status = to_status(obj.f64(F::Status));
    }
    if let Some(raw) = obj.get(F::Error) {
        error_value(raw, rec);
    }
    set_if_none(&mut rec.error_type, owned(obj.str(F::ErrorType)));
    set_if_none(&mut rec.error_code, owned(obj.str(F::ErrorCode)));
    if rec.error_message.is_none() && (rec.error_type.is_some() || rec.error_code.is_some()) {
        rec.error_message = obj.str(F::Message).and_then(|m| message(&m));
    }
    let empty =
        obj.get(F::Choices).is_some_and(is_empty) || obj.get(F::Content).is_some_and(is_empty);
    mark_empty_if_2xx(rec, empty);
    finish(obj, rec)
}

/// An `error` field: a string (possibly an SDK's rendering of a body) or an object.
pub(crate) fn error_value(raw: Raw<'_>, rec: &mut Record) {
    match raw.get().as_bytes().first() {
        Some(b'{' | b'[') => body(raw, 0, rec),
        Some(b'"') => {
            if let Some(text) = as_str(raw) {
                error_text(&text, rec);
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// Request/response envelope

fn envelope(obj: &Obj<'_>, ctx: &Ctx<'_>, rec: &mut Record) -> Result<(), Reason> {
    rec.ts_ms = timestamp(obj, &[F::Ts, F::StartTime])?;
    common(obj, ctx, rec);
    obj.with_obj(F::Request, |request| {
        if let Some(url) = request.str(F::Host) {
            set_if_none(&mut rec.host, ctx.host(&url));
        }
        request.with_obj(F::Headers, |headers| {
            set_if_none(&mut rec.key_fp, fingerprint(headers, ctx));
            set_if_none(&mut rec.request_id, owned(headers.str(F::RequestId)));
        });
        request.with_obj(F::Body, |req_body| {
            set_if_none(&mut rec.model, ctx.intern(req_body.str(F::Model)));
            set_if_none(&mut rec.max_tokens, to_u32(req_body.f64(F::MaxTokens)));
            set_if_none(&mut rec.stream, req_body.get(F::Stream).and_then(as_bool));
        });
        set_if_none(&mut rec.model, ctx.intern(request.str(F::Model)));
        set_if_none(
            &mut rec.timeout_ms,
            to_u32(
                request
                    .f64(F::TimeoutMs)
                    .or_else(|| request.f64(F::TimeoutS).map(|s| s * 1e3)),
            ),
        );
    });
    obj.with_obj(F::Response, |response| {
        set_if_none(
            &mut rec.http_status,
            to_status(
                response
                    .f64(F::Status)
                    .or_else(|| response.f64(F::StatusCode)),
            ),
        );
        let amzn_error_type = response
            .with_obj(F::Headers, |headers| {
                // The provider's request id beats the client's own.
                if let Some(id) = owned(headers.str(F::RequestId)) {
                    rec.request_id = Some(id);
                }
                set_if_none(&mut rec.retry_after_s, retry_after(headers));
                headers.str(F::AmznErrorType).and_then(|t| {
                    owned::<String>(Some(Cow::Borrowed(t.split(':').next().unwrap_or(&t))))
                })
            })
            .flatten();
        if let Some(raw) = response.get(F::Body) {
            body(raw, 0, rec);
        }
        if let Some(kind) = amzn_error_type {
            rec.error_type = Some(kind);
            rec.body_shape = Some(BodyShape::Bedrock);
        }
        if let Some(raw) = response.get(F::Error) {
            error_value(raw, rec);
        }
    });
    if let Some(raw) = obj.get(F::Error) {
        // No response came back: this is what the client saw.
        error_value(raw, rec);
    }
    set_if_none(&mut rec.error_type, owned(obj.str(F::ErrorType)));
    finish(obj, rec)
}

/// A provider response body: an error shape, a success shape, or text.
/// `depth` counts the levels followed so far (nested arrays and errors, JSON in
/// strings); past [`MAX_BODY_DEPTH`] the rest is left as it is.
pub(crate) fn body(raw: Raw<'_>, depth: u8, rec: &mut Record) {
    if depth > MAX_BODY_DEPTH {
        return;
    }
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'{') => {
            Obj::read(raw, |obj| body_object(obj, depth, rec));
        }
        Some(b'[') => {
            // Gemini via Code Assist / Vertex streaming: `[{"error": {...}}]`.
            if let Some(first) = raw.items().next() {
                body(first, depth + 1, rec);
                if rec.body_shape == Some(BodyShape::OpenAi) {
                    rec.body_shape = Some(BodyShape::Google);
                }
            }
        }
        Some(b'"') => {
            if let Some(inner) = as_str(raw) {
                body_text(&inner, depth, rec);
            }
        }
        _ => {}
    }
}

fn body_text(text: &str, depth: u8, rec: &mut Record) {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        if let Ok(inner) = Raw::parse(trimmed) {
            body(inner, depth + 1, rec);
            return;
        }
    }
    error_text(text, rec);
}

fn body_object(obj: &Obj<'_>, depth: u8, rec: &mut Record) {
    if rec.model.is_none() {
        rec.model = owned(obj.str(F::Model));
    }
    obj.with_obj(F::Usage, |usage| tokens_of_usage(usage, rec));
    if let Some(error) = live_error(obj) {
        if error.get() == "true" {
            // `{"error": true, "message": "..."}`: a flag beside the words.
            let text = obj.str(F::Message).unwrap_or(Cow::Borrowed("error"));
            error_text(&text, rec);
            return;
        }
        let read = Obj::read(error, |err| {
            let shape = if obj.str(F::ErrorType).as_deref() == Some("error") {
                BodyShape::Anthropic
            } else if err.get(F::Status).is_some_and(|s| s.get().starts_with('"'))
                || err.has(F::Details)
                || err.has(F::Errors)
            {
                BodyShape::Google
            } else if err.has(F::Metadata) {
                BodyShape::OpenRouter
            } else {
                BodyShape::OpenAi
            };
            rec.body_shape = Some(shape);
            error_object(err, shape, depth, rec);
            if rec.request_id.is_none() {
                rec.request_id = owned(obj.str(F::RequestId));
            }
        });
        if read.is_none() {
            if let Some(text) = as_str(error) {
                rec.body_shape = Some(BodyShape::Text);
                error_text(&text, rec);
            }
        }
        return;
    }
    if obj.str(F::Object).as_deref() == Some("error") {
        rec.body_shape = Some(BodyShape::Mistral);
        error_object(obj, BodyShape::Mistral, depth, rec);
        return;
    }
    if let Some(detail) = obj.str(F::Detail) {
        rec.body_shape = Some(BodyShape::Text);
        rec.error_message = message(&detail);
        return;
    }
    if let Some(response) = obj.get(F::Response).filter(|r| has_error(*r)) {
        // The Responses API's `response.failed` event: the failed response
        // object, its `error` inside.
        body(response, depth + 1, rec);
        return;
    }
    let blocked = obj
        .with_obj(F::PromptFeedback, |feedback| {
            owned::<String>(feedback.str(F::BlockReason))
        })
        .flatten();
    if let Some(reason) = blocked {
        // Gemini refused the prompt: a block reason and no candidates.
        rec.body_shape = Some(BodyShape::Google);
        rec.error_type = Some("prompt_blocked".to_owned());
        rec.error_message = message(&format!("prompt blocked: blockReason {reason}"));
        return;
    }
    let success_shape = obj.has(F::Choices) || obj.has(F::Content);
    if !success_shape {
        if let Some(msg) = obj.str(F::Message) {
            if obj.has(F::Metadata) {
                // OpenRouter's error object delivered inside an HTTP 200.
                rec.body_shape = Some(BodyShape::OpenRouter);
                error_object(obj, BodyShape::OpenRouter, depth, rec);
                return;
            }
            // Bedrock's `{"message": "..."}`; the exception name comes from a header.
            rec.body_shape = Some(BodyShape::Bedrock);
            rec.error_message = message(&msg);
            set_if_none(&mut rec.error_type, owned(obj.str(F::ErrorType)));
            return;
        }
        if let Some(name) = obj.str(F::Event).filter(|n| n.ends_with("Exception")) {
            // An AWS SDK's serialized exception: `{"name": "ThrottlingException", "$metadata": ...}`.
            rec.body_shape = Some(BodyShape::Bedrock);
            rec.error_type = Some(name.into_owned());
            return;
        }
    }
    let choices = obj.get(F::Choices).map(|c| {
        if is_empty(c) {
            Choices::Empty
        } else {
            read_choices(c)
        }
    });
    if let Some(Choices::Blocked(reason)) = choices {
        // A choice the provider stopped for its content (OpenAI and Azure
        // `content_filter`, Gemini `SAFETY` and kin): no answer, and the
        // same prompt is stopped again.
        rec.error_message = message(&format!("finish_reason {reason}"));
        return;
    }
    let empty =
        matches!(choices, Some(Choices::Empty)) || obj.get(F::Content).is_some_and(is_empty);
    mark_empty_if_2xx(rec, empty);
}

/// An object's `error`, unless it is null or false.
fn live_error<'a>(obj: &Obj<'a>) -> Option<Raw<'a>> {
    obj.get(F::Error)
        .filter(|r| !matches!(r.get(), "null" | "false"))
}

/// Whether a value is an object with a [`live_error`].
fn has_error(raw: Raw<'_>) -> bool {
    raw.get().starts_with('{') && Obj::read(raw, |o| live_error(o).is_some()).unwrap_or(false)
}

/// What the choices (or Gemini candidates) of a body say.
enum Choices {
    /// At least one, and none carries content (nor a tool call).
    Empty,
    /// One was stopped for its content, with this finish reason.
    Blocked(String),
    /// An answer.
    Answered,
}

/// Finish reasons of a choice stopped for its content.
const BLOCKED: [&str; 6] = [
    "content_filter",
    "SAFETY",
    "PROHIBITED_CONTENT",
    "BLOCKLIST",
    "SPII",
    "RECITATION",
];

/// Reads a body's choices in one pass: whether every one is empty, or one
/// was stopped for its content.
fn read_choices(raw: Raw<'_>) -> Choices {
    let read = |item: Raw<'_>| {
        Obj::read(item, |choice| {
            if let Some(reason) = choice
                .str(F::FinishReason)
                .filter(|r| BLOCKED.contains(&r.as_ref()))
            {
                return Err(reason.into_owned());
            }
            // OpenAI `message` (or `delta` in a stream chunk) holds the content.
            let content_empty = |m: &Obj<'_>| m.get(F::Content).is_none_or(is_empty);
            let message = choice
                .with_obj(F::Message, content_empty)
                .or_else(|| choice.with_obj(F::Delta, content_empty));
            Ok(match message {
                Some(empty) => empty && !item.get().contains("\"tool_calls\":[{"),
                // Gemini candidates carry `content.parts`; a candidate whose
                // content has no parts (`{"role": "model"}`) said nothing.
                None => choice.get(F::Content).is_none_or(|content| {
                    is_empty(content)
                        || Obj::read(content, |c| c.get(F::Parts).is_none_or(is_empty))
                            .unwrap_or(false)
                }),
            })
        })
        .unwrap_or(Ok(false))
    };
    let (mut any, mut all, mut blocked) = (false, true, None);
    let mut each = |item: Raw<'_>| {
        any = true;
        match read(item) {
            Ok(empty) => all &= empty,
            Err(reason) => blocked = Some(reason),
        }
        blocked.is_none()
    };
    // Read from the line's tokens when the array is part of the line.
    if !json::items_of(raw, &mut each) {
        for item in raw.items() {
            if !each(item) {
                break;
            }
        }
    }
    match blocked {
        Some(reason) => Choices::Blocked(reason),
        None if any && all => Choices::Empty,
        None => Choices::Answered,
    }
}

/// The `error` object of a provider body (or a Mistral top-level error).
fn error_object(err: &Obj<'_>, shape: BodyShape, depth: u8, rec: &mut Record) {
    if depth > MAX_BODY_DEPTH {
        return;
    }
    set_if_none(&mut rec.error_type, owned(err.str(F::ErrorType)));
    if shape == BodyShape::Google {
        // `status` is the gRPC status (`RESOURCE_EXHAUSTED`); it is the best type there is.
        if let Some(status) = owned(err.str(F::Status)) {
            rec.error_type = Some(status);
        }
        if let Some(reason) = google_reason(err) {
            rec.error_code = Some(reason);
        }
        if rec.http_status.is_none() {
            rec.http_status = to_status(err.f64(F::ErrorCode));
        }
    }
    match err.get(F::ErrorCode) {
        Some(code) if code.get().starts_with('"') => {
            set_if_none(&mut rec.error_code, owned(as_str(code)));
        }
        Some(code) if shape != BodyShape::Google => {
            set_if_none(&mut rec.error_code, owned(as_str(code)));
            if rec.http_status.is_none() {
                rec.http_status = to_status(as_f64(code));
            }
        }
        _ => {}
    }
    err.with_obj(F::InnerError, |inner| {
        set_if_none(&mut rec.error_code, owned(inner.str(F::ErrorCode)));
    });
    err.with_obj(F::Details, |details| {
        // Anthropic spend caps: `error.details.error_code`.
        set_if_none(&mut rec.error_code, owned(details.str(F::ErrorCode)));
    });
    err.with_obj(F::Error, |nested| {
        // OpenRouter at times nests the error object in another.
        error_object(nested, shape, depth + 1, rec);
    });
    if let Some(raw) = err.with_obj(F::Metadata, |m| m.str(F::Raw)).flatten() {
        // OpenRouter: the upstream provider's own words are in `metadata.raw`.
        let outer = err.str(F::Message).unwrap_or_default();
        rec.error_message = message(&format!("{outer}: {raw}"));
        return;
    }
    if let Some(msg) = err.get(F::Message) {
        match msg.get().as_bytes().first() {
            Some(b'"') => {
                let text = as_str(msg).unwrap_or_default();
                let trimmed = text.trim_start();
                if (trimmed.starts_with('{') || trimmed.starts_with('['))
                    && Raw::parse(trimmed).is_ok()
                {
                    // The google-genai JS wrapper: the raw body as a string.
                    body_text(&text, depth, rec);
                    rec.body_shape = Some(BodyShape::Google);
                } else {
                    rec.error_message = message(&text);
                }
            }
            // Mistral sends `message` as an object at times.
            Some(b'{' | b'[') => rec.error_message = message(msg.get()),
            _ => {}
        }
    }
}

/// `details[].reason` or `errors[].reason` of a Google error.
fn google_reason(err: &Obj<'_>) -> Option<String> {
    for field in [F::Details, F::Errors] {
        let Some(raw) = err.get(field) else { continue };
        for item in raw.items() {
            let reason = item
                .members()
                .find(|(key, _)| key.text == "reason")
                .and_then(|(_, value)| owned(as_str(value)));
            if reason.is_some() {
                return reason;
            }
        }
    }
    None
}

// ---------------------------------------------------------------------------
// Text errors: SDK renderings and gateway pages

static STATUS_IN_TEXT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)
        (?:[Ee]rror\ code|[Ss]tatus\ [Cc]ode|HTTP\ status\ code|status)[:=\ ]+(\d{3})\b
        |^\[?(\d{3})[\ \]:]
        |\|\ (\d{3}):\ ",
    )
    .expect("status pattern compiles")
});

static LOOSE_FIELD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?x)
        ['"]?\b(type|code|message|status|raw)['"]?\s*:\s*
        (?: '((?:[^'\\]|\\.)*)' | "((?:[^"\\]|\\.)*)" | (\d+) )"#,
    )
    .expect("field pattern compiles")
});

static EXCEPTION_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)
        An\ error\ occurred\ \((\w+)\)
        |\b(\w+Exception)\b
        |^(?:[\w.]+\.)?([A-Z][a-z]+[A-Z]\w*):",
    )
    .expect("exception pattern compiles")
});

/// A blocked choice's finish reason quoted in an SDK's text (the Vercel AI
/// SDK's `Type validation failed: Value: {"candidates":[...,"finishReason":
/// "SAFETY"...]}`): the reason the call failed, whatever else the text says.
static FINISH_BLOCKED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r#"finish_?[rR]eason\\?"?\s*[:=]\s*\\?"?({})\b"#,
        BLOCKED.join("|")
    ))
    .expect("finish reason pattern compiles")
});

static GRPC_STATUS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(RESOURCE_EXHAUSTED|INVALID_ARGUMENT|FAILED_PRECONDITION|PERMISSION_DENIED|UNAUTHENTICATED|UNAVAILABLE|INTERNAL|DEADLINE_EXCEEDED|NOT_FOUND)\b")
        .expect("grpc pattern compiles")
});

/// An error as text: `Error code: 429 - {...python repr...}`, `429 <message>`,
/// `An error occurred (ThrottlingException) ...`, an HTML gateway page, ...
/// Pulls out what it can (status, type, code, message) and keeps the text.
pub(crate) fn error_text(text: &str, rec: &mut Record) {
    if rec.body_shape.is_none() {
        rec.body_shape = Some(BodyShape::Text);
    }
    if rec.http_status.is_none() {
        if let Some(caps) = STATUS_IN_TEXT.captures(text) {
            let digits = caps
                .get(1)
                .or(caps.get(2))
                .or(caps.get(3))
                .map(|m| m.as_str());
            rec.http_status = to_status(digits.and_then(|d| d.parse().ok()));
        }
    }
    if rec.error_message.is_none() {
        if let Some(caps) = FINISH_BLOCKED.captures(text) {
            rec.error_message = message(&format!("finish_reason {}", &caps[1]));
        }
    }
    let mut extracted_message: Option<String> = None;
    let mut raw = None;
    for caps in LOOSE_FIELD.captures_iter(text) {
        let value = caps
            .get(2)
            .or(caps.get(3))
            .or(caps.get(4))
            .map_or("", |m| m.as_str());
        match &caps[1] {
            "type" => set_if_none(&mut rec.error_type, owned(Some(Cow::Borrowed(value)))),
            "code" if value.parse::<u16>().is_err() => {
                set_if_none(&mut rec.error_code, owned(Some(Cow::Borrowed(value))));
            }
            "status" if value.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') => {
                rec.error_type = owned(Some(Cow::Borrowed(value)));
            }
            "message" if extracted_message.is_none() => extracted_message = Some(value.to_owned()),
            "raw" if raw.is_none() => raw = Some(value),
            _ => {}
        }
    }
    if let (Some(outer), Some(raw)) = (&mut extracted_message, raw) {
        // OpenRouter's rendered error: the upstream provider's words are in `raw`.
        outer.push_str(": ");
        outer.push_str(raw);
    }
    if rec.error_type.is_none() {
        if let Some(caps) = EXCEPTION_NAME.captures(text) {
            let name = caps
                .get(1)
                .or(caps.get(2))
                .or(caps.get(3))
                .map(|m| m.as_str());
            rec.error_type = owned(name.map(Cow::Borrowed));
        }
    }
    if rec.error_type.is_none() {
        rec.error_type = GRPC_STATUS.find(text).map(|m| m.as_str().to_owned());
    }
    if rec.error_message.is_none() {
        rec.error_message = message(extracted_message.as_deref().unwrap_or(text));
    }
}

/// The provider's JSON body quoted at the end of an exception's text
/// (`litellm.AuthenticationError: GeminiException - {"error": {...}}`),
/// read as a body when it parses.
pub(crate) fn quoted_body(text: &str, rec: &mut Record) {
    let Some(open) = text.find(" - {").map(|at| at + 3) else {
        return;
    };
    let Some(close) = text.rfind('}') else {
        return;
    };
    if close > open {
        if let Ok(inner) = Raw::parse(text[open..=close].trim()) {
            body(inner, 1, rec);
        }
    }
}

// ---------------------------------------------------------------------------
// LiteLLM standard logging payload

fn litellm(obj: &Obj<'_>, ctx: &Ctx<'_>, rec: &mut Record) -> Result<(), Reason> {
    rec.ts_ms = timestamp(obj, &[F::StartTime, F::Ts])?;
    common(obj, ctx, rec);
    set_if_none(
        &mut rec.provider_hint,
        ctx.intern(obj.str(F::CustomLlmProvider)),
    );
    if let (Some(start), Some(end)) = (obj.get(F::StartTime), obj.get(F::EndTime)) {
        if let (Ok(start), Ok(end)) = (ts_of(start), ts_of(end)) {
            // Failed rows may carry startTime == endTime; that is no latency.
            if end > start {
                set_if_none(&mut rec.latency_ms, Some((end - start) as f64));
            }
        }
    }
    obj.with_obj(F::Metadata, |meta| {
        set_if_none(&mut rec.key_fp, fingerprint(meta, ctx));
        // The key alias names the caller more closely than its team does.
        set_if_none(&mut rec.service, ctx.intern(meta.str(F::KeyAlias)));
        set_if_none(&mut rec.service, ctx.intern(meta.str(F::TeamAlias)));
        set_if_none(&mut rec.request_id, owned(meta.str(F::RequestId)));
    });
    obj.with_obj(F::ModelParameters, |params| {
        set_if_none(&mut rec.max_tokens, to_u32(params.f64(F::MaxTokens)));
        set_if_none(&mut rec.stream, params.get(F::Stream).and_then(as_bool));
    });
    let failed = obj.str(F::Status).as_deref() == Some("failure");
    // `error_information.error_code` is LiteLLM's own mapping of the error
    // (a 529 becomes "500", a Gemini 400 with a bad key "401"): the status
    // in the provider's body, which the error text quotes, comes first.
    let mut error_code = None;
    obj.with_obj(F::ErrorInformation, |info| {
        error_code = to_status(info.f64(F::ErrorCode));
        set_if_none(&mut rec.error_type, owned(info.str(F::ErrorType)));
        set_if_none(&mut rec.provider_hint, ctx.intern(info.str(F::Provider)));
        if let Some(msg) = info.str(F::Message) {
            quoted_body(&msg, rec);
            error_text(&msg, rec);
        }
    });
    if let Some(text) = obj.str(F::ErrorStr) {
        quoted_body(&text, rec);
        error_text(&text, rec);
    }
    set_if_none(&mut rec.http_status, error_code);
    if failed && rec.error_message.is_none() && rec.error_type.is_none() {
        rec.error_type = Some("failure".to_owned());
    }
    if !failed && rec.http_status.is_none() && rec.error_message.is_none() {
        rec.http_status = Some(200);
    }
    if let Some(response) = obj.get(F::Response) {
        if response.get().starts_with('{') {
            body(response, 0, rec);
        }
    }
    finish(obj, rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_interned_from_their_second_sighting_in_a_chunk() {
        let fingerprinter = Fingerprinter::default();
        let ctx = Ctx::new(&fingerprinter);
        let text = |t: &str| ctx.intern(Some(Cow::Borrowed(t))).unwrap();
        assert!(ctx.intern(Some(Cow::Borrowed(" "))).is_none());
        let once = text("checkout-api");
        assert!(!once.is_static());
        let twice = text("checkout-api");
        assert!(twice.is_static());
        assert_eq!(once, twice);
        assert!(text("checkout-api").is_static());
        // A key seen once (a per-request hash) stays out of the interner.
        let fp = ctx.fingerprint("sk-one-off-key-0001");
        assert!(!fp.is_static() && fp.starts_with("kf_"));
        assert!(ctx.fingerprint("sk-one-off-key-0001").is_static());
    }

    #[test]
    fn the_last_url_answers_for_itself_only() {
        let fingerprinter = Fingerprinter::default();
        let ctx = Ctx::new(&fingerprinter);
        let urls = [
            "https://api.openai.com/v1",
            "https://api.openai.com/v1",
            "https://api.anthropic.com",
            "https://API.openai.com/v1",
            "https://api.openai.com/v1",
            "  ",
            "https://api.openai.com/v1",
        ];
        for _ in 0..3 {
            for url in urls {
                let host = ctx.host(url);
                let expected = host_of(url).map(Cow::into_owned);
                assert_eq!(host.as_deref(), expected.as_deref(), "{url}");
            }
        }
    }

    #[test]
    fn the_last_key_answers_for_itself_only() {
        let fingerprinter = Fingerprinter::default();
        let ctx = Ctx::new(&fingerprinter);
        let keys = [
            "key-a", "key-b", "key-a", "key-a", "key-c", "key-b", "key-b",
        ];
        for _ in 0..3 {
            for key in keys {
                let fp = ctx.fingerprint(key);
                assert_eq!(fp.as_str(), fingerprinter.fingerprint(key), "{key}");
            }
        }
    }

    #[test]
    fn recent_texts_answer_for_their_own_text_only() {
        let fingerprinter = Fingerprinter::default();
        let ctx = Ctx::new(&fingerprinter);
        // More texts than slots, many of the same length: slots are shared
        // and overwritten, and every lookup still returns its own text.
        let texts: Vec<String> = (0..3 * RECENT)
            .map(|i| format!("model-{i:02}"))
            .chain(["gpt-4o", "gpt-4o-mini", "a", "api.openai.com"].map(String::from))
            .collect();
        for round in 0..4 {
            for text in texts.iter().chain(texts.iter().rev()) {
                let shared = ctx.intern(Some(Cow::Borrowed(text))).unwrap();
                assert_eq!(shared.as_str(), text, "round {round}");
                // Seen twice by the end of the first round: interned.
                assert!(round == 0 || shared.is_static(), "{text}");
            }
        }
    }

    #[test]
    fn trim_is_str_trim() {
        for text in [
            "",
            " ",
            "a",
            " a",
            "a ",
            "\tgpt-4o\n",
            "é",
            " é ",
            "\u{a0}x\u{a0}",
            "x\u{2003}",
            "\u{7f}",
            "api.openai.com",
        ] {
            assert_eq!(trim(text), text.trim(), "{text:?}");
        }
    }

    #[test]
    fn host_of_reads_urls_as_the_str_splits_did() {
        fn by_str_splits(url: &str) -> Option<String> {
            let rest = url.trim();
            let rest = rest.split_once("://").map_or(rest, |(_, r)| r);
            let host = rest.split(['/', '?', '#']).next().unwrap_or(rest);
            let host = host.rsplit_once('@').map_or(host, |(_, h)| h).trim();
            (!host.is_empty()).then(|| host.to_ascii_lowercase())
        }
        for url in [
            "https://api.openai.com/v1/chat/completions",
            "  https://API.Anthropic.com/v1/messages?beta=true ",
            "api.deepseek.com",
            "api.deepseek.com:443",
            "http://user:sk-secret@proxy.internal:8080/v1",
            "https://a@b@host.example/path",
            "https://host.example#frag",
            "https://host.example?x=https://other.example",
            "host/path://odd",
            "https://",
            "://",
            "",
            "   ",
            "https://é.example/ü",
            "https:///path",
            "@",
        ] {
            assert_eq!(
                host_of(url).map(Cow::into_owned),
                by_str_splits(url),
                "{url:?}"
            );
        }
    }
}
