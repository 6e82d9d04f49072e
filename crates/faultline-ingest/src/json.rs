//! A validating JSON scanner that builds nothing.
//!
//! Ingest needs a few dozen fields of each line and the rest skipped, but
//! every line must still be valid JSON (a line that is not goes to the
//! quarantine). The scanner walks the bytes once, checks the grammar
//! (RFC 8259: strings without raw control characters and with valid escapes,
//! numbers, literals, nesting at any depth), and hands out each value
//! of an object as a [`Raw`] slice of the input, decoded later only if a
//! normalizer asks for it. The input is a `&str`, so UTF-8 is already valid.

use std::fmt;

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
}

/// Scans `text` as one object, calling `member` for each key and value in order.
pub(crate) fn object<'a>(
    text: &'a str,
    mut member: impl FnMut(Key<'a>, Raw<'a>),
) -> Result<(), Error> {
    INDEX.with(|index| match index.try_borrow_mut() {
        Ok(mut index) => {
            let indexed = index.build(text.as_bytes());
            let mut s = Scanner::new(text);
            s.strings = indexed.then_some(&*index);
            scan_object(s, &mut member)
        }
        Err(_) => scan_object(Scanner::new(text), &mut member),
    })
}

thread_local! {
    /// Each worker's string index, reused from line to line.
    static INDEX: std::cell::RefCell<StringIndex> = std::cell::RefCell::default();
}

fn scan_object<'a>(
    mut s: Scanner<'a, '_>,
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
    s: Scanner<'a, 'static>,
    open: bool,
    first: bool,
    next_entry: NextEntry<'a, T>,
}

type NextEntry<'a, T> = fn(&mut Scanner<'a, 'static>, &mut bool) -> Result<Option<T>, Error>;

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

