//! A borrowed view of one JSON object: each known key mapped to a slot, values
//! kept as raw JSON text and decoded only when a normalizer asks for them.
//!
//! Unknown keys are skipped without building values, so a line is scanned once
//! and nothing is allocated for fields faultline does not use.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;

use serde::Deserialize;

use crate::json::{self, Raw};
use crate::text::same_bytes;

macro_rules! fields {
    ($($name:ident => [$($key:literal),+ $(,)?]),+ $(,)?) => {
        /// A normalized field slot; each has the JSON keys that fill it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u8)]
        pub(crate) enum F { $($name),+ }

        const FIELD_COUNT: usize = [$(F::$name),+].len();

        fn exact_field(key: &str) -> Option<F> {
            match key {
                $($($key)|+ => Some(F::$name),)+
                _ => None,
            }
        }
    };
}

fields! {
    Ts => ["ts", "timestamp", "time", "@timestamp", "datetime", "created_at", "createdAt",
           "request_created_at", "timeUnixNano", "observedTimeUnixNano"],
    StartTime => ["startTime", "start_time", "startTimeUnixNano", "request_start_time"],
    EndTime => ["endTime", "end_time", "endTimeUnixNano"],
    Event => ["event", "msg", "name"],
    Message => ["message", "error_message", "errorMessage", "exception_string", "status_message"],
    Provider => ["provider", "llm_provider", "provider_name", "ai_org", "gen_ai.provider.name",
                 "gen_ai.system", "vendor", "llm.provider", "llm.system"],
    CustomLlmProvider => ["custom_llm_provider"],
    Model => ["model", "model_name", "ai_model", "request_model", "gen_ai.request.model",
              "llm.model_name", "litellm_model_name"],
    ModelFallback => ["response_model", "gen_ai.response.model", "model_group", "modelVersion"],
    Status => ["status"],
    StatusCode => ["status_code", "http_status", "statusCode", "http.response.status_code",
                   "http.status_code", "response_status", "response_status_code", "http_status_code"],
    Error => ["error", "err", "exception"],
    ErrorStr => ["error_str"],
    ErrorInformation => ["error_information"],
    ErrorType => ["error_type", "error.type", "exception_type", "error_class", "type",
                  "errorType", "exception.type"],
    ErrorCode => ["error_code", "code", "errorCode"],
    LatencyMs => ["latency_ms", "duration_ms", "elapsed_ms", "request_duration_ms",
                  "response_time_ms", "responseTime", "latencyMs", "durationMs", "elapsedMs"],
    LatencyS => ["latency_s", "duration_s", "elapsed_s", "latency_seconds", "duration_seconds"],
    RequestId => ["request_id", "requestId", "x-request-id", "request-id", "x-amzn-requestid",
                  "id", "response_id", "call_id", "apim-request-id", "gen_ai.response.id"],
    Service => ["service", "service_name", "service.name", "app", "app_name", "application",
                "component"],
    KeyAlias => ["user_api_key_alias"],
    TeamAlias => ["user_api_key_team_alias", "team_alias", "team"],
    Key => ["api_key", "key", "key_id", "api_key_id", "key_alias", "api_key_hash",
            "authorization", "user_api_key_hash", "user_api_key", "x-api-key", "api-key",
            "virtual_key", "x-goog-api-key", "ai_org_auth_hash"],
    Host => ["host", "api_base", "url", "endpoint", "base_url", "server.address", "request_url",
             "target_url", "gen_ai.openai.api_base", "url.full", "http.url"],
    PromptTokens => ["prompt_tokens", "input_tokens", "gen_ai.usage.input_tokens",
                     "gen_ai.usage.prompt_tokens", "promptTokenCount", "req_units",
                     "llm.token_count.prompt", "inputTokens", "prompt_token_count"],
    CompletionTokens => ["completion_tokens", "output_tokens", "gen_ai.usage.output_tokens",
                         "gen_ai.usage.completion_tokens", "candidatesTokenCount", "res_units",
                         "llm.token_count.completion", "outputTokens", "completion_token_count"],
    MaxTokens => ["max_tokens", "max_completion_tokens", "max_output_tokens",
                  "gen_ai.request.max_tokens", "maxOutputTokens", "maxTokens"],
    Usage => ["usage", "usageMetadata", "usage_metadata"],
    Attempt => ["attempt", "retry", "retry_count", "attempt_number", "retries", "retry_attempt",
                "x-stainless-retry-count"],
    IdempotencyKey => ["idempotency_key", "idempotency-key", "idempotencyKey", "operation_id",
                       "operationId", "client_request_id", "x-client-request-id"],
    TraceId => ["trace_id"],
    Cost => ["cost_usd", "response_cost", "cost", "total_cost", "gen_ai.usage.cost"],
    Stream => ["stream", "is_streaming", "gen_ai.request.stream", "llm.is_streaming",
               "gen_ai.is_streaming", "stream_mode"],
    TimeoutMs => ["timeout_ms", "read_timeout_ms", "timeoutMs"],
    TimeoutS => ["timeout", "timeout_s", "read_timeout"],
    Choices => ["choices", "candidates"],
    Content => ["content"],
    RetryAfterS => ["retry_after", "retry-after", "retry_after_s", "retryAfter"],
    RetryAfterMs => ["retry_after_ms", "retry-after-ms"],
    AmznErrorType => ["x-amzn-errortype", ":exception-type"],
    Request => ["request"],
    Response => ["response"],
    Headers => ["headers", "request_headers", "response_headers"],
    Body => ["body", "request_body", "response_body"],
    Metadata => ["metadata"],
    ModelParameters => ["model_parameters", "modelParameters", "model_params"],
    Attributes => ["attributes"],
    Details => ["details"],
    Errors => ["errors"],
    Object => ["object"],
    Detail => ["detail"],
    InnerError => ["innererror", "inner_error"],
    Otlp => ["resourceSpans", "resourceLogs"],
    ParentSpan => ["parent_id", "parentSpanId"],
    Raw => ["raw"],
    Delta => ["delta"],
    Parts => ["parts"],
    PromptFeedback => ["promptFeedback", "prompt_feedback"],
    BlockReason => ["blockReason", "block_reason"],
    FinishReason => ["finish_reason", "finishReason"],
    LiteLlmMarker => ["model_map_information", "hidden_params", "status_fields",
                      "litellm_call_id", "cost_breakdown"],
}

