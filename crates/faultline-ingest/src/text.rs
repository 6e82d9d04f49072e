//! The texts records share: services, providers, models, hosts, key
//! fingerprints.

use std::cmp::Ordering as Order;
use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

/// Bytes of text the process-wide interner keeps at most (see [`Shared`]).
pub const INTERN_BUDGET: usize = 8 << 20;

/// A text many records share: a service, provider, model, host or key
/// fingerprint. It derefs to `str`; equality, order and hashing go by the
/// text, whichever variant holds it.
///
/// Records are made and dropped by the million. Cloning or dropping an
/// `Arc` is an atomic instruction, which waits for the core's pending
/// stores to drain, and a record holds several. So the texts that repeat
/// while parsing (seen twice in a chunk) are interned for the life of the
/// process ([`Shared::Static`]: cloning and dropping copy a pointer), up to
/// [`INTERN_BUDGET`] bytes in all; past that budget, and for texts seen
/// once or made elsewhere, they are reference-counted ([`Shared::Counted`]).
#[derive(Clone)]
pub enum Shared {
    /// Interned: kept until the process exits.
    Static(&'static str),
    /// Reference-counted.
    Counted(Arc<str>),
}

impl Shared {
    /// `text`, interned when the budget allows, reference-counted otherwise.
    #[must_use]
    pub fn intern(text: &str) -> Shared {
        // Once the budget is spent, no thread waits for the lock again.
        if SPENT.load(Ordering::Relaxed) {
            return Shared::Counted(Arc::from(text));
        }
        // A poisoned lock only means another thread panicked while holding
        // it; the set itself is always whole.
        let mut pool = POOL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(&kept) = pool.texts.get(text) {
            return Shared::Static(kept);
        }
        if pool.bytes + text.len() > INTERN_BUDGET {
            SPENT.store(true, Ordering::Relaxed);
            return Shared::Counted(Arc::from(text));
        }
        let kept: &'static str = Box::leak(Box::from(text));
        pool.bytes += text.len();
        pool.texts.insert(kept);
        Shared::Static(kept)
    }

    /// Whether the text is interned.
    #[must_use]
    pub fn is_static(&self) -> bool {
        matches!(self, Shared::Static(_))
    }

    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Shared::Static(text) => text,
            Shared::Counted(text) => text,
        }
    }

    /// The address of the text's bytes: equal addresses hold equal texts
    /// while both values live.
    #[must_use]
    pub fn address(&self) -> usize {
        self.as_str().as_ptr() as usize
    }
}

/// Whether two texts are equal. Texts of 4 to 32 bytes (most services,
/// models and hosts) are compared as two overlapping words each, inline,
/// rather than by a call to `memcmp`.
#[inline]
pub(crate) fn same_text(a: &str, b: &str) -> bool {
    same_bytes(a.as_bytes(), b.as_bytes())
}

/// [`same_text`] for bytes.
#[inline]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    fn word<const W: usize>(text: &[u8], at: usize) -> [u8; W] {
        let mut word = [0u8; W];
        word.copy_from_slice(&text[at..at + W]);
        word
    }
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        4..=7 => word::<4>(a, 0) == word::<4>(b, 0) && word::<4>(a, n - 4) == word::<4>(b, n - 4),
        8..=16 => word::<8>(a, 0) == word::<8>(b, 0) && word::<8>(a, n - 8) == word::<8>(b, n - 8),
        17..=32 => {
            word::<16>(a, 0) == word::<16>(b, 0) && word::<16>(a, n - 16) == word::<16>(b, n - 16)
        }
        _ => a == b,
    }
}

struct Pool {
    texts: HashSet<&'static str, foldhash::fast::RandomState>,
    bytes: usize,
}

/// Set when a text did not fit in the budget.
static SPENT: AtomicBool = AtomicBool::new(false);

static POOL: LazyLock<Mutex<Pool>> = LazyLock::new(|| {
    Mutex::new(Pool {
        texts: HashSet::default(),
        bytes: 0,
    })
});

impl Deref for Shared {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Shared {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// The empty text, interned from the start: no reference count.
impl Default for Shared {
    fn default() -> Shared {
        Shared::Static("")
    }
}

impl From<&str> for Shared {
    fn from(text: &str) -> Shared {
        Shared::Counted(Arc::from(text))
    }
}

impl From<String> for Shared {
    fn from(text: String) -> Shared {
        Shared::Counted(Arc::from(text))
    }
}

impl From<Arc<str>> for Shared {
    fn from(text: Arc<str>) -> Shared {
        Shared::Counted(text)
    }
}

impl PartialEq for Shared {
    fn eq(&self, other: &Shared) -> bool {
        let (a, b) = (self.as_str(), other.as_str());
        // Equal interned texts share one address: no byte comparison then.
        std::ptr::eq(a, b) || same_text(a, b)
    }
}

impl Eq for Shared {}

impl PartialOrd for Shared {
    fn partial_cmp(&self, other: &Shared) -> Option<Order> {
        Some(self.cmp(other))
    }
}

impl Ord for Shared {
    fn cmp(&self, other: &Shared) -> Order {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for Shared {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interned_and_counted_texts_compare_by_text() {
        let a = Shared::intern("gpt-4o-mini");
        let b = Shared::intern("gpt-4o-mini");
        let c = Shared::from("gpt-4o-mini");
        assert!(matches!(a, Shared::Static(_)));
        // One copy per text: the same address.
        assert_eq!(a.address(), b.address());
        assert_ne!(a.address(), c.address());
        assert_eq!(a, c);
        let hash = |s: &Shared| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            s.hash(&mut h);
            h.finish()
        };
        assert_eq!(hash(&a), hash(&c));
        assert!(Shared::from("a") < Shared::intern("b"));
        assert_eq!(format!("{a} {c:?}"), "gpt-4o-mini \"gpt-4o-mini\"");
    }

    #[test]
    fn same_text_is_equality() {
        let texts = [
            "",
            "a",
            "ab",
            "abc",
            "abcd",
            "abce",
            "bbcd",
            "abcdefg",
            "abcdefh",
            "gpt-4o-mini",
            "gpt-4o-maxi",
            "api.openai.com",
            "api.openai.con",
            "claude-sonnet-4-5-20250929",
            "claude-sonnet-4-5-20250930",
            "xlaude-sonnet-4-5-20250929",
            "generativelanguage.googleapis.com",
            "generativelanguage.googleapis.coM",
        ];
        for a in texts {
            for b in texts {
                assert_eq!(same_text(a, b), a == b, "{a:?} {b:?}");
            }
        }
        // Every length up to 40, with one byte changed at each position.
        for n in 0..40 {
            let a: String = (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            assert!(same_text(&a, &a.clone()));
            for at in 0..n {
                let mut b = a.clone().into_bytes();
                b[at] = b'-';
                let b = String::from_utf8(b).unwrap();
                assert!(!same_text(&a, &b), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn texts_past_the_budget_are_counted() {
        let big = "x".repeat(INTERN_BUDGET + 1);
        let shared = Shared::intern(&big);
        assert!(matches!(shared, Shared::Counted(_)));
        assert_eq!(shared.len(), big.len());
    }
}
