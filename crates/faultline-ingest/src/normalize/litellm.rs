//! LiteLLM's StandardLoggingPayload.

use crate::quarantine::Reason;
use crate::record::{set_if_none, GroupedBy, OperationKey, Record};
use crate::view::{as_bool, Obj, F};

use super::{
    context::Ctx,
    errors::{body, error_text, quoted_body},
    fields::{common, fingerprint, finish, owned, timestamp, to_status, to_u32, ts_of},
};

pub(super) fn litellm(obj: &Obj<'_>, ctx: &Ctx<'_>, rec: &mut Record) -> Result<(), Reason> {
    rec.ts_ms = timestamp(obj, &[F::StartTime, F::Ts])?;
    // The Router keeps one `trace_id` over the retries and fallbacks of a
    // call (each attempt has its own `litellm_call_id`).
    rec.operation_key = obj
        .str(F::TraceId)
        .filter(|id| !id.trim().is_empty())
        .map(|id| OperationKey::of(GroupedBy::LiteLlmCall, id.trim()));
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