struct Scanner<'a, 'i> {
    text: &'a str,
    pos: usize,
    /// Where the text's strings end, when it was indexed.
    strings: Option<&'i StringIndex>,
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

impl<'a, 'i> Scanner<'a, 'i> {
    fn new(text: &'a str) -> Scanner<'a, 'i> {
        Scanner {
            text,
            pos: 0,
            strings: None,
        }
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
        if let Some(index) = self.strings {
            if let Some((end, escaped)) = index.string_at(self.pos) {
                self.pos = end + 1;
                return Ok(escaped);
            }
        }
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

/// Where the strings of one text are, found a block of 64 bytes at a time
/// (the approach of simdjson's first stage): bit `i` of `quotes` is set when
/// byte `i` is a quote that opens or closes a string, bit `i` of
/// `backslashes` when it is a backslash. Built only when every string in the
/// text is well formed (closed, no raw control byte, valid escapes); a text
/// that is not goes through the byte-by-byte scanner, which says where it
/// breaks.
#[derive(Debug, Default)]
pub(crate) struct StringIndex {
    quotes: Vec<u64>,
    backslashes: Vec<u64>,
}

impl StringIndex {
    /// Indexes `text`; false when a string in it is malformed (or the
    /// platform has no fast path), and the index must not be used.
    fn build(&mut self, text: &[u8]) -> bool {
        self.quotes.clear();
        self.backslashes.clear();
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: SSE2 is part of the x86_64 baseline: every x86_64 CPU
            // has it, so calling a function compiled for it cannot fault.
            #[allow(unsafe_code)]
            unsafe {
                self.build_sse2(text)
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = text;
            false
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "sse2")]
    fn build_sse2(&mut self, text: &[u8]) -> bool {
        let blocks = text.len().div_ceil(64);
        self.quotes.reserve(blocks);
        self.backslashes.reserve(blocks);
        let mut prev_escaped = 0u64;
        let mut prev_in_string = 0u64;
        let mut chunks = text.chunks_exact(64);
        let mut last = [b' '; 64];
        let rest = chunks.remainder();
        last[..rest.len()].copy_from_slice(rest);
        let tail = (!rest.is_empty()).then_some(&last[..]);
        for (n, block) in chunks.by_ref().chain(tail).enumerate() {
            let (quote, backslash, control) = block_masks(block);
            let escaped = escaped_by(backslash, &mut prev_escaped);
            let quote = quote & !escaped;
            let in_string = prefix_xor(quote) ^ prev_in_string;
            prev_in_string = ((in_string as i64) >> 63) as u64;
            if control & in_string != 0 {
                return false;
            }
            let mut to_check = escaped & in_string;
            while to_check != 0 {
                let at = n * 64 + to_check.trailing_zeros() as usize;
                if !valid_escape(text, at) {
                    return false;
                }
                to_check &= to_check - 1;
            }
            self.quotes.push(quote);
            self.backslashes.push(backslash);
        }
        // A string still open at the end is not closed.
        prev_in_string == 0
    }

    /// For a string opening at `at`: the position of its closing quote and
    /// whether it holds a backslash. `None` when `at` is not an opening quote
    /// the index knows of.
    fn string_at(&self, at: usize) -> Option<(usize, bool)> {
        let word = at / 64;
        if self.quotes.get(word)? >> (at % 64) & 1 == 0 {
            return None;
        }
        let from = at + 1;
        let mut w = from / 64;
        let mut mask = self.quotes.get(w)? & (!0u64).checked_shl((from % 64) as u32).unwrap_or(0);
        loop {
            if mask != 0 {
                let end = w * 64 + mask.trailing_zeros() as usize;
                return Some((end, self.any_backslash(from, end)));
            }
            w += 1;
            mask = *self.quotes.get(w)?;
        }
    }

    /// Whether a backslash lies in `from..end`.
    fn any_backslash(&self, from: usize, end: usize) -> bool {
        let (first, last) = (from / 64, end / 64);
        (first..=last).any(|w| {
            let mut mask = self.backslashes.get(w).copied().unwrap_or(0);
            if w == first {
                mask &= (!0u64).checked_shl((from % 64) as u32).unwrap_or(0);
            }
            if w == last {
                mask &= (1u64 << (end % 64)) - 1;
            }
            mask != 0
        })
    }
}

/// Masks of the quotes, backslashes and control bytes of a 64-byte block.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
fn block_masks(block: &[u8]) -> (u64, u64, u64) {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_max_epu8, _mm_movemask_epi8, _mm_set1_epi8, _mm_set_epi64x,
    };
    let quote = _mm_set1_epi8(b'"' as i8);
    let backslash = _mm_set1_epi8(b'\\' as i8);
    let below_space = _mm_set1_epi8(0x1f);
    let (mut q, mut b, mut c) = (0u64, 0u64, 0u64);
    for (i, lane) in block.chunks_exact(16).enumerate() {
        let lo = u64::from_le_bytes(lane[..8].try_into().unwrap_or_default());
        let hi = u64::from_le_bytes(lane[8..].try_into().unwrap_or_default());
        let v = _mm_set_epi64x(hi as i64, lo as i64);
        let shift = i * 16;
        q |= u64::from(_mm_movemask_epi8(_mm_cmpeq_epi8(v, quote)) as u16) << shift;
        b |= u64::from(_mm_movemask_epi8(_mm_cmpeq_epi8(v, backslash)) as u16) << shift;
        // An unsigned byte is below 0x20 when max(byte, 0x1f) is 0x1f.
        let control = _mm_cmpeq_epi8(_mm_max_epu8(v, below_space), below_space);
        c |= u64::from(_mm_movemask_epi8(control) as u16) << shift;
    }
    (q, b, c)
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

    fn scan(text: &str, indexed: bool) -> Result<Vec<(String, String, bool)>, Error> {
        let mut out = Vec::new();
        let mut index = StringIndex::default();
        let mut s = Scanner::new(text);
        if indexed {
            if index.build(text.as_bytes()) {
                s.strings = Some(&index);
            } else {
                // Only a text with a malformed string goes unindexed.
                assert!(
                    scan_object(Scanner::new(text), &mut |_, _| {}).is_err()
                        || !cfg!(target_arch = "x86_64")
                );
            }
        }
        scan_object(s, &mut |k: Key<'_>, v: Raw<'_>| {
            out.push((k.text.to_owned(), v.get().to_owned(), k.escaped));
        })?;
        Ok(out)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        /// The string index changes nothing: same members, same errors, at
        /// any block boundary, escape run or broken string.
        #[test]
        fn index_agrees_with_bytes(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    r#"{"a":"#, r#""x""#, r#""\\""#, r#""\"""#, r#""\u00e9""#, r#""\q""#,
                    r#""\u12""#, "\\", "\"", ",", ":", "}", "{", "[", "]", "1", "null",
                    "long text of a message that runs on past a block ", "\t", "\u{1}", "é",
                    r#","k":"#, " ",
                ]),
                0..40,
            )
        ) {
            let text: String = parts.concat();
            let text = format!(r#"{{"pad":"{}",{}"#, "p".repeat(text.len() % 70), text);
            proptest::prop_assert_eq!(scan(&text, true), scan(&text, false), "{}", text);
        }
    }

    #[test]
    fn escape_runs_across_blocks() {
        for run in 0..6 {
            for pad in 55..70 {
                let text = format!(r#"{{"a":"{}{}","b":1}}"#, "x".repeat(pad), "\\".repeat(run));
                assert_eq!(scan(&text, true), scan(&text, false), "{text}");
            }
        }
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
