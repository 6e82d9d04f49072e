//! Error bodies, wherever a format keeps them: objects, strings that hold
//! JSON, SDK renderings, stream events and choices that end blocked.

use std::borrow::Cow;

use std::sync::LazyLock;

use crate::json::{self, Raw};
use regex::Regex;

use crate::record::{set_if_none, BodyShape, Record};
use crate::view::{as_f64, as_str, is_empty, Obj, F};

use super::{
    context::MAX_BODY_DEPTH,
    fields::{mark_empty_if_2xx, message, owned, to_status, tokens_of_usage},
};

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

pub(super) fn body_text(text: &str, depth: u8, rec: &mut Record) {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        if let Ok(inner) = Raw::parse(trimmed) {
            body(inner, depth + 1, rec);
            return;
        }
    }
    error_text(text, rec);
}

pub(super) fn body_object(obj: &Obj<'_>, depth: u8, rec: &mut Record) {
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
pub(super) fn live_error<'a>(obj: &Obj<'a>) -> Option<Raw<'a>> {
    obj.get(F::Error)
        .filter(|r| !matches!(r.get(), "null" | "false"))
}

/// Whether a value is an object with a [`live_error`].
pub(super) fn has_error(raw: Raw<'_>) -> bool {
    raw.get().starts_with('{') && Obj::read(raw, |o| live_error(o).is_some()).unwrap_or(false)
}

/// What the choices (or Gemini candidates) of a body say.
pub(super) enum Choices {
    /// At least one, and none carries content (nor a tool call).
    Empty,
    /// One was stopped for its content, with this finish reason.
    Blocked(String),
    /// An answer.
    Answered,
}

/// Finish reasons of a choice stopped for its content.
pub(super) const BLOCKED: [&str; 6] = [
    "content_filter",
    "SAFETY",
    "PROHIBITED_CONTENT",
    "BLOCKLIST",
    "SPII",
    "RECITATION",
];

/// Reads a body's choices in one pass: whether every one is empty, or one
/// was stopped for its content.
pub(super) fn read_choices(raw: Raw<'_>) -> Choices {
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
pub(super) fn error_object(err: &Obj<'_>, shape: BodyShape, depth: u8, rec: &mut Record) {
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
pub(super) fn google_reason(err: &Obj<'_>) -> Option<String> {
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

pub(super) static STATUS_IN_TEXT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)
        (?:[Ee]rror\ code|[Ss]tatus\ [Cc]ode|HTTP\ status\ code|status)[:=\ ]+(\d{3})\b
        |^\[?(\d{3})[\ \]:]
        |\|\ (\d{3}):\ ",
    )
    .expect("status pattern compiles")
});

pub(super) static LOOSE_FIELD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?x)
        ['"]?\b(type|code|message|status|raw)['"]?\s*:\s*
        (?: '((?:[^'\\]|\\.)*)' | "((?:[^"\\]|\\.)*)" | (\d+) )"#,
    )
    .expect("field pattern compiles")
});

pub(super) static EXCEPTION_NAME: LazyLock<Regex> = LazyLock::new(|| {
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
pub(super) static FINISH_BLOCKED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r#"finish_?[rR]eason\\?"?\s*[:=]\s*\\?"?({})\b"#,
        BLOCKED.join("|")
    ))
    .expect("finish reason pattern compiles")
});

pub(super) static GRPC_STATUS: LazyLock<Regex> = LazyLock::new(|| {
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
