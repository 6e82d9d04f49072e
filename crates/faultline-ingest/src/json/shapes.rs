//! The shapes of the last lines the tape read: a line that repeats the
//! keys of one of them, in the same order, has only its values read.

use super::tape::{literal_end, number_end, run_end, Member, Tape, View};
use super::walker::string_stops;
use super::{offset_in_line, Key, Raw, Reader, Span, ACTIVE, SHAPES, SHAPE_TOKENS, TAPE, TOKENS};

/// Members a flat shape holds at most; a line with more is left to the tape.
pub(super) const SHAPE_MEMBERS: usize = 32;

/// Values (strings, numbers, literals) a shape holds at most.
pub(super) const SHAPE_VALUES: usize = 64;

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
pub(super) struct Shape {
    /// The gaps one after the other: before the first value (`{"ts":`),
    /// between two (`,"level":`), and after the last (`}`).
    pub(super) gaps: Vec<u8>,
    /// Per value, where the gap before it ends in `gaps`, and more.
    pub(super) members: Vec<ShapeMember>,
    /// Empty for a flat line; else its tokens and, at the index of each
    /// container's opening token, the index of its closing one.
    pub(super) tokens: Vec<u32>,
    pub(super) closes: Vec<u32>,
    /// Per token, how many values end before it (a string's closing quote
    /// counts its own): a line of the shape has the token where the shape's
    /// line had it, moved by the change in length of those values.
    pub(super) groups: Vec<u8>,
    /// Which line kept on this thread the shape is of (from 1): two lines
    /// read by shapes of one generation have the same structure.
    pub(super) generation: u64,
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
pub(super) struct Shapes {
    pub(super) kept: [Shape; SHAPES_KEPT],
    /// Indexes into `kept`, the most recently used first.
    pub(super) order: [u8; SHAPES_KEPT],
    /// Lines kept as shapes on this thread.
    pub(super) generation: u64,
    /// Lines in a row that no shape read.
    pub(super) missed: u32,
    /// The values of the last line a shape read, as ranges of it (the
    /// first as many as that shape has); written in place by the tries.
    pub(super) values: [Span; SHAPE_VALUES],
    /// That line's address and length, `(0, 0)` before any.
    pub(super) line: (usize, usize),
}

/// Lines in a row that no shape read before shapes are tried and kept
/// sparingly (see [`Shapes`]).
pub(super) const SHAPES_MISSED: u32 = 64;

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
    pub(super) fn use_at(&mut self, at: usize) -> &Shape {
        let i = self.order[at];
        self.order.copy_within(..at, 1);
        self.order[0] = i;
        &self.kept[usize::from(i) % SHAPES_KEPT]
    }

    /// The most recently used shape.
    pub(super) fn latest(&self) -> &Shape {
        &self.kept[usize::from(self.order[0]) % SHAPES_KEPT]
    }

    /// Shapes a line tries.
    pub(super) fn tries(&self) -> usize {
        if self.missed < SHAPES_MISSED {
            SHAPES_KEPT
        } else {
            1
        }
    }

    /// Whether a line that no shape read is kept as one.
    pub(super) fn keeps(&self) -> bool {
        self.missed < SHAPES_MISSED || self.missed.is_multiple_of(SHAPES_KEPT as u32)
    }

    /// The least recently used shape, made the most recent, with a new
    /// generation: for a line to be kept in it.
    pub(super) fn renew(&mut self) -> &mut Shape {
        self.generation += 1;
        self.use_at(SHAPES_KEPT - 1);
        let shape = &mut self.kept[usize::from(self.order[0]) % SHAPES_KEPT];
        shape.generation = self.generation;
        shape
    }
}

/// Entries of the table of shifts by [`Shape::groups`]: more than a shape
/// has values, and a power of two, so that a group indexes it unchecked.
pub(super) const SHIFTS: usize = 128;
const _: () = assert!(SHAPE_VALUES < SHIFTS);

#[derive(Debug, Clone, Copy)]
pub(super) struct ShapeMember {
    pub(super) gap_end: u32,
    /// In a flat shape, the member's key's range within the gap.
    pub(super) key: (u32, u32),
    /// In a shape with tokens, whether the value is a string.
    pub(super) string: bool,
    /// Where the value ended in the line the shape was read from.
    pub(super) end: u32,
    /// The first 32 bytes from the gap's start as two little-endian words
    /// (zero past the line's end): the gap, then the value the shape's line
    /// had there, then the byte after it.
    pub(super) words: [u128; 2],
    /// The gap's bytes in `words`: a gap is compared with the line in two
    /// word operations, whatever its length, when it is no longer than 32
    /// bytes and the line has 32 bytes from there.
    pub(super) mask: [u128; 2],
    /// The bytes of the gap, the value and the byte after it in `words`,
    /// and how many they are (0 when more than 32): a line holding them
    /// holds the shape line's value there, read with the gap.
    pub(super) same_mask: [u128; 2],
    pub(super) same: u32,
}

/// Longest gap compared by words ([`ShapeMember::words`]).
pub(super) const GAP_WORDS: usize = 32;

/// The 16 bytes of `bytes` from `at` as a little-endian word (zero where
/// `bytes` ends before them).
#[inline]
pub(super) fn word_at(bytes: &[u8], at: usize) -> u128 {
    let mut w = [0u8; 16];
    if let Some(b) = bytes.get(at..at + 16) {
        w.copy_from_slice(b);
    }
    u128::from_le_bytes(w)
}

impl ShapeMember {
    /// The member whose gap is `run`'s first `gap` bytes, followed in the
    /// shape's line by a value and the byte after it (the rest of `run`).
    pub(super) fn of_value(
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
pub(super) struct Seen {
    /// Key and value ranges in the line.
    pub(super) members: [((u32, u32), Span); SHAPE_MEMBERS],
    pub(super) len: usize,
    /// Whether the line can be a flat shape so far: not too many members,
    /// no escaped key, every value a scalar.
    pub(super) flat: bool,
    /// Members handed out: a shape hands out at most [`SHAPE_MEMBERS`].
    pub(super) count: usize,
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
    pub(super) fn push(&mut self, key: Key<'_>, span: Span, text: &[u8]) {
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
    pub(super) fn keep_as_shape(&self, text: &str) {
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
    pub(super) fn keep(&mut self, text: &[u8], members: &[((u32, u32), Span)]) {
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
    pub(super) fn read(&self, bytes: &[u8], out: &mut [Span; SHAPE_VALUES]) -> Option<usize> {
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
    pub(super) fn keep_tokens(&mut self, text: &[u8], tape: &Tape) {
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
pub(super) fn keep_tokens_as_shape(text: &[u8]) -> u64 {
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
    pub(super) fn take_shape(&mut self, shape: &Shape, values: &[Span]) {
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
pub(super) fn scalar_value_end(bytes: &[u8], at: usize) -> Option<usize> {
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
pub(super) fn string_stops_sse2(lane: &[u8]) -> u32 {
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
pub(super) fn by_shape<'a>(text: &'a str, reader: &mut impl Reader<'a>) -> Option<u64> {
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
