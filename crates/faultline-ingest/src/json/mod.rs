//! A validating JSON scanner that builds nothing.
//!
//! Ingest needs a few dozen fields of each line and the rest skipped, but
//! every line must still be valid JSON (a line that is not goes to the
//! quarantine). The scanner checks the grammar (RFC 8259: strings without
//! raw control characters and with valid escapes, numbers, literals, nesting
//! at any depth) and hands out each value of an object as a [`Raw`] slice of
//! the input, decoded later only if a normalizer asks for it. The input is a
//! `&str`, so UTF-8 is already valid.
//!
//! Three scanners share that contract: the [`Tape`] (SIMD token index, then a
//! walk over the tokens) for whole lines, and the byte walker ([`Scanner`])
//! for small values and for the lines the tape declines, where it names the
//! column at which the text breaks. Before either, a line is tried against
//! the [`Shapes`] of the last lines the tape read: most lines of a log
//! repeat the keys of one of a few kinds of line in the same order, and
//! then only their values need reading.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::marker::PhantomData;
use std::thread::LocalKey;

#[cfg(any(test, fuzzing))]
mod check;
mod kernels;
mod shapes;
mod tape;
#[cfg(test)]
mod tests;
mod walker;

#[cfg(fuzzing)]
pub use self::check::scanners_agree;
use self::shapes::{by_shape, keep_tokens_as_shape, Seen, Shapes, SHAPE_MEMBERS};
pub(crate) use self::shapes::{flat_shaped_members, tokens_shape, SHAPES_KEPT};
pub(crate) use self::tape::Tape;
use self::tape::View;
use self::walker::Scanner;
pub(crate) use self::walker::{Entries, Items, Members};

/// Why a text is not valid JSON, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Error {
    pub(crate) kind: ErrorKind,
    /// Byte offset of the problem in the text.
    pub(crate) at: usize,
    what: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// The text ended inside a value.
    Eof,
    /// A byte that the grammar does not allow here.
    Syntax,
    /// Valid JSON, but not an object.
    NotObject,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at column {}", self.what, self.at + 1)?;
        if self.kind == ErrorKind::Eof {
            f.write_str(" (end of line)")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// One valid JSON value, as written in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Raw<'a>(&'a str);

impl<'a> Raw<'a> {
    /// `text` (surrounding whitespace allowed) when it is exactly one valid value.
    pub(crate) fn parse(text: &'a str) -> Result<Raw<'a>, Error> {
        let mut s = Scanner::new(text);
        s.ws();
        let start = s.pos;
        s.value()?;
        let end = s.pos;
        s.ws();
        s.end()?;
        Ok(Raw(&text[start..end]))
    }

    /// The value's JSON text.
    pub(crate) fn get(self) -> &'a str {
        self.0
    }

    /// Where the value lies in `text`, of which it is a slice: its byte range.
    pub(crate) fn range_in(self, text: &str) -> Option<(u32, u32)> {
        let start = (self.0.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
        let end = start + self.0.len();
        (end <= text.len()).then_some(())?;
        Some((u32::try_from(start).ok()?, u32::try_from(end).ok()?))
    }

    /// The value at `range` of `text`, a range that [`Raw::range_in`] gave
    /// for a value of that same text.
    pub(crate) fn at(text: &'a str, (start, end): (u32, u32)) -> Option<Raw<'a>> {
        text.get(start as usize..end as usize).map(Raw)
    }

    /// The elements of an array (nothing for any other value).
    pub(crate) fn items(self) -> Items<'a> {
        Entries::of(self.0, b'[', Scanner::item)
    }

    /// The members of an object (nothing for any other value).
    pub(crate) fn members(self) -> Members<'a> {
        Entries::of(self.0, b'{', Scanner::member)
    }
}

/// A key of an object as written: the text between its quotes, with escapes
/// still in place when `escaped` says so.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key<'a> {
    pub(crate) text: &'a str,
    pub(crate) escaped: bool,
    /// For a key of a line read by a [`Shape`], or of an object nested in
    /// a line whose tokens are those of a shape, the key's place in that
    /// shape (its member's or its token's index, plus one); else 0.
    pub(crate) place: u32,
    /// That shape's [`Shape::generation`] (0 when `place` is). A key at a
    /// place of a shape is always the same key.
    pub(crate) shape: u64,
}

/// Scans `text` as one object, calling `member` for each key and value in order.
///
/// A valid text takes the fast path ([`Tape`]); a text the tape declines
/// (invalid, or a string it cannot vouch for) is walked byte by byte, which
/// says where and why it breaks. Members are handed out as they are read:
/// when the fast path gives up part way, the byte walker hands out the
/// members before the break again, in the same order with the same values,
/// so `member` must take a member it has seen as it took it the first time
/// (the object readers keep the first value of a key, so it changes nothing).
pub(crate) fn object<'a>(
    text: &'a str,
    mut member: impl FnMut(Key<'a>, Raw<'a>),
) -> Result<(), Error> {
    scan_with(&SCRATCH, text, |key, (start, end)| {
        if let Some(value) = text.get(start as usize..end as usize) {
            member(key, Raw(value));
        }
    })
    .map(|_| ())
}

