//! API keys: keyed fingerprints, detection and redaction.
//!
//! A key never leaves ingest. Its identity is kept as a keyed BLAKE3 hash, so a
//! fingerprint can be compared across records but not reversed, and without the
//! fingerprint key it cannot be brute-forced from a known key prefix.

use std::borrow::Cow;
use std::sync::LazyLock;

use aho_corasick::AhoCorasick;
use regex::bytes::Regex as BytesRegex;
use regex::Regex;

/// The fingerprint key used when none is configured. Set your own
/// (`IngestOptions::fingerprint_key`) to make fingerprints unguessable by
/// anyone who knows this default.
pub const DEFAULT_FINGERPRINT_KEY: &str = "faultline default fingerprint key v1";

/// The placeholder that replaces a secret in any text faultline writes.
pub const REDACTED: &str = "[REDACTED]";

/// Key-shaped strings: OpenAI (`sk-`, `sk-proj-`), Anthropic (`sk-ant-`),
/// Google (`AIza`), AWS access key ids, bearer tokens, and `key=` URL parameters.
const SECRET_PATTERN: &str = concat!(
    r"(?:sk-(?:ant-|proj-|svcacct-|or-)?[A-Za-z0-9_\-]{16,})",
    r"|(?:AIza[0-9A-Za-z_\-]{30,})",
    r"|(?:(?:AKIA|ASIA)[0-9A-Z]{16})",
    r"|(?:[Bb]earer\s+[A-Za-z0-9._~+/=\-]{8,})",
    r"|(?:[?&](?:key|api_key|api-key|access_token)=[A-Za-z0-9._~+/\-]{8,})",
);

static SECRET_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(SECRET_PATTERN).expect("secret pattern compiles"));
static SECRET_BYTES_RE: LazyLock<BytesRegex> =
    LazyLock::new(|| BytesRegex::new(SECRET_PATTERN).expect("secret pattern compiles"));

/// Every secret pattern contains one of these literals. They are kept
/// short and rare in logs: the searcher reports each place where a
/// literal's first three bytes appear and checks it there, and `key=`
/// and `token=` would stop it at every `key_id` and `prompt_tokens` key.
const PREFILTER_LITERALS: [&str; 7] = ["sk-", "AIza", "earer", "AKIA", "ASIA", "ey=", "en="];

/// The SIMD (Teddy) literal searcher where the CPU has one, else an automaton.
enum Prefilter {
    Packed(aho_corasick::packed::Searcher),
    Automaton(AhoCorasick),
}

static PREFILTER: LazyLock<Prefilter> = LazyLock::new(
    || match aho_corasick::packed::Searcher::new(PREFILTER_LITERALS) {
        Some(searcher) => Prefilter::Packed(searcher),
        None => Prefilter::Automaton(
            AhoCorasick::new(PREFILTER_LITERALS).expect("prefilter literals compile"),
        ),
    },
);

/// Cheap prefilter, one pass over the bytes: false means no secret can be there.
fn may_hold_secret(haystack: &[u8]) -> bool {
    match &*PREFILTER {
        Prefilter::Packed(searcher) => searcher.find(haystack).is_some(),
        Prefilter::Automaton(automaton) => automaton.is_match(haystack),
    }
}

/// Counts the plaintext keys in raw bytes (a whole log line): key-shaped
/// strings, less placeholders with no digit (`Bearer YOUR_KEY`) and keys
/// masked by a provider (`sk-proj-abcd1234efgh5678****wxyz`), which
/// [`redact`] still replaces.
#[must_use]
pub fn count_secrets(haystack: &[u8]) -> usize {
    scan(haystack).keys
}

/// What [`scan`] found in a line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Scan {
    /// Key-shaped strings: each is redacted wherever it is copied.
    pub(crate) shaped: usize,
    /// Those that look like real keys: not a placeholder with no digit
    /// (`Bearer YOUR_KEY`, as OpenAI's own 401 message says), not a key
    /// masked by the provider (`sk-proj-abcd1234efgh5678****wxyz`).
    pub(crate) keys: usize,
}

/// Finds key-shaped strings in raw bytes and tells real keys from
/// placeholders and masked keys. Redaction goes by the shapes alone, so a
/// real key mistaken for a placeholder is still never copied.
pub(crate) fn scan(haystack: &[u8]) -> Scan {
    let mut found = Scan::default();
    if !may_hold_secret(haystack) {
        return found;
    }
    for m in SECRET_BYTES_RE.find_iter(haystack) {
        found.shaped += 1;
        let masked = haystack.get(m.end()) == Some(&b'*');
        let has_digit = m.as_bytes().iter().any(u8::is_ascii_digit);
        if !masked && has_digit {
            found.keys += 1;
        }
    }
    found
}

/// Replaces every key-shaped string in `text` with [`REDACTED`].
#[must_use]
pub fn redact(text: &str) -> Cow<'_, str> {
    if !may_hold_secret(text.as_bytes()) {
        return Cow::Borrowed(text);
    }
    SECRET_RE.replace_all(text, REDACTED)
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Keyed fingerprints of API keys and key ids.
#[derive(Clone)]
pub struct Fingerprinter {
    key: [u8; 32],
}

