//! OpenTelemetry GenAI: OTLP JSON exports (`resourceSpans`, `resourceLogs`) and
//! flattened spans (`gen_ai.*` keys at the top level or under `attributes`).
//!
//! Each span or log record is flattened into one JSON object of attribute keys
//! and then read with the same field rules as the other formats.
//!
//! The flat object is written from the texts of the line's own values, read
//! from the line's tokens as nested objects of the other formats are: no tree
//! of values is built, so a line nested at any depth is read, and only what
//! an OTLP export encodes (`{"intValue": "310"}`, arrays of such values) is
//! written anew. Keys keep the order of a map built from the span: the
//! span's own keys, then its attributes; a key met again takes the new value
//! in the old place.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

use super::{
    context::{Ctx, Origin, Rejection},
    errors::{error_text, error_value, quoted_body},
    fields::{base_record, common, finish, timestamp, ts_of},
};
use crate::json::{self, Key, Raw};
use crate::quarantine::Reason;
use crate::record::{set_if_none, Format, GroupedBy, OperationKey, Record};
use crate::spans::{CallSpan, Child};
use crate::view::{as_str, unescape_key, Obj, F};

pub(crate) fn normalize(
    text: &str,
    origin: &Origin<'_>,
    ctx: &Ctx<'_>,
    out: &mut Vec<Record>,
) -> Result<(), Rejection> {
    // The line being worked on, read as valid JSON, whose tokens are kept;
    // any other text is scanned here.
    let line = match json::line_value(text) {
        Some(line) => line,
        None => Raw::parse(text).map_err(|_| Rejection::from(Reason::InvalidJson))?,
    };
    let items = items(line);
    let single = items.len() == 1;
    let start = out.len();
    let mut parents = Vec::new();
    let mut children = Vec::new();
    for item in &items {
        if !item.is_gen_ai() {
            if let Some(child) = http_child(item, ctx).or_else(|| raw_request_child(item)) {
                children.push(child);
                continue;
            }
            // Other spans of an export (the application's own) are no calls;
            // a lone span is read for what it holds.
            if !single {
                continue;
            }
        }
        match record(item, origin, ctx) {
            Ok(rec) => {
                parents.push(call_span(item, &rec, out.len()));
                out.push(rec);
            }
            Err(reason) => {
                // One bad span rejects the line, so nothing is half-counted.
                out.truncate(start);
                return Err(reason.into());
            }
        }
    }
    if out.len() == start && children.is_empty() {
        return Err(Reason::NotACall.into());
    }
    let mut links = ctx.spans.borrow_mut();
    for call in parents {
        links.call(call);
    }
    for child in children {
        links.child(child);
    }
    Ok(())
}

/// The spans or log records of a line, flattened: those of an OTLP export,
/// or the line itself.
fn items(line: Raw<'_>) -> Vec<Flat<'_>> {
    let mut items = Vec::new();
    let [spans, logs] = named(line, ["resourceSpans", "resourceLogs"]);
    if let Some(resources) = spans.filter(|r| is_array(*r)) {
        each_item(resources, |resource| {
            let service = resource_service(resource);
            let [scope_spans, library_spans] =
                named(resource, ["scopeSpans", "instrumentationLibrarySpans"]);
            for scopes in [scope_spans, library_spans].into_iter().flatten() {
                each_item(scopes, |scope| {
                    if let [Some(spans)] = named(scope, ["spans"]) {
                        each_item(spans, |span| items.push(flatten(span, service.as_ref())));
                    }
                });
            }
        });
    } else if let Some(resources) = logs.filter(|r| is_array(*r)) {
        each_item(resources, |resource| {
            let service = resource_service(resource);
            if let [Some(scopes)] = named(resource, ["scopeLogs"]) {
                each_item(scopes, |scope| {
                    if let [Some(logs)] = named(scope, ["logRecords"]) {
                        each_item(logs, |log| items.push(flatten(log, service.as_ref())));
                    }
                });
            }
        });
    } else {
        items.push(flatten(line, None));
    }
    items
}

/// `trace id/span id` of a span (`which` names its own id or its parent's),
/// from an OTLP span (`traceId`, `spanId`, `parentSpanId`) or a span as the
/// Python SDK's `to_json` writes it (`context.trace_id`, `context.span_id`,
/// `parent_id`).
fn span_key(item: &Flat<'_>, otlp: &str, console: &str) -> Option<String> {
    let trace_and = |trace: &str, id: &str| {
        let trace = crate::spans::span_id(trace)?;
        let id = crate::spans::span_id(id)?;
        Some(format!("{trace}/{id}"))
    };
    if let (Some(trace), Some(id)) = (item.str("traceId"), item.str(otlp)) {
        return trace_and(&trace, &id);
    }
    let context = Raw::parse(item.get("context")?).ok()?;
    let [trace, span] = named(context, ["trace_id", "span_id"]);
    let trace = raw_string(trace?)?;
    if console == "span_id" {
        return trace_and(&trace, &raw_string(span?)?);
    }
    trace_and(&trace, &item.str(console)?)
}

/// The operation of a call's span: its trace and parent span (GenAI spans
/// of one trace under one parent are attempts of one operation), or its
/// trace alone when it is a root span.
fn operation_of(item: &Flat<'_>) -> Option<OperationKey> {
    if let Some(parent) = span_key(item, "parentSpanId", "parent_id") {
        return Some(OperationKey::of(GroupedBy::Trace, &parent));
    }
    let trace = if let Some(trace) = item.str("traceId") {
        trace.into_owned()
    } else {
        let context = Raw::parse(item.get("context")?).ok()?;
        let [trace] = named(context, ["trace_id"]);
        raw_string(trace?)?.into_owned()
    };
    let trace = crate::spans::span_id(&trace)?;
    Some(OperationKey::of(GroupedBy::Trace, &trace))
}

/// What the spans of a piece need to know of a call's span to join it with
/// its children and with another instrumentation's span of the same call.
fn call_span(item: &Flat<'_>, rec: &Record, index: usize) -> CallSpan {
    let end_ms = item
        .get("endTimeUnixNano")
        .or_else(|| item.get("end_time"))
        .or_else(|| item.get("endTime"))
        .and_then(|v| ts_of(Raw::parse(v).ok()?).ok());
    let mut ids = Vec::new();
    if let Some(id) = item.str("gen_ai.response.id") {
        ids.push(id.into_owned());
    }
    for key in ["anthropic.request.id", "openai.request.id"] {
        if let Some(id) = item.str(key) {
            ids.push(id.into_owned());
        }
    }
    // The SDK's error text quotes the request id (and the body it quotes
    // may hold another).
    if let Some(text) = item
        .str("status_message")
        .or_else(|| item.str("error_message"))
    {
        provider_request_ids(&text, &mut ids);
    }
    CallSpan {
        index,
        key: span_key(item, "spanId", "span_id"),
        name: item.str("name").map(Cow::into_owned),
        start_ms: rec.ts_ms,
        end_ms: end_ms.unwrap_or(rec.ts_ms),
        model: rec.model.clone(),
        ids,
    }
}

/// The provider request ids quoted in an error text (`request_id:
/// req_...`, as Anthropic's SDK renders its errors).
fn provider_request_ids(text: &str, ids: &mut Vec<String>) {
    let mut rest = text;
    while let Some(at) = rest.find("req_") {
        let id: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + id.len()..];
        if id.len() > 12 && !ids.contains(&id) {
            ids.push(id);
        }
    }
}

