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

/// Members a flat shape holds at most; a line with more is left to the tape.
const SHAPE_MEMBERS: usize = 32;

/// Values (strings, numbers, literals) a shape holds at most.
const SHAPE_VALUES: usize = 64;

/// The shape of a line without backslashes: the bytes between its values
/// (strings, numbers and literals, at any depth).
///
/// A line whose bytes between values are exactly those of the shape has the
/// same keys in the same order, nested the same way, with the same spacing;
/// only its values need reading: a string up to its closing quote (declined
/// at a backslash or a control byte), a number or a literal by its grammar
/// (declined where the shape has the other kind, or a nested object or
/// array). The gaps were read from a valid line, so such a line is valid
/// JSON, with the members the tape would hand out; any other line is
/// declined and goes to the tape. Each worker keeps the shapes of the last
/// few lines without backslashes its tape read ([`Shapes`]).
///
/// A flat line (every member's value a string, number or literal) hands out
/// its members from the gaps: the keys are at known places in them. A line
/// with nested values keeps the tape's tokens: a line of its shape has the
/// same tokens, each shifted by how much longer or shorter the values
/// before it are, and the same closing token for each container, so the
/// tape holds the new line's tokens without reading it, and its nested
/// objects are served from them as a tape-read line's are.
#[derive(Debug, Default)]
struct Shape {
    /// The gaps one after the other: before the first value (`{"ts":`),
    /// between two (`,"level":`), and after the last (`}`).
    gaps: Vec<u8>,
    /// Per value, where the gap before it ends in `gaps`, and more.
    members: Vec<ShapeMember>,
    /// Empty for a flat line; else its tokens and, at the index of each
    /// container's opening token, the index of its closing one.
    tokens: Vec<u32>,
    closes: Vec<u32>,
    /// Per token, how many values end before it (a string's closing quote
    /// counts its own): a line of the shape has the token where the shape's
    /// line had it, moved by the change in length of those values.
    groups: Vec<u8>,
    /// Which line kept on this thread the shape is of (from 1): two lines
    /// read by shapes of one generation have the same structure.
    generation: u64,
}

/// Shapes a worker keeps: a log interleaving the lines of several services,
/// or successes and failures, repeats a few kinds of line rather than one.
pub(crate) const SHAPES_KEPT: usize = 8;

/// The shapes of the last lines a worker's tape read that could be kept,
/// tried from the most recently used: a line of none of them goes to the
/// tape and takes the place of the least recently used.
///
/// A log whose lines seldom repeat a structure (keys in another order on
/// each line) would pay for every try and every shape kept and gain
/// nothing: after [`SHAPES_MISSED`] lines in a row that no shape read, a
/// line tries only the most recent shape, and one in [`SHAPES_KEPT`] is
/// kept, until a line is read by a shape again.
#[derive(Debug)]
struct Shapes {
    kept: [Shape; SHAPES_KEPT],
    /// Indexes into `kept`, the most recently used first.
    order: [u8; SHAPES_KEPT],
    /// Lines kept as shapes on this thread.
    generation: u64,
    /// Lines in a row that no shape read.
    missed: u32,
    /// The values of the last line a shape read, as ranges of it (the
    /// first as many as that shape has); written in place by the tries.
    values: [Span; SHAPE_VALUES],
    /// That line's address and length, `(0, 0)` before any.
    line: (usize, usize),
}

/// Lines in a row that no shape read before shapes are tried and kept
/// sparingly (see [`Shapes`]).
const SHAPES_MISSED: u32 = 64;

impl Default for Shapes {
    fn default() -> Self {
        Shapes {
            kept: std::array::from_fn(|_| Shape::default()),
            order: std::array::from_fn(|i| i as u8),
            generation: 0,
            missed: 0,
            values: [(0, 0); SHAPE_VALUES],
            line: (0, 0),
        }
    }
}

impl Shapes {
    /// The shape used `at` places after the most recent one, made the most
    /// recent.
    fn use_at(&mut self, at: usize) -> &Shape {
        let i = self.order[at];
        self.order.copy_within(..at, 1);
        self.order[0] = i;
        &self.kept[usize::from(i) % SHAPES_KEPT]
    }

    /// The most recently used shape.
    fn latest(&self) -> &Shape {
        &self.kept[usize::from(self.order[0]) % SHAPES_KEPT]
    }

    /// Shapes a line tries.
    fn tries(&self) -> usize {
        if self.missed < SHAPES_MISSED {
            SHAPES_KEPT
        } else {
            1
        }
    }

    /// Whether a line that no shape read is kept as one.
    fn keeps(&self) -> bool {
        self.missed < SHAPES_MISSED || self.missed.is_multiple_of(SHAPES_KEPT as u32)
    }

    /// The least recently used shape, made the most recent, with a new
    /// generation: for a line to be kept in it.
    fn renew(&mut self) -> &mut Shape {
        self.generation += 1;
        self.use_at(SHAPES_KEPT - 1);
        let shape = &mut self.kept[usize::from(self.order[0]) % SHAPES_KEPT];
        shape.generation = self.generation;
        shape
    }
}

/// Entries of the table of shifts by [`Shape::groups`]: more than a shape
/// has values, and a power of two, so that a group indexes it unchecked.
const SHIFTS: usize = 128;
const _: () = assert!(SHAPE_VALUES < SHIFTS);

#[derive(Debug, Clone, Copy)]
struct ShapeMember {
    gap_end: u32,
    /// In a flat shape, the member's key's range within the gap.
    key: (u32, u32),
    /// In a shape with tokens, whether the value is a string.
    string: bool,
    /// Where the value ended in the line the shape was read from.
    end: u32,
    /// The first 32 bytes from the gap's start as two little-endian words
    /// (zero past the line's end): the gap, then the value the shape's line
    /// had there, then the byte after it.
    words: [u128; 2],
    /// The gap's bytes in `words`: a gap is compared with the line in two
    /// word operations, whatever its length, when it is no longer than 32
    /// bytes and the line has 32 bytes from there.
    mask: [u128; 2],
    /// The bytes of the gap, the value and the byte after it in `words`,
    /// and how many they are (0 when more than 32): a line holding them
    /// holds the shape line's value there, read with the gap.
    same_mask: [u128; 2],
    same: u32,
}

/// Longest gap compared by words ([`ShapeMember::words`]).
const GAP_WORDS: usize = 32;

/// The 16 bytes of `bytes` from `at` as a little-endian word (zero where
/// `bytes` ends before them).
#[inline]
fn word_at(bytes: &[u8], at: usize) -> u128 {
    let mut w = [0u8; 16];
    if let Some(b) = bytes.get(at..at + 16) {
        w.copy_from_slice(b);
    }
    u128::from_le_bytes(w)
}

impl ShapeMember {
    /// The member whose gap is `run`'s first `gap` bytes, followed in the
    /// shape's line by a value and the byte after it (the rest of `run`).
    fn of_value(
        run: &[u8],
        gap: usize,
        gap_end: u32,
        key: (u32, u32),
        string: bool,
        end: u32,
    ) -> ShapeMember {
        let ones = |n: usize| {
            let mut ones = [0u8; GAP_WORDS];
            if let Some(ones) = ones.get_mut(..n) {
                ones.fill(0xff);
            }
            ones
        };
        let mut padded = [0u8; GAP_WORDS];
        let kept = run.len().min(GAP_WORDS);
        padded[..kept].copy_from_slice(&run[..kept]);
        let same = if run.len() <= GAP_WORDS { run.len() } else { 0 };
        let words = |b: &[u8; GAP_WORDS]| [word_at(b, 0), word_at(b, 16)];
        ShapeMember {
            gap_end,
            key,
            string,
            end,
            words: words(&padded),
            mask: words(&ones(gap)),
            same_mask: words(&ones(same)),
            same: same as u32,
        }
    }
}

/// What the tape handed out of a line, kept to become the next [`Shape`].
struct Seen {
    /// Key and value ranges in the line.
    members: [((u32, u32), Span); SHAPE_MEMBERS],
    len: usize,
    /// Whether the line can be a flat shape so far: not too many members,
    /// no escaped key, every value a scalar.
    flat: bool,
    /// Members handed out: a shape hands out at most [`SHAPE_MEMBERS`].
    count: usize,
}

impl Default for Seen {
    fn default() -> Self {
        Seen {
            members: [((0, 0), (0, 0)); SHAPE_MEMBERS],
            len: 0,
            flat: true,
            count: 0,
        }
    }
}

impl Seen {
    #[inline]
    fn push(&mut self, key: Key<'_>, span: Span, text: &[u8]) {
        self.count += 1;
        let key_at = (key.text.as_ptr() as usize).checked_sub(text.as_ptr() as usize);
        let nested = matches!(text.get(span.0 as usize), Some(b'{' | b'['));
        match (self.members.get_mut(self.len), key_at) {
            (Some(slot), Some(key_at)) if self.flat && !key.escaped && !nested => {
                // Key offsets fit: the line's length was checked to fit in u32.
                *slot = ((key_at as u32, (key_at + key.text.len()) as u32), span);
                self.len += 1;
            }
            _ => self.flat = false,
        }
    }

    /// Keeps the line as a shape of the worker's, when it is flat and the
    /// tape found it valid and without backslashes.
    fn keep_as_shape(&self, text: &str) {
        if !self.flat || self.len == 0 {
            return;
        }
        SHAPES.with(|shapes| {
            if let Ok(mut shapes) = shapes.try_borrow_mut() {
                if shapes.keeps() {
                    shapes
                        .renew()
                        .keep(text.as_bytes(), &self.members[..self.len]);
                }
            }
        });
    }
}

impl Shape {
    fn keep(&mut self, text: &[u8], members: &[((u32, u32), Span)]) {
        self.gaps.clear();
        self.members.clear();
        self.tokens.clear();
        self.closes.clear();
        self.groups.clear();
        let mut from = 0u32;
        for &(key, value) in members {
            let (Some(gap), Some(key)) = (
                text.get(from as usize..value.0 as usize),
                key.0.checked_sub(from).zip(key.1.checked_sub(from)),
            ) else {
                self.members.clear();
                return;
            };
            // The tail after the last value is never empty (`}`).
            let Some(run) = text.get(from as usize..=value.1 as usize) else {
                self.members.clear();
                return;
            };
            self.gaps.extend_from_slice(gap);
            self.members.push(ShapeMember::of_value(
                run,
                gap.len(),
                self.gaps.len() as u32,
                key,
                false,
                value.1,
            ));
            from = value.1;
        }
        match text.get(from as usize..) {
            Some(tail) => self.gaps.extend_from_slice(tail),
            None => self.members.clear(),
        }
    }

    /// The ranges of the values of `bytes` when it has this shape; `None`
    /// when it does not.
    fn read(&self, bytes: &[u8], out: &mut [Span; SHAPE_VALUES]) -> Option<usize> {
        // No shape (none kept yet, or the last one could not be): its gaps
        // may be a line's part, which no line is to be taken for.
        if self.members.is_empty() {
            return None;
        }
        u32::try_from(bytes.len()).ok()?;
        let kinds = !self.tokens.is_empty();
        let mut at = 0usize;
        let mut from = 0usize;
        for (m, out) in self.members.iter().zip(out.iter_mut()) {
            let gap = self.gaps.get(from..m.gap_end as usize)?;
            from = m.gap_end as usize;
            match bytes.get(at..at + GAP_WORDS) {
                Some(window) if gap.len() <= GAP_WORDS => {
                    let x = [
                        word_at(window, 0) ^ m.words[0],
                        word_at(window, 16) ^ m.words[1],
                    ];
                    if m.same != 0 && (x[0] & m.same_mask[0]) | (x[1] & m.same_mask[1]) == 0 {
                        // The shape line's value, and the byte after it:
                        // the value ends where it ended there.
                        let end = at + m.same as usize - 1;
                        *out = ((at + gap.len()) as u32, end as u32);
                        at = end;
                        continue;
                    }
                    if (x[0] & m.mask[0]) | (x[1] & m.mask[1]) != 0 {
                        return None;
                    }
                }
                _ if bytes.get(at..at + gap.len()) != Some(gap) => return None,
                _ => {}
            }
            at += gap.len();
            if kinds && m.string != (bytes.get(at) == Some(&b'"')) {
                return None;
            }
            let end = scalar_value_end(bytes, at)?;
            // Both fit: the text's length does.
            *out = (at as u32, end as u32);
            at = end;
        }
        let tail = self.gaps.get(from..)?;
        (bytes.get(at..)? == tail).then_some(self.members.len())
    }