impl std::fmt::Debug for Fingerprinter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fingerprinter { .. }")
    }
}

impl Default for Fingerprinter {
    fn default() -> Self {
        Fingerprinter::new(DEFAULT_FINGERPRINT_KEY)
    }
}

impl Fingerprinter {
    /// A fingerprinter whose hash key is derived from `secret`.
    #[must_use]
    pub fn new(secret: &str) -> Fingerprinter {
        Fingerprinter {
            key: blake3::derive_key("faultline key fingerprint", secret.as_bytes()),
        }
    }

    /// `kf_` + 16 hex digits of the keyed hash of `key`. A leading
    /// `Bearer ` is ignored so that a header and a bare key match.
    #[must_use]
    pub fn fingerprint(&self, key: &str) -> String {
        let key = key.trim();
        let key = key
            .strip_prefix("Bearer ")
            .or_else(|| key.strip_prefix("bearer "))
            .unwrap_or(key)
            .trim();
        let hash = blake3::keyed_hash(&self.key, key.as_bytes());
        let mut out = String::with_capacity(19);
        out.push_str("kf_");
        for &byte in &hash.as_bytes()[..8] {
            out.push(char::from(HEX_DIGITS[usize::from(byte >> 4)]));
            out.push(char::from(HEX_DIGITS[usize::from(byte & 0xf)]));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_masked_keys_are_no_keys_but_are_still_redacted() {
        // OpenAI's own 401 message, and a key as providers mask it.
        let text = "You didn't provide an API key. You need to provide your API key in an \
                    Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). \
                    Incorrect API key provided: sk-proj-abcd1234efgh5678ijkl****wxyz. \
                    Docs: sk-xxxxxxxxxxxxxxxxxxxxxxxx";
        assert_eq!(count_secrets(text.as_bytes()), 0);
        assert_eq!(scan(text.as_bytes()).shaped, 3);
        let out = redact(text);
        assert!(!out.contains("abcd1234efgh5678"), "{out}");
        // A real key beside them still counts.
        let leaked = format!("{text} key sk-proj-Zq8v2LmN4pR7sT1uW3xY5b");
        assert_eq!(count_secrets(leaked.as_bytes()), 1);
    }

    #[test]
    fn redacts_every_key_shape() {
        let text = "keys sk-proj-abcdefghijklmnop1234 sk-ant-api03-ABCDEFGHIJKLMNOPQRST \
                    AIzaSyA1234567890abcdefghijklmnopqrstu AKIAIOSFODNN7EXAMPLE \
                    Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload \
                    https://x.googleapis.com/v1?key=abcdefgh12345678";
        let out = redact(text);
        for secret in [
            "abcdefghijklmnop1234",
            "ABCDEFGHIJKLMNOPQRST",
            "AIzaSyA1234567890",
            "AKIAIOSFODNN7EXAMPLE",
            "eyJhbGciOiJIUzI1NiJ9",
            "abcdefgh12345678",
        ] {
            assert!(!out.contains(secret), "{secret} survived in {out}");
        }
        assert_eq!(count_secrets(text.as_bytes()), 6);
    }

    #[test]
    fn the_prefilter_passes_every_text_the_pattern_matches() {
        // Texts pieced together from the pattern's parts and their
        // neighbours: wherever the pattern matches, the prefilter must too.
        let pieces = [
            "key=",
            "api_key=",
            "api-key=",
            "access_token=",
            "token=",
            "?",
            "&",
            "sk-",
            "sk-ant-",
            "sk-proj-",
            "AIza",
            "AKIA",
            "ASIA",
            "Bearer ",
            "bearer\t",
            "earer",
            "abcdEFGH1234",
            "0123456789ABCDEF",
            "QRSTUVWX",
            "-",
            "_",
            " ",
            "=",
            "key",
            "tok",
        ];
        let mut draw = crate::testing::draws(0x853c_49e6_748f_ea9b);
        let mut next = |n: usize| draw(n as u64) as usize;
        let mut matched = 0;
        for _ in 0..50_000 {
            let text: String = (0..=next(8)).map(|_| pieces[next(pieces.len())]).collect();
            if SECRET_BYTES_RE.is_match(text.as_bytes()) {
                matched += 1;
                assert!(may_hold_secret(text.as_bytes()), "{text}");
            }
        }
        // Enough of the texts hold a secret for the check to mean something.
        assert!(matched > 2_000, "{matched}");
    }

    #[test]
    fn leaves_masked_keys_and_prose_alone() {
        let text = "Incorrect API key provided: sk-PMafP****E873. See the task-based docs.";
        assert_eq!(redact(text), text);
        assert_eq!(count_secrets(text.as_bytes()), 0);
    }

    #[test]
    fn fingerprint_is_keyed_and_stable() {
        let a = Fingerprinter::new("one");
        let b = Fingerprinter::new("two");
        let key = "sk-proj-abcdefghijklmnop1234";
        assert_eq!(a.fingerprint(key), a.fingerprint(&format!("Bearer {key}")));
        assert_ne!(a.fingerprint(key), b.fingerprint(key));
        assert_eq!(a.fingerprint(key).len(), 19);
        assert!(!a.fingerprint(key).contains("abcdef"));
    }
}