/// LiteLLM's `raw_gen_ai_request` span: the provider's raw request and
/// response under LiteLLM's call span, no call of its own.
fn raw_request_child(item: &Flat<'_>) -> Option<Child> {
    if item.str("name").as_deref() != Some("raw_gen_ai_request") {
        return None;
    }
    Some(Child {
        parent: span_key(item, "parentSpanId", "parent_id")?,
        status: None,
        host: None,
        request: false,
        start_ms: None,
    })
}

/// An HTTP client span under another span: the request an SDK sent for a
/// call, with the status and host it saw.
fn http_child(item: &Flat<'_>, ctx: &Ctx<'_>) -> Option<Child> {
    let status = ["http.response.status_code", "http.status_code"]
        .iter()
        .find_map(|key| item.get(key))
        .and_then(|v| string(v).map_or_else(|| v.parse().ok(), |s| s.parse().ok()))
        .filter(|s: &u16| (100..600).contains(s));
    let url = ["url.full", "http.url", "server.address"]
        .iter()
        .find_map(|key| item.str(key));
    if status.is_none() && url.is_none() {
        return None;
    }
    let parent = span_key(item, "parentSpanId", "parent_id")?;
    let start_ms = item
        .get("startTimeUnixNano")
        .or_else(|| item.get("start_time"))
        .or_else(|| item.get("startTime"))
        .and_then(|v| ts_of(Raw::parse(v).ok()?).ok());
    Some(Child {
        parent,
        status,
        host: url.and_then(|url| ctx.host(&url)),
        request: true,
        start_ms,
    })
}

/// A span or log record flattened: keys, decoded, and the JSON text of their
/// values, in the order a map built from the span keeps them.
#[derive(Debug)]
struct Flat<'a> {
    entries: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// Where each key is in `entries`, once there are more than
    /// [`INDEXED`]: a span's few keys are found quicker by comparing them
    /// all, but a line may hold a span of thousands, for which each key
    /// set would compare them all again.
    index: Option<HashMap<Cow<'a, str>, usize>>,
}

/// Keys of a flat object found by comparing them all; past that, by a map.
const INDEXED: usize = 32;

impl<'a> Flat<'a> {
    fn new() -> Flat<'a> {
        Flat {
            // A span has a dozen or two keys: room for them from the start.
            entries: Vec::with_capacity(24),
            index: None,
        }
    }

    fn position(&self, key: &str) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(key).copied(),
            None => self.entries.iter().position(|(k, _)| k == key),
        }
    }

    /// Adds a key that is not there yet.
    fn push(&mut self, key: Cow<'a, str>, value: Cow<'a, str>) {
        if let Some(index) = &mut self.index {
            index.insert(key.clone(), self.entries.len());
        }
        self.entries.push((key, value));
        if self.index.is_none() && self.entries.len() > INDEXED {
            self.reindex();
        }
    }

    fn reindex(&mut self) {
        let index = self.entries.iter().enumerate();
        self.index = Some(index.map(|(at, (key, _))| (key.clone(), at)).collect());
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.position(key).map(|at| &*self.entries[at].1)
    }

    /// Sets `key` to `value`: in its place when the key is there already.
    fn insert(&mut self, key: Cow<'a, str>, value: Cow<'a, str>) {
        match self.position(&key) {
            Some(at) => self.entries[at].1 = value,
            None => self.push(key, value),
        }
    }

    /// Sets `key` to `value` unless the key is there already.
    fn or_insert(&mut self, key: &'static str, value: Cow<'a, str>) {
        if self.position(key).is_none() {
            self.push(Cow::Borrowed(key), value);
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some(at) = self.position(key) {
            self.entries.remove(at);
            if self.index.is_some() {
                self.reindex();
            }
        }
    }

    fn is_gen_ai(&self) -> bool {
        self.entries.iter().any(|(k, _)| k.starts_with("gen_ai."))
    }

    /// The value of `key` when it is a JSON string, decoded.
    fn str(&self, key: &str) -> Option<Cow<'_, str>> {
        string(self.get(key)?)
    }

    /// The object of the flat keys, read as a scan of its JSON text would
    /// read it, handed to `read`. Its text is the values one after the
    /// other, which each key's field takes its range of: the keys need not
    /// be written out and read again.
    fn read<R>(&self, read: impl FnOnce(&Obj<'_>) -> R) -> R {
        let mut text = String::with_capacity(self.entries.iter().map(|(_, v)| v.len()).sum());
        let mut spans = Vec::with_capacity(self.entries.len());
        for (_, value) in &self.entries {
            let start = text.len();
            text.push_str(value);
            spans.push((start, text.len()));
        }
        let mut obj = Obj::empty(&text);
        for ((key, _), (start, end)) in self.entries.iter().zip(spans) {
            // A value's range fits when the line's length does.
            if let (Ok(start), Ok(end)) = (u32::try_from(start), u32::try_from(end)) {
                obj.put(key, (start, end));
            }
        }
        read(&obj)
    }

    /// The flat object as JSON text.
    #[cfg(test)]
    fn text(&self) -> String {
        let len = self
            .entries
            .iter()
            .map(|(k, v)| k.len() + v.len() + 4)
            .sum::<usize>();
        let mut text = String::with_capacity(len + 2);
        text.push('{');
        for (i, (key, value)) in self.entries.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            if key.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
                // A decoded key holding a quote, a backslash or a control
                // character is written escaped again.
                text.push_str(&serde_json::Value::from(&**key).to_string());
            } else {
                text.push('"');
                text.push_str(key);
                text.push('"');
            }
            text.push(':');
            text.push_str(value);
        }
        text.push('}');
        text
    }
}

