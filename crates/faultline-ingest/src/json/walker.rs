//! The byte walker: reads small values and the lines the tape declines,
//! and names the column at which a text breaks.

use super::{Error, ErrorKind, Key, Raw};

/// Iterator over an array's elements; see [`Raw::items`].
pub(crate) type Items<'a> = Entries<'a, Raw<'a>>;

/// Iterator over an object's members; see [`Raw::members`].
pub(crate) type Members<'a> = Entries<'a, (Key<'a>, Raw<'a>)>;

/// The entries of one array or object, read one at a time by `next_entry`
/// ([`Scanner::item`] or [`Scanner::member`]); the text is already valid.
pub(crate) struct Entries<'a, T> {
    pub(super) s: Scanner<'a>,
    pub(super) open: bool,
    pub(super) first: bool,
    pub(super) next_entry: NextEntry<'a, T>,
}

pub(super) type NextEntry<'a, T> = fn(&mut Scanner<'a>, &mut bool) -> Result<Option<T>, Error>;

impl<'a, T> Entries<'a, T> {
    /// Entries of `text` when it opens with `open`; none otherwise.
    pub(super) fn of(text: &'a str, open: u8, next_entry: NextEntry<'a, T>) -> Entries<'a, T> {
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
pub(super) struct Nesting {
    pub(super) depth: usize,
    pub(super) shallow: u64,
    pub(super) deep: Vec<bool>,
}

impl Nesting {
    #[inline]
    pub(super) fn push(&mut self, object: bool) {
        if self.depth < 64 {
            self.shallow = (self.shallow & !(1 << self.depth)) | (u64::from(object) << self.depth);
        } else {
            self.deep.push(object);
        }
        self.depth += 1;
    }

    #[inline]
    pub(super) fn top(&self) -> Option<bool> {
        match self.depth {
            0 => None,
            d if d <= 64 => Some(self.shallow >> (d - 1) & 1 == 1),
            _ => self.deep.last().copied(),
        }
    }

    #[inline]
    pub(super) fn pop(&mut self) {
        if self.depth > 64 {
            self.deep.pop();
        }
        self.depth = self.depth.saturating_sub(1);
    }
}

/// The byte walker: checks the grammar one byte at a time and names the
/// column where a text breaks. Used for values handed out by [`Raw`] and for
/// lines the [`Tape`] declines.
pub(super) struct Scanner<'a> {
    pub(super) text: &'a str,
    pub(super) pos: usize,
}

pub(super) const ONES: u64 = 0x0101_0101_0101_0101;
pub(super) const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `word` that is `"`, `\` or below 0x20. Bits
/// above the first one set can be false positives (borrows); the first is exact.
#[inline]
pub(super) fn string_stops(word: u64) -> u64 {
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let zero_quote = quote.wrapping_sub(ONES) & !quote;
    let zero_backslash = backslash.wrapping_sub(ONES) & !backslash;
    let control = word.wrapping_sub(ONES * 0x20) & !word;
    (zero_quote | zero_backslash | control) & HIGHS
}

impl<'a> Scanner<'a> {
    pub(super) fn new(text: &'a str) -> Scanner<'a> {
        Scanner { text, pos: 0 }
    }

    pub(super) fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    #[inline]
    pub(super) fn peek(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }

    pub(super) fn err(&self, what: &'static str) -> Error {
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
    pub(super) fn ws(&mut self) {
        let bytes = self.bytes();
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    pub(super) fn end(&self) -> Result<(), Error> {
        if self.pos == self.text.len() {
            Ok(())
        } else {
            Err(self.err("trailing characters"))
        }
    }

    /// After `{` (or a member): the next member, or `None` at the closing `}`.
    pub(super) fn member(&mut self, first: &mut bool) -> Result<Option<(Key<'a>, Raw<'a>)>, Error> {
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
    pub(super) fn item(&mut self, first: &mut bool) -> Result<Option<Raw<'a>>, Error> {
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
    pub(super) fn value(&mut self) -> Result<(), Error> {
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
    pub(super) fn key_colon(&mut self) -> Result<(), Error> {
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
    pub(super) fn string(&mut self) -> Result<bool, Error> {
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
    pub(super) fn escape(&mut self) -> Result<(), Error> {
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

    pub(super) fn digits(&mut self) -> usize {
        let bytes = self.bytes();
        let start = self.pos;
        while bytes.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
        self.pos - start
    }

    pub(super) fn number(&mut self) -> Result<(), Error> {
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

    pub(super) fn literal(&mut self, word: &'static [u8]) -> Result<(), Error> {
        for &expected in word {
            if self.peek() != Some(expected) {
                return Err(self.err("expected a value"));
            }
            self.pos += 1;
        }
        Ok(())
    }
}
