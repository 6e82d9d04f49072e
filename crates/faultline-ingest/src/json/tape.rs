//! The token tape (simdjson's two stages): stage 1 lists every token of a
//! text 64 bytes at a time, stage 2 walks the tokens.

#[cfg(not(target_arch = "x86_64"))]
use super::kernels::block_masks;
#[cfg(target_arch = "x86_64")]
use super::kernels::{
    block_masks_avx2, block_masks_avx512, block_masks_sse2, simd_level, write_tokens_avx2,
    write_tokens_avx512, Simd,
};
use super::kernels::{write_tokens, Masks};

/// Token slots a tape keeps between texts (4 MiB of them with `closes`):
/// enough for any usual line; the buffers of a longer one are released.
pub(super) const RETAINED_TOKENS: usize = 1 << 19;

/// One member of the line's top-level object, as byte ranges of the text.
#[derive(Debug, Clone, Copy)]
pub(super) struct Member {
    pub(super) key: (u32, u32),
    /// The index of the key's first token.
    pub(super) token: u32,
    pub(super) escaped: bool,
    pub(super) value: (u32, u32),
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
    pub(super) backslashes: Vec<u64>,
    /// Byte offsets of the tokens, in order: the first `len` entries. The
    /// vector is kept at least 64 entries longer than the text, so that a
    /// block's tokens are written without a capacity check per token.
    pub(super) tokens: Vec<u32>,
    /// How many entries of `tokens` the last text filled.
    pub(super) len: usize,
    /// For the opening token of each container (`{`, `[`) of a text that
    /// stage 2 walked, the index of its closing token; other entries are
    /// left over from earlier texts.
    pub(super) closes: Vec<u32>,
    /// Stage 2's stack of open containers, kept for its capacity.
    pub(super) open: Vec<u32>,
    /// Whether the last text indexed holds the bytes `\u` (see [`Line::unicode_escape`]).
    pub(super) unicode_escape: bool,
    /// Whether the last text indexed holds a backslash anywhere; most lines
    /// do not, and then no key or value needs looking at for escapes.
    pub(super) backslash: bool,
    /// The top-level object's members, once walked (by [`Tape::walk`]).
    #[cfg(any(test, fuzzing))]
    pub(super) members: Vec<Member>,
}

impl Tape {
    /// True when `text` is one valid JSON object; its members are then in
    /// `self.members`.
    #[cfg(test)]
    pub(super) fn object(&mut self, text: &str) -> bool {
        self.members.clear();
        let bytes = text.as_bytes();
        u32::try_from(bytes.len()).is_ok() && self.index(bytes) && self.walk(bytes)
    }

    /// Stage 1; false when a string is malformed.
    pub(super) fn index(&mut self, text: &[u8]) -> bool {
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
    pub(super) fn index_sse2(&mut self, text: &[u8]) -> bool {
        self.index_with(text, |block| block_masks_sse2(block), write_tokens)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,bmi1,popcnt")]
    pub(super) fn index_avx2(&mut self, text: &[u8]) -> bool {
        self.index_with(
            text,
            |block| block_masks_avx2(block),
            |out, tokens, base| write_tokens_avx2(out, tokens, base),
        )
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,bmi1,popcnt")]
    pub(super) fn index_avx512(&mut self, text: &[u8]) -> bool {
        self.index_with(
            text,
            |block| block_masks_avx512(block),
            |out, tokens, base| write_tokens_avx512(out, tokens, base),
        )
    }

    #[inline]
    pub(super) fn index_with(
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
    pub(super) fn tokens(&self) -> &[u32] {
        &self.tokens[..self.len]
    }

    /// Stage 2: the grammar over the tokens, keeping the top-level members.
    #[cfg(any(test, fuzzing))]
    pub(super) fn walk(&mut self, text: &[u8]) -> bool {
        let mut members = std::mem::take(&mut self.members);
        let valid = self.walk_with(text, |m| members.push(m));
        self.members = members;
        valid
    }

    /// Stage 2: the grammar over the tokens, handing out each top-level
    /// member as it is read. When the text breaks the grammar part way,
    /// the members before the break have been handed out.
    pub(super) fn walk_with(&mut self, text: &[u8], mut member: impl FnMut(Member)) -> bool {
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
    pub(super) fn members_of_valid(
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
    pub(super) fn value_end(&self, v: View<'_>, i: usize) -> Option<(u32, usize)> {
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
    pub(super) fn items_of_valid(
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
pub(super) fn walk_object(
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
pub(super) fn any_backslash(backslashes: &[u64], from: usize, end: usize) -> bool {
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
pub(super) struct View<'t> {
    pub(super) bytes: &'t [u8],
    pub(super) base: u32,
}

impl View<'_> {
    /// The byte at line offset `at`, when it lies in the view.
    #[inline]
    pub(super) fn at(self, at: u32) -> Option<u8> {
        self.bytes.get(at.checked_sub(self.base)? as usize).copied()
    }

    /// The byte of token `i`.
    #[inline]
    pub(super) fn tok(self, t: &[u32], i: usize) -> Option<u8> {
        self.at(*t.get(i)?)
    }

    /// A scalar's end as a line offset, from its start `at`: `read` finds
    /// its end in the view's bytes.
    pub(super) fn scalar(
        self,
        at: u32,
        read: impl Fn(&[u8], usize) -> Option<usize>,
    ) -> Option<u32> {
        let local = at.checked_sub(self.base)? as usize;
        let end = scalar_end(self.bytes, read(self.bytes, local)?)?;
        end.checked_add(self.base)
    }
}

/// Where the run of bytes that starts at `at` ends: at the first space,
/// operator or quote (a scalar of a valid text ends there).
pub(super) fn run_end(bytes: &[u8], at: usize) -> usize {
    bytes.get(at..).map_or(at, |rest| {
        at + rest.iter().position(|&b| ends_run(b)).unwrap_or(rest.len())
    })
}

/// Whether `b` ends a run of scalar bytes: whitespace, an operator or a quote.
pub(super) fn ends_run(b: u8) -> bool {
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
pub(super) fn skip_value(
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
pub(super) fn number_end(text: &[u8], mut at: usize) -> Option<usize> {
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

pub(super) fn literal_end(text: &[u8], at: usize, word: &[u8]) -> Option<usize> {
    (text.get(at..at + word.len())? == word).then_some(at + word.len())
}

/// `end` as a value's end, when the run of bytes it belongs to ends there
/// too (`12x` or `truex` are not values).
pub(super) fn scalar_end(text: &[u8], end: usize) -> Option<u32> {
    match text.get(end) {
        Some(&b) if !ends_run(b) => None,
        _ => u32::try_from(end).ok(),
    }
}

/// The bytes escaped by a backslash (simdjson's branchless escape finder):
/// in a run of backslashes every other one escapes the next byte.
/// `prev_escaped` carries whether the first byte of the next block is escaped.
pub(super) fn escaped_by(backslash: u64, prev_escaped: &mut u64) -> u64 {
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
pub(super) fn prefix_xor(mut x: u64) -> u64 {
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
pub(super) fn valid_escape(text: &[u8], at: usize) -> bool {
    match text.get(at) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => true,
        Some(b'u') => text
            .get(at + 1..at + 5)
            .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)),
        _ => false,
    }
}