/// `text`, a JSON value's text, decoded when it is a string.
fn string(text: &str) -> Option<Cow<'_, str>> {
    if text.starts_with('"') {
        as_str(Raw::parse(text).ok()?)
    } else {
        None
    }
}

/// A raw value's text decoded when it is a string.
fn raw_string(raw: Raw<'_>) -> Option<Cow<'_, str>> {
    if raw.get().starts_with('"') {
        as_str(raw)
    } else {
        None
    }
}

fn is_array(raw: Raw<'_>) -> bool {
    raw.get().starts_with('[')
}

/// A key decoded; `None` when its escapes make no text (a lone surrogate).
fn key_text(key: Key<'_>) -> Option<Cow<'_, str>> {
    if key.escaped {
        unescape_key(key.text).map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(key.text))
    }
}

/// Hands out the members of `raw` (none when it is not an object), from
/// the line's tokens when it is part of the line being worked on, from its
/// shape when it is that line and a flat shape read it (which keeps no
/// tokens), else scanned on its own.
///
/// A scan that gives up part way hands out the members before the break
/// again ([`json::object`]): each reader here keeps the last value of a
/// key, which the same member given twice does not change.
fn each_member<'a>(raw: Raw<'a>, mut member: impl FnMut(Cow<'a, str>, Raw<'a>)) {
    let mut take = |key: Key<'a>, value: Raw<'a>| {
        if let Some(key) = key_text(key) {
            member(key, value);
        }
    };
    if !json::members_of(raw, &mut take)
        && !json::flat_shaped_members(raw, &mut take)
        && raw.get().starts_with('{')
    {
        // Valid, so the scan cannot fail.
        let _ = json::object(raw.get(), take);
    }
}

/// Hands out the elements of `raw` (none when it is not an array).
fn each_item<'a>(raw: Raw<'a>, mut item: impl FnMut(Raw<'a>)) {
    let from_tokens = json::items_of(raw, |value| {
        item(value);
        true
    });
    if !from_tokens {
        for value in raw.items() {
            item(value);
        }
    }
}

/// The values of `raw`'s members named `names` (the last of a name, as a
/// map built from the object keeps it); nothing when `raw` is not an object.
fn named<'a, const N: usize>(raw: Raw<'a>, names: [&str; N]) -> [Option<Raw<'a>>; N] {
    let mut found = [None; N];
    each_member(raw, |key, value| {
        if let Some(at) = names.iter().position(|name| *name == key) {
            found[at] = Some(value);
        }
    });
    found
}

/// The `service.name` of an OTLP resource.
fn resource_service(resource: Raw<'_>) -> Option<Cow<'_, str>> {
    let [Some(inner)] = named(resource, ["resource"]) else {
        return None;
    };
    let [Some(attrs)] = named(inner, ["attributes"]) else {
        return None;
    };
    let mut service = None;
    attr_list(attrs, |key, value| {
        if key == "service.name" {
            service = Some(value);
        }
    });
    service
}

/// Hands out OTLP attributes, `[{"key": k, "value": {"stringValue": v}}]`,
/// as keys and plain JSON values; an object's members as they are.
fn attr_list<'a>(attrs: Raw<'a>, mut attr: impl FnMut(Cow<'a, str>, Cow<'a, str>)) {
    if attrs.get().starts_with('{') {
        each_member(attrs, |key, value| attr(key, Cow::Borrowed(value.get())));
    } else if is_array(attrs) {
        each_item(attrs, |item| {
            if let [Some(key), Some(value)] = named(item, ["key", "value"]) {
                if let Some(key) = raw_string(key) {
                    attr(key, any_value(value));
                }
            }
        });
    }
}

/// Arrays of OTLP values decoded inside one another at most; a deeper one
/// is kept as written. The decoding recurses, and a line may nest arrays
/// as deep as its length allows: unbounded, it would exhaust the stack.
const ARRAY_DEPTH: u32 = 16;