    /// Makes the line whose tokens `tape` holds, valid and without
    /// backslashes, the shape; no shape when it has too many values.
    fn keep_tokens(&mut self, text: &[u8], tape: &Tape) {
        self.gaps.clear();
        self.members.clear();
        self.tokens.clear();
        self.closes.clear();
        self.groups.clear();
        let t = tape.tokens();
        let byte = |i: usize| t.get(i).and_then(|&at| text.get(at as usize)).copied();
        let mut from = 0u32;
        let mut i = 0;
        while let (Some(b), Some(&start)) = (byte(i), t.get(i)) {
            // At most SHAPE_VALUES values: checked below before one more is kept.
            let group = self.members.len() as u8;
            let (end, string, next) = match b {
                b'{' | b'}' | b'[' | b']' | b':' | b',' => {
                    self.groups.push(group);
                    i += 1;
                    continue;
                }
                // A string followed by `:` is a key, part of a gap.
                b'"' if byte(i + 2) == Some(b':') => {
                    self.groups.extend_from_slice(&[group, group]);
                    i += 2;
                    continue;
                }
                b'"' => match t.get(i + 1) {
                    Some(&close) => (close + 1, true, i + 2),
                    None => return self.members.clear(),
                },
                _ => (run_end(text, start as usize) as u32, false, i + 1),
            };
            let Some(gap) = text.get(from as usize..start as usize) else {
                return self.members.clear();
            };
            if self.members.len() == SHAPE_VALUES {
                return self.members.clear();
            }
            let Some(run) = text.get(from as usize..=end as usize) else {
                return self.members.clear();
            };
            self.gaps.extend_from_slice(gap);
            self.members.push(ShapeMember::of_value(
                run,
                gap.len(),
                self.gaps.len() as u32,
                (0, 0),
                string,
                end,
            ));
            self.groups.push(group);
            if string {
                self.groups.push(group + 1);
            }
            from = end;
            i = next;
        }
        match text.get(from as usize..) {
            Some(tail) if !self.members.is_empty() => self.gaps.extend_from_slice(tail),
            _ => return self.members.clear(),
        }
        self.tokens.extend_from_slice(t);
        self.closes
            .extend_from_slice(tape.closes.get(..t.len()).unwrap_or_default());
        if self.closes.len() != t.len() || self.groups.len() != t.len() {
            self.members.clear();
        }
    }
}

/// Keeps the line the tape just read (valid, without backslashes, with
/// nested values) as a shape of the worker's: its [`Shape::generation`], 0
/// when it could not be.
fn keep_tokens_as_shape(text: &[u8]) -> u64 {
    TAPE.with(|tape| {
        SHAPES.with(|shapes| {
            let (Ok(tape), Ok(mut shapes)) = (tape.try_borrow(), shapes.try_borrow_mut()) else {
                return 0;
            };
            if !shapes.keeps() {
                return 0;
            }
            let shape = shapes.renew();
            shape.keep_tokens(text, &tape);
            if shape.members.is_empty() {
                0
            } else {
                shape.generation
            }
        })
    })
}

impl Tape {
    /// Takes the tokens of a line of `shape` whose values lie at `values`:
    /// the shape's, each moved by the change in length of the values that
    /// end before it, and its containers' closing tokens as they are.
    fn take_shape(&mut self, shape: &Shape, values: &[Span]) {
        let len = shape.tokens.len();
        if self.tokens.len() < len {
            self.tokens.resize(len, 0);
        }
        if self.closes.len() < len {
            self.closes.resize(len, 0);
        }
        // By group: how far a token after that many values has moved.
        let mut shifts = [0u32; SHIFTS];
        for ((shift, m), &(_, end)) in shifts[1..].iter_mut().zip(&shape.members).zip(values) {
            *shift = end.wrapping_sub(m.end);
        }
        // The shape holds as many of each (checked when it was kept); the
        // tape holds no tokens if it did not.
        let (Some(old), Some(groups), Some(closes)) = (
            shape.tokens.get(..len),
            shape.groups.get(..len),
            shape.closes.get(..len),
        ) else {
            self.len = 0;
            return;
        };
        self.closes[..len].copy_from_slice(closes);
        let new = &mut self.tokens[..len];
        // Indexed: the three slices have one length, so no index is checked
        // (zipped, the loop kept a check per slice and step).
        #[allow(clippy::needless_range_loop)]
        for i in 0..len {
            new[i] = old[i].wrapping_add(shifts[usize::from(groups[i]) & (SHIFTS - 1)]);
        }
        self.len = len;
        self.backslash = false;
        self.unicode_escape = false;
    }
}

/// The end of the string, number or literal at `at` in a text without
/// backslashes; `None` for anything else, or a string holding a backslash
/// or a control byte.
#[inline]
fn scalar_value_end(bytes: &[u8], at: usize) -> Option<usize> {
    match *bytes.get(at)? {
        b'"' => {
            let mut pos = at + 1;
            #[cfg(target_arch = "x86_64")]
            while let Some(lane) = bytes.get(pos..pos + 16) {
                // SAFETY: SSE2 is part of the x86_64 baseline, so every
                // x86_64 CPU runs the function's instructions.
                #[allow(unsafe_code)]
                let stops = unsafe { string_stops_sse2(lane) };
                if stops != 0 {
                    pos += stops.trailing_zeros() as usize;
                    return (bytes.get(pos) == Some(&b'"')).then_some(pos + 1);
                }
                pos += 16;
            }
            while let Some(chunk) = bytes.get(pos..pos + 8) {
                let word = u64::from_le_bytes(chunk.try_into().ok()?);
                let stops = string_stops(word);
                if stops != 0 {
                    pos += (stops.trailing_zeros() / 8) as usize;
                    break;
                }
                pos += 8;
            }
            loop {
                match *bytes.get(pos)? {
                    b'"' => return Some(pos + 1),
                    b'\\' | 0..=0x1f => return None,
                    _ => pos += 1,
                }
            }
        }
        b'-' | b'0'..=b'9' => number_end(bytes, at),
        b't' => literal_end(bytes, at, b"true"),
        b'f' => literal_end(bytes, at, b"false"),
        b'n' => literal_end(bytes, at, b"null"),
        _ => None,
    }
}

/// Bit `i` set when byte `i` of the 16 of `lane` is `"`, `\` or below 0x20.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
#[inline]
fn string_stops_sse2(lane: &[u8]) -> u32 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
        _mm_set_epi64x,
    };
    let splat = |b: u8| _mm_set1_epi8(b as i8);
    let half = |i: usize| {
        let mut w = [0u8; 8];
        if let Some(bytes) = lane.get(i * 8..i * 8 + 8) {
            w.copy_from_slice(bytes);
        }
        i64::from_le_bytes(w)
    };
    let v = _mm_set_epi64x(half(1), half(0));
    let stops = _mm_or_si128(
        _mm_or_si128(
            _mm_cmpeq_epi8(v, splat(b'"')),
            _mm_cmpeq_epi8(v, splat(b'\\')),
        ),
        // An unsigned byte is below 0x20 when max(byte, 0x1f) is 0x1f.
        _mm_cmpeq_epi8(_mm_max_epu8(v, splat(0x1f)), splat(0x1f)),
    );
    (_mm_movemask_epi8(stops) as u32) & 0xffff
}

/// Reads `text` by the first of the worker's shapes it has, handing out its
/// members: the shape's [`Shape::generation`] when the tape now holds the
/// line's tokens (a shape with nested values), 0 when it does not (a flat
/// shape), or `None` (nothing handed out) when the line has none of them.
fn by_shape<'a>(text: &'a str, reader: &mut impl Reader<'a>) -> Option<u64> {
    SHAPES.with(|shapes| {
        let mut shapes = shapes.try_borrow_mut().ok()?;
        let shapes = &mut *shapes;
        let bytes = text.as_bytes();
        let tries = shapes.tries();
        let (kept, values) = (&shapes.kept, &mut shapes.values);
        let read = shapes
            .order
            .iter()
            .take(tries)
            .enumerate()
            .find_map(|(at, &i)| {
                let shape = &kept[usize::from(i) % SHAPES_KEPT];
                Some((at, shape.read(bytes, values)?))
            });
        let Some((at, n)) = read else {
            shapes.missed = shapes.missed.saturating_add(1);
            return None;
        };
        shapes.missed = 0;
        shapes.line = (text.as_ptr() as usize, text.len());
        shapes.use_at(at);
        let (shape, values) = (shapes.latest(), &shapes.values);
        let key = |(start, end): (usize, usize), place: u32| Key {
            text: text.get(start..end).unwrap_or_default(),
            escaped: false,
            place,
            shape: shape.generation,
        };
        if shape.tokens.is_empty() {
            if reader.values(shape.generation, &values[..n]) {
                return Some(0);
            }
            let mut from = 0usize;
            for (place, (m, &span)) in (1..).zip(shape.members.iter().zip(&values[..n])) {
                reader.member(
                    key((from + m.key.0 as usize, from + m.key.1 as usize), place),
                    span,
                );
                from = span.1 as usize;
            }
            return Some(0);
        }
        // The members are gathered first, so that none is handed out
        // unless all are (the reader counts positions).
        let mut members = [Member {
            key: (0, 0),
            token: 0,
            escaped: false,
            value: (0, 0),
        }; SHAPE_MEMBERS];
        let mut len = 0;
        let taken = TAPE.with(|tape| {
            tape.try_borrow_mut().ok()?.take_shape(shape, &values[..n]);
            let tape = tape.try_borrow().ok()?;
            let view = View {
                bytes: text.as_bytes(),
                base: 0,
            };
            tape.members_of_valid(view, 0, |m| {
                if let Some(slot) = members.get_mut(len) {
                    *slot = m;
                }
                len += 1;
            })
        });
        if taken.is_none() || len > SHAPE_MEMBERS {
            return None;
        }
        for m in &members[..len] {
            reader.member(
                key((m.key.0 as usize, m.key.1 as usize), m.token + 1),
                m.value,
            );
        }
        Some(shape.generation)
    })
}

/// Hands out the members of `raw` when it is the line being worked on and
/// a flat shape read it (the tape then holds no tokens of it): the keys
/// from their places in the shape's gaps, the values as the shape read
/// them. False, and nothing handed out, for any other text.
pub(crate) fn flat_shaped_members<'a>(
    raw: Raw<'a>,
    mut member: impl FnMut(Key<'a>, Raw<'a>),
) -> bool {
    let text = raw.get();
    if offset_in_line(text) != Some(0) || TOKENS.get() {
        return false;
    }
    SHAPES.with(|shapes| {
        let Ok(shapes) = shapes.try_borrow() else {
            return false;
        };
        let shape = shapes.latest();
        let values = shapes.values.get(..shape.members.len());
        let Some(values) = values.filter(|_| {
            shapes.line == ACTIVE.get() && shape.tokens.is_empty() && !shape.members.is_empty()
        }) else {
            return false;
        };
        let mut from = 0usize;
        for (m, &(start, end)) in shape.members.iter().zip(values) {
            let key = text.get(from + m.key.0 as usize..from + m.key.1 as usize);
            if let (Some(key), Some(value)) = (key, text.get(start as usize..end as usize)) {
                let key = Key {
                    text: key,
                    escaped: false,
                    place: 0,
                    shape: 0,
                };
                member(key, Raw(value));
            }
            from = end as usize;
        }
        true
    })
}

/// The shape (its [`Shape::generation`]) whose tokens the tape holds for
/// the line being worked on, 0 for none: see [`Key::place`].
pub(crate) fn tokens_shape() -> u64 {
    if ACTIVE.get().0 == 0 || !TOKENS.get() {
        return 0;
    }
    SHAPE_TOKENS.get()
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

/// Iterator over an array's elements; see [`Raw::items`].
pub(crate) type Items<'a> = Entries<'a, Raw<'a>>;

/// Iterator over an object's members; see [`Raw::members`].
pub(crate) type Members<'a> = Entries<'a, (Key<'a>, Raw<'a>)>;

/// The entries of one array or object, read one at a time by `next_entry`
/// ([`Scanner::item`] or [`Scanner::member`]); the text is already valid.
pub(crate) struct Entries<'a, T> {
    s: Scanner<'a>,
    open: bool,
    first: bool,
    next_entry: NextEntry<'a, T>,
}

type NextEntry<'a, T> = fn(&mut Scanner<'a>, &mut bool) -> Result<Option<T>, Error>;

impl<'a, T> Entries<'a, T> {
    /// Entries of `text` when it opens with `open`; none otherwise.
    fn of(text: &'a str, open: u8, next_entry: NextEntry<'a, T>) -> Entries<'a, T> {
        let mut s = Scanner::new(text);
        let opened = s.peek() == Some(open);
        if opened {
            s.pos += 1;
        }
        Entries {
            s,
            open: opened,
            first: true,
            next_entry,
        }
    }
}

