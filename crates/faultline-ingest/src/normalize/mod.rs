//! One line of JSON to normalized records, whatever format it was logged in.
//!
//! Detection looks at the keys of the top-level object:
//! `resourceSpans`/`resourceLogs` or `gen_ai.*` keys -> OpenTelemetry GenAI;
//! `request`/`response` -> envelope; LiteLLM's own keys -> LiteLLM;
//! anything else with call fields -> flat event.

use crate::quarantine::Reason;
use crate::record::{Format, Record};
use crate::secret::{self};
use crate::view::{Obj, F};

mod context;
mod envelope;
mod errors;
mod fields;
mod flat;
mod litellm;
mod otel;
#[cfg(test)]
mod tests;

pub(crate) use self::context::{Ctx, Origin, Rejection};
use self::{
    context::json_rejection,
    envelope::envelope,
    fields::{base_record, redact_record},
    flat::flat,
    litellm::litellm,
};

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
        otel::normalize(text, origin, ctx, out)?;
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
