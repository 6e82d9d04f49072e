//! Envelopes: the request and the response (or error) logged as two objects.

use std::borrow::Cow;

use crate::quarantine::Reason;
use crate::record::{set_if_none, BodyShape, Record};
use crate::view::{as_bool, Obj, F};

use super::{
    context::Ctx,
    errors::{body, error_value},
    fields::{
        common, fingerprint, finish, operation_ids, owned, retry_after, timestamp, to_status,
        to_u32,
    },
};

pub(super) fn envelope(obj: &Obj<'_>, ctx: &Ctx<'_>, rec: &mut Record) -> Result<(), Reason> {
    rec.ts_ms = timestamp(obj, &[F::Ts, F::StartTime])?;
    common(obj, ctx, rec);
    obj.with_obj(F::Request, |request| {
        if let Some(url) = request.str(F::Host) {
            set_if_none(&mut rec.host, ctx.host(&url));
        }
        request.with_obj(F::Headers, |headers| {
            set_if_none(&mut rec.key_fp, fingerprint(headers, ctx));
            set_if_none(&mut rec.request_id, owned(headers.str(F::RequestId)));
            // `Idempotency-Key`, and `x-stainless-retry-count` as the
            // OpenAI and Anthropic SDKs send it.
            operation_ids(headers, rec);
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