/// A value's byte range in the text it was read from.
pub(crate) type Span = (u32, u32);

/// [`object`] for a whole line, whose tokens are then kept until the
/// returned [`Line`] is dropped, so that [`members_of`] serves the objects
/// nested in it without scanning them again. Values come as their ranges in
/// `text`, which is what a line's reader keeps of them: no slice of the
/// line is made (and checked) per value only to be turned back into a range.
pub(crate) fn line<'a>(
    text: &'a str,
    member: impl FnMut(Key<'a>, Span),
) -> Result<Line<'a>, Error> {
    read_line(text, EachMember(member))
}

/// [`line`] with a [`Reader`], which may take a line read by a flat shape
/// from its values alone.
pub(crate) fn read_line<'a>(text: &'a str, mut reader: impl Reader<'a>) -> Result<Line<'a>, Error> {
    if ACTIVE.get().0 != 0 {
        // A line is being worked on (a line held in a string of a line):
        // this one is scanned on its own and its tokens are not kept.
        scan_with(&SCRATCH, text, |key, span| reader.member(key, span))?;
        return Ok(Line::none());
    }
    if let Some(shape) = by_shape(text, &mut reader) {
        // No backslash anywhere (strings with one are declined), no `\u`.
        ACTIVE.set((text.as_ptr() as usize, text.len()));
        CLEAN.set(true);
        TOKENS.set(shape != 0);
        SHAPE_TOKENS.set(shape);
        #[cfg(test)]
        SHAPED.set(SHAPED.get() + 1);
        return Ok(Line {
            active: true,
            unicode_escape: Some(false),
            _text: PhantomData,
        });
    }
    SHAPE_TOKENS.set(0);
    let mut seen = Seen::default();
    let scanned = scan_with(&TAPE, text, |key, span| {
        seen.push(key, span, text.as_bytes());
        reader.member(key, span);
    })?;
    if let Some(escapes) = scanned {
        if !escapes.backslash {
            if seen.flat {
                seen.keep_as_shape(text);
            } else if seen.count <= SHAPE_MEMBERS {
                SHAPE_TOKENS.set(keep_tokens_as_shape(text.as_bytes()));
            }
        }
        ACTIVE.set((text.as_ptr() as usize, text.len()));
        CLEAN.set(!escapes.backslash);
        TOKENS.set(true);
        Ok(Line {
            active: true,
            unicode_escape: Some(escapes.unicode),
            _text: PhantomData,
        })
    } else {
        Ok(Line::none())
    }
}

/// What [`read_line`] hands a line's members (or a shaped line's values) to.
pub(crate) trait Reader<'a> {
    /// One member of the line: its key and its value's range.
    fn member(&mut self, key: Key<'a>, value: Span);

    /// The values of a line read by the flat shape of [`Shape::generation`]
    /// `shape`, in order (the same keys, at the same places, as every line
    /// of that shape): true when the reader took the line from them, and
    /// then no member is handed out; false to be handed the members.
    fn values(&mut self, shape: u64, values: &[Span]) -> bool {
        let _ = (shape, values);
        false
    }
}

/// A [`Reader`] that is handed every member.
struct EachMember<F>(F);

impl<'a, F: FnMut(Key<'a>, Span)> Reader<'a> for EachMember<F> {
    fn member(&mut self, key: Key<'a>, value: Span) {
        (self.0)(key, value);
    }
}

/// Hands out the members of `raw`, an object nested in the line being
/// worked on, from that line's tokens. False when `raw` is not part of that
/// line (nothing is handed out then): the caller scans it instead.
pub(crate) fn members_of<'a>(raw: Raw<'a>, mut member: impl FnMut(Key<'a>, Raw<'a>)) -> bool {
    let text = raw.get();
    line_tokens(text, |tape, k, view| {
        let at = view.base;
        let slice = |(a, b): (u32, u32)| text.get((a - at) as usize..(b - at) as usize);
        let shape = SHAPE_TOKENS.get();
        let shaped = shape != 0;
        // The line was valid, so this walk cannot fail; if it did, the
        // caller's scan would hand out the same members again, first ones first.
        tape.members_of_valid(view, k, |m| {
            if let (Some(key), Some(value)) = (slice(m.key), slice(m.value)) {
                member(
                    Key {
                        text: key,
                        escaped: m.escaped,
                        place: if shaped { m.token + 1 } else { 0 },
                        shape,
                    },
                    Raw(value),
                );
            }
        })
    })
    .is_some()
}