/// Maps a key to its slot; header names and camelCase variants are tried in lower case.
fn field_of(key: &str) -> Option<F> {
    if let Some(field) = exact_field(key) {
        return Some(field);
    }
    if key.len() <= 64 && key.bytes().any(|b| b.is_ascii_uppercase()) {
        let mut buf = [0u8; 64];
        let lower = &mut buf[..key.len()];
        lower.copy_from_slice(key.as_bytes());
        lower.make_ascii_lowercase();
        // Lower-casing ASCII bytes keeps the string valid UTF-8.
        return std::str::from_utf8(lower).ok().and_then(exact_field);
    }
    None
}

/// What a key means to an [`Obj`].
#[derive(Debug, Clone, Copy, Default)]
struct Known {
    field: Option<F>,
    /// The key starts with `gen_ai.` or `llm.`.
    gen_ai: bool,
}

impl Known {
    fn of(key: &str) -> Known {
        Known {
            field: field_of(key),
            gen_ai: key.starts_with("gen_ai.") || key.starts_with("llm."),
        }
    }
}

/// Bytes of a key [`SEEN`] keeps; longer keys are matched every time.
const SEEN_KEY_BYTES: usize = 30;

/// The key last seen at one position of a line, and what it means.
#[derive(Debug, Clone, Copy)]
struct SeenKey {
    text: [u8; SEEN_KEY_BYTES],
    /// Bytes of `text` in use; more than [`SEEN_KEY_BYTES`] when none is
    /// kept (no key is that key then).
    len: u8,
    known: Known,
}

impl SeenKey {
    const NONE: SeenKey = SeenKey {
        text: [0; SEEN_KEY_BYTES],
        len: u8::MAX,
        known: Known {
            field: None,
            gen_ai: false,
        },
    };

    fn is(&self, key: &str) -> bool {
        self.text
            .get(..usize::from(self.len))
            .is_some_and(|text| same_bytes(text, key.as_bytes()))
    }

    fn remember(&mut self, key: &str, known: Known) {
        match self.text.get_mut(..key.len()) {
            Some(text) => {
                text.copy_from_slice(key.as_bytes());
                self.len = key.len() as u8;
                self.known = known;
            }
            None => *self = SeenKey::NONE,
        }
    }
}

thread_local! {
    /// The keys of the last line read on this thread, by position.
    static SEEN: RefCell<[SeenKey; 32]> = const { RefCell::new([SeenKey::NONE; 32]) };
    /// What the keys of the shapes' lines mean, by their place in a shape.
    static PLACES: RefCell<ShapePlaces> = RefCell::default();
}

/// Places (see [`json::Key::place`]) kept at most: a shape holds few values,
/// but a line of empty objects may hold many keys.
const PLACES_KEPT: usize = 1024;

/// What the key at each place of one shape means.
#[derive(Debug, Default)]
struct Places {
    /// The shape (see [`json::Key::shape`]) the places are of.
    shape: u64,
    known: Vec<Option<Known>>,
    /// When the places were last looked up, in [`ShapePlaces::clock`] ticks.
    used: u64,
    /// For a flat shape, once a line of it was read member by member: the
    /// fields its values fill. A line of the shape is then read from its
    /// values alone ([`json::Reader::values`]).
    fills: Option<Fills>,
    /// For a shape with nested objects, by the index of an object's opening
    /// token, once it was read member by member: the fields its values
    /// fill. The object is then read from the tokens of those values alone
    /// ([`json::NestedTokens`]).
    objects: Vec<Option<Fills>>,
}

/// The fields an object of a shape fills, in the order of its members, each
/// with where its value is (a value's index in a flat line, or its first
/// token's index in a line with nested objects), and whether a key marks
/// OpenTelemetry GenAI.
#[derive(Debug, Default)]
struct Fills {
    fields: Vec<(F, u32)>,
    gen_ai: bool,
}

/// [`Places`] for as many shapes as a worker keeps, each found by its
/// shape's generation; a new shape takes the least recently used entry.
#[derive(Debug, Default)]
struct ShapePlaces {
    of: [Places; json::SHAPES_KEPT],
    /// The entry looked up last: a line's keys look up one shape in turn.
    last: usize,
    clock: u64,
}

