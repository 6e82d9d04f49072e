//! The scanners compared on one text (tests and fuzz targets).

use super::kernels::{block_masks, write_tokens};
use super::shapes::{Shape, SHAPE_VALUES};
use super::*;

/// A scanner's verdict on a text: its top-level members (key, value, key
/// escaped), or `None` when the text is rejected.
#[cfg(any(test, fuzzing))]
pub(super) type Scanned = Option<Vec<(String, String, bool)>>;

/// The byte walker's verdict on `text`.
#[cfg(any(test, fuzzing))]
pub(super) fn walked(text: &str) -> Scanned {
    let mut out = Vec::new();
    scan_object(Scanner::new(text), &mut |k: Key<'_>, v: Raw<'_>| {
        out.push((k.text.to_owned(), v.get().to_owned(), k.escaped));
    })
    .ok()?;
    Some(out)
}

/// The tape's verdict on `text`, with the SSE2 masks or the portable ones.
#[cfg(any(test, fuzzing))]
pub(super) fn taped(text: &str, portable: bool) -> Scanned {
    let mut tape = Tape::default();
    let bytes = text.as_bytes();
    let indexed = if portable {
        tape.index_with(bytes, block_masks, write_tokens)
    } else {
        tape.index(bytes)
    };
    if !(indexed && tape.walk(bytes)) {
        return None;
    }
    let slice = |(a, b): (u32, u32)| text[a as usize..b as usize].to_owned();
    Some(
        tape.members
            .iter()
            .map(|m| (slice(m.key), slice(m.value), m.escaped))
            .collect(),
    )
}

/// The members of `b` read by the shape of `a`: `None` when `a` gives no
/// shape (the tape rejects it, or it holds a backslash) or `b` does not
/// have it.
#[cfg(any(test, fuzzing))]
pub(super) fn shaped(a: &str, b: &str) -> Scanned {
    let mut tape = Tape::default();
    let bytes = a.as_bytes();
    if u32::try_from(bytes.len()).is_err() || !tape.index(bytes) {
        return None;
    }
    let mut seen = Seen::default();
    let valid = tape.walk_with(bytes, |m| {
        let key = Key {
            text: &a[m.key.0 as usize..m.key.1 as usize],
            escaped: m.escaped,
            place: 0,
            shape: 0,
        };
        seen.push(key, m.value, bytes);
    });
    if !valid || tape.backslash {
        return None;
    }
    let mut shape = Shape::default();
    if seen.flat {
        shape.keep(bytes, &seen.members[..seen.len]);
    } else {
        shape.keep_tokens(bytes, &tape);
    }
    let mut values = [(0, 0); SHAPE_VALUES];
    let n = shape.read(b.as_bytes(), &mut values)?;
    let slice = |(start, end): (u32, u32)| b[start as usize..end as usize].to_owned();
    let mut out = Vec::new();
    if shape.tokens.is_empty() {
        let mut from = 0;
        for (m, &span) in shape.members.iter().zip(&values[..n]) {
            out.push((slice((from + m.key.0, from + m.key.1)), slice(span), false));
            from = span.1;
        }
    } else {
        let mut tape = Tape::default();
        tape.take_shape(&shape, &values[..n]);
        let view = View {
            bytes: b.as_bytes(),
            base: 0,
        };
        tape.members_of_valid(view, 0, |m| {
            out.push((slice(m.key), slice(m.value), false));
        })?;
    }
    Some(out)
}

/// Whether the tape and the byte walker give `text` the same verdict and
/// the same members, with either set of masks; and, when `text` holds a
/// line feed, whether the part after it, when read by the shape of the part
/// before, has the members the byte walker gives it. The property tests use
/// it, and the fuzz target `json_scanners` (built with `--cfg fuzzing`).
#[cfg(any(test, fuzzing))]
pub fn scanners_agree(text: &str) -> Result<(), String> {
    let walked = walked(text);
    for portable in [false, true] {
        let taped = taped(text, portable);
        if taped != walked {
            return Err(format!(
                "portable masks {portable}: tape {taped:?}, byte walker {walked:?}"
            ));
        }
    }
    if let Some((a, b)) = text.split_once('\n') {
        if let Some(shaped) = shaped(a, b) {
            let walked = self::walked(b);
            if walked.as_ref() != Some(&shaped) {
                return Err(format!(
                    "shape of {a:?}: {shaped:?}, byte walker {walked:?}"
                ));
            }
        }
    }
    Ok(())
}