/// Hands `read` the tape holding the tokens of the line being worked on,
/// the index of `text`'s first token and a view of `text` at its line
/// offset, when `text` is a value of that line (a slice of the line that
/// starts inside a string starts at no token). `None`, and nothing read,
/// when it is not, or when the tape holds another line's tokens (the line
/// was read by a flat shape).
fn line_tokens<'a, R>(
    text: &'a str,
    read: impl FnOnce(&Tape, usize, View<'a>) -> Option<R>,
) -> Option<R> {
    let at = u32::try_from(offset_in_line(text)?).ok()?;
    if !TOKENS.get() {
        return None;
    }
    TAPE.with(|tape| {
        let tape = tape.try_borrow().ok()?;
        let k = tape.tokens().binary_search(&at).ok()?;
        let view = View {
            bytes: text.as_bytes(),
            base: at,
        };
        read(&tape, k, view)
    })
}

/// The tokens of an object nested in the line being worked on, whose tokens
/// are a shape's ([`tokens_shape`]): every line of the shape has its
/// objects at the same token indices, with the same keys at the same
/// tokens, so what a reader found in one it may take from the next by
/// token index.
pub(crate) struct NestedTokens<'t> {
    tape: &'t Tape,
    /// The index of the object's `{` among the line's tokens.
    k: usize,
    view: View<'t>,
}

impl NestedTokens<'_> {
    /// The index of the object's opening token.
    pub(crate) fn index(&self) -> usize {
        self.k
    }

    /// The value whose first token is `v`, as a range of the object's text.
    pub(crate) fn value(&self, v: u32) -> Option<Span> {
        let start = *self.tape.tokens().get(v as usize)?;
        let (end, _) = self.tape.value_end(self.view, v as usize)?;
        let base = self.view.base;
        Some((start.checked_sub(base)?, end.checked_sub(base)?))
    }
}

/// Hands `read` the tokens of `raw`, an object nested in the line being
/// worked on whose tokens are a shape's; `None` (and nothing read) when it
/// is not such an object.
pub(crate) fn with_nested_tokens<R>(
    raw: Raw<'_>,
    read: impl FnOnce(&NestedTokens<'_>) -> R,
) -> Option<R> {
    if SHAPE_TOKENS.get() == 0 {
        return None;
    }
    line_tokens(raw.get(), |tape, k, view| {
        (view.tok(tape.tokens(), k)? == b'{').then_some(())?;
        Some(read(&NestedTokens { tape, k, view }))
    })
}

/// Hands out the elements of `raw`, an array nested in the line being
/// worked on, from that line's tokens, while `item` returns true. False
/// when `raw` is not part of that line (nothing is handed out then): the
/// caller reads [`Raw::items`] instead.
pub(crate) fn items_of<'a>(raw: Raw<'a>, mut item: impl FnMut(Raw<'a>) -> bool) -> bool {
    let text = raw.get();
    line_tokens(text, |tape, k, view| {
        let at = view.base;
        let slice = |(a, b): (u32, u32)| text.get((a - at) as usize..(b - at) as usize);
        // The line was valid, so this walk cannot fail part way.
        tape.items_of_valid(view, k, |value| {
            slice(value).is_none_or(|value| item(Raw(value)))
        })
    })
    .is_some()
}

/// Keeps a line's tokens for [`members_of`] while it lives. Dropping it
/// forgets them; leaking it (`mem::forget`) would keep them past the line's
/// life, which reads stay safe from (every access is bounds-checked) but
/// which could pair a later text at the same addresses with wrong tokens,
/// or take it for a text without escapes.
#[must_use = "the line's tokens are kept only while this lives"]
pub(crate) struct Line<'a> {
    active: bool,
    /// Whether a string of the line holds a `\u` escape, when the tape read it.
    unicode_escape: Option<bool>,
    /// Tied to the line's text, and to this thread.
    _text: PhantomData<(&'a str, *const ())>,
}

impl Line<'_> {
    fn none() -> Self {
        Line {
            active: false,
            unicode_escape: None,
            _text: PhantomData,
        }
    }

    /// Whether the line holds the bytes `\u`: a `\u` escape, or one that
    /// shows when a string holding JSON is decoded; `None` when the line
    /// was not read by the tape (the caller then looks for itself).
    pub(crate) fn unicode_escape(&self) -> Option<bool> {
        self.unicode_escape
    }
}

impl Drop for Line<'_> {
    fn drop(&mut self) {
        if self.active {
            ACTIVE.set((0, 0));
            CLEAN.set(false);
            TOKENS.set(false);
        }
    }
}