impl ShapePlaces {
    /// The places of `shape` (a generation, not 0).
    #[inline]
    fn of(&mut self, shape: u64) -> &mut Places {
        if self.of[self.last % json::SHAPES_KEPT].shape == shape {
            return &mut self.of[self.last % json::SHAPES_KEPT];
        }
        self.clock += 1;
        let at = self
            .of
            .iter()
            .position(|places| places.shape == shape)
            .unwrap_or_else(|| {
                // The least recently used entry takes the new shape.
                let at = (0..self.of.len())
                    .min_by_key(|&at| self.of[at].used)
                    .unwrap_or(0);
                self.of[at].shape = shape;
                self.of[at].known.clear();
                self.of[at].fills = None;
                self.of[at].objects.clear();
                at
            });
        self.last = at;
        let places = &mut self.of[at];
        places.used = self.clock;
        places
    }
}

impl Places {
    /// What `key`, at `place` of the shape, means.
    fn known(&mut self, place: u32, key: &str) -> Known {
        let at = place as usize;
        if at >= PLACES_KEPT {
            return Known::of(key);
        }
        if self.known.len() <= at {
            self.known.resize(at + 1, None);
        }
        *self.known[at].get_or_insert_with(|| Known::of(key))
    }
}

/// Fills a line's [`Obj`] with the members [`json::read_line`] hands out.
struct LineFill<'o, 'a> {
    obj: &'o mut Obj<'a>,
    seen: &'o mut [SeenKey; 32],
    places: &'o mut ShapePlaces,
    /// Members of a line not read by a shape handed out so far.
    at: usize,
    /// The flat shape whose fields this line's members are noted for.
    noting: Option<u64>,
}

impl<'a> json::Reader<'a> for &mut LineFill<'_, 'a> {
    fn values(&mut self, shape: u64, values: &[json::Span]) -> bool {
        let places = self.places.of(shape);
        let Some(fills) = &places.fills else {
            // Noted from this line's members, for the lines after.
            places.fills = Some(Fills::default());
            self.noting = Some(shape);
            return false;
        };
        if fills.gen_ai {
            self.obj.marks.gen_ai = true;
        }
        for &(field, i) in &fills.fields {
            if let Some(&span) = values.get(i as usize) {
                self.obj.put_field(field, span);
            }
        }
        true
    }

    fn member(&mut self, key: json::Key<'a>, span: json::Span) {
        if key.place != 0 {
            // Every key of a line read by a shape has a place in it.
            let places = self.places.of(key.shape);
            let known = places.known(key.place, key.text);
            if let (Some(fills), Some(_)) = (places.fills.as_mut(), self.noting) {
                // A flat shape's places count its values from 1.
                fills.gen_ai |= known.gen_ai;
                if let Some(field) = known.field {
                    fills.fields.push((field, key.place - 1));
                }
            }
            self.obj.put_span(known, span);
            return;
        }
        match self.seen.get_mut(self.at) {
            Some(seen) if !key.escaped => {
                // A key the line before had here needs no compare.
                let known = if seen.is(key.text) {
                    seen.known
                } else {
                    let known = Known::of(key.text);
                    seen.remember(key.text, known);
                    known
                };
                self.obj.put_span(known, span);
            }
            _ => self.obj.fill_span(key, span),
        }
        self.at += 1;
    }
}

/// Marks seen while scanning an object's keys.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Marks {
    /// A key starting with `gen_ai.` or `llm.` (OpenTelemetry GenAI / OpenLLMetry).
    pub(crate) gen_ai: bool,
}

/// One JSON object, its known keys resolved to raw values.
///
/// A slot holds its value as a byte range of the object's text (`(0, 0)`
/// when empty: a value never starts at 0, where the object's `{` is), half
/// the size of a slice, since an `Obj` is zeroed and moved for each object.
pub(crate) struct Obj<'a> {
    text: &'a str,
    slots: [(u32, u32); FIELD_COUNT],
    pub(crate) marks: Marks,
}

impl fmt::Debug for Obj<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Obj").finish_non_exhaustive()
    }
}