/// An OTLP `AnyValue` as plain JSON text.
fn any_value(value: Raw<'_>) -> Cow<'_, str> {
    any_value_within(value, 0)
}

/// [`any_value`] for a value inside `depth` arrays of values.
fn any_value_within(value: Raw<'_>, depth: u32) -> Cow<'_, str> {
    if !value.get().starts_with('{') || depth > ARRAY_DEPTH {
        return Cow::Borrowed(value.get());
    }
    let [string_value, bool_value, double_value, int_value, array_value] = named(
        value,
        [
            "stringValue",
            "boolValue",
            "doubleValue",
            "intValue",
            "arrayValue",
        ],
    );
    if let Some(v) = string_value.or(bool_value).or(double_value) {
        return Cow::Borrowed(v.get());
    }
    if let Some(v) = int_value {
        // int64 travels as a string in OTLP JSON.
        return match raw_string(v).and_then(|s| s.parse::<i64>().ok()) {
            Some(n) => Cow::Owned(n.to_string()),
            None => Cow::Borrowed(v.get()),
        };
    }
    if let Some([Some(values)]) = array_value.map(|a| named(a, ["values"])) {
        if is_array(values) {
            let mut text = String::from("[");
            each_item(values, |v| {
                if text.len() > 1 {
                    text.push(',');
                }
                text.push_str(&any_value_within(v, depth + 1));
            });
            text.push(']');
            return Cow::Owned(text);
        }
    }
    Cow::Borrowed(value.get())
}

/// One span or log record as a flat object of attribute keys.
fn flatten<'a>(item: Raw<'a>, service: Option<&Cow<'a, str>>) -> Flat<'a> {
    let mut flat = Flat::new();
    let (mut attributes, mut status, mut events, mut body) = (None, None, None, None);
    each_member(item, |key, value| match &*key {
        "attributes" => attributes = Some(value),
        "status" => status = Some(value),
        "events" => events = Some(value),
        "body" => body = Some(value),
        "resource" => {}
        _ => flat.insert(key, Cow::Borrowed(value.get())),
    });
    if let Some(attrs) = attributes {
        attr_list(attrs, |key, value| flat.insert(key, value));
    }
    if let Some(service) = service {
        flat.or_insert("service.name", service.clone());
    }
    if let Some(status) = status {
        let [code, status_code, message, description] =
            named(status, ["code", "status_code", "message", "description"]);
        let is_error = match code.or(status_code) {
            Some(code) if code.get().starts_with('"') => {
                raw_string(code).is_some_and(|c| c.ends_with("ERROR"))
            }
            // STATUS_CODE_ERROR is 2.
            Some(code) if code.get().starts_with(|c: char| c.is_ascii_digit()) => code.get() == "2",
            _ => raw_string(status).is_some_and(|s| s.ends_with("ERROR")),
        };
        if is_error {
            flat.insert(Cow::Borrowed("otel.status_error"), Cow::Borrowed("true"));
        }
        if let Some(msg) = message.or(description) {
            flat.insert(Cow::Borrowed("status_message"), Cow::Borrowed(msg.get()));
        }
    }
    if flat
        .str("status_code")
        .is_some_and(|s| s.ends_with("ERROR"))
    {
        flat.remove("status_code");
        flat.insert(Cow::Borrowed("otel.status_error"), Cow::Borrowed("true"));
    }
    if let Some(events) = events {
        each_item(events, |event| {
            let [name, attrs] = named(event, ["name", "attributes"]);
            let name = name.and_then(raw_string);
            if !matches!(
                name.as_deref(),
                Some("exception" | "gen_ai.client.operation.exception")
            ) {
                return;
            }
            let (mut kind, mut msg, mut trace) = (None, None, None);
            if let Some(attrs) = attrs {
                attr_list(attrs, |key, value| match &*key {
                    "exception.type" => kind = Some(value),
                    "exception.message" => msg = Some(value),
                    "exception.stacktrace" => trace = Some(value),
                    _ => {}
                });
            }
            if let Some(kind) = kind {
                flat.or_insert("exception.type", kind);
            }
            if let Some(msg) = msg {
                flat.or_insert("error_message", msg);
            }
            if let Some(trace) = trace {
                flat.or_insert("exception.stacktrace", trace);
            }
        });
    }
    if let Some(body) = body {
        let body = any_value(body);
        if body != "null" {
            flat.or_insert("otel.body", body);
        }
    }
    flat
}

/// Whether a successful GenAI span says the model answered nothing: its
/// captured output has no content and no tool call; or the prompt was
/// captured (so the output would have been) but no output was; or it
/// counted no output tokens; or it counted the input's
/// tokens but not the output's (Gemini leaves `candidatesTokenCount` out
/// when no candidate came back).
fn output_empty(item: &Flat<'_>) -> bool {
    let generates = item.str("gen_ai.operation.name").is_none_or(|op| {
        matches!(
            &*op,
            "chat" | "text_completion" | "generate_content" | "completion"
        )
    });
    if !generates {
        return false;
    }
    if let Some(output) = item.get("gen_ai.output.messages") {
        return !has_output(output);
    }
    let tokens = |key: &str| {
        item.get(key)
            .and_then(|v| string(v).map_or_else(|| v.parse::<f64>().ok(), |s| s.parse().ok()))
    };
    let output_tokens =
        tokens("gen_ai.usage.output_tokens").or_else(|| tokens("gen_ai.usage.completion_tokens"));
    let input_tokens =
        tokens("gen_ai.usage.input_tokens").or_else(|| tokens("gen_ai.usage.prompt_tokens"));
    if item.get("gen_ai.input.messages").is_some() {
        // Content is captured, and no output was.
        return true;
    }
    match output_tokens {
        Some(n) => n == 0.0,
        None => input_tokens.is_some(),
    }
}

/// Whether `gen_ai.output.messages` (a JSON string or array of messages with
/// `parts`) holds any text or tool call.
fn has_output(value: &str) -> bool {
    let parsed: Option<serde_json::Value> = match string(value) {
        Some(text) => serde_json::from_str(&text).ok(),
        None => serde_json::from_str(value).ok(),
    };
    let Some(serde_json::Value::Array(messages)) = parsed else {
        // Not the shape the conventions give: say nothing of it.
        return true;
    };
    messages.iter().any(|message| {
        message
            .get("parts")
            .and_then(serde_json::Value::as_array)
            .is_some_and(|parts| {
                parts.iter().any(|part| {
                    let kind = part.get("type").and_then(serde_json::Value::as_str);
                    let content = part
                        .get("content")
                        .and_then(serde_json::Value::as_str)
                        .is_some_and(|c| !c.trim().is_empty());
                    content || matches!(kind, Some("tool_call" | "tool_call_request"))
                })
            })
    })
}

/// The status in an HTTP client's error as a traceback quotes it: httpx's
/// `Server error '529 ' for url ...`, requests' `413 Client Error: ...`.
fn http_client_status(text: &str) -> Option<u16> {
    static HTTP_CLIENT_ERROR: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?:Client|Server) error '(\d{3})\b|\b(\d{3}) (?:Client|Server) Error: ")
            .expect("http client error pattern compiles")
    });
    let caps = HTTP_CLIENT_ERROR.captures(text)?;
    let digits = caps.get(1).or(caps.get(2))?.as_str();
    digits.parse().ok().filter(|s| (400..600).contains(s))
}

