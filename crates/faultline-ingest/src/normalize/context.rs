//! What normalizing a line needs besides the line: the chunk's caches,
//! where the line came from, and why a line is rejected.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// Short strings from the logs are looked up on every line; SipHash costs more
/// than the lookup. A cache never holds attacker-chosen keys in bulk (it stops
/// growing at [`CACHE_ENTRIES`]), so flooding it buys nothing.
type FastHash = foldhash::fast::RandomState;
use std::sync::Arc;

use crate::json::{self, ErrorKind};

use crate::quarantine::Reason;
use crate::secret::Fingerprinter;
use crate::spans::SpanLinks;
use crate::text::{same_text, Shared};

/// How deep body parsing follows nested errors and JSON held in strings.
pub(super) const MAX_BODY_DEPTH: u8 = 4;

/// Error messages longer than this are cut (at a character boundary).
pub(super) const MAX_MESSAGE_CHARS: usize = 2048;

/// What normalization needs besides the line; one per chunk (not shared
/// between threads), so its caches need no locks.
#[derive(Debug)]
pub(crate) struct Ctx<'f> {
    pub(super) fingerprinter: &'f Fingerprinter,
    /// Keys repeat on almost every line: hash each once per chunk.
    pub(super) fingerprints: RefCell<HashMap<Box<str>, Shared, FastHash>>,
    /// Services, providers, models and hosts repeat too: one look into the
    /// process-wide interner each per chunk.
    pub(super) strings: RefCell<HashMap<Box<str>, Shared, FastHash>>,
    /// The interned text last found at each of a few slots, picked from the
    /// text's length and two of its bytes. Lines in a chunk repeat the texts
    /// of the lines before, so most lookups end here, with one comparison
    /// instead of a hash and a probe of `strings`.
    pub(super) recent: [Cell<&'static str>; RECENT],
    /// The last key fingerprinted and its fingerprint: a chunk's lines
    /// mostly carry the key of the line before.
    pub(super) recent_key: RefCell<Last>,
    /// The last URL read for its host, and that host: the same endpoint is
    /// logged line after line.
    pub(super) recent_url: RefCell<Last>,
    /// The OpenTelemetry spans of the chunk, joined when it is done.
    pub(crate) spans: RefCell<SpanLinks>,
}

/// The last text a lookup was made for, and its interned answer.
#[derive(Debug, Default)]
pub(super) struct Last {
    pub(super) text: String,
    pub(super) answer: Option<Shared>,
}

impl Last {
    /// The answer kept for `text`, if it is the last text.
    pub(super) fn answer(&self, text: &str) -> Option<Shared> {
        self.answer
            .as_ref()
            .filter(|_| same_text(&self.text, text))
            .cloned()
    }

    /// Keeps `answer` for `text` when it is interned (a counted answer may
    /// be for a text seen once).
    pub(super) fn keep(&mut self, text: &str, answer: &Shared) {
        if answer.is_static() {
            self.text.clear();
            self.text.push_str(text);
            self.answer = Some(answer.clone());
        }
    }
}

/// Slots of [`Ctx::recent`] (a power of two).
pub(super) const RECENT: usize = 16;

/// The slot of [`Ctx::recent`] for a text that is not empty.
pub(super) fn recent_slot(text: &[u8]) -> usize {
    let (len, last, middle) = (text.len(), text[text.len() - 1], text[text.len() / 2]);
    (len.wrapping_mul(5) ^ usize::from(last) ^ (usize::from(middle) << 1)) & (RECENT - 1)
}

/// Entries a per-chunk cache holds at most; past that, values are not cached.
pub(super) const CACHE_ENTRIES: usize = 4096;