impl<'a> Obj<'a> {
    /// An object of `text` with no field filled yet.
    pub(crate) fn empty(text: &'a str) -> Obj<'a> {
        Obj {
            text,
            slots: [(0, 0); FIELD_COUNT],
            marks: Marks::default(),
        }
    }

    /// Parses `text` as one JSON object, for tests (lines are read by
    /// [`Obj::read_line`], nested objects by [`Obj::read`]).
    #[cfg(test)]
    pub(crate) fn parse(text: &'a str) -> Result<Obj<'a>, json::Error> {
        let mut obj = Obj::empty(text);
        json::object(text, |key, value| obj.fill(key, value))?;
        Ok(obj)
    }

    /// [`Obj::read_line`] into a new object, for tests.
    #[cfg(test)]
    pub(crate) fn line(text: &'a str) -> Result<(Obj<'a>, json::Line<'a>), json::Error> {
        let mut obj = Obj::empty(text);
        let line = obj.read_line()?;
        Ok((obj, line))
    }

    /// Parses the object's text, a whole line, as one JSON object into this
    /// empty object ([`Obj::empty`]), where it stays (an `Obj` is a few
    /// hundred bytes, and returning one copies it). The line's tokens are
    /// kept while the returned [`json::Line`] lives, so that the objects
    /// nested in it ([`Obj::of`]) are read from them rather than scanned
    /// again.
    ///
    /// A line read by one of the worker's shapes has the keys of that
    /// shape ([`json::Key::place`]): what each means was found once for the
    /// shape and is not even compared. The keys of any other line are
    /// compared with those of the last such line, position by position
    /// ([`SEEN`]): lines of one log mostly repeat them in the same order,
    /// and a key found there is not matched against the aliases again.
    ///
    /// A line of a flat shape whose first line was read that way is read
    /// from its values alone: the fields they fill are kept per shape.
    pub(crate) fn read_line(&mut self) -> Result<json::Line<'a>, json::Error> {
        let (text, obj) = (self.text, self);
        SEEN.with(|seen| {
            PLACES.with(|places| {
                let (Ok(mut seen), Ok(mut places)) =
                    (seen.try_borrow_mut(), places.try_borrow_mut())
                else {
                    return json::line(text, |key, span| obj.fill_span(key, span));
                };
                let mut fill = LineFill {
                    obj,
                    seen: &mut seen,
                    places: &mut places,
                    at: 0,
                    noting: None,
                };
                let line = json::read_line(text, &mut fill);
                if let (Some(shape), Err(_)) = (fill.noting, &line) {
                    // Not every member was handed out: none are noted.
                    fill.places.of(shape).fills = None;
                }
                line
            })
        })
    }

    fn fill(&mut self, key: json::Key<'a>, value: Raw<'a>) {
        if let Some(span) = value.range_in(self.text) {
            self.fill_span(key, span);
        }
    }

    /// [`Obj::fill`] with the value given by its range in the object's text.
    fn fill_span(&mut self, key: json::Key<'a>, span: json::Span) {
        let key: Cow<'_, str> = if key.escaped {
            match unescape_key(key.text) {
                Some(key) => Cow::Owned(key),
                None => return,
            }
        } else {
            Cow::Borrowed(key.text)
        };
        self.put_span(Known::of(&key), span);
    }

    /// Fills the field `key` names with the value at `span` of the object's
    /// text, as a scan that met the key would (the first non-null value
    /// wins): for an object built from parts rather than scanned.
    pub(crate) fn put(&mut self, key: &str, span: json::Span) {
        self.put_span(Known::of(key), span);
    }

    fn put_span(&mut self, known: Known, span: json::Span) {
        if known.gen_ai {
            self.marks.gen_ai = true;
        }
        if let Some(field) = known.field {
            self.put_field(field, span);
        }
    }

    #[inline]
    fn put_field(&mut self, field: F, span: json::Span) {
        // The first non-null value wins; duplicates keep the first.
        if self.get(field).is_none_or(|old| old.get() == "null") {
            self.slots[field as usize] = span;
        }
    }

    /// Parses a raw value when it is an object and hands it to `read`.
    ///
    /// The object is built where `read` looks at it: an `Obj` is a few
    /// hundred bytes, and returning one would copy it (nested objects are
    /// read several to a line).
    pub(crate) fn read<R>(raw: Raw<'a>, read: impl FnOnce(&Obj<'a>) -> R) -> Option<R> {
        if !raw.get().starts_with('{') {
            return None;
        }
        let mut obj = Obj::empty(raw.get());
        obj.fill_members(raw).then(|| read(&obj))
    }

    /// Fills this empty object of `raw`'s text with `raw`'s members; false
    /// when `raw` is not a valid object. Not generic, unlike its callers:
    /// one copy of the scan serves every caller.
    fn fill_members(&mut self, raw: Raw<'a>) -> bool {
        let obj = self;
        let shape = json::tokens_shape();
        let members_read = PLACES.with(|places| match places.try_borrow_mut() {
            Ok(mut places) if shape != 0 => {
                let places = places.of(shape);
                // This object of the shape read before: its fields are known.
                let noted = json::with_nested_tokens(raw, |tokens| {
                    let k = tokens.index();
                    let Some(Some(fills)) = places.objects.get(k) else {
                        return Err(k);
                    };
                    if fills.gen_ai {
                        obj.marks.gen_ai = true;
                    }
                    for &(field, v) in &fills.fields {
                        if let Some(span) = tokens.value(v) {
                            obj.put_field(field, span);
                        }
                    }
                    Ok(())
                });
                if let Some(Ok(())) = noted {
                    return true;
                }
                let mut fills = Some(Fills::default());
                // Keys of a shape are never escaped: its lines hold no backslash.
                let read = json::members_of(raw, |key, value| match value.range_in(obj.text) {
                    Some(span) if key.place != 0 && !key.escaped => {
                        let known = places.known(key.place, key.text);
                        if let Some(fills) = fills.as_mut() {
                            fills.gen_ai |= known.gen_ai;
                            // The key's first token is `place - 1`; its value's, 3 after.
                            if let Some(field) = known.field {
                                fills.fields.push((field, key.place + 2));
                            }
                        }
                        obj.put_span(known, span);
                    }
                    _ => {
                        fills = None;
                        obj.fill(key, value);
                    }
                });
                if let (true, Some(Err(k)), Some(fills)) = (read, noted, fills) {
                    if k < PLACES_KEPT {
                        if places.objects.len() <= k {
                            places.objects.resize_with(k + 1, || None);
                        }
                        places.objects[k] = Some(fills);
                    }
                }
                read
            }
            _ => json::members_of(raw, |key, value| obj.fill(key, value)),
        });
        if members_read {
            return true;
        }
        *obj = Obj::empty(raw.get());
        json::object(obj.text, |key, value| obj.fill(key, value)).is_ok()
    }

    /// [`Obj::read`] into a new object, for tests.
    #[cfg(test)]
    pub(crate) fn of(raw: Raw<'a>) -> Option<Obj<'a>> {
        Obj::read(raw, |obj| Obj { ..*obj })
    }

    /// The text of every field's value, by field, for tests.
    #[cfg(test)]
    pub(crate) fn filled(&self) -> Vec<Option<&'a str>> {
        self.slots
            .iter()
            .map(|&range| match range {
                (_, 0) => None,
                range => Raw::at(self.text, range).map(Raw::get),
            })
            .collect()
    }

    pub(crate) fn get(&self, field: F) -> Option<Raw<'a>> {
        match self.slots[field as usize] {
            (_, 0) => None,
            range => Raw::at(self.text, range),
        }
    }

    pub(crate) fn has(&self, field: F) -> bool {
        self.get(field).is_some_and(|raw| raw.get() != "null")
    }

    pub(crate) fn str(&self, field: F) -> Option<Cow<'a, str>> {
        self.get(field).and_then(as_str)
    }

    /// The object at `field`, handed to `read` ([`Obj::read`]).
    #[inline]
    pub(crate) fn with_obj<R>(&self, field: F, read: impl FnOnce(&Obj<'a>) -> R) -> Option<R> {
        self.get(field).and_then(|raw| Obj::read(raw, read))
    }

    /// The object at `field`, for tests.
    #[cfg(test)]
    pub(crate) fn obj(&self, field: F) -> Option<Obj<'a>> {
        self.get(field).and_then(Obj::of)
    }

    pub(crate) fn f64(&self, field: F) -> Option<f64> {
        self.get(field).and_then(as_f64)
    }
}

