//! Flat events: one object per call with its fields at the top level.

use crate::quarantine::Reason;
use crate::record::{set_if_none, Record};
use crate::view::{is_empty, Obj, F};

use super::{
    context::Ctx,
    errors::error_value,
    fields::{common, finish, mark_empty_if_2xx, message, owned, timestamp, to_status},
};

pub(super) fn flat(obj: &Obj<'_>, ctx: &Ctx<'_>, rec: &mut Record) -> Result<(), Reason> {
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