/// An `error.type` that is an HTTP error status, as google-genai's
/// instrumentation writes it.
fn status_of_type(kind: &str) -> Option<u16> {
    let kind = kind.trim();
    if kind.len() != 3 || !kind.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    kind.parse().ok().filter(|s| (400..600).contains(s))
}

fn record(item: &Flat<'_>, origin: &Origin<'_>, ctx: &Ctx<'_>) -> Result<Record, Reason> {
    item.read(|obj| record_of(item, obj, origin, ctx))
}

fn record_of(
    item: &Flat<'_>,
    obj: &Obj<'_>,
    origin: &Origin<'_>,
    ctx: &Ctx<'_>,
) -> Result<Record, Reason> {
    let mut rec = base_record(origin);
    rec.format = Some(Format::OtelGenAi);
    rec.ts_ms = timestamp(obj, &[F::StartTime, F::Ts])?;
    common(obj, ctx, &mut rec);
    if let (Some(start), Some(end)) = (obj.get(F::StartTime), obj.get(F::EndTime)) {
        if let (Ok(start), Ok(end)) = (ts_of(start), ts_of(end)) {
            if end >= start {
                set_if_none(&mut rec.latency_ms, Some((end - start) as f64));
            }
        }
    }
    // The status description or exception message is the SDK's rendering of
    // the error (`Error code: 429 - {...}`, `529 Overloaded`, `400
    // INVALID_ARGUMENT. {...}`): its status, type, code and message are read
    // before `error.type`, which names only the exception's class.
    //
    // LiteLLM's span writes its own mapping of the error as the status (a
    // 529 becomes "500", a 413 "400"): there the status the provider's body
    // or the HTTP client's error states comes first.
    let mapped = item.get("litellm.call_id").is_some();
    let attribute_status = if mapped { rec.http_status.take() } else { None };
    if let Some(msg) = obj.str(F::Message) {
        quoted_body(&msg, &mut rec);
        error_text(&msg, &mut rec);
    }
    if mapped {
        let traces = ["error.stack_trace", "exception.stacktrace"];
        if let Some(status) = traces
            .iter()
            .find_map(|key| http_client_status(&item.str(key)?))
        {
            rec.http_status = Some(status);
        }
        set_if_none(&mut rec.http_status, attribute_status);
    }
    if let Some(kind) = obj.str(F::ErrorType) {
        // Some instrumentations put the HTTP status there (`"429"`).
        match status_of_type(&kind) {
            Some(status) => set_if_none(&mut rec.http_status, Some(status)),
            None => set_if_none(&mut rec.error_type, Some(kind.into_owned())),
        }
    }
    if let Some(raw) = obj.get(F::Error) {
        error_value(raw, &mut rec);
    }
    let status_error = item.get("otel.status_error") == Some("true");
    if status_error && rec.error_type.is_none() && rec.error_message.is_none() {
        rec.error_type = Some("_OTHER".to_owned());
    }
    if !status_error && rec.error_type.is_none() && rec.http_status.is_none() {
        // A span that ended without an error status is a successful call.
        rec.http_status = Some(200);
    }
    let succeeded = rec.http_status.is_some_and(|s| (200..300).contains(&s))
        && rec.error_type.is_none()
        && rec.error_message.is_none();
    if succeeded && output_empty(item) {
        rec.empty_response = true;
    }
    // The trace is the strongest tie a span has: it beats any id attribute.
    if let Some(key) = operation_of(item) {
        rec.operation_key = Some(key);
    }
    finish(obj, &mut rec)?;
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value};

    use super::*;
    use crate::testing::draws;

    /// The reading this module replaced, which built each line as a tree of
    /// values and each span as a map: the flat objects it made are the ones
    /// the test holds the text-built ones to.
    mod tree {
        use serde_json::{Map, Value};

        pub(super) fn items(text: &str) -> Vec<Map<String, Value>> {
            let value: Value = serde_json::from_str(text).unwrap();
            let mut items = Vec::new();
            if let Some(resources) = value.get("resourceSpans").and_then(Value::as_array) {
                for resource in resources {
                    let service = resource_service(resource);
                    for scope in array(resource, "scopeSpans")
                        .chain(array(resource, "instrumentationLibrarySpans"))
                    {
                        for span in array(scope, "spans") {
                            items.push(flatten(span, service.as_ref()));
                        }
                    }
                }
            } else if let Some(resources) = value.get("resourceLogs").and_then(Value::as_array) {
                for resource in resources {
                    let service = resource_service(resource);
                    for scope in array(resource, "scopeLogs") {
                        for log in array(scope, "logRecords") {
                            items.push(flatten(log, service.as_ref()));
                        }
                    }
                }
            } else {
                items.push(flatten(&value, None));
            }
            items
        }

        fn array<'v>(value: &'v Value, key: &str) -> impl Iterator<Item = &'v Value> {
            value
                .get(key)
                .and_then(Value::as_array)
                .map(|a| a.iter())
                .into_iter()
                .flatten()
        }

        fn resource_service(resource: &Value) -> Option<Value> {
            let attrs = resource.get("resource")?.get("attributes")?;
            attr_list(attrs).remove("service.name")
        }

        /// OTLP `[{"key": k, "value": {"stringValue": v}}]` (or an object map) to a map.
        fn attr_list(attrs: &Value) -> Map<String, Value> {
            match attrs {
                Value::Object(map) => map.clone(),
                Value::Array(items) => items
                    .iter()
                    .filter_map(|item| {
                        let key = item.get("key")?.as_str()?;
                        Some((key.to_owned(), any_value(item.get("value")?)))
                    })
                    .collect(),
                _ => Map::new(),
            }
        }

        /// An OTLP `AnyValue` to plain JSON.
        fn any_value(value: &Value) -> Value {
            let Some(obj) = value.as_object() else {
                return value.clone();
            };
            for key in ["stringValue", "boolValue", "doubleValue"] {
                if let Some(v) = obj.get(key) {
                    return v.clone();
                }
            }
            if let Some(v) = obj.get("intValue") {
                // int64 travels as a string in OTLP JSON.
                return v
                    .as_str()
                    .and_then(|s| s.parse::<i64>().ok())
                    .map_or_else(|| v.clone(), Value::from);
            }
            if let Some(values) = obj
                .get("arrayValue")
                .and_then(|a| a.get("values"))
                .and_then(Value::as_array)
            {
                return Value::Array(values.iter().map(any_value).collect());
            }
            value.clone()
        }

        /// One span or log record as a flat object of attribute keys.
        fn flatten(item: &Value, service: Option<&Value>) -> Map<String, Value> {
            let mut flat = Map::new();
            if let Some(obj) = item.as_object() {
                for (key, value) in obj {
                    match key.as_str() {
                        "attributes" | "status" | "events" | "body" | "resource" => {}
                        _ => {
                            flat.insert(key.clone(), value.clone());
                        }
                    }
                }
            }
            if let Some(attrs) = item.get("attributes") {
                for (key, value) in attr_list(attrs) {
                    flat.insert(key, value);
                }
            }
            if let Some(service) = service {
                flat.entry("service.name")
                    .or_insert_with(|| service.clone());
            }
            if let Some(status) = item.get("status") {
                let code = status.get("code").or_else(|| status.get("status_code"));
                let is_error = match code {
                    Some(Value::Number(n)) => n.as_u64() == Some(2),
                    Some(Value::String(s)) => s.ends_with("ERROR"),
                    _ => status.as_str().is_some_and(|s| s.ends_with("ERROR")),
                };
                if is_error {
                    flat.insert("otel.status_error".into(), Value::Bool(true));
                }
                if let Some(msg) = status.get("message").or_else(|| status.get("description")) {
                    flat.insert("status_message".into(), msg.clone());
                }
            }
            if flat
                .get("status_code")
                .and_then(Value::as_str)
                .is_some_and(|s| s.ends_with("ERROR"))
            {
                flat.shift_remove("status_code");
                flat.insert("otel.status_error".into(), Value::Bool(true));
            }
            for event in array(item, "events") {
                if event.get("name").and_then(Value::as_str) == Some("exception")
                    || event.get("name").and_then(Value::as_str)
                        == Some("gen_ai.client.operation.exception")
                {
                    let attrs = event.get("attributes").map(attr_list).unwrap_or_default();
                    if let Some(kind) = attrs.get("exception.type") {
                        flat.entry("exception.type").or_insert_with(|| kind.clone());
                    }
                    if let Some(msg) = attrs.get("exception.message") {
                        flat.entry("error_message").or_insert_with(|| msg.clone());
                    }
                    if let Some(trace) = attrs.get("exception.stacktrace") {
                        flat.entry("exception.stacktrace")
                            .or_insert_with(|| trace.clone());
                    }
                }
            }
            if let Some(body) = item.get("body") {
                let body = any_value(body);
                if !body.is_null() {
                    flat.entry("otel.body").or_insert(body);
                }
            }
            flat
        }
    }

    /// Builds OTel-like lines from a seed: spans alone or in OTLP exports,
    /// keys in any order, met twice, escaped, attributes as objects or
    /// OTLP lists with every kind of value, malformed parts among them.
    struct Gen<F: FnMut(u64) -> u64> {
        draw: F,
    }

    impl<F: FnMut(u64) -> u64> Gen<F> {
        fn pick<'s>(&mut self, of: &[&'s str]) -> &'s str {
            of[(self.draw)(of.len() as u64) as usize]
        }

        fn chance(&mut self, in_ten: u64) -> bool {
            (self.draw)(10) < in_ten
        }

        fn key(&mut self) -> &'static str {
            self.pick(&[
                r#""gen_ai.system""#,
                r#""gen_ai.provider.name""#,
                r#""gen_ai.request.model""#,
                r#""gen_ai.usage.input_tokens""#,
                r#""gen_ai.usage.output_tokens""#,
                r#""http.response.status_code""#,
                r#""http.status_code""#,
                r#""error.type""#,
                r#""server.address""#,
                r#""service.name""#,
                r#""status_code""#,
                r#""model""#,
                r#""llm.provider""#,
                r#""gen_ai.\u0073ystem""#,
                r#""we\"ird""#,
                r#""spanId""#,
            ])
        }

        fn scalar(&mut self) -> String {
            self.pick(&[
                r#""openai""#,
                r#""caf\u00e9""#,
                r#""a\"b""#,
                "429",
                "504",
                "1.5e2",
                "-3",
                "true",
                "null",
                r#""STATUS_CODE_ERROR""#,
                r#""ERROR""#,
                r#""s1""#,
                "{}",
                r#"{"x":[1,{"y":null}]}"#,
            ])
            .to_owned()
        }

        fn any_value(&mut self, depth: u32) -> String {
            match (self.draw)(if depth > 1 { 9 } else { 10 }) {
                0 => format!(r#"{{"stringValue":{}}}"#, self.scalar()),
                1 => format!(
                    r#"{{"intValue":"{}"}}"#,
                    self.pick(&["310", "-7", "x1", ""])
                ),
                2 => r#"{"intValue":42}"#.to_owned(),
                3 => format!(r#"{{"boolValue":{}}}"#, self.pick(&["true", "false"])),
                4 => r#"{"doubleValue":0.25}"#.to_owned(),
                5 => r#"{"intValue":"5","stringValue":"both"}"#.to_owned(),
                6 => r#"{"kvlistValue":{"values":[]}}"#.to_owned(),
                7 => self.scalar(),
                8 => "{}".to_owned(),
                _ => {
                    let n = (self.draw)(3);
                    let values: Vec<String> = (0..n).map(|_| self.any_value(depth + 1)).collect();
                    format!(r#"{{"arrayValue":{{"values":[{}]}}}}"#, values.join(","))
                }
            }
        }

        fn attributes(&mut self) -> String {
            let n = 1 + (self.draw)(5);
            if self.chance(3) {
                let members: Vec<String> = (0..n)
                    .map(|_| format!("{}:{}", self.key(), self.scalar()))
                    .collect();
                return format!("{{{}}}", members.join(","));
            }
            let items: Vec<String> = (0..n)
                .map(|_| match (self.draw)(12) {
                    0 => r#"{"key":5,"value":{"stringValue":"x"}}"#.to_owned(),
                    1 => r#"{"value":{"stringValue":"x"}}"#.to_owned(),
                    2 => "3".to_owned(),
                    _ => {
                        let (key, value) = (self.key(), self.any_value(0));
                        if self.chance(5) {
                            format!(r#"{{"key":{key},"value":{value}}}"#)
                        } else {
                            format!(r#"{{ "value" : {value} , "key" : {key} }}"#)
                        }
                    }
                })
                .collect();
            format!("[{}]", items.join(","))
        }

        fn status(&mut self) -> String {
            self.pick(&[
                r#"{"code":2,"message":"Request timed out."}"#,
                r#"{"code":1}"#,
                r#"{"status_code":"STATUS_CODE_ERROR","description":"Error code: 429"}"#,
                r#"{"code":"2"}"#,
                r#""ERROR""#,
                r#"{"code":2.0}"#,
                r#"{"code":null,"description":"d"}"#,
                "{}",
            ])
            .to_owned()
        }

        fn events(&mut self) -> String {
            let n = (self.draw)(3);
            let events: Vec<String> = (0..n)
                .map(|_| {
                    let name =
                        self.pick(&["exception", "gen_ai.client.operation.exception", "other"]);
                    if self.chance(5) {
                        format!(
                            r#"{{"name":"{name}","attributes":[{{"key":"exception.type","value":{{"stringValue":"openai.APITimeoutError"}}}},{{"key":"exception.message","value":{}}}]}}"#,
                            self.any_value(0)
                        )
                    } else {
                        format!(
                            r#"{{"attributes":{{"exception.message":"m","exception.type":5}},"name":"{name}"}}"#
                        )
                    }
                })
                .collect();
            format!("[{}]", events.join(","))
        }

        fn span(&mut self, id: u64) -> String {
            let mut members = vec![
                r#""name":"chat gpt-4o""#.to_owned(),
                format!(r#""spanId":"s{id}""#),
                r#""startTimeUnixNano":"1741089600000000000""#.to_owned(),
                r#""endTimeUnixNano":"1741089600900000000""#.to_owned(),
            ];
            if self.chance(4) {
                members.push(format!(r#""parentSpanId":"s{}""#, (self.draw)(3)));
            }
            for _ in 0..(self.draw)(4) {
                members.push(format!("{}:{}", self.key(), self.scalar()));
            }
            if self.chance(8) {
                members.push(format!(r#""attributes":{}"#, self.attributes()));
            }
            if self.chance(5) {
                members.push(format!(r#""status":{}"#, self.status()));
            }
            if self.chance(4) {
                members.push(format!(r#""events":{}"#, self.events()));
            }
            if self.chance(2) {
                members.push(format!(r#""body":{}"#, self.any_value(0)));
            }
            if self.chance(2) {
                members.push(r#""resource":{"attributes":{"service.name":"x"}}"#.to_owned());
            }
            if self.chance(2) {
                // A key met twice: the second value wins, in the first place.
                let again = &members[(self.draw)(members.len() as u64) as usize];
                let key = again
                    .split_once("\":")
                    .map_or("\"k", |(key, _)| key)
                    .to_owned();
                members.push(format!("{key}\":{}", self.scalar()));
            }
            for i in (1..members.len()).rev() {
                members.swap(i, (self.draw)(i as u64 + 1) as usize);
            }
            format!("{{{}}}", members.join(","))
        }

        fn line(&mut self) -> String {
            let spans: Vec<String> = (0..=(self.draw)(4)).map(|i| self.span(i)).collect();
            let resource = if self.chance(7) {
                r#""resource":{"attributes":[{"key":"service.name","value":{"stringValue":"assistant"}}]},"#
                    .to_owned()
            } else {
                String::new()
            };
            match (self.draw)(6) {
                0 | 1 => spans[0].clone(),
                2 => format!(
                    r#"{{"resourceSpans":[{{{resource}"scopeSpans":[{{"scope":{{"name":"s"}},"spans":[{}]}}]}}]}}"#,
                    spans.join(",")
                ),
                3 => format!(
                    r#"{{"resourceSpans":[{{{resource}"instrumentationLibrarySpans":[{{"spans":[{}]}}],"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
                    spans[0],
                    spans.join(",")
                ),
                4 => format!(
                    r#"{{"resourceLogs":[{{{resource}"scopeLogs":[{{"logRecords":[{}]}}]}}]}}"#,
                    spans.join(",")
                ),
                _ => format!(
                    r#"{{"resourceSpans":5,"resourceLogs":{{}},{}"#,
                    &spans[0][1..]
                ),
            }
        }
    }

    /// The flat objects of `line`, text-built, as key and value pairs.
    fn flat_items(line: Raw<'_>) -> Vec<Vec<(String, Value)>> {
        items(line)
            .iter()
            .map(|flat| {
                // Read from its values, the flat object fills the fields a
                // scan of its text fills.
                let text = flat.text();
                let scanned = Obj::parse(&text).unwrap().filled();
                let read = flat.read(|obj| {
                    obj.filled()
                        .iter()
                        .map(|v| v.map(str::to_owned))
                        .collect::<Vec<_>>()
                });
                assert_eq!(
                    read,
                    scanned
                        .iter()
                        .map(|v| v.map(str::to_owned))
                        .collect::<Vec<_>>(),
                    "{text}"
                );
                let object: Map<String, Value> = serde_json::from_str(&text).unwrap();
                assert_eq!(object.len(), flat.entries.len(), "{text}");
                object.into_iter().collect()
            })
            .collect()
    }

    #[test]
    fn spans_of_many_keys_flatten_as_the_tree_reading_flattened_them() {
        // Past INDEXED keys, found by a map: keys met again, a status that
        // removes one, attributes over the span's own keys.
        let mut draw = draws(0x5ca1e);
        let mut attrs = Vec::new();
        let mut own = Vec::new();
        for i in 0..400 {
            let key = format!("k{}", draw(300));
            attrs.push(format!(r#"{{"key":"{key}","value":{{"intValue":"{i}"}}}}"#));
            own.push(format!(r#""o{}":{i}"#, draw(60)));
        }
        own.push(r#""status_code":"STATUS_CODE_ERROR""#.to_owned());
        own.push(r#""k7":"own""#.to_owned());
        // The status sets keys after the attributes, then the string status
        // code is removed and one of them set again; the events set more.
        let line = format!(
            r#"{{{},"gen_ai.system":"openai","attributes":[{}],"status":{{"code":2,"message":"m"}},"events":[{{"name":"exception","attributes":{{"exception.type":"T","exception.message":"M"}}}}]}}"#,
            own.join(","),
            attrs.join(",")
        );
        let want: Vec<Vec<(String, Value)>> = tree::items(&line)
            .into_iter()
            .map(|map| map.into_iter().collect())
            .collect();
        assert!(want[0].len() > INDEXED * 4);
        assert_eq!(flat_items(Raw::parse(&line).unwrap()), want);
    }

    #[test]
    fn arrays_of_values_nested_past_any_stack_are_kept_as_written() {
        let depth = 100_000;
        let line = format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"startTimeUnixNano":"1741089600000000000","attributes":[{{"key":"gen_ai.system","value":{{"stringValue":"openai"}}}},{{"key":"deep","value":{}{}}}]}}]}}]}}]}}"#,
            r#"{"arrayValue":{"values":["#.repeat(depth),
            "]}}".repeat(depth)
        );
        let (_, held) = Obj::line(&line).unwrap();
        let items = items(json::line_value(&line).unwrap());
        drop(held);
        assert_eq!(items.len(), 1);
        let deep = items[0].get("deep").unwrap();
        assert!(deep.starts_with(&"[".repeat(ARRAY_DEPTH as usize + 1)));
        assert!(deep.contains(r#"{"arrayValue":"#));
    }

    #[test]
    fn spans_flatten_as_the_tree_reading_flattened_them() {
        let mut gen = Gen {
            draw: draws(0x0_7e1e),
        };
        let fixtures = include_str!("../../../../fixtures/formats/otel_flat.jsonl")
            .lines()
            .chain(include_str!("../../../../fixtures/formats/otel_otlp.jsonl").lines())
            .map(str::to_owned);
        let lines: Vec<String> = fixtures.chain((0..3000).map(|_| gen.line())).collect();
        for line in &lines {
            let want: Vec<Vec<(String, Value)>> = tree::items(line)
                .into_iter()
                .map(|map| map.into_iter().collect())
                .collect();
            // Scanned on its own, as a string holding a line is.
            assert_eq!(flat_items(Raw::parse(line).unwrap()), want, "{line}");
            // Read from the tokens of the line being worked on.
            let (_, held) = Obj::line(line).unwrap();
            let raw = json::line_value(line).expect("the line is being worked on");
            assert_eq!(flat_items(raw), want, "{line}");
            drop(held);
        }
    }
}