/// A key with escapes, decoded (a lone surrogate as U+FFFD).
pub(crate) fn unescape_key(text: &str) -> Option<String> {
    serde_json::from_str::<String>(&format!("\"{text}\""))
        .ok()
        .or_else(|| unescape_lossy(text))
}

/// The inside of a JSON string (valid JSON but for its `\u` escapes)
/// decoded with each lone surrogate (`\ud800` without its pair, which
/// encodes no character) as U+FFFD: the rest of the text is kept rather than
/// the whole field lost. `None` for an escape that is not JSON at all.
pub(crate) fn unescape_lossy(inner: &str) -> Option<String> {
    fn hex4(bytes: &[u8]) -> Option<u32> {
        let text = std::str::from_utf8(bytes.get(..4)?).ok()?;
        u32::from_str_radix(text, 16).ok()
    }
    let mut out = String::with_capacity(inner.len());
    let mut rest = inner;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let escape = &rest.as_bytes()[at + 1..];
        let (decoded, used) = match escape.first()? {
            b'"' => ('"', 1),
            b'\\' => ('\\', 1),
            b'/' => ('/', 1),
            b'b' => ('\u{8}', 1),
            b'f' => ('\u{c}', 1),
            b'n' => ('\n', 1),
            b'r' => ('\r', 1),
            b't' => ('\t', 1),
            b'u' => {
                let high = hex4(&escape[1..])?;
                let low = escape
                    .get(5..7)
                    .filter(|e| *e == b"\\u")
                    .and_then(|_| hex4(&escape[7..]))
                    .filter(|low| (0xDC00..0xE000).contains(low));
                match (high, low) {
                    (0xD800..=0xDBFF, Some(low)) => {
                        let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                        (char::from_u32(code)?, 11)
                    }
                    _ => (char::from_u32(high).unwrap_or('\u{FFFD}'), 5),
                }
            }
            _ => return None,
        };
        out.push(decoded);
        rest = &rest[at + 1 + used..];
    }
    out.push_str(rest);
    Some(out)
}