impl<'f> Ctx<'f> {
    pub(crate) fn new(fingerprinter: &'f Fingerprinter) -> Ctx<'f> {
        Ctx {
            fingerprinter,
            fingerprints: RefCell::new(HashMap::with_hasher(FastHash::default())),
            strings: RefCell::new(HashMap::with_hasher(FastHash::default())),
            recent: std::array::from_fn(|_| Cell::new("")),
            recent_key: RefCell::default(),
            recent_url: RefCell::default(),
            spans: RefCell::default(),
        }
    }

    pub(super) fn fingerprint(&self, key: &str) -> Shared {
        let mut recent = self.recent_key.borrow_mut();
        if let Some(fp) = recent.answer(key) {
            return fp;
        }
        let mut cache = self.fingerprints.borrow_mut();
        if let Some(fp) = cache.get_mut(key) {
            let fp = promote(fp);
            recent.keep(key, &fp);
            return fp;
        }
        let fp = Shared::from(self.fingerprinter.fingerprint(key));
        if cache.len() < CACHE_ENTRIES {
            cache.insert(Box::from(key), fp.clone());
        }
        fp
    }

    /// The host of `url` ([`host_of`]), interned.
    pub(crate) fn host(&self, url: &str) -> Option<Shared> {
        let mut recent = self.recent_url.borrow_mut();
        if let Some(host) = recent.answer(url) {
            return Some(host);
        }
        let host = self.intern(host_of(url));
        if let Some(host) = &host {
            recent.keep(url, host);
        }
        host
    }

    /// The text trimmed and shared; `None` when it is absent or blank.
    pub(crate) fn intern(&self, text: Option<Cow<'_, str>>) -> Option<Shared> {
        let text = text?;
        let text = trim(&text);
        if text.is_empty() {
            return None;
        }
        let recent = &self.recent[recent_slot(text.as_bytes())];
        if same_text(recent.get(), text) {
            return Some(Shared::Static(recent.get()));
        }
        let mut cache = self.strings.borrow_mut();
        if let Some(shared) = cache.get_mut(text) {
            let shared = promote(shared);
            if let Shared::Static(kept) = shared {
                recent.set(kept);
            }
            return Some(shared);
        }
        let shared = Shared::from(text);
        if cache.len() < CACHE_ENTRIES {
            cache.insert(Box::from(text), shared.clone());
        }
        Some(shared)
    }
}

/// A cached text seen again: interned process-wide from its second
/// sighting in a chunk, so that a text unique to one line (a per-request
/// key hash, say) never takes the interner's lock or its budget.
pub(super) fn promote(cached: &mut Shared) -> Shared {
    if !cached.is_static() {
        *cached = Shared::intern(cached);
    }
    cached.clone()
}

/// Where the line sits, copied into its records.
#[derive(Debug, Clone)]
pub(crate) struct Origin<'f> {
    pub(crate) file: &'f Arc<str>,
    /// The file's name as records hold it.
    pub(crate) name: &'f Shared,
    pub(crate) line: u64,
    pub(crate) offset: u64,
}

/// A line that could not be normalized.
#[derive(Debug)]
pub(crate) struct Rejection {
    pub(crate) reason: Reason,
    pub(crate) detail: Option<String>,
}

impl From<Reason> for Rejection {
    fn from(reason: Reason) -> Self {
        Rejection {
            reason,
            detail: None,
        }
    }
}

pub(crate) fn json_rejection(err: &json::Error, at_eof_without_newline: bool) -> Rejection {
    let reason = match err.kind {
        ErrorKind::Eof if at_eof_without_newline => Reason::TruncatedLine,
        ErrorKind::NotObject => Reason::NotAnObject,
        ErrorKind::Eof | ErrorKind::Syntax => Reason::InvalidJson,
    };
    Rejection {
        reason,
        detail: Some(err.to_string()),
    }
}

/// `text` without surrounding whitespace, as `str::trim` gives it, with a
/// shortcut for the usual text that starts and ends with a visible ASCII
/// character (`str::trim` decodes a character at each end).
pub(crate) fn trim(text: &str) -> &str {
    let visible = |b: Option<&u8>| b.is_some_and(|&b| b > b' ' && b < 0x80);
    if visible(text.as_bytes().first()) && visible(text.as_bytes().last()) {
        text
    } else {
        text.trim()
    }
}

/// The end of a URL's scheme, searched for once per call of [`host_of`]
/// with a searcher built once.
pub(super) static SCHEME_END: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"://"));

/// The host of a URL, or the text itself when it is already a host.
/// Borrowed unless it has to be lower-cased.
pub(crate) fn host_of(url: &str) -> Option<Cow<'_, str>> {
    let rest = trim(url);
    // Byte searches: `str::split_once("://")` sets up a substring searcher
    // on every call, and this runs for nearly every line.
    let rest = SCHEME_END
        .find(rest.as_bytes())
        .map_or(rest, |at| &rest[at + 3..]);
    let host = memchr::memchr3(b'/', b'?', b'#', rest.as_bytes()).map_or(rest, |at| &rest[..at]);
    // Drop credentials a URL may carry (`user:key@host`).
    let host = memchr::memrchr(b'@', host.as_bytes()).map_or(host, |at| &host[at + 1..]);
    let host = trim(host);
    if host.is_empty() {
        None
    } else if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Some(Cow::Owned(host.to_ascii_lowercase()))
    } else {
        Some(Cow::Borrowed(host))
    }
}