/// What stage 1 saw of a text's escapes.
#[derive(Debug, Clone, Copy)]
struct Escapes {
    /// A backslash anywhere in the text.
    backslash: bool,
    /// The bytes `\u` (see [`Line::unicode_escape`]).
    unicode: bool,
}

/// The line being worked on as one value, when `text` is that line: it was
/// read as valid JSON, and its tokens serve [`members_of`] and [`items_of`].
pub(crate) fn line_value(text: &str) -> Option<Raw<'_>> {
    let (_, len) = ACTIVE.get();
    let value = text.trim_matches([' ', '\t', '\r', '\n']);
    (offset_in_line(text) == Some(0) && text.len() == len).then_some(Raw(value))
}

/// Whether `text` is a slice of the line being worked on (see [`line`])
/// and that line holds no backslash, so `text` holds no escape.
pub(crate) fn in_line_without_escapes(text: &str) -> bool {
    CLEAN.get() && offset_in_line(text).is_some()
}

/// Where `text` starts in the line being worked on, when it is a slice of
/// it. The line is borrowed while it is active, so no other live text can
/// share its addresses: a text within them is a slice of it.
fn offset_in_line(text: &str) -> Option<usize> {
    let (line, len) = ACTIVE.get();
    let at = (text.as_ptr() as usize).wrapping_sub(line);
    (line != 0 && at < len && len - at >= text.len()).then_some(at)
}

/// Scans with `tape` when it is free. When the tape took the text: what it
/// saw of its escapes; `None` when the byte walker read it.
fn scan_with<'a>(
    tape: &'static LocalKey<RefCell<Tape>>,
    text: &'a str,
    mut member: impl FnMut(Key<'a>, Span),
) -> Result<Option<Escapes>, Error> {
    let taped = tape.with(|tape| {
        let Ok(mut tape) = tape.try_borrow_mut() else {
            return None;
        };
        let bytes = text.as_bytes();
        if u32::try_from(bytes.len()).is_err() || !tape.index(bytes) {
            return None;
        }
        // Members go out as stage 2 reads them, not gathered first: a
        // text that breaks the grammar part way is rare, and its members
        // are then handed out again by the byte walker.
        let valid = tape.walk_with(bytes, |m| {
            let key = Key {
                text: &text[m.key.0 as usize..m.key.1 as usize],
                escaped: m.escaped,
                place: 0,
                shape: 0,
            };
            member(key, m.value);
        });
        valid.then_some(Escapes {
            backslash: tape.backslash,
            unicode: tape.unicode_escape,
        })
    });
    if taped.is_some() {
        Ok(taped)
    } else {
        // The byte walker hands out slices of `text`, which always have a range in it.
        let mut member = |key, value: Raw<'a>| {
            if let Some(span) = value.range_in(text) {
                member(key, span);
            }
        };
        scan_object(Scanner::new(text), &mut member).map(|()| None)
    }
}

thread_local! {
    /// Each worker's tape for whole lines, reused from line to line.
    static TAPE: RefCell<Tape> = RefCell::default();
    /// The line whose tokens `TAPE` holds while it is worked on: its
    /// address and length, `(0, 0)` when none. See [`line`].
    static ACTIVE: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    /// Whether that line holds no backslash at all.
    static CLEAN: Cell<bool> = const { Cell::new(false) };
    /// Whether `TAPE` holds that line's tokens (not so when it was read by
    /// its [`Shape`]).
    static TOKENS: Cell<bool> = const { Cell::new(false) };
    /// The shapes of the last lines without backslashes the tape read.
    static SHAPES: RefCell<Shapes> = RefCell::default();
    /// The [`Shape::generation`] of the shape whose line (the one it was
    /// kept from, or one read by it) `TAPE` holds the tokens of; 0 for none.
    static SHAPE_TOKENS: Cell<u64> = const { Cell::new(0) };
    /// Lines read by their shape, for tests.
    #[cfg(test)]
    static SHAPED: Cell<usize> = const { Cell::new(0) };
    /// The tape for any other object (a value, JSON held in a string).
    static SCRATCH: RefCell<Tape> = RefCell::default();
}

fn scan_object<'a>(
    mut s: Scanner<'a>,
    member: &mut impl FnMut(Key<'a>, Raw<'a>),
) -> Result<(), Error> {
    s.ws();
    if s.peek() != Some(b'{') {
        // Tell a value that is not an object from text that is not JSON.
        let start = s.pos;
        s.value()?;
        s.ws();
        s.end()?;
        return Err(Error {
            kind: ErrorKind::NotObject,
            at: start,
            what: "expected an object",
        });
    }
    s.pos += 1;
    let mut first = true;
    while let Some((key, value)) = s.member(&mut first)? {
        member(key, value);
    }
    s.ws();
    s.end()
}