/// A JSON string value, borrowed unless it holds escapes.
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// The value as text: a JSON string unescaped, or a number or boolean as written.
pub(crate) fn as_str(raw: Raw<'_>) -> Option<Cow<'_, str>> {
    let text = raw.get();
    match text.as_bytes().first()? {
        b'"' => {
            let inner = &text[1..text.len() - 1];
            if !json::in_line_without_escapes(inner)
                && memchr::memchr(b'\\', inner.as_bytes()).is_some()
            {
                serde_json::from_str::<Text<'_>>(text)
                    .ok()
                    .map(|t| t.0)
                    .or_else(|| unescape_lossy(inner).map(Cow::Owned))
            } else {
                // A raw value is valid JSON: a string without escapes is its own text.
                Some(Cow::Borrowed(inner))
            }
        }
        b'n' | b'{' | b'[' => None,
        _ => Some(Cow::Borrowed(text)),
    }
}

/// The value as a number: a JSON number, or a string holding one.
pub(crate) fn as_f64(raw: Raw<'_>) -> Option<f64> {
    let text = raw.get();
    match text.as_bytes().first()? {
        b'"' => number(as_str(raw)?.trim()),
        b'-' | b'0'..=b'9' => number(text),
        _ => None,
    }
}

/// A number's value. Most numbers in logs are short (status codes, token
/// counts, milliseconds like `1182` or `1182.5`): up to 15 digits with at
/// most one point between them are read directly, exactly as the float
/// parser reads them. Below 2^53 every whole number is a float, and so is
/// every power of ten up to 10^22, so the digits divided by the power of
/// ten of the fraction is one correctly rounded operation on exact values
/// (Clinger's fast path). Anything else goes to that parser.
fn number(text: &str) -> Option<f64> {
    /// Powers of ten, all exact as floats.
    const TENS: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let bytes = text.as_bytes();
    if (1..=16).contains(&bytes.len()) {
        let mut digits = 0u64;
        let mut point = None;
        for (at, &b) in bytes.iter().enumerate() {
            match b {
                b'0'..=b'9' => digits = digits * 10 + u64::from(b - b'0'),
                // A point with digits on both sides: `1.` and `.5` are not JSON.
                b'.' if point.is_none() && at > 0 && at + 1 < bytes.len() => point = Some(at),
                _ => return text.parse().ok(),
            }
        }
        // At most 15 digits: 16 could pass 2^53.
        if bytes.len() - usize::from(point.is_some()) <= 15 {
            // Whole numbers, most of a log's, need no division.
            return Some(match point {
                None => digits as f64,
                Some(at) => digits as f64 / TENS[bytes.len() - at - 1],
            });
        }
    }
    text.parse().ok()
}

/// The value as a boolean: `true`/`false`, or those words as strings.
pub(crate) fn as_bool(raw: Raw<'_>) -> Option<bool> {
    match raw.get() {
        "true" | "\"true\"" | "\"True\"" => Some(true),
        "false" | "\"false\"" | "\"False\"" => Some(false),
        _ => None,
    }
}

/// Whether the value is absent-like: `null`, `""`, `[]` or `{}`.
pub(crate) fn is_empty(raw: Raw<'_>) -> bool {
    let text = raw.get();
    if matches!(text, "null" | "\"\"" | "[]" | "{}") {
        return true;
    }
    let inner = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .or_else(|| text.strip_prefix('{').and_then(|t| t.strip_suffix('}')));
    inner.is_some_and(|t| t.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;

    #[test]
    fn a_lone_surrogate_is_one_replacement_character_not_an_empty_field() {
        for (inner, text) in [
            (r"bad \ud800 here", "bad \u{FFFD} here"),
            (r"\udc00 low first", "\u{FFFD} low first"),
            (r"pair \ud83d\ude00 kept", "pair \u{1F600} kept"),
            (r"high then text \ud83dx", "high then text \u{FFFD}x"),
            (
                r"two highs \ud83d\ud83d\ude00",
                "two highs \u{FFFD}\u{1F600}",
            ),
            (r#"esc \" \\ \/ \n \u00e9"#, "esc \" \\ / \n \u{e9}"),
        ] {
            assert_eq!(unescape_lossy(inner).as_deref(), Some(text), "{inner}");
        }
        assert_eq!(unescape_lossy(r"\q"), None);
        assert_eq!(unescape_lossy(r"\u12"), None);
    }

    /// Asserts that `seen` (an object read with the thread's memos) holds
    /// what `fresh` (the same text parsed on its own) holds in `fields`,
    /// and the same marks.
    fn assert_reads_as(seen: &Obj<'_>, fresh: &Obj<'_>, fields: &[F], what: &str) {
        for &field in fields {
            assert_eq!(
                seen.get(field).map(Raw::get),
                fresh.get(field).map(Raw::get),
                "{field:?} in {what}"
            );
        }
        assert_eq!(seen.marks.gen_ai, fresh.marks.gen_ai, "{what}");
    }

    #[test]
    fn numbers_read_as_the_float_parser_reads_them() {
        for text in [
            "0",
            "7",
            "200",
            "0429",
            "123456789012345",
            "1234567890123456",
            "-3",
            "2.5",
            "1e3",
            "",
            "12a",
            "1182.0",
            "0.1",
            "0.3",
            "1.",
            ".5",
            "1..2",
            "1.2.3",
            "123456789.012345",
            "1234567890.123456",
            "9007199254740993",
            "0.000000000000001",
            "99999999999999.9",
        ] {
            assert_eq!(number(text), text.parse::<f64>().ok(), "{text}");
        }
        // Every split of many digit strings by a point, to the bit.
        let mut draw = crate::testing::draws(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let digits = draw(1_000_000_000_000_000).to_string();
            for at in 1..digits.len() {
                let text = format!("{}.{}", &digits[..at], &digits[at..]);
                let parsed = text.parse::<f64>().ok();
                assert_eq!(
                    number(&text).map(f64::to_bits),
                    parsed.map(f64::to_bits),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn resolves_aliases_and_header_case() {
        let obj = Obj::parse(
            r#"{"Retry-After":"7","@timestamp":"x","X-Request-ID":"r1","other":{"deep":[1,2]}}"#,
        )
        .unwrap();
        assert_eq!(obj.f64(F::RetryAfterS), Some(7.0));
        assert_eq!(obj.str(F::RequestId).as_deref(), Some("r1"));
        assert_eq!(obj.str(F::Ts).as_deref(), Some("x"));
        assert!(obj.get(F::Model).is_none());
    }

    #[test]
    fn every_field_of_an_object_that_fills_them_all_is_kept() {
        // One key per field, each first null
        // then given a value, then a later duplicate that must not win.
        let keys: Vec<(F, &str)> = (0..FIELD_COUNT)
            .filter_map(|i| {
                let key = [
                    "ts",
                    "startTime",
                    "endTime",
                    "event",
                    "message",
                    "provider",
                    "custom_llm_provider",
                    "model",
                    "response_model",
                    "status",
                    "status_code",
                    "error",
                    "error_str",
                    "error_information",
                    "error_type",
                    "error_code",
                    "latency_ms",
                    "latency_s",
                    "request_id",
                    "service",
                    "user_api_key_alias",
                    "team",
                    "api_key",
                    "host",
                    "prompt_tokens",
                    "completion_tokens",
                    "max_tokens",
                    "usage",
                    "attempt",
                    "idempotency_key",
                    "trace_id",
                    "cost_usd",
                    "stream",
                    "timeout_ms",
                    "timeout",
                    "choices",
                    "content",
                    "retry_after",
                    "retry_after_ms",
                    "x-amzn-errortype",
                    "request",
                    "response",
                    "headers",
                    "body",
                    "metadata",
                    "model_parameters",
                    "attributes",
                    "details",
                    "errors",
                    "object",
                    "detail",
                    "innererror",
                    "resourceSpans",
                    "parent_id",
                    "raw",
                    "delta",
                    "parts",
                    "promptFeedback",
                    "blockReason",
                    "finish_reason",
                    "litellm_call_id",
                ]
                .get(i)?;
                Some((exact_field(key)?, *key))
            })
            .collect();
        assert_eq!(keys.len(), FIELD_COUNT, "a key for every field");
        let mut text = String::from("{");
        for (i, (_, key)) in keys.iter().enumerate() {
            write!(text, r#""{key}":null,"{key}":"v{i}","{key}":"late","#).unwrap();
        }
        text.push_str(r#""end":1}"#);
        for obj in [Obj::parse(&text).unwrap(), Obj::line(&text).unwrap().0] {
            for (i, (field, key)) in keys.iter().enumerate() {
                assert_eq!(obj.str(*field).as_deref(), Some(&*format!("v{i}")), "{key}");
            }
        }
        let obj = Obj::parse(r#"{"model":"m"}"#).unwrap();
        assert_eq!(obj.str(F::Model).as_deref(), Some("m"));
        assert!(keys
            .iter()
            .filter(|(f, _)| *f != F::Model)
            .all(|(f, _)| obj.get(*f).is_none()));
    }

    #[test]
    fn a_line_that_breaks_leaves_no_keys_for_the_next_to_repeat() {
        let first = r#"{"ts":"2026-03-10T00:00:00Z","model":"gpt-4o","status_code":200}"#;
        let broken = r#"{"model":"m1","ts":"x","#;
        let next = r#"{"ts":"2026-03-10T00:00:01Z","model":"gpt-4.1","status_code":429}"#;
        drop(Obj::line(first).unwrap());
        assert!(Obj::line(broken).is_err());
        // Read by the first line's shape, with the keys the broken line left
        // in the memo at its positions: they must be compared, not assumed.
        let (obj, _line) = Obj::line(next).unwrap();
        assert_eq!(obj.get(F::Model).map(Raw::get), Some(r#""gpt-4.1""#));
        assert_eq!(obj.get(F::StatusCode).map(Raw::get), Some("429"));
    }

    #[test]
    fn keys_at_the_positions_of_the_line_before_mean_what_they_say() {
        // Lines whose keys change at some positions: same length, another
        // length, too long to keep, escaped, `gen_ai.` marks, more keys than
        // positions kept. Each line reads as it does on its own.
        let long = "a_key_much_longer_than_thirty_bytes_of_text";
        let lines = [
            r#"{"model":"a","status":200,"service":"s"}"#.to_owned(),
            r#"{"model":"b","status":201,"service":"t"}"#.to_owned(),
            r#"{"modex":"c","statux":202,"service":"u"}"#.to_owned(),
            r#"{"model":"d","status_code":203,"app":"v"}"#.to_owned(),
            format!(r#"{{"{long}":1,"model":"e","gen_ai.system":"openai"}}"#),
            format!(r#"{{"{long}":1,"model":"f","gen_ai_system":"x"}}"#),
            r#"{"mod\u0065l":"g","llm.provider":"p","service":"w"}"#.to_owned(),
            r#"{"model":"h","llm.provider":"q","service":"x"}"#.to_owned(),
            format!(
                "{{{}}}",
                (0..40)
                    .map(|i| format!(r#""k{i}":{i}"#))
                    .collect::<Vec<_>>()
                    .join(",")
                    + r#","model":"i""#
            ),
            r#"{"model":"j"}"#.to_owned(),
            // A line read by the shape of the line before, whose first key
            // (a `gen_ai.` mark) was too long for the memo to keep.
            format!(r#"{{"gen_ai.{long}":1,"model":"k"}}"#),
            format!(r#"{{"gen_ai.{long}":22,"model":"l"}}"#),
        ];
        let fields = [F::Model, F::Status, F::StatusCode, F::Service, F::Provider];
        for _ in 0..2 {
            for text in &lines {
                let (seen, _line) = Obj::line(text).unwrap();
                let fresh = Obj::parse(text).unwrap();
                assert_reads_as(&seen, &fresh, &fields, text);
            }
        }
        let (obj, _line) = Obj::line(&lines[2]).unwrap();
        assert!(obj.get(F::Model).is_none() && obj.get(F::Status).is_none());
        assert!(Obj::line(&lines[4]).unwrap().0.marks.gen_ai);
        assert!(!Obj::line(&lines[5]).unwrap().0.marks.gen_ai);
        assert_eq!(
            Obj::line(&lines[6]).unwrap().0.str(F::Model).as_deref(),
            Some("g")
        );
    }

    #[test]
    fn keys_of_nested_objects_mean_what_they_say_from_shape_to_shape() {
        // Pairs of lines of one shape; from pair to pair, other keys at the
        // same places (same length, other case, a `gen_ai.` mark). The
        // second line of each pair is read by the shape of the first, and
        // its nested keys by what the first line's meant.
        let lines = [
            r#"{"ts":"t1","request":{"model":"a","stream":true},"response":{"status":200}}"#,
            r#"{"ts":"t2","request":{"model":"bb","stream":false},"response":{"status":429}}"#,
            r#"{"ts":"t3","request":{"error":"c","stream":true},"response":{"status":200}}"#,
            r#"{"ts":"t4","request":{"error":"dd","stream":true},"response":{"status":500}}"#,
            r#"{"ts":"t5","request":{"Model":"e","gen_ai.x":1},"response":{"stream":200}}"#,
            r#"{"ts":"t6","request":{"Model":"f","gen_ai.x":2},"response":{"stream":201}}"#,
            r#"{"ts":"t7","request":{"model":"g","stream":true},"response":{"status":200}}"#,
        ];
        let fields = [F::Model, F::Error, F::Stream, F::Status];
        for (i, text) in lines.iter().enumerate() {
            let (line, _tokens) = Obj::line(text).unwrap();
            assert!(json::tokens_shape() != 0, "{text}");
            for outer in [F::Request, F::Response] {
                let nested = line.obj(outer).unwrap();
                let fresh = Obj::parse(line.get(outer).unwrap().get()).unwrap();
                assert_reads_as(&nested, &fresh, &fields, &format!("{outer:?} of line {i}"));
            }
        }
        let (line, _tokens) = Obj::line(lines[3]).unwrap();
        let request = line.obj(F::Request).unwrap();
        assert!(request.get(F::Model).is_none());
        assert_eq!(request.str(F::Error).as_deref(), Some("dd"));
    }

    #[test]
    fn keys_of_interleaved_shapes_mean_what_they_say() {
        // Kinds of line alike but for one key (same length, same place),
        // flat and nested, taken in turn: more kinds than a worker keeps
        // shapes of, then as many, so shapes and their places are both
        // reused and given up.
        let keys = ["model", "Model", "error", "event", "level", "stats"];
        let kind = |k: usize, v: usize| {
            let key = keys[k % keys.len()];
            if k < keys.len() {
                format!(r#"{{"ts":"t{v}","{key}":"v{v}","status":{v}}}"#)
            } else {
                format!(
                    r#"{{"ts":"t{v}","request":{{"{key}":"v{v}"}},"response":{{"status":{v}}}}}"#
                )
            }
        };
        let fields = [
            F::Model,
            F::Error,
            F::Event,
            F::Status,
            F::Request,
            F::Response,
        ];
        for kinds in [2 * keys.len(), json::SHAPES_KEPT / 2] {
            for v in 0..3 {
                for k in 0..kinds {
                    let text = kind(k, v);
                    let (line, _tokens) = Obj::line(&text).unwrap();
                    assert_reads_as(&line, &Obj::parse(&text).unwrap(), &fields, &text);
                    if let (Some(nested), Some(raw)) = (line.obj(F::Request), line.get(F::Request))
                    {
                        let fresh = Obj::parse(raw.get()).unwrap();
                        assert_reads_as(&nested, &fresh, &fields, &text);
                    }
                }
            }
        }
    }

    #[test]
    fn first_non_null_duplicate_wins() {
        let obj = Obj::parse(r#"{"model":null,"model":"a","model":"b"}"#).unwrap();
        assert_eq!(obj.str(F::Model).as_deref(), Some("a"));
    }

    #[test]
    fn strings_unescape_only_when_needed() {
        let obj = Obj::parse(r#"{"message":"plain","event":"tab\there"}"#).unwrap();
        assert!(matches!(obj.str(F::Message), Some(Cow::Borrowed("plain"))));
        assert_eq!(obj.str(F::Event).as_deref(), Some("tab\there"));
    }

    #[test]
    fn values_of_a_line_unescape_only_when_the_line_has_a_backslash() {
        let text = r#"{"message":"plain","event":"x","error":{"message":"deep"}}"#;
        let (obj, line) = Obj::line(text).unwrap();
        assert!(json::in_line_without_escapes(&text[5..10]));
        assert!(matches!(obj.str(F::Message), Some(Cow::Borrowed("plain"))));
        let error = obj.obj(F::Error).unwrap();
        assert!(matches!(error.str(F::Message), Some(Cow::Borrowed("deep"))));
        drop(line);
        assert!(!json::in_line_without_escapes(&text[5..10]));

        let text = r#"{"message":"say \"hi\"","event":"a\\b","error":{"message":"t\tab"}}"#;
        let (obj, _line) = Obj::line(text).unwrap();
        assert!(!json::in_line_without_escapes(text));
        assert_eq!(obj.str(F::Message).as_deref(), Some("say \"hi\""));
        assert_eq!(obj.str(F::Event).as_deref(), Some("a\\b"));
        let error = obj.obj(F::Error).unwrap();
        assert_eq!(error.str(F::Message).as_deref(), Some("t\tab"));
        // Another text, even one without escapes, is not the line's.
        assert!(!json::in_line_without_escapes("plain"));
    }

    #[test]
    fn emptiness() {
        for empty in ["[]", "[ ]", "{}", "\"\"", "null"] {
            let raw = Raw::parse(empty).unwrap();
            assert!(is_empty(raw), "{empty}");
        }
        let raw = Raw::parse("[{}]").unwrap();
        assert!(!is_empty(raw));
    }
}
