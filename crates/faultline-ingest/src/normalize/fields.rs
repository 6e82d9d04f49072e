//! Fields every format reads the same way: times, status, usage, keys,
//! retry hints, and the record's last touches.

use std::borrow::Cow;

use std::ops::Deref;

use crate::json::Raw;

use crate::quarantine::Reason;
use crate::record::{set_if_none, GroupedBy, OperationKey, Record};
use crate::secret::{self};
use crate::text::Shared;
use crate::time::{self, TsError};
use crate::view::{as_bool, as_f64, as_str, Obj, F};

use super::context::{trim, Ctx, Origin, MAX_MESSAGE_CHARS};

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
pub(super) fn redact_record(rec: &mut Record) {
    pub(super) fn owned<T: Deref<Target = str> + for<'a> From<&'a str>>(slot: &mut Option<T>) {
        if let Some(text) = slot {
            if let Cow::Owned(clean) = secret::redact(text) {
                *text = T::from(&clean);
            }
        }
    }
    pub(super) fn shared(slot: &mut Option<Shared>) {
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

pub(super) fn fingerprint(obj: &Obj<'_>, ctx: &Ctx<'_>) -> Option<Shared> {
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
    set_if_none(&mut rec.stream, obj.get(F::Stream).and_then(as_bool));
    set_if_none(
        &mut rec.timeout_ms,
        to_u32(
            obj.f64(F::TimeoutMs)
                .or_else(|| obj.f64(F::TimeoutS).map(|s| s * 1e3)),
        ),
    );
    set_if_none(&mut rec.retry_after_s, retry_after(obj));
    set_if_none(&mut rec.cost_usd, cost(obj));
    operation_ids(obj, rec);
    obj.with_obj(F::Usage, |usage| tokens_of_usage(usage, rec));
}

/// A logged cost in dollars: finite and not negative.
pub(super) fn cost(obj: &Obj<'_>) -> Option<f64> {
    obj.f64(F::Cost).filter(|c| c.is_finite() && *c >= 0.0)
}

/// The ids and attempt number an object (a line, or a request's headers)
/// gives the call's operation: an idempotency key, a retry count.
pub(super) fn operation_ids(obj: &Obj<'_>, rec: &mut Record) {
    if rec.operation_key.is_none() {
        rec.operation_key = obj
            .str(F::IdempotencyKey)
            .filter(|id| !trim(id).is_empty())
            .map(|id| OperationKey::of(GroupedBy::IdempotencyKey, trim(&id)));
    }
    set_if_none(&mut rec.attempt, to_u16(obj.f64(F::Attempt)));
}

/// Token counts of a `usage` object.
pub(super) fn tokens_of_usage(usage: &Obj<'_>, rec: &mut Record) {
    set_if_none(&mut rec.prompt_tokens, to_u32(usage.f64(F::PromptTokens)));
    set_if_none(
        &mut rec.completion_tokens,
        to_u32(usage.f64(F::CompletionTokens)),
    );
}

pub(super) fn retry_after(obj: &Obj<'_>) -> Option<f64> {
    obj.f64(F::RetryAfterMs)
        .map(|ms| ms / 1e3)
        .or_else(|| obj.f64(F::RetryAfterS))
        .filter(|s| s.is_finite() && *s >= 0.0)
}

pub(crate) fn finish(obj: &Obj<'_>, rec: &mut Record) -> Result<(), Reason> {
    if rec.model.is_none() {
        rec.model = owned(obj.str(F::ModelFallback));
    }
    if rec.operation_key.is_none() {
        // The weakest id: the same request id on two attempts ties them.
        rec.operation_key = rec
            .request_id
            .as_deref()
            .map(|id| OperationKey::of(GroupedBy::RequestId, id));
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

pub(super) fn mark_empty_if_2xx(rec: &mut Record, empty: bool) {
    let ok_status = rec.http_status.is_none_or(|s| (200..300).contains(&s));
    if empty && ok_status && rec.error_message.is_none() && rec.error_type.is_none() {
        rec.empty_response = true;
    }
}

// ---------------------------------------------------------------------------
// Flat event