impl<T> Iterator for Entries<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        if !self.open {
            return None;
        }
        let entry = (self.next_entry)(&mut self.s, &mut self.first)
            .ok()
            .flatten();
        self.open = entry.is_some();
        entry
    }
}

/// The open containers while skipping a value: a bit per level, true for an
/// object; the first 64 levels live in a word, deeper ones spill to the heap.
#[derive(Default)]
struct Nesting {
    depth: usize,
    shallow: u64,
    deep: Vec<bool>,
}

impl Nesting {
    #[inline]
    fn push(&mut self, object: bool) {
        if self.depth < 64 {
            self.shallow = (self.shallow & !(1 << self.depth)) | (u64::from(object) << self.depth);
        } else {
            self.deep.push(object);
        }
        self.depth += 1;
    }

    #[inline]
    fn top(&self) -> Option<bool> {
        match self.depth {
            0 => None,
            d if d <= 64 => Some(self.shallow >> (d - 1) & 1 == 1),
            _ => self.deep.last().copied(),
        }
    }

    #[inline]
    fn pop(&mut self) {
        if self.depth > 64 {
            self.deep.pop();
        }
        self.depth = self.depth.saturating_sub(1);
    }
}

/// The byte walker: checks the grammar one byte at a time and names the
/// column where a text breaks. Used for values handed out by [`Raw`] and for
/// lines the [`Tape`] declines.
struct Scanner<'a> {
    text: &'a str,
    pos: usize,
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `word` that is `"`, `\` or below 0x20. Bits
/// above the first one set can be false positives (borrows); the first is exact.
#[inline]
fn string_stops(word: u64) -> u64 {
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let zero_quote = quote.wrapping_sub(ONES) & !quote;
    let zero_backslash = backslash.wrapping_sub(ONES) & !backslash;
    let control = word.wrapping_sub(ONES * 0x20) & !word;
    (zero_quote | zero_backslash | control) & HIGHS
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Scanner<'a> {
        Scanner { text, pos: 0 }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }

    fn err(&self, what: &'static str) -> Error {
        let kind = if self.pos >= self.text.len() {
            ErrorKind::Eof
        } else {
            ErrorKind::Syntax
        };
        Error {
            kind,
            at: self.pos,
            what,
        }
    }

    #[inline]
    fn ws(&mut self) {
        let bytes = self.bytes();
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn end(&self) -> Result<(), Error> {
        if self.pos == self.text.len() {
            Ok(())
        } else {
            Err(self.err("trailing characters"))
        }
    }

    /// After `{` (or a member): the next member, or `None` at the closing `}`.
    fn member(&mut self, first: &mut bool) -> Result<Option<(Key<'a>, Raw<'a>)>, Error> {
        self.ws();
        match self.peek() {
            Some(b'}') => {
                self.pos += 1;
                return Ok(None);
            }
            Some(b',') if !*first => {
                self.pos += 1;
                self.ws();
            }
            Some(b'"') if *first => {}
            _ if *first => return Err(self.err("expected a key or `}`")),
            _ => return Err(self.err("expected `,` or `}`")),
        }
        *first = false;
        if self.peek() != Some(b'"') {
            return Err(self.err("expected a key"));
        }
        let start = self.pos + 1;
        let escaped = self.string()?;
        let key = Key {
            text: &self.text[start..self.pos - 1],
            escaped,
            place: 0,
            shape: 0,
        };
        self.ws();
        if self.peek() != Some(b':') {
            return Err(self.err("expected `:`"));
        }
        self.pos += 1;
        self.ws();
        let start = self.pos;
        self.value()?;
        Ok(Some((key, Raw(&self.text[start..self.pos]))))
    }

    /// After `[` (or an element): the next element, or `None` at the closing `]`.
    fn item(&mut self, first: &mut bool) -> Result<Option<Raw<'a>>, Error> {
        self.ws();
        match self.peek() {
            Some(b']') => {
                self.pos += 1;
                return Ok(None);
            }
            Some(b',') if !*first => {
                self.pos += 1;
                self.ws();
            }
            _ if *first => {}
            _ => return Err(self.err("expected `,` or `]`")),
        }
        *first = false;
        let start = self.pos;
        self.value()?;
        Ok(Some(Raw(&self.text[start..self.pos])))
    }

    /// Skips one value, checking it. Nesting is followed with a stack of one
    /// bit per level rather than by recursion, so no depth exhausts the stack.
    fn value(&mut self) -> Result<(), Error> {
        let mut open = Nesting::default();
        loop {
            // At the start of a value.
            match self.peek() {
                Some(b'{') => {
                    self.pos += 1;
                    self.ws();
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                    } else {
                        open.push(true);
                        self.key_colon()?;
                        continue;
                    }
                }
                Some(b'[') => {
                    self.pos += 1;
                    self.ws();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                    } else {
                        open.push(false);
                        continue;
                    }
                }
                Some(b'"') => {
                    self.string()?;
                }
                Some(b'-' | b'0'..=b'9') => self.number()?,
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                _ => return Err(self.err("expected a value")),
            }
            // After a value: close what ends here, then on to the next value.
            loop {
                let Some(in_object) = open.top() else {
                    return Ok(());
                };
                self.ws();
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        self.ws();
                        if in_object {
                            self.key_colon()?;
                        }
                        break;
                    }
                    Some(b'}') if in_object => {
                        self.pos += 1;
                        open.pop();
                    }
                    Some(b']') if !in_object => {
                        self.pos += 1;
                        open.pop();
                    }
                    _ if in_object => return Err(self.err("expected `,` or `}`")),
                    _ => return Err(self.err("expected `,` or `]`")),
                }
            }
        }
    }

    /// A member's key and colon, up to the value.
    fn key_colon(&mut self) -> Result<(), Error> {
        if self.peek() != Some(b'"') {
            return Err(self.err("expected a key"));
        }
        self.string()?;
        self.ws();
        if self.peek() != Some(b':') {
            return Err(self.err("expected `:`"));
        }
        self.pos += 1;
        self.ws();
        Ok(())
    }

    /// Skips a string from its opening quote; true when it holds escapes.
    #[inline]
    fn string(&mut self) -> Result<bool, Error> {
        let bytes = self.bytes();
        let mut escaped = false;
        self.pos += 1;
        loop {
            // Eight bytes at a time to the next quote, backslash or control byte.
            while let Some(chunk) = bytes.get(self.pos..self.pos + 8) {
                let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
                let stops = string_stops(word);
                if stops != 0 {
                    self.pos += (stops.trailing_zeros() / 8) as usize;
                    break;
                }
                self.pos += 8;
            }
            match bytes.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(escaped);
                }
                Some(b'\\') => {
                    escaped = true;
                    self.escape()?;
                }
                Some(0..=0x1f) => return Err(self.err("control character in a string")),
                Some(_) => self.pos += 1,
                None => return Err(self.err("unterminated string")),
            }
        }
    }

    /// Checks the escape at a backslash and steps over it.
    fn escape(&mut self) -> Result<(), Error> {
        self.pos += 1;
        match self.peek() {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.pos += 1;
                Ok(())
            }
            Some(b'u') => {
                self.pos += 1;
                for _ in 0..4 {
                    match self.peek() {
                        Some(b) if b.is_ascii_hexdigit() => self.pos += 1,
                        _ => return Err(self.err("invalid \\u escape")),
                    }
                }
                Ok(())
            }
            _ => Err(self.err("invalid escape")),
        }
    }

    fn digits(&mut self) -> usize {
        let bytes = self.bytes();
        let start = self.pos;
        while bytes.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<(), Error> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.err("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.err("invalid number"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("invalid number"));
            }
        }
        Ok(())
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), Error> {
        for &expected in word {
            if self.peek() != Some(expected) {
                return Err(self.err("expected a value"));
            }
            self.pos += 1;
        }
        Ok(())
    }
}

/// A scanner's verdict on a text: its top-level members (key, value, key
/// escaped), or `None` when the text is rejected.
#[cfg(any(test, fuzzing))]
type Scanned = Option<Vec<(String, String, bool)>>;

/// The byte walker's verdict on `text`.
#[cfg(any(test, fuzzing))]
fn walked(text: &str) -> Scanned {
    let mut out = Vec::new();
    scan_object(Scanner::new(text), &mut |k: Key<'_>, v: Raw<'_>| {
        out.push((k.text.to_owned(), v.get().to_owned(), k.escaped));
    })
    .ok()?;
    Some(out)
}

/// The tape's verdict on `text`, with the SSE2 masks or the portable ones.
#[cfg(any(test, fuzzing))]
fn taped(text: &str, portable: bool) -> Scanned {
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
fn shaped(a: &str, b: &str) -> Scanned {
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

/// Token slots a tape keeps between texts (4 MiB of them with `closes`):
/// enough for any usual line; the buffers of a longer one are released.
const RETAINED_TOKENS: usize = 1 << 19;

/// One member of the line's top-level object, as byte ranges of the text.
#[derive(Debug, Clone, Copy)]
struct Member {
    key: (u32, u32),
    /// The index of the key's first token.
    token: u32,
    escaped: bool,
    value: (u32, u32),
}

/// The fast path for a whole line, in simdjson's two stages.
///
/// Stage 1 reads the text 64 bytes at a time with SIMD compares and finds
/// every token: the quotes that open and close strings, `{}[]:,` outside
/// strings, and the first byte of every other run outside strings (a number,
/// a literal, or a stray byte). It checks the strings on the way: no raw
/// control byte, valid escapes. Stage 2 walks the tokens rather than the
/// bytes, checks the grammar (numbers and literals byte by byte, they are
/// short) and keeps the members of the top-level object.
///
/// A text is declined when either stage finds anything wrong; the byte
/// walker then says what and where. A property test holds the two to the
/// same verdict and the same members on any text.
#[derive(Debug, Default)]
pub(crate) struct Tape {
    /// Bit `i % 64` of word `i / 64` set when byte `i` is a backslash.
    backslashes: Vec<u64>,
    /// Byte offsets of the tokens, in order: the first `len` entries. The
    /// vector is kept at least 64 entries longer than the text, so that a
    /// block's tokens are written without a capacity check per token.
    tokens: Vec<u32>,
    /// How many entries of `tokens` the last text filled.
    len: usize,
    /// For the opening token of each container (`{`, `[`) of a text that
    /// stage 2 walked, the index of its closing token; other entries are
    /// left over from earlier texts.
    closes: Vec<u32>,
    /// Stage 2's stack of open containers, kept for its capacity.
    open: Vec<u32>,
    /// Whether the last text indexed holds the bytes `\u` (see [`Line::unicode_escape`]).
    unicode_escape: bool,
    /// Whether the last text indexed holds a backslash anywhere; most lines
    /// do not, and then no key or value needs looking at for escapes.
    backslash: bool,
    /// The top-level object's members, once walked (by [`Tape::walk`]).
    #[cfg(any(test, fuzzing))]
    members: Vec<Member>,
}

/// The masks of one 64-byte block: bit `i` for byte `i`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Masks {
    quote: u64,
    backslash: u64,
    /// Bytes below 0x20 (not allowed raw inside strings).
    control: u64,
    /// Space, tab, line feed, carriage return.
    space: u64,
    /// `{`, `}`, `[`, `]`, `:`, `,`.
    op: u64,
}

impl Tape {
    /// True when `text` is one valid JSON object; its members are then in
    /// `self.members`.
    #[cfg(test)]
    fn object(&mut self, text: &str) -> bool {
        self.members.clear();
        let bytes = text.as_bytes();
        u32::try_from(bytes.len()).is_ok() && self.index(bytes) && self.walk(bytes)
    }

    /// Stage 1; false when a string is malformed.
    fn index(&mut self, text: &[u8]) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: each path runs only on a CPU that reports its features
            // (SSE2 is part of the x86_64 baseline), so no instruction of a
            // function compiled for them can fault.
            #[allow(unsafe_code)]
            unsafe {
                match simd_level() {
                    Simd::Avx512 => self.index_avx512(text),
                    Simd::Avx2 => self.index_avx2(text),
                    Simd::Sse2 => self.index_sse2(text),
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self.index_with(text, block_masks, write_tokens)
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "sse2")]
    fn index_sse2(&mut self, text: &[u8]) -> bool {
        self.index_with(text, |block| block_masks_sse2(block), write_tokens)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,bmi1,popcnt")]
    fn index_avx2(&mut self, text: &[u8]) -> bool {
        self.index_with(
            text,
            |block| block_masks_avx2(block),
            |out, tokens, base| write_tokens_avx2(out, tokens, base),
        )
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,bmi1,popcnt")]
    fn index_avx512(&mut self, text: &[u8]) -> bool {
        self.index_with(
            text,
            |block| block_masks_avx512(block),
            |out, tokens, base| write_tokens_avx512(out, tokens, base),
        )
    }

    #[inline]
    fn index_with(
        &mut self,
        text: &[u8],
        masks: impl Fn(&[u8]) -> Masks,
        write: impl Fn(&mut [u32; 64], u64, u32),
    ) -> bool {
        self.len = 0;
        // Each block adds at most 64 tokens, and only as many as it has
        // bytes, so `len + 64` never passes the text's length plus 64.
        let needed = text.len() + 64;
        if self.tokens.len() < needed {
            self.tokens.resize(needed, 0);
        } else if self.tokens.len() > RETAINED_TOKENS.max(needed) {
            // A long line came before: its buffers (8 bytes per byte of the
            // line, with `closes`) are not kept for the short ones after it.
            self.tokens.truncate(needed);
            self.tokens.shrink_to_fit();
            self.closes.truncate(needed);
            self.closes.shrink_to_fit();
        }
        let mut len = 0usize;
        self.unicode_escape = false;
        let mut any_backslash = 0u64;
        self.backslashes.clear();
        self.backslashes.reserve(text.len().div_ceil(64));
        let mut prev_escaped = 0u64;
        let mut prev_in_string = 0u64;
        let mut prev_scalar = 0u64;
        let mut chunks = text.chunks_exact(64);
        let mut last = [b' '; 64];
        let rest = chunks.remainder();
        last[..rest.len()].copy_from_slice(rest);
        let tail = (!rest.is_empty()).then_some(&last[..]);
        for (n, block) in chunks.by_ref().chain(tail).enumerate() {
            let m = masks(block);
            let escaped = escaped_by(m.backslash, &mut prev_escaped);
            let quote = m.quote & !escaped;
            // Inside a string: from its opening quote up to its closing one.
            let in_string = prefix_xor(quote) ^ prev_in_string;
            prev_in_string = ((in_string as i64) >> 63) as u64;
            if m.control & in_string != 0 {
                return false;
            }
            let mut to_check = escaped & in_string;
            while to_check != 0 {
                let at = n * 64 + to_check.trailing_zeros() as usize;
                if !valid_escape(text, at) {
                    return false;
                }
                // A `\u` in the bytes: an escaped `u`, or an escaped
                // backslash before a `u` (in a string holding JSON, that is
                // a `\u` escape once the string is decoded).
                self.unicode_escape |= match text.get(at) {
                    Some(b'u') => true,
                    Some(b'\\') => text.get(at + 1) == Some(&b'u'),
                    _ => false,
                };
                to_check &= to_check - 1;
            }
            let outside = !(in_string | quote);
            let scalar = outside & !(m.op | m.space);
            let scalar_starts = scalar & !((scalar << 1) | prev_scalar);
            prev_scalar = scalar >> 63;
            let tokens = (m.op & outside) | quote | scalar_starts;
            if let Some(out) = self.tokens.get_mut(len..len + 64) {
                if let Ok(out) = <&mut [u32; 64]>::try_from(out) {
                    write(out, tokens, (n * 64) as u32);
                }
            }
            len += tokens.count_ones() as usize;
            self.backslashes.push(m.backslash);
            any_backslash |= m.backslash;
        }
        self.backslash = any_backslash != 0;
        self.len = len.min(self.tokens.len());
        // A string still open at the end is not closed.
        prev_in_string == 0
    }

    /// The tokens of the last text indexed.
    fn tokens(&self) -> &[u32] {
        &self.tokens[..self.len]
    }

    /// Stage 2: the grammar over the tokens, keeping the top-level members.
    #[cfg(any(test, fuzzing))]
    fn walk(&mut self, text: &[u8]) -> bool {
        let mut members = std::mem::take(&mut self.members);
        let valid = self.walk_with(text, |m| members.push(m));
        self.members = members;
        valid
    }

    /// Stage 2: the grammar over the tokens, handing out each top-level
    /// member as it is read. When the text breaks the grammar part way,
    /// the members before the break have been handed out.
    fn walk_with(&mut self, text: &[u8], mut member: impl FnMut(Member)) -> bool {
        let view = View {
            bytes: text,
            base: 0,
        };
        if self.closes.len() < self.tokens.len() {
            self.closes.resize(self.tokens.len(), 0);
        }
        let Tape {
            backslashes,
            tokens,
            len,
            closes,
            open,
            backslash,
            ..
        } = self;
        let backslash = *backslash;
        let t = &tokens[..*len];
        let end = walk_object(view, t, closes, open, |key, value| {
            member(Member {
                key,
                // Not known here, and not needed: only `members_of_valid`'s are.
                token: 0,
                escaped: backslash && any_backslash(backslashes, key.0 as usize, key.1 as usize),
                value,
            });
        });
        // Nothing but whitespace may follow the object.
        end == Some(*len)
    }

    /// Hands out the members of the object whose `{` is token `k`, of a
    /// text that [`Tape::walk`] found valid: containers are jumped over by
    /// the closing tokens it recorded, nothing is checked again. `None` if
    /// the tokens do not hold such an object after all (members may have
    /// been handed out by then).
    fn members_of_valid(
        &self,
        v: View<'_>,
        k: usize,
        mut member: impl FnMut(Member),
    ) -> Option<()> {
        let t = self.tokens();
        if v.tok(t, k)? != b'{' {
            return None;
        }
        let last = *self.closes.get(k)? as usize;
        let mut i = k + 1;
        while i < last {
            let key = (t.get(i)? + 1, *t.get(i + 1)?);
            let token = i as u32;
            i += 3;
            let start = *t.get(i)?;
            let (end, next) = self.value_end(v, i)?;
            member(Member {
                key,
                token,
                escaped: self.backslash
                    && any_backslash(&self.backslashes, key.0 as usize, key.1 as usize),
                value: (start, end),
            });
            // Past the `,` that follows, or past the closing `}`.
            i = next + 1;
        }
        Some(())
    }

    /// Where the value whose first token is `i` ends, as a line offset
    /// past its last byte, and the index of the token after it: a string
    /// at its closing quote, a container at its recorded closing token, a
    /// number or literal at the end of its run of bytes.
    // Always: left to itself, the compiler called it out of line from its
    // three loops, and a nested object's walk cost 1% more.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn value_end(&self, v: View<'_>, i: usize) -> Option<(u32, usize)> {
        let t = self.tokens();
        let start = *t.get(i)?;
        Some(match v.at(start)? {
            b'"' => (t.get(i + 1)? + 1, i + 2),
            b'{' | b'[' => {
                let close = *self.closes.get(i)? as usize;
                (t.get(close)? + 1, close + 1)
            }
            _ => (
                v.scalar(start, |bytes, at| Some(run_end(bytes, at)))?,
                i + 1,
            ),
        })
    }

    /// The elements of the array whose `[` is token `k`, in the view of a
    /// text that [`Tape::walk`] found valid, as line offsets, while `item`
    /// returns true; `None` if the tokens do not hold such an array.
    fn items_of_valid(
        &self,
        v: View<'_>,
        k: usize,
        mut item: impl FnMut((u32, u32)) -> bool,
    ) -> Option<()> {
        let t = self.tokens();
        if v.tok(t, k)? != b'[' {
            return None;
        }
        let last = *self.closes.get(k)? as usize;
        let mut i = k + 1;
        while i < last {
            let start = *t.get(i)?;
            let (end, next) = self.value_end(v, i)?;
            if !item((start, end)) {
                break;
            }
            // Past the `,` that follows, or past the closing `]`.
            i = next + 1;
        }
        Some(())
    }
}

/// Walks the object whose `{` is the first token, handing out each
/// member's key (between its quotes) and value as line offsets; the index
/// of the token after its `}`, or `None` when it breaks the grammar. The
/// closing token of every container is recorded at its opening token's
/// index in `closes`.
fn walk_object(
    v: View<'_>,
    t: &[u32],
    closes: &mut [u32],
    open: &mut Vec<u32>,
    mut member: impl FnMut((u32, u32), (u32, u32)),
) -> Option<usize> {
    if v.tok(t, 0) != Some(b'{') {
        return None;
    }
    let done = |i: usize, closes: &mut [u32]| {
        *closes.get_mut(0)? = i as u32;
        Some(i + 1)
    };
    let mut i = 1;
    if v.tok(t, i) == Some(b'}') {
        return done(i, closes);
    }
    loop {
        if !(v.tok(t, i) == Some(b'"')
            && v.tok(t, i + 1) == Some(b'"')
            && v.tok(t, i + 2) == Some(b':'))
        {
            return None;
        }
        let key = (t[i] + 1, t[i + 1]);
        i += 3;
        let start = *t.get(i)?;
        // Strings, most values of a log line, need no walk.
        let (end, next) = if v.at(start) == Some(b'"') {
            (*t.get(i + 1)? + 1, i + 2)
        } else {
            skip_value(v, t, i, closes, open)?
        };
        member(key, (start, end));
        i = next;
        match v.tok(t, i) {
            Some(b',') => i += 1,
            Some(b'}') => return done(i, closes),
            _ => return None,
        }
    }
}

/// Whether a backslash lies in `from..end`; `backslashes` has a bit per byte.
fn any_backslash(backslashes: &[u64], from: usize, end: usize) -> bool {
    if from >= end {
        return false;
    }
    let (first, last) = (from / 64, (end - 1) / 64);
    (first..=last).any(|w| {
        let mut mask = backslashes.get(w).copied().unwrap_or(0);
        if w == first {
            mask &= !0u64 << (from % 64);
        }
        if w == last {
            mask &= !0u64 >> (63 - (end - 1) % 64);
        }
        mask != 0
    })
}

/// Bytes of a line, or of a value inside it, with the line offset of their
/// first byte: tokens hold line offsets.
#[derive(Debug, Clone, Copy)]
struct View<'t> {
    bytes: &'t [u8],
    base: u32,
}

impl View<'_> {
    /// The byte at line offset `at`, when it lies in the view.
    #[inline]
    fn at(self, at: u32) -> Option<u8> {
        self.bytes.get(at.checked_sub(self.base)? as usize).copied()
    }

    /// The byte of token `i`.
    #[inline]
    fn tok(self, t: &[u32], i: usize) -> Option<u8> {
        self.at(*t.get(i)?)
    }

    /// A scalar's end as a line offset, from its start `at`: `read` finds
    /// its end in the view's bytes.
    fn scalar(self, at: u32, read: impl Fn(&[u8], usize) -> Option<usize>) -> Option<u32> {
        let local = at.checked_sub(self.base)? as usize;
        let end = scalar_end(self.bytes, read(self.bytes, local)?)?;
        end.checked_add(self.base)
    }
}

/// Where the run of bytes that starts at `at` ends: at the first space,
/// operator or quote (a scalar of a valid text ends there).
fn run_end(bytes: &[u8], at: usize) -> usize {
    bytes.get(at..).map_or(at, |rest| {
        at + rest.iter().position(|&b| ends_run(b)).unwrap_or(rest.len())
    })
}

/// Whether `b` ends a run of scalar bytes: whitespace, an operator or a quote.
fn ends_run(b: u8) -> bool {
    matches!(
        b,
        b' ' | b'\t' | b'\n' | b'\r' | b'{' | b'}' | b'[' | b']' | b':' | b',' | b'"'
    )
}

/// Skips the value whose first token is `t[i]`: the line offset just past
/// it and the index of the token after it; `None` when it breaks the
/// grammar. Nesting is followed with a stack of the open containers' token
/// indices (on the heap, reused), not by recursion; when a container
/// closes, its closing token's index is recorded in `closes` at its own.
fn skip_value(
    v: View<'_>,
    t: &[u32],
    mut i: usize,
    closes: &mut [u32],
    open: &mut Vec<u32>,
) -> Option<(u32, usize)> {
    // A member's key and colon: two quotes and `:`.
    let key_colon = |i: usize| {
        v.tok(t, i) == Some(b'"') && v.tok(t, i + 1) == Some(b'"') && v.tok(t, i + 2) == Some(b':')
    };
    open.clear();
    loop {
        // At the start of a value.
        let at = *t.get(i)?;
        let mut end = match v.at(at)? {
            b'"' => {
                i += 2;
                *t.get(i - 1)? + 1
            }
            b'{' | b'[' if matches!(v.tok(t, i + 1), Some(b'}' | b']')) => {
                // Empty, when the closing token matches.
                if v.tok(t, i + 1) != Some(v.at(at)? + 2) {
                    return None;
                }
                *closes.get_mut(i)? = (i + 1) as u32;
                i += 2;
                t[i - 1] + 1
            }
            b'{' => {
                open.push(i as u32);
                if !key_colon(i + 1) {
                    return None;
                }
                i += 4;
                continue;
            }
            b'[' => {
                open.push(i as u32);
                i += 1;
                continue;
            }
            b'-' | b'0'..=b'9' => {
                i += 1;
                v.scalar(at, number_end)?
            }
            b't' => {
                i += 1;
                v.scalar(at, |bytes, at| literal_end(bytes, at, b"true"))?
            }
            b'f' => {
                i += 1;
                v.scalar(at, |bytes, at| literal_end(bytes, at, b"false"))?
            }
            b'n' => {
                i += 1;
                v.scalar(at, |bytes, at| literal_end(bytes, at, b"null"))?
            }
            _ => return None,
        };
        // After a value: close what ends here, then on to the next value.
        loop {
            let Some(&top) = open.last() else {
                return Some((end, i));
            };
            let in_object = v.tok(t, top as usize) == Some(b'{');
            match v.tok(t, i) {
                Some(b',') if in_object => {
                    if !key_colon(i + 1) {
                        return None;
                    }
                    i += 4;
                    break;
                }
                Some(b',') => {
                    i += 1;
                    break;
                }
                Some(b'}') if in_object => {}
                Some(b']') if !in_object => {}
                _ => return None,
            }
            *closes.get_mut(top as usize)? = i as u32;
            end = t[i] + 1;
            i += 1;
            open.pop();
        }
    }
}

/// The end of a number starting at `at` (RFC 8259 grammar).
fn number_end(text: &[u8], mut at: usize) -> Option<usize> {
    let digits = |at: usize| {
        text.get(at..).map_or(0, |rest| {
            rest.iter().take_while(|b| b.is_ascii_digit()).count()
        })
    };
    if text.get(at) == Some(&b'-') {
        at += 1;
    }
    match text.get(at)? {
        b'0' => at += 1,
        b'1'..=b'9' => at += digits(at),
        _ => return None,
    }
    if text.get(at) == Some(&b'.') {
        let n = digits(at + 1);
        if n == 0 {
            return None;
        }
        at += 1 + n;
    }
    if let Some(b'e' | b'E') = text.get(at) {
        at += 1;
        if let Some(b'+' | b'-') = text.get(at) {
            at += 1;
        }
        let n = digits(at);
        if n == 0 {
            return None;
        }
        at += n;
    }
    Some(at)
}

fn literal_end(text: &[u8], at: usize, word: &[u8]) -> Option<usize> {
    (text.get(at..at + word.len())? == word).then_some(at + word.len())
}

/// `end` as a value's end, when the run of bytes it belongs to ends there
/// too (`12x` or `truex` are not values).
fn scalar_end(text: &[u8], end: usize) -> Option<u32> {
    match text.get(end) {
        Some(&b) if !ends_run(b) => None,
        _ => u32::try_from(end).ok(),
    }
}

/// The masks of a block, a byte at a time (platforms without the SSE2 path;
/// and the reference the SSE2 path is tested against).
#[cfg_attr(all(target_arch = "x86_64", not(fuzzing)), allow(dead_code))]
fn block_masks(block: &[u8]) -> Masks {
    let mut m = Masks::default();
    for (i, &b) in block.iter().enumerate().take(64) {
        let bit = 1u64 << i;
        match b {
            b'"' => m.quote |= bit,
            b'\\' => m.backslash |= bit,
            b' ' | b'\t' | b'\n' | b'\r' => m.space |= bit,
            b'{' | b'}' | b'[' | b']' | b':' | b',' => m.op |= bit,
            _ => {}
        }
        if b < 0x20 {
            m.control |= bit;
        }
    }
    m
}

/// The masks of a 64-byte block, 16 bytes per compare.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
#[inline]
fn block_masks_sse2(block: &[u8]) -> Masks {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
        _mm_set_epi64x,
    };
    let splat = |b: u8| _mm_set1_epi8(b as i8);
    let mut m = Masks::default();
    for (i, lane) in block.chunks_exact(16).enumerate().take(4) {
        let lo = u64::from_le_bytes(lane[..8].try_into().unwrap_or_default());
        let hi = u64::from_le_bytes(lane[8..].try_into().unwrap_or_default());
        let v = _mm_set_epi64x(hi as i64, lo as i64);
        let shift = i * 16;
        let bits = |x: __m128i| u64::from(_mm_movemask_epi8(x) as u16) << shift;
        let eq = |b: u8| _mm_cmpeq_epi8(v, splat(b));
        m.quote |= bits(eq(b'"'));
        m.backslash |= bits(eq(b'\\'));
        // An unsigned byte is below 0x20 when max(byte, 0x1f) is 0x1f.
        m.control |= bits(_mm_cmpeq_epi8(_mm_max_epu8(v, splat(0x1f)), splat(0x1f)));
        m.space |= bits(_mm_or_si128(
            _mm_or_si128(eq(b' '), eq(b'\t')),
            _mm_or_si128(eq(b'\n'), eq(b'\r')),
        ));
        // Setting bit 5 folds `[` onto `{` and `]` onto `}`.
        let folded = _mm_or_si128(v, splat(0x20));
        m.op |= bits(_mm_or_si128(
            _mm_or_si128(
                _mm_cmpeq_epi8(folded, splat(b'{')),
                _mm_cmpeq_epi8(folded, splat(b'}')),
            ),
            _mm_or_si128(eq(b':'), eq(b',')),
        ));
    }
    m
}

/// Writes the offset `base + i` of each bit `i` set in `tokens` to the
/// front of `out`, in order; the rest of `out` is left as it was or
/// overwritten, and the next block writes over it.
#[inline]
fn write_tokens(out: &mut [u32; 64], mut tokens: u64, base: u32) {
    let mut k = 0;
    while tokens != 0 {
        out[k & 63] = base.wrapping_add(tokens.trailing_zeros());
        tokens &= tokens - 1;
        k += 1;
    }
}

/// [`write_tokens`] without a branch per token: each 16 bits of `tokens`
/// pick their offsets out of a vector of 16 (AVX-512 compress), stored
/// whole, the next store starting where the picked ones end.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,popcnt")]
#[inline]
fn write_tokens_avx512(out: &mut [u32; 64], tokens: u64, base: u32) {
    use std::arch::x86_64::{
        __m512i, _mm512_add_epi32, _mm512_maskz_compress_epi32, _mm512_set1_epi32,
        _mm512_setr_epi32, _mm512_storeu_si512,
    };
    let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let mut at = 0usize;
    for quarter in 0..4u32 {
        let bits = (tokens >> (16 * quarter)) as u16;
        let first = base.wrapping_add(16 * quarter) as i32;
        let picked =
            _mm512_maskz_compress_epi32(bits, _mm512_add_epi32(lanes, _mm512_set1_epi32(first)));
        // At most 48 offsets precede the last quarter's, so 16 more fit.
        if let Some(slot) = out.get_mut(at..at + 16) {
            // SAFETY: an unaligned store of exactly the 16 `u32` `slot` borrows.
            #[allow(unsafe_code, clippy::cast_ptr_alignment)]
            unsafe {
                _mm512_storeu_si512(slot.as_mut_ptr().cast::<__m512i>(), picked);
            }
        }
        at += bits.count_ones() as usize;
    }
}

/// For each byte value, the positions of its set bits in ascending order,
/// the rest zero: [`write_tokens_avx2`]'s table.
#[cfg(target_arch = "x86_64")]
static BIT_POSITIONS: [[u8; 8]; 256] = {
    let mut table = [[0u8; 8]; 256];
    let mut byte = 0;
    while byte < 256 {
        let (mut bit, mut k) = (0, 0);
        while bit < 8 {
            if byte & (1 << bit) != 0 {
                table[byte][k] = bit as u8;
                k += 1;
            }
            bit += 1;
        }
        byte += 1;
    }
    table
};

/// [`write_tokens`] without a branch per token, for CPUs with AVX2 but not
/// AVX-512: each byte of `tokens` looks up the positions of its bits
/// ([`BIT_POSITIONS`]), widened to eight offsets and stored whole, the next
/// store starting where the set bits end. A block costs eight table reads
/// whatever its count of tokens, and no mispredicted loop exit.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt")]
#[inline]
fn write_tokens_avx2(out: &mut [u32; 64], tokens: u64, base: u32) {
    use std::arch::x86_64::{
        __m256i, _mm256_add_epi32, _mm256_cvtepu8_epi32, _mm256_set1_epi32, _mm256_storeu_si256,
        _mm_cvtsi64_si128,
    };
    let mut at = 0usize;
    for eighth in 0..8u32 {
        let bits = (tokens >> (8 * eighth)) as u8;
        let positions = u64::from_le_bytes(BIT_POSITIONS[usize::from(bits)]);
        let first = base.wrapping_add(8 * eighth) as i32;
        let offsets = _mm256_add_epi32(
            _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(positions as i64)),
            _mm256_set1_epi32(first),
        );
        // At most 56 offsets precede the last byte's, so 8 more fit.
        if let Some(slot) = out.get_mut(at..at + 8) {
            // SAFETY: an unaligned store of exactly the 8 `u32` `slot` borrows.
            #[allow(unsafe_code, clippy::cast_ptr_alignment)]
            unsafe {
                _mm256_storeu_si256(slot.as_mut_ptr().cast::<__m256i>(), offsets);
            }
        }
        at += bits.count_ones() as usize;
    }
}

/// The widest compares this CPU has, for stage 1.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Simd {
    Sse2,
    Avx2,
    Avx512,
}

#[cfg(target_arch = "x86_64")]
fn simd_level() -> Simd {
    // The standard library caches the CPU's answer: a load and a test.
    // Token offsets come from counting trailing zeros and set bits, one
    // instruction each with BMI1 and POPCNT (every CPU with AVX2 has both).
    let counts = std::arch::is_x86_feature_detected!("bmi1")
        && std::arch::is_x86_feature_detected!("popcnt");
    if counts
        && std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
    {
        Simd::Avx512
    } else if counts && std::arch::is_x86_feature_detected!("avx2") {
        Simd::Avx2
    } else {
        Simd::Sse2
    }
}

/// The masks of a 64-byte block, 32 bytes per compare. Spaces and
/// operators are found by table (simdjson's classification): a byte below
/// 0x80 is one of them when it equals the entry its low nibble picks from a
/// 16-byte table (`vpshufb`; bytes from 0x80 pick zero).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn block_masks_avx2(block: &[u8]) -> Masks {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_max_epu8, _mm256_movemask_epi8,
        _mm256_or_si256, _mm256_set1_epi8, _mm256_setr_epi8, _mm256_shuffle_epi8,
    };
    // Each of the 16 entries twice, once per 128-bit lane.
    let table = |t: [u8; 16]| {
        let b = t.map(|b| b as i8);
        _mm256_setr_epi8(
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
            b[14], b[15], b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
            b[12], b[13], b[14], b[15],
        )
    };
    let splat = |b: u8| _mm256_set1_epi8(b as i8);
    // At its low nibble, each space; zero elsewhere, which no byte of
    // another low nibble can equal.
    let spaces = table([
        b' ', 0, 0, 0, 0, 0, 0, 0, 0, b'\t', b'\n', 0, 0, b'\r', 0, 0,
    ]);
    // Compared with the byte with bit 5 set, which folds `[` onto `{` and
    // `]` onto `}`, and also 0x1a onto `:` and 0x0c onto `,`: those two are
    // control bytes, taken out below.
    let ops = table([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, b':', b'{', b',', b'}', 0, 0]);
    let mut m = Masks::default();
    let mut op = 0u64;
    for (i, lane) in block.chunks_exact(32).enumerate().take(2) {
        let Ok(lane) = <&[u8; 32]>::try_from(lane) else {
            continue;
        };
        // SAFETY: an unaligned load of exactly the 32 bytes `lane` borrows.
        #[allow(unsafe_code, clippy::cast_ptr_alignment)]
        let v = unsafe { _mm256_loadu_si256(lane.as_ptr().cast::<__m256i>()) };
        let shift = i * 32;
        let bits = |x: __m256i| u64::from(_mm256_movemask_epi8(x) as u32) << shift;
        let eq = |b: u8| _mm256_cmpeq_epi8(v, splat(b));
        m.quote |= bits(eq(b'"'));
        m.backslash |= bits(eq(b'\\'));
        // An unsigned byte is below 0x20 when max(byte, 0x1f) is 0x1f.
        m.control |= bits(_mm256_cmpeq_epi8(
            _mm256_max_epu8(v, splat(0x1f)),
            splat(0x1f),
        ));
        m.space |= bits(_mm256_cmpeq_epi8(_mm256_shuffle_epi8(spaces, v), v));
        op |= bits(_mm256_cmpeq_epi8(
            _mm256_shuffle_epi8(ops, v),
            _mm256_or_si256(v, splat(0x20)),
        ));
    }
    m.op = op & !m.control;
    m
}

/// The masks of a 64-byte block in one compare each: AVX-512BW compares
/// give the bit masks directly.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
fn block_masks_avx512(block: &[u8]) -> Masks {
    use std::arch::x86_64::{
        __m512i, _mm512_cmpeq_epi8_mask, _mm512_cmplt_epu8_mask, _mm512_loadu_si512,
        _mm512_or_si512, _mm512_set1_epi8,
    };
    let Ok(block) = <&[u8; 64]>::try_from(block) else {
        return block_masks(block);
    };
    // SAFETY: an unaligned load of exactly the 64 bytes `block` borrows.
    #[allow(unsafe_code, clippy::cast_ptr_alignment)]
    let v = unsafe { _mm512_loadu_si512(block.as_ptr().cast::<__m512i>()) };
    let splat = |b: u8| _mm512_set1_epi8(b as i8);
    let eq = |b: u8| _mm512_cmpeq_epi8_mask(v, splat(b));
    // Setting bit 5 folds `[` onto `{` and `]` onto `}`.
    let folded = _mm512_or_si512(v, splat(0x20));
    Masks {
        quote: eq(b'"'),
        backslash: eq(b'\\'),
        control: _mm512_cmplt_epu8_mask(v, splat(0x20)),
        space: eq(b' ') | eq(b'\t') | eq(b'\n') | eq(b'\r'),
        op: _mm512_cmpeq_epi8_mask(folded, splat(b'{'))
            | _mm512_cmpeq_epi8_mask(folded, splat(b'}'))
            | eq(b':')
            | eq(b','),
    }
}

/// The bytes escaped by a backslash (simdjson's branchless escape finder):
/// in a run of backslashes every other one escapes the next byte.
/// `prev_escaped` carries whether the first byte of the next block is escaped.
fn escaped_by(backslash: u64, prev_escaped: &mut u64) -> u64 {
    const EVEN: u64 = 0x5555_5555_5555_5555;
    let backslash = backslash & !*prev_escaped;
    let follows_escape = (backslash << 1) | *prev_escaped;
    let odd_starts = backslash & !EVEN & !follows_escape;
    let (sequences_on_even, overflow) = odd_starts.overflowing_add(backslash);
    *prev_escaped = u64::from(overflow);
    let invert = sequences_on_even << 1;
    (EVEN ^ invert) & follows_escape
}

/// Each bit set when an odd number of bits are set at or below it: with the
/// quotes as input, the bytes inside strings (opening quote included).
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// Whether the byte at `at`, which follows an escaping backslash, makes a
/// valid escape.
fn valid_escape(text: &[u8], at: usize) -> bool {
    match text.get(at) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => true,
        Some(b'u') => text
            .get(at + 1..at + 5)
            .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(text: &str) -> Result<Vec<(String, String)>, Error> {
        let mut out = Vec::new();
        object(text, |k, v| {
            out.push((k.text.to_owned(), v.get().to_owned()));
        })?;
        Ok(out)
    }

    #[test]
    fn scans_members_as_written() {
        let got =
            members(r#" {"a": 1, "b":"x\"y", "c" : {"d":[1,2.5e-3,true,null]}, "e\u0041":-0} "#)
                .unwrap();
        let want = [
            ("a", "1"),
            ("b", r#""x\"y""#),
            ("c", r#"{"d":[1,2.5e-3,true,null]}"#),
            ("e\\u0041", "-0"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(members("{}").unwrap(), vec![]);
    }

    #[test]
    fn a_line_says_whether_it_holds_unicode_escapes() {
        let says = |text: &str| line(text, |_, _| {}).unwrap().unicode_escape();
        assert_eq!(says(r#"{"a":"plain \"quoted\" \n"}"#), Some(false));
        // An escaped backslash before a `u`: JSON held in the string has a
        // `\u` escape there.
        assert_eq!(says(r#"{"a":"{\"k\":\"sk\\u002dkey\"}"}"#), Some(true));
        assert_eq!(says(r#"{"a":"C:\\temp"}"#), Some(false));
        assert_eq!(says(r#"{"a":"sk\u002dkey"}"#), Some(true));
        assert_eq!(says(r#"{"k\u0065y":1}"#), Some(true));
        // In a string past the first 64 bytes, and at the very end.
        let long = format!(r#"{{"a":"{}","b":"\u00e9"}}"#, "x".repeat(100));
        assert_eq!(says(&long), Some(true));
    }

    #[test]
    fn agrees_with_serde_json_on_validity() {
        let cases = [
            r#"{"a":1}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":1e}"#,
            r#"{"a":-}"#,
            r#"{"a":tru}"#,
            r#"{"a":"tab	inside"}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\u12G4"}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":1,}"#,
            r#"{,"a":1}"#,
            r#"{"a" 1}"#,
            r#"{"a":1}}"#,
            r#"{"a":1} x"#,
            r#"{"a":[1 2]}"#,
            r#"{"a":{"b":}}"#,
            r#"{"a":"unterminated}"#,
            r#"{"a":"#,
            r#"{"a""#,
            "{",
            "",
            "   ",
            r#"{"a":NaN}"#,
            r#"{"a":"é \u00e9 \ud83d\ude00"}"#,
            r#"{"a":[[],{},[{}]],"b":1E+5,"c":-12.5E-7}"#,
        ];
        for case in cases {
            let ours = members(case).is_ok();
            let theirs =
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(case).is_ok();
            assert_eq!(ours, theirs, "{case}");
        }
    }

    #[test]
    fn kinds_of_errors() {
        let kind = |text: &str| members(text).unwrap_err().kind;
        assert_eq!(kind(r#"{"a":"cut"#), ErrorKind::Eof);
        assert_eq!(kind(r#"{"a":[1,2"#), ErrorKind::Eof);
        assert_eq!(kind(r#"{"a":x}"#), ErrorKind::Syntax);
        assert_eq!(kind("[1,2]"), ErrorKind::NotObject);
        assert_eq!(kind("42"), ErrorKind::NotObject);
        assert_eq!(kind("[1,2"), ErrorKind::Eof);
        let deep = format!("{}1{}", "[{\"a\":".repeat(10_000), "}]".repeat(10_000));
        assert!(members(&format!(r#"{{"a":{deep}}}"#)).is_ok());
        assert_eq!(kind(&format!(r#"{{"a":{deep}]}}"#)), ErrorKind::Syntax);
        assert_eq!(
            kind(&format!(r#"{{"a":{}}}"#, &deep[..deep.len() - 1])),
            ErrorKind::Syntax
        );
        let err = members(r#"{"a":x}"#).unwrap_err();
        assert_eq!(err.to_string(), "expected a value at column 6");
    }

    /// The tape accepts exactly what the byte walker accepts, with the same
    /// members, with either set of masks.
    fn agree(text: &str) -> Result<(), String> {
        scanners_agree(text).map_err(|e| format!("{text:?}: {e}"))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        /// Same verdict and members at any block boundary, escape run,
        /// broken string, stray byte or nesting.
        #[test]
        fn tape_agrees_with_the_byte_walker(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    r#"{"a":"#, r#""x""#, r#""\\""#, r#""\"""#, r#""\u00e9""#, r#""\q""#,
                    r#""\u12""#, "\\", "\"", ",", ":", "}", "{", "[", "]", "1", "-0.5e+3", "01",
                    "1.", "null", "nul", "true", "falsey", "x",
                    "long text of a message that runs on past a block ", "\t", "\n", "\u{1}", "é",
                    r#","k":"#, " ", "\r\n", r#""\\u0041""#, "u",
                ]),
                0..40,
            ),
            pad in 0usize..70,
        ) {
            let text: String = parts.concat();
            let text = format!(r#"{{"pad":"{}",{}"#, "p".repeat(pad), text);
            proptest::prop_assert!(agree(&text).is_ok(), "{}", agree(&text).unwrap_err());
            let whole = format!("{text}}}");
            proptest::prop_assert!(agree(&whole).is_ok(), "{}", agree(&whole).unwrap_err());
            // What the tape says of `\u` is what a search of the bytes finds.
            let says = line(&whole, |_, _| {}).ok().and_then(|line| line.unicode_escape());
            if let Some(found) = says {
                proptest::prop_assert_eq!(found, whole.contains("\\u"), "{}", whole);
            }
        }

        /// A line read by the shape of a flat line before it, with the same
        /// keys and spacing and any values (half of them those of the line
        /// before), has the members the byte walker finds; one whose values
        /// are all plain strings, numbers and literals is read by it, others
        /// may be declined but never misread.
        #[test]
        fn lines_read_by_a_shape_have_the_members_the_byte_walker_finds(
            members in proptest::collection::vec(
                (
                    proptest::sample::select(vec!["ts", "a b", "é", "", "status_code", "k"]),
                    proptest::sample::select(PLAIN.to_vec()),
                    proptest::sample::select([PLAIN, OTHER].concat()),
                    proptest::sample::select(vec!["", " ", "\t", "\r\n "]),
                    proptest::sample::select(vec!["", " "]),
                    proptest::prelude::any::<bool>(),
                ),
                1..12,
            ),
        ) {
            let members: Vec<_> = members
                .into_iter()
                .map(|(k, a, b, w1, w2, same)| (k, a, if same { a } else { b }, w1, w2))
                .collect();
            let text = |second: bool| {
                let members: Vec<String> = members
                    .iter()
                    .map(|(k, a, b, w1, w2)| {
                        format!("{w1}\"{k}\"{w2}:{w1}{}{w2}", if second { b } else { a })
                    })
                    .collect();
                format!("{{{}}}", members.join(","))
            };
            let (a, b) = (text(false), text(true));
            let walked = walked(&b);
            match shaped(&a, &b) {
                Some(members) => proptest::prop_assert_eq!(Some(members), walked.clone(), "{} then {}", a, b),
                None => proptest::prop_assert!(
                    !members.iter().all(|m| PLAIN.contains(&m.2)),
                    "{} then {} declined", a, b
                ),
            }
            let both = format!("{a}\n{b}");
            proptest::prop_assert!(scanners_agree(&both).is_ok(), "{}", both);
            // The same through `line`, whose shape the line before left.
            drop(line(&a, |_, _| {}));
            let mut handed = Vec::new();
            let read = line(&b, |key, (start, end)| {
                handed.push((key.text.to_owned(), b[start as usize..end as usize].to_owned(), key.escaped));
            });
            if let Ok(line) = &read {
                // A line read by its shape is one without escapes.
                let by_shape = !TOKENS.get();
                proptest::prop_assert!(!(by_shape && b.contains('\\')), "{}", b);
                // Its members, served again from its shape, are those too.
                let mut again = Vec::new();
                let served = flat_shaped_members(Raw(&b), |key, value| {
                    again.push((key.text.to_owned(), value.get().to_owned(), key.escaped));
                });
                proptest::prop_assert_eq!(served, by_shape, "{}", b);
                if served {
                    proptest::prop_assert_eq!(Some(again), walked.clone(), "{}", b);
                }
                if let Some(found) = line.unicode_escape() {
                    proptest::prop_assert_eq!(found, b.contains("\\u"), "{}", b);
                }
            }
            proptest::prop_assert_eq!(read.is_ok().then_some(handed), walked);
        }

        /// A string's end found sixteen bytes at a time is the first quote,
        /// declined at a backslash or control byte before it.
        #[test]
        fn a_strings_end_found_by_words_is_the_one_found_byte_by_byte(
            bytes in proptest::collection::vec(
                proptest::sample::select(vec![
                    b'0', b'5', b'9', b'/', b':', b'.', b'e', b'"', b'\\', 0x1f, 0x20, 0x7f, 0x80, 0xc3, 0xff,
                ]),
                0..40,
            ),
            at in 0usize..40,
        ) {
            let mut text = bytes.clone();
            if let Some(b) = text.get_mut(at) {
                *b = b'"';
                let end = text[at + 1..]
                    .iter()
                    .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                    .map(|i| at + 1 + i)
                    .filter(|&i| text[i] == b'"')
                    .map(|i| i + 1);
                proptest::prop_assert_eq!(scalar_value_end(&text, at), end);
            }
        }

        /// Lines with nested values: a line with the structure, keys and
        /// spacing of the one before and any values there is read by its
        /// shape with the members the byte walker finds, and its nested
        /// objects are served from the tokens the shape gave it; one whose
        /// values are all plain, each of the kind the shape has there, is
        /// read by it.
        #[test]
        fn nested_lines_read_by_a_shape_are_read_as_the_byte_walker_reads_them(
            members in proptest::collection::vec(
                (
                    proptest::sample::select(vec!["ts", "a b", "é", "", "response"]),
                    proptest::sample::select(vec![
                        "@", "{}", "[]", r#"{"k":@}"#, "[@, @]", r#"{"a":{"b":[@]},"c":@}"#,
                        r#"[{"x":@},{"x":@,"y":[]}]"#, r#"{ "status" : @ , "body":{"id":@}}"#,
                    ]),
                    proptest::collection::vec(
                        (
                            proptest::sample::select(PLAIN.to_vec()),
                            proptest::sample::select([PLAIN, PLAIN, OTHER].concat()),
                        ),
                        3,
                    ),
                    proptest::sample::select(vec!["", " "]),
                ),
                1..8,
            ),
        ) {
            let text = |second: bool| {
                let members: Vec<String> = members
                    .iter()
                    .map(|(k, template, values, w)| {
                        let mut values = values.iter().map(|(a, b)| if second { *b } else { *a });
                        let mut value = String::new();
                        for (i, part) in template.split('@').enumerate() {
                            if i > 0 {
                                value.push_str(values.next().unwrap_or("0"));
                            }
                            value.push_str(part);
                        }
                        format!("{w}\"{k}\"{w}:{value}")
                    })
                    .collect();
                format!("{{{}}}", members.join(","))
            };
            let (a, b) = (text(false), text(true));
            let walked = walked(&b);
            let plain = members.iter().all(|(_, template, values, _)| {
                let used = template.matches('@').count();
                values.iter().take(used).all(|(a, b)| {
                    PLAIN.contains(b) && (*template == "@" || a.starts_with('"') == b.starts_with('"'))
                })
            });
            let flat = members.iter().all(|m| m.1 == "@");
            // A shape needs a value to read.
            let plain = plain && members.iter().any(|m| m.1.contains('@'));
            match shaped(&a, &b) {
                Some(members) => proptest::prop_assert_eq!(Some(members), walked.clone(), "{} then {}", a, b),
                None => proptest::prop_assert!(!(plain && (flat || members.iter().all(|m| m.2.iter().all(|(a, b)| a.starts_with('"') == b.starts_with('"'))))), "{} then {} declined", a, b),
            }
            drop(line(&a, |_, _| {}));
            let mut top = Vec::new();
            let mut handed = Vec::new();
            let read = line(&b, |key, span| {
                let value = Raw::at(&b, span).unwrap();
                top.push(value);
                handed.push((key.text.to_owned(), value.get().to_owned(), key.escaped));
            });
            if let Ok(line) = &read {
                let mut objects = Vec::new();
                for value in &top {
                    objects_in(*value, &mut objects);
                }
                for object in objects {
                    let want = self::members(object.get()).unwrap();
                    proptest::prop_assert_eq!(nested(object), Some(want), "{} in {}", object.get(), b);
                }
                proptest::prop_assert!(TOKENS.get() || !b.contains('\\') || line.unicode_escape().is_some());
            }
            proptest::prop_assert_eq!(read.is_ok().then_some(handed), walked);
        }

        /// The AVX-512 and AVX2 token writers, where the CPU has them, write
        /// what the plain one writes.
        #[test]
        fn simd_token_writes_are_the_plain_ones(tokens in proptest::prelude::any::<u64>(), base in 0u32..1 << 30) {
            #[cfg(target_arch = "x86_64")]
            {
                let mut plain = [0u32; 64];
                write_tokens(&mut plain, tokens, base);
                let n = tokens.count_ones() as usize;
                for (path, simd) in simd_token_writes(tokens, base) {
                    proptest::prop_assert_eq!(&plain[..n], &simd[..n], "{}", path);
                }
            }
        }

        /// The SIMD masks this CPU can run are the byte-at-a-time masks.
        #[test]
        fn simd_masks_are_the_portable_masks(block in proptest::collection::vec(proptest::prelude::any::<u8>(), 64)) {
            #[cfg(target_arch = "x86_64")]
            {
                let portable = block_masks(&block);
                for (path, simd) in simd_masks(&block) {
                    proptest::prop_assert_eq!(simd, portable, "{}", path);
                }
            }
        }
    }

    /// A SIMD path of stage 1's masks, and a SIMD token writer.
    #[cfg(target_arch = "x86_64")]
    type MasksPath = unsafe fn(&[u8]) -> Masks;
    #[cfg(target_arch = "x86_64")]
    type TokenWriter = unsafe fn(&mut [u32; 64], u64, u32);

    /// The masks of `block` from each SIMD path this CPU can run, by name.
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    fn simd_masks(block: &[u8]) -> Vec<(&'static str, Masks)> {
        let paths: [(&str, bool, MasksPath); 3] = [
            ("sse2", true, block_masks_sse2),
            (
                "avx2",
                std::arch::is_x86_feature_detected!("avx2"),
                block_masks_avx2,
            ),
            (
                "avx512",
                std::arch::is_x86_feature_detected!("avx512bw"),
                block_masks_avx512,
            ),
        ];
        paths
            .into_iter()
            .filter(|(_, available, _)| *available)
            // SAFETY: SSE2 is part of the x86_64 baseline, and the other
            // paths run only when the CPU reports their features.
            .map(|(path, _, masks)| (path, unsafe { masks(block) }))
            .collect()
    }

    /// `tokens` written by each SIMD token writer this CPU can run, by name.
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    fn simd_token_writes(tokens: u64, base: u32) -> Vec<(&'static str, [u32; 64])> {
        let popcnt = std::arch::is_x86_feature_detected!("popcnt");
        let writers: [(&str, bool, TokenWriter); 2] = [
            (
                "avx512",
                popcnt && std::arch::is_x86_feature_detected!("avx512f"),
                write_tokens_avx512,
            ),
            (
                "avx2",
                popcnt && std::arch::is_x86_feature_detected!("avx2"),
                write_tokens_avx2,
            ),
        ];
        writers
            .into_iter()
            .filter(|(_, available, _)| *available)
            .map(|(path, _, write)| {
                let mut out = [u32::MAX; 64];
                // SAFETY: the writer runs only when the CPU reports its features.
                unsafe { write(&mut out, tokens, base) };
                (path, out)
            })
            .collect()
    }

    /// Every byte value, at every position of a block, gets the masks the
    /// byte-at-a-time classification gives it (the table lookups of the
    /// AVX2 path must not take any other byte for a space or an operator).
    #[test]
    fn every_byte_value_is_classified_as_the_portable_masks_do() {
        #[cfg(target_arch = "x86_64")]
        for shift in 0..64usize {
            for first in (0..256usize).step_by(64) {
                let block: Vec<u8> = (0..64)
                    .map(|i| ((first + (i + shift) % 64) % 256) as u8)
                    .collect();
                let portable = block_masks(&block);
                for (path, simd) in simd_masks(&block) {
                    assert_eq!(simd, portable, "{path}: {block:?}");
                }
            }
        }
    }

    #[test]
    fn tape_and_walker_agree_on_hand_picked_texts() {
        let deep = format!("{}1{}", "[{\"a\":".repeat(100), "}]".repeat(100));
        let cases = [
            "{}".to_owned(),
            " { } ".to_owned(),
            r#"{"a":1}"#.to_owned(),
            r#"{"a":[],"b":{},"c":[{}],"d":""}"#.to_owned(),
            r#"{"a":1 2}"#.to_owned(),
            r#"{"a":1}x"#.to_owned(),
            r#"x{"a":1}"#.to_owned(),
            r#"{"a":1,}"#.to_owned(),
            r#"{"a":[1,]}"#.to_owned(),
            r#"{"a":{"b"}}"#.to_owned(),
            r#"{"a":{"b":1,}}"#.to_owned(),
            r#"{"a":"b"c}"#.to_owned(),
            r#"{"a":12x}"#.to_owned(),
            r#"{"a":truex}"#.to_owned(),
            r#"{"a":1\"}"#.to_owned(),
            r#"{"a\"b":"c\\"}"#.to_owned(),
            "{\"a\":\u{0}}".to_owned(),
            "{\"a\":\"é\"}".to_owned(),
            "{\"a\":é}".to_owned(),
            "[1]".to_owned(),
            "42".to_owned(),
            String::new(),
            format!(r#"{{"a":{deep}}}"#),
            format!(r#"{{"a":{deep}]}}"#),
            format!(r#"{{"{}":1}}"#, "k".repeat(200)),
        ];
        for case in &cases {
            agree(case).unwrap();
        }
    }

    #[test]
    fn escape_runs_across_blocks() {
        for run in 0..6 {
            for pad in 55..70 {
                let text = format!(r#"{{"a":"{}{}","b":1}}"#, "x".repeat(pad), "\\".repeat(run));
                agree(&text).unwrap();
            }
        }
    }

    #[test]
    fn numbers_and_literals_across_blocks() {
        for pad in 40..70 {
            let text = format!(
                r#"{{"a":"{}","n":-12345.678e+10,"t":true,"f":false,"z":null,"m":[0,1e5]}}"#,
                "x".repeat(pad)
            );
            agree(&text).unwrap();
            assert!(taped(&text, false).is_some(), "{text}");
        }
    }

    fn nested(raw: Raw<'_>) -> Option<Vec<(String, String)>> {
        let mut out = Vec::new();
        members_of(raw, |k, v| {
            out.push((k.text.to_owned(), v.get().to_owned()));
        })
        .then_some(out)
    }

    /// A text that breaks part way: the members before the break come out
    /// as the tape reads them, then again, in the same order with the same
    /// values, from the byte walker that says where the text breaks.
    #[test]
    fn members_before_a_break_are_handed_out_again_in_the_same_order() {
        let text = r#"{"a":1,"b":{"c":[2]},"d":"x" "e":3}"#;
        let mut seen = Vec::new();
        let err = object(text, |k, v| seen.push((k.text, v.get()))).unwrap_err();
        assert_eq!(err.to_string(), "expected `,` or `}` at column 30");
        let once = [("a", "1"), ("b", r#"{"c":[2]}"#), ("d", r#""x""#)];
        assert_eq!(seen, [once, once].concat());
    }

    #[test]
    fn nested_objects_are_read_from_the_line_tokens_only_while_it_is_kept() {
        let text = r#"{"response":{"status":529,"body":{"error":{"type":"overloaded_error"}}},"s":"{\"a\":1}","t":"{}"}"#;
        let mut top = Vec::new();
        let line = line(text, |k, v| top.push((k.text, Raw::at(text, v).unwrap()))).unwrap();
        let response = top[0].1;
        let want = members(response.get()).unwrap();
        assert_eq!(nested(response), Some(want));
        let body = Raw::parse(r#"{"error":{"type":"overloaded_error"}}"#).unwrap();
        assert_eq!(nested(body), None, "a text outside the line");
        // `{}` inside a string value of the line is not one of its objects.
        let inside = Raw::parse(&top[2].1.get()[1..3]).unwrap();
        assert_eq!(inside.get(), "{}");
        assert_eq!(nested(inside), None);
        drop(line);
        assert_eq!(nested(response), None, "the line is no longer kept");
        // A line inside a kept line is scanned on its own; the outer stays kept.
        let outer = super::line(text, |_, _| {}).unwrap();
        let inner_text = r#"{"a":{"b":1}}"#.to_owned();
        let mut inner_top = Vec::new();
        let inner = super::line(&inner_text, |_, v| {
            inner_top.push(Raw::at(&inner_text, v).unwrap());
        })
        .unwrap();
        assert_eq!(nested(inner_top[0]), None);
        assert_eq!(nested(response).map(|m| m.len()), Some(2));
        drop((inner, outer));
    }

    /// Values a shape reads: strings without backslashes, numbers, literals.
    const PLAIN: &[&str] = &[
        r#""x""#,
        r#""""#,
        r#""{}[]:, é""#,
        r#""long text of a message that runs on past a block of sixty-four bytes""#,
        "1",
        "-0.5e+3",
        "0",
        "true",
        "false",
        "null",
    ];

    /// Values a shape declines, or that are not values at all.
    const OTHER: &[&str] = &[
        r#""a\"b""#,
        r#""\u00e9""#,
        "\"\u{1}\"",
        "\"unterminated",
        "01",
        "1.",
        "-",
        "nul",
        "truex",
        "{}",
        "[1]",
        r#"{"k":1}"#,
        "x",
        "",
    ];

    #[test]
    fn a_nested_line_with_more_members_than_a_shape_hands_out_is_read_by_the_tape() {
        let text = |v: usize| {
            let members: Vec<String> = (0..=SHAPE_MEMBERS)
                .map(|i| format!(r#""k{i}":{v}"#))
                .collect();
            format!(r#"{{"n":{{"a":{v}}},{}}}"#, members.join(","))
        };
        drop(line(&text(1), |_, _| {}).unwrap());
        let shaped = SHAPED.get();
        let second = text(2);
        let mut handed = Vec::new();
        drop(
            line(&second, |key, (start, end)| {
                handed.push((
                    key.text.to_owned(),
                    second[start as usize..end as usize].to_owned(),
                    false,
                ));
            })
            .unwrap(),
        );
        assert_eq!(SHAPED.get(), shaped);
        assert_eq!(Some(handed), walked(&second));
    }

    #[test]
    fn a_line_with_too_many_values_for_a_shape_leaves_none() {
        let ones = vec!["1"; SHAPE_VALUES + 1].join(",");
        drop(line(&format!(r#"{{"a":[{ones}]}}"#), |_, _| {}).unwrap());
        // The bytes between the values kept before the shape was given up.
        let gaps = format!(r#"{{"a":[{}"#, ",".repeat(SHAPE_VALUES - 1));
        assert!(line(&gaps, |_, _| {}).is_err());
        let ones = vec!["2"; SHAPE_VALUES + 1].join(",");
        assert!(line(&format!(r#"{{"a":[{ones}]}}"#), |_, _| {}).is_ok());
    }

    #[test]
    fn a_line_of_the_last_lines_shape_is_read_by_it() {
        let first = r#"{"ts":"2026-03-10T00:00:00Z", "status_code":200,"ok":true}"#;
        let second = r#"{"ts":"2026-03-10T00:00:01Z", "status_code":429,"ok":false}"#;
        let read = |text: &str| {
            let shaped = SHAPED.get();
            let mut members = Vec::new();
            let line = line(text, |key, (start, end)| {
                members.push(format!(
                    "{}={}",
                    key.text,
                    &text[start as usize..end as usize]
                ));
            })
            .unwrap();
            let by_tape = SHAPED.get() == shaped;
            assert_eq!(line.unicode_escape(), Some(false));
            // A flat line read by its shape leaves the tape's tokens alone.
            assert_eq!(TOKENS.get(), by_tape || text.contains(":{"));
            drop(line);
            (members, by_tape)
        };
        assert!(read(first).1);
        let (members, by_tape) = read(second);
        assert!(!by_tape, "read by the first line's shape");
        assert_eq!(
            members,
            ["ts=\"2026-03-10T00:00:01Z\"", "status_code=429", "ok=false"]
        );
        // Another key, another spacing, another kind of value: the tape reads them.
        assert!(read(r#"{"ts":"x","status":200,"ok":true}"#).1);
        assert!(read(r#"{"ts":"x", "status":200 ,"ok":true}"#).1);
        assert!(read(r#"{"ts":"x", "status":{"a":[1,"b"]},"ok":true}"#).1);
        let (members, by_tape) = read(r#"{"ts":"yz", "status":{"a":[22,"c"]},"ok":false}"#);
        assert!(!by_tape, "read by the nested line's shape");
        assert_eq!(members[1], r#"status={"a":[22,"c"]}"#);
        assert!(read(r#"{"ts":"y", "status":{"a":["22","c"]},"ok":false}"#).1);
        // Shapes kept earlier still read their lines, interleaved.
        for _ in 0..2 {
            let (members, by_tape) = read(r#"{"ts":"y", "status":1 ,"ok":null}"#);
            assert!(!by_tape, "read by the shape of the second spacing");
            assert_eq!(members, ["ts=\"y\"", "status=1", "ok=null"]);
            assert!(!read(second).1, "read by the first line's shape");
            assert!(!read(r#"{"ts":"", "status":{"a":[3,""]},"ok":true}"#).1);
        }
        // Past as many new shapes as are kept, the first is forgotten.
        for key in 0..SHAPES_KEPT {
            assert!(read(&format!(r#"{{"k{key}":1}}"#)).1);
        }
        assert!(read(second).1);
    }

    #[test]
    fn lines_of_no_shape_in_a_row_make_shapes_tried_and_kept_sparingly() {
        // Whether the line was read by a shape, and its members as the
        // byte walker finds them.
        let shaped = |text: &str| {
            let before = SHAPED.get();
            let mut handed = Vec::new();
            drop(
                line(text, |key, (start, end)| {
                    handed.push((
                        key.text.to_owned(),
                        text[start as usize..end as usize].to_owned(),
                        false,
                    ));
                })
                .unwrap(),
            );
            assert_eq!(Some(handed), walked(text), "{text}");
            SHAPED.get() > before
        };
        let own_keys = |i: usize| format!(r#"{{"a{i}":1,"b":"x"}}"#);
        for i in 0..SHAPES_MISSED as usize {
            assert!(!shaped(&own_keys(i)));
        }
        // Shapes are now kept one line in eight: a kind of line that comes
        // back is not kept at once, but read by its shape within that many
        // lines, and all its lines after.
        let kind = |v: usize| format!(r#"{{"ts":"{v}","status":{v}}}"#);
        let by_tape = (0..=SHAPES_KEPT).filter(|&v| !shaped(&kind(v))).count();
        assert!((2..=SHAPES_KEPT).contains(&by_tape), "{by_tape}");
        assert!((0..4).all(|v| shaped(&kind(v))));
        // Read by a shape again: another kind is kept and read again at once.
        assert!(!shaped(&own_keys(1000)));
        assert!(shaped(&own_keys(1000).replace("\"x\"", "\"y\"")));
    }

    #[test]
    fn interleaved_shapes_hand_out_what_the_byte_walker_finds() {
        let kinds = [
            r#"{"ts":"V","status":200,"usage":{"in":1,"out":2}}"#,
            r#"{"ts":"V","status":429,"error":{"type":"rate_limit","message":"V"}}"#,
            r#"{"ts":"V","level":"info","status":200}"#,
            r#"{"request":{"url":"V","body":{"model":"m"}},"response":{"status":529}}"#,
        ];
        let mut shaped = 0;
        for round in 0..6 {
            for i in 0..kinds.len() {
                // Each kind of line with other values, in a changing order.
                let kind = if round % 2 == 0 {
                    kinds[i]
                } else {
                    kinds[3 - i]
                };
                let text = kind.replace('V', &"x".repeat(round + 1));
                let before = SHAPED.get();
                let mut handed = Vec::new();
                drop(
                    line(&text, |key, (start, end)| {
                        handed.push((
                            key.text.to_owned(),
                            text[start as usize..end as usize].to_owned(),
                            false,
                        ));
                    })
                    .unwrap(),
                );
                shaped += SHAPED.get() - before;
                assert_eq!(Some(handed), walked(&text), "{text}");
            }
        }
        // Only the first line of each kind went to the tape.
        assert_eq!(shaped, 6 * kinds.len() - kinds.len());
    }

    /// JSON text of any nesting, with strings that hold operators, escapes
    /// and whitespace between tokens.
    fn json_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let ws = || proptest::sample::select(vec!["", " ", "\t", " \r\n "]);
        let leaf = proptest::sample::select(vec![
            "1",
            "-0.5e+3",
            "0",
            "true",
            "false",
            "null",
            r#""x""#,
            r#""a\"b\\""#,
            r#""{}[]:,""#,
            r#""""#,
            "{}",
            "[]",
            r#""\u00e9""#,
        ])
        .prop_map(str::to_owned);
        leaf.prop_recursive(5, 64, 6, move |inner| {
            let key = proptest::sample::select(vec!["k", "a b", "q\\\"", "{", ""]);
            prop_oneof![
                proptest::collection::vec((key, inner.clone(), ws(), ws()), 0..6).prop_map(
                    |members| {
                        let members: Vec<String> = members
                            .into_iter()
                            .map(|(k, v, w1, w2)| format!("{w1}\"{k}\"{w2}:{w1}{v}{w2}"))
                            .collect();
                        format!("{{{}}}", members.join(","))
                    }
                ),
                proptest::collection::vec((inner, ws()), 0..6).prop_map(|items| {
                    let items: Vec<String> = items
                        .into_iter()
                        .map(|(v, w)| format!("{w}{v}{w}"))
                        .collect();
                    format!("[{}]", items.join(","))
                }),
            ]
        })
    }

    /// Every object nested in `raw`, `raw` included when it is one.
    fn objects_in<'a>(raw: Raw<'a>, out: &mut Vec<Raw<'a>>) {
        if raw.get().starts_with('{') {
            out.push(raw);
            for (_, value) in raw.members() {
                objects_in(value, out);
            }
        } else {
            for item in raw.items() {
                objects_in(item, out);
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// Any object nested at any depth in a kept line is handed out from
        /// the line's tokens with the members a scan of its own finds.
        #[test]
        fn nested_objects_from_the_tokens_are_the_scanned_ones(a in json_text(), b in json_text()) {
            let text = format!(r#"{{"a":{a}, "s":"{{}}" ,"b" : {b}}}"#);
            let mut top = Vec::new();
            let line = line(&text, |_, v| top.push(Raw::at(&text, v).unwrap())).unwrap();
            let mut objects = Vec::new();
            for value in top {
                objects_in(value, &mut objects);
            }
            for object in objects {
                let want = members(object.get()).unwrap();
                proptest::prop_assert_eq!(nested(object), Some(want), "{} in {}", object.get(), text);
            }
            drop(line);
        }

        /// Any array nested at any depth in a kept line hands out from the
        /// line's tokens the elements a scan of its own finds, up to the
        /// one its reader stops at.
        #[test]
        fn nested_arrays_from_the_tokens_are_the_scanned_ones(a in json_text(), b in json_text(), stop in 0usize..4) {
            let text = format!(r#"{{"a":{a}, "s":"[]" ,"b" : [{b}, 1]}}"#);
            let mut top = Vec::new();
            let line = line(&text, |_, v| top.push(Raw::at(&text, v).unwrap())).unwrap();
            let mut arrays = Vec::new();
            for value in top {
                arrays_in(value, &mut arrays);
            }
            for array in arrays {
                let want: Vec<&str> = array.items().map(Raw::get).take(stop + 1).collect();
                let mut got = Vec::new();
                let read = items_of(array, |item| {
                    got.push(item.get());
                    got.len() <= stop
                });
                proptest::prop_assert!(read, "{} in {}", array.get(), text);
                proptest::prop_assert_eq!(got, want, "{} in {}", array.get(), text);
            }
            // An array that is not part of the line is left to its caller.
            proptest::prop_assert!(!items_of(Raw::parse("[1,2]").unwrap(), |_| true));
            drop(line);
        }
    }

    /// Every array nested in `raw`, `raw` included when it is one.
    fn arrays_in<'a>(raw: Raw<'a>, out: &mut Vec<Raw<'a>>) {
        if raw.get().starts_with('[') {
            out.push(raw);
        }
        for item in raw.items() {
            arrays_in(item, out);
        }
        for (_, value) in raw.members() {
            arrays_in(value, out);
        }
    }

    #[test]
    fn a_long_line_does_not_keep_its_buffers() {
        let mut tape = Tape::default();
        let long = format!(r#"{{"a":[{}1]}}"#, "1,".repeat(RETAINED_TOKENS));
        assert!(tape.object(&long));
        assert!(tape.tokens.len() > RETAINED_TOKENS);
        assert!(tape.object(r#"{"b":{"c":[1,2]}}"#));
        assert!(tape.tokens.capacity() <= RETAINED_TOKENS);
        assert!(tape.closes.capacity() <= RETAINED_TOKENS);
        assert_eq!(tape.members.len(), 1);
    }

    #[test]
    fn items_and_members_of_raw_values() {
        let raw = Raw::parse(r#" [ {"reason":"x"}, 2 , "three" ] "#).unwrap();
        let items: Vec<&str> = raw.items().map(Raw::get).collect();
        assert_eq!(items, [r#"{"reason":"x"}"#, "2", r#""three""#]);
        let first = raw.items().next().unwrap();
        let members: Vec<(&str, &str)> = first.members().map(|(k, v)| (k.text, v.get())).collect();
        assert_eq!(members, [("reason", r#""x""#)]);
        assert_eq!(Raw::parse("1").unwrap().items().count(), 0);
        assert!(Raw::parse("1 2").is_err());
    }
}
