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

/// Key-shaped strings, recognized by their shape alone. The shapes of the
/// tokens other than LLM providers' follow gitleaks' default rules
/// (github.com/gitleaks/gitleaks, `config/gitleaks.toml`), loosened to a
/// minimum length so that a token cut short is still caught:
///
/// - OpenAI (`sk-`, `sk-proj-`), Anthropic (`sk-ant-`), OpenRouter (`sk-or-`);
/// - Google API keys (`AIza`), AWS access key ids (`AKIA`, `ASIA`);
/// - bearer tokens, and `key=`-style URL parameters;
/// - GitHub tokens (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`);
/// - Slack tokens (`xoxb-`, `xoxp-`, `xoxa-`, `xoxs-`... and `xapp-`);
/// - JSON Web Tokens (`eyJ...` header and payload, dot-separated);
/// - AWS secret access keys (40 characters after `aws_secret_access_key`
///   and its spellings), whose value has no shape of its own;
/// - Azure keys (32 or more letters and digits after `api-key` or
///   `Ocp-Apim-Subscription-Key`);
/// - PEM private keys (a GCP service account's `private_key`), from
///   `-----BEGIN ... PRIVATE KEY-----` through the body and its end line.
///
/// Names before a value are spelled out case by case, not matched
/// case-insensitively: every match must hold one of the prefilter's literals.
///
/// The shapes known by their own first bytes are searched in every line
/// (a line's count of keys raises `secret_in_log`); the two known only by
/// the name before them (AWS, Azure: [`NAMED_PATTERN`]) in the texts that
/// are copied out (messages, excerpts) and in bad lines, where their
/// prefilter's literals (`ecret`, `-key`) cost every line nothing.
const SHAPE_PATTERN: &str = concat!(
    r"(?:sk-(?:ant-|proj-|svcacct-|or-)?[A-Za-z0-9_\-]{16,})",
    r"|(?:AIza[0-9A-Za-z_\-]{30,})",
    r"|(?:(?:AKIA|ASIA)[0-9A-Z]{16})",
    r"|(?:[Bb]earer\s+[A-Za-z0-9._~+/=\-]{8,})",
    r"|(?:[?&](?:key|api_key|api-key|access_token)=[A-Za-z0-9._~+/\-]{8,})",
    r"|(?:gh[pousr]_[0-9A-Za-z]{30,})",
    r"|(?:github_pat_[0-9A-Za-z_]{22,})",
    r"|(?:xox[abeoprs]-[0-9A-Za-z\-]{10,})",
    r"|(?:xapp-[0-9]-[0-9A-Za-z\-]{10,})",
    r"|(?:eyJ[A-Za-z0-9_\-]{10,}\.ey[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]*)",
    r"|(?:-----BEGIN[ A-Z0-9_\-]{0,40}PRIVATE KEY(?: BLOCK)?-----[A-Za-z0-9+/=\s\\]*(?:-----END[ A-Z0-9_\-]{0,40}PRIVATE KEY(?: BLOCK)?-----)?)",
);

/// Secrets known by the name before them: AWS secret access keys and Azure
/// keys (see [`SHAPE_PATTERN`]).
const NAMED_PATTERN: &str = concat!(
    r#"(?:(?P<aws>(?:aws_|AWS_|aws|Aws|AWS)?(?:secret_access_key|SECRET_ACCESS_KEY|secretAccessKey|SecretAccessKey|secret-access-key)\\*["']?[ \t]*[:=][ \t]*\\*["']?)[A-Za-z0-9/+=]{40,})"#,
    r#"|(?:(?P<azure>(?:(?:x-|X-)?(?:api|Api|API)|(?:ocp|Ocp|OCP)-(?:apim|Apim|APIM)-(?:subscription|Subscription|SUBSCRIPTION))-(?:key|Key|KEY)\\*["']?[ \t]*[:=][ \t]*\\*["']?)[0-9A-Za-z]{32,})"#,
);

/// Every secret pattern contains one of these literals. They are kept
/// short and rare in logs: the searcher reports each place where a
/// literal's first three bytes appear and checks it there, and `key=`
/// and `token=` would stop it at every `key_id` and `prompt_tokens` key.
const SHAPE_LITERALS: [&str; 17] = [
    "sk-",
    "AIza",
    "earer",
    "AKIA",
    "ASIA",
    "ey=",
    "en=",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "xox",
    "xapp-",
    "eyJ",
    "PRIVATE KEY",
];

/// The literals of [`NAMED_PATTERN`]: `-key` stops the searcher at dashed
/// names only (`x-api-key`), `ecret` at `secret` and the odd `decrease`.
const NAMED_LITERALS: [&str; 5] = ["ecret", "ECRET", "-key", "-Key", "-KEY"];

/// A set of shapes: its regex for text and for bytes, and its prefilter.
struct Shapes {
    text: Regex,
    bytes: BytesRegex,
    prefilter: Prefilter,
}

impl Shapes {
    fn new(pattern: &str, literals: &[&str]) -> Shapes {
        Shapes {
            text: Regex::new(pattern).expect("secret pattern compiles"),
            bytes: BytesRegex::new(pattern).expect("secret pattern compiles"),
            prefilter: match aho_corasick::packed::Searcher::new(literals) {
                Some(searcher) => Prefilter::Packed(searcher),
                None => Prefilter::Automaton(
                    AhoCorasick::new(literals).expect("prefilter literals compile"),
                ),
            },
        }
    }

    /// Cheap prefilter, one pass over the bytes: false means no secret of
    /// these shapes can be there.
    fn may_hold(&self, haystack: &[u8]) -> bool {
        match &self.prefilter {
            Prefilter::Packed(searcher) => searcher.find(haystack).is_some(),
            Prefilter::Automaton(automaton) => automaton.is_match(haystack),
        }
    }
}

/// The shapes searched in every line.
static LINE_SHAPES: LazyLock<Shapes> =
    LazyLock::new(|| Shapes::new(SHAPE_PATTERN, &SHAPE_LITERALS));

/// Every shape: for text copied out and for bad lines.
static ALL_SHAPES: LazyLock<Shapes> = LazyLock::new(|| {
    let literals: Vec<&str> = SHAPE_LITERALS
        .iter()
        .chain(&NAMED_LITERALS)
        .copied()
        .collect();
    Shapes::new(&format!("{SHAPE_PATTERN}|{NAMED_PATTERN}"), &literals)
});

/// The SIMD (Teddy) literal searcher where the CPU has one, else an automaton.
enum Prefilter {
    Packed(aho_corasick::packed::Searcher),
    Automaton(AhoCorasick),
}

/// Field names whose value is a credential whatever its shape: an opaque
/// key under `api_key` has no shape to be recognized by. Matched
/// case-insensitively, with `-`, `_` or nothing between the words, and
/// only as a whole name, so that `max_tokens` or `prompt_tokens` is not
/// `token`. A vendor's prefix is allowed before `api_key`
/// (`openai_api_key`, `x-goog-api-key`).
const CREDENTIAL_NAMES: &str = concat!(
    r"(?:[a-z0-9]+[-_]){0,2}api[-_]?key",
    r"|(?:proxy[-_]?)?authorization",
    r"|(?:(?:access|refresh|auth|id|bearer)[-_]?)?token",
    r"|(?:client[-_]?)?secret",
    r"|(?:aws[-_]?)?secret[-_]?access[-_]?key",
    r"|ocp[-_]?apim[-_]?subscription[-_]?key",
    r"|private[-_]?key",
    r"|passw(?:or)?d",
);

/// A credential name and its value, in JSON (`"api_key": "v"`), in JSON
/// inside a JSON string (`\"api_key\": \"v\"`), in a Python dict
/// (`'api_key': 'v'`), and as `key=value` or `key: value`. The value is a
/// string: a quoted one to its closing quote (or the end of the text, for
/// an excerpt cut short), a bare one to the next space or delimiter, with
/// an `Authorization` scheme (`Bearer x`) as part of it.
static CREDENTIAL_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r#"(?P<head>(?:^|[^A-Za-z0-9_\-])\\*["']?(?i:{CREDENTIAL_NAMES})\\*["']?[ \t]*(?P<sep>[:=])[ \t]*)(?P<value>"(?:[^"\\]|\\.)*"?|\\+"[^"\\]*(?:\\+"?)?|'[^']*'?|(?:(?i:bearer|basic|token|bot)[ \t]+)?[^\s"'&,;<>(){{}}\[\]\\]+)"#
    ))
    .expect("credential pattern compiles")
});

/// Counts the plaintext keys in raw bytes (a whole log line): key-shaped
/// strings, also those hidden behind JSON escapes or percent-encoding,
/// less placeholders and keys masked by a provider (see [`Scan::keys`]),
/// which [`redact`] still replaces.
#[must_use]
pub fn count_secrets(haystack: &[u8]) -> usize {
    scan_with(&ALL_SHAPES, haystack, true).keys
}

/// What [`scan`] found in a line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Scan {
    /// Key-shaped strings: each is redacted wherever it is copied.
    pub(crate) shaped: usize,
    /// Those that look like real keys. Not keys: placeholders with no
    /// digit (`Bearer YOUR_KEY`, as OpenAI's own 401 message says) or
    /// with a placeholder's word in them (`YOUR_KEY_1`, `REDACTED`),
    /// keys masked by the provider (`sk-proj-abcd1234efgh5678****wxyz`,
    /// `sk-abcd1234efgh5678...wxyz`), and runs of one character
    /// (`sk-xxxxxxxxxxxxxxxx`, `0000000000000000`).
    pub(crate) keys: usize,
}

/// Finds key-shaped strings in raw bytes and tells real keys from
/// placeholders and masked keys. Redaction goes by the shapes alone, so a
/// real key mistaken for a placeholder is still never copied.
///
/// A key may be written with JSON escapes (`\u0073k-...`) or
/// percent-encoded (`sk%2Dproj%2D...`), where no shape shows: the bytes
/// are decoded and searched again when they hold a `%XX` sequence, or
/// when `json_escapes` says they may hold a `\u` escape (the JSON reader
/// has seen them on the hot path, so the line is not searched for them
/// twice).
pub(crate) fn scan(haystack: &[u8], json_escapes: bool) -> Scan {
    scan_with(&LINE_SHAPES, haystack, json_escapes)
}

fn scan_with(shapes: &Shapes, haystack: &[u8], json_escapes: bool) -> Scan {
    let found = scan_shapes(shapes, haystack);
    if !json_escapes && memchr::memchr(b'%', haystack).is_none() {
        return found;
    }
    match decode(haystack) {
        Some(decoded) => {
            let more = scan_shapes(shapes, &decoded);
            Scan {
                shaped: found.shaped.max(more.shaped),
                keys: found.keys.max(more.keys),
            }
        }
        None => found,
    }
}

fn scan_shapes(shapes: &Shapes, haystack: &[u8]) -> Scan {
    let mut found = Scan::default();
    if !shapes.may_hold(haystack) {
        return found;
    }
    for m in shapes.bytes.find_iter(haystack) {
        found.shaped += 1;
        if !is_placeholder(m.as_bytes(), &haystack[m.end()..]) {
            found.keys += 1;
        }
    }
    found
}

/// Whether a key-shaped `key`, followed by `after`, is a placeholder or a
/// masked key rather than a key: a real key is random, so it has digits,
/// no long run of one character and none of these words.
fn is_placeholder(key: &[u8], after: &[u8]) -> bool {
    const WORDS: [&[u8]; 5] = [b"your", b"redacted", b"placeholder", b"xxxx", b".."];
    let masked = after.first() == Some(&b'*')
        || after.starts_with(b"..")
        || after.starts_with("…".as_bytes());
    let has_digit = key.iter().any(u8::is_ascii_digit);
    let has_word = WORDS.iter().any(|word| {
        key.windows(word.len())
            .any(|window| window.eq_ignore_ascii_case(word))
    });
    // A run long enough to be a mask, and a large part of the key: the
    // base64 of an OpenSSH key has runs of `A` eight long.
    let run = longest_run(key);
    let filler = run >= 6 && run * 3 >= key.len();
    masked || !has_digit || has_word || filler
}

/// The length of the longest run of one repeated byte.
fn longest_run(bytes: &[u8]) -> usize {
    let mut longest = 0;
    let mut run = 0;
    let mut previous = None;
    for &byte in bytes {
        run = if previous == Some(byte) { run + 1 } else { 1 };
        previous = Some(byte);
        longest = longest.max(run);
    }
    longest
}

/// Rounds of decoding: enough for a key percent-encoded twice (`%252D`) or
/// escaped, then encoded.
const DECODE_ROUNDS: usize = 3;

/// `text` with its JSON escapes (`\u0073`, `\/`, `\\`) and percent-encoding
/// (`%2D`) decoded, repeatedly, or `None` when there was nothing to decode.
///
/// Only escapes of printable ASCII characters are decoded: every key shape
/// is ASCII, and a control character decoded into an excerpt would reach a
/// reader's terminal. Valid UTF-8 stays valid UTF-8, since only ASCII bytes
/// are written in place of escapes.
fn decode(text: &[u8]) -> Option<Vec<u8>> {
    let mut decoded = decode_once(text)?;
    for _ in 1..DECODE_ROUNDS {
        match decode_once(&decoded) {
            Some(again) => decoded = again,
            None => break,
        }
    }
    Some(decoded)
}

fn decode_once(text: &[u8]) -> Option<Vec<u8>> {
    fn hex(byte: Option<&u8>) -> Option<u32> {
        char::from(*byte?).to_digit(16)
    }
    fn printable(code: u32) -> Option<u8> {
        u8::try_from(code).ok().filter(|b| (0x20..0x7f).contains(b))
    }
    let mut out = Vec::new();
    let mut copied = 0;
    let mut at = 0;
    while let Some(found) = memchr::memchr2(b'%', b'\\', &text[at..]) {
        at += found;
        let (byte, len) = if text[at] == b'%' {
            let code = hex(text.get(at + 1)).zip(hex(text.get(at + 2)));
            (code.and_then(|(high, low)| printable((high << 4) | low)), 3)
        } else {
            match text.get(at + 1) {
                Some(b'u') => {
                    let code =
                        (2..6).try_fold(0, |code, i| Some((code << 4) | hex(text.get(at + i))?));
                    (code.and_then(printable), 6)
                }
                Some(b'/') => (Some(b'/'), 2),
                Some(b'\\') => (Some(b'\\'), 2),
                _ => (None, 1),
            }
        };
        match byte {
            Some(byte) => {
                out.extend_from_slice(&text[copied..at]);
                out.push(byte);
                at += len;
                copied = at;
            }
            None => at += 1,
        }
    }
    if copied == 0 {
        return None;
    }
    out.extend_from_slice(&text[copied..]);
    Some(out)
}

/// Replaces every secret in `text` with [`REDACTED`]: key-shaped strings
/// (see [`Scan`]) and the string value of any credential-named field
/// (`"api_key": "..."`, `password=...`, `Authorization: Basic ...`).
///
/// A secret hidden behind JSON escapes or percent-encoding (`\u0073k-...`,
/// `sk%2Dproj%2D...`) is found in a decoded copy of `text`. When that copy
/// holds a secret, the redacted text is the decoded copy with the secret
/// replaced: the escapes of the rest of the text are decoded too (into
/// printable ASCII only), which keeps no part of an encoded key behind.
///
/// A bare value after `name:` is left alone when it is a word or a number
/// (`token: expired`, `"prompt_tokens": 12` is no credential name anyway):
/// prose says such things, and a key has digits or symbols.
#[must_use]
pub fn redact(text: &str) -> Cow<'_, str> {
    if let Some(decoded) = decode(text.as_bytes()) {
        let decoded = String::from_utf8_lossy(&decoded);
        if let Cow::Owned(clean) = redact_plain(&decoded) {
            return Cow::Owned(clean);
        }
    }
    redact_plain(text)
}

/// [`redact`] without decoding.
fn redact_plain(text: &str) -> Cow<'_, str> {
    let shaped = if ALL_SHAPES.may_hold(text.as_bytes()) {
        ALL_SHAPES
            .text
            .replace_all(text, |caps: &regex::Captures<'_>| {
                // A name before the value is kept: it says what was there.
                match caps.name("aws").or_else(|| caps.name("azure")) {
                    Some(name) => format!("{}{REDACTED}", name.as_str()),
                    None => REDACTED.to_owned(),
                }
            })
    } else {
        Cow::Borrowed(text)
    };
    let mut changed = false;
    let named = CREDENTIAL_RE.replace_all(&shaped, |caps: &regex::Captures<'_>| {
        let head = &caps["head"];
        let value = &caps["value"];
        match redact_value(value, &caps["sep"]) {
            Some(clean) => {
                changed = true;
                format!("{head}{clean}")
            }
            None => format!("{head}{value}"),
        }
    });
    // Matches that were no secrets were written back as they were.
    let named = match named {
        Cow::Owned(named) if changed => Some(named),
        _ => None,
    };
    named.map_or(shaped, Cow::Owned)
}

/// The redacted form of a credential's value, its quotes kept; `None` for
/// a value that is no secret (empty, a number, a literal, a word after `:`).
fn redact_value(value: &str, sep: &str) -> Option<String> {
    let quote_len = value
        .find(['"', '\''])
        .filter(|&at| value[..at].bytes().all(|b| b == b'\\'))
        .map_or(0, |at| at + 1);
    let (open, rest) = value.split_at(quote_len);
    if open.is_empty() {
        let bare = value.trim();
        let literal = ["true", "false", "null", "none"]
            .iter()
            .any(|word| bare.eq_ignore_ascii_case(word));
        let number = bare.parse::<f64>().is_ok();
        let word = sep == ":"
            && bare
                .trim_end_matches(['.', '!', '?'])
                .bytes()
                .all(|b| b.is_ascii_alphabetic());
        if literal || number || word {
            return None;
        }
        return Some(REDACTED.to_owned());
    }
    let close = if rest.ends_with(open) { open } else { "" };
    let body = &rest[..rest.len() - close.len()];
    if body.is_empty() {
        return None;
    }
    Some(format!("{open}{REDACTED}{close}"))
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
    use crate::testing::noise;

    #[test]
    fn placeholders_and_masked_keys_are_no_keys_but_are_still_redacted() {
        // OpenAI's own 401 message, and a key as providers mask it.
        let text = "You didn't provide an API key. You need to provide your API key in an \
                    Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). \
                    Incorrect API key provided: sk-proj-abcd1234efgh5678ijkl****wxyz. \
                    Docs: sk-xxxxxxxxxxxxxxxxxxxxxxxx";
        assert_eq!(count_secrets(text.as_bytes()), 0);
        assert_eq!(scan(text.as_bytes(), false).shaped, 3);
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
            "ghp_",
            "ghs_",
            "github_pat_",
            "0123456789ABCDEFabcdef0123456789abcd",
            "xoxb-",
            "xapp-1-",
            "eyJabcdEFGH1234",
            ".eyabcdEFGH1234.",
            "aws_secret_access_key",
            "SECRET_ACCESS_KEY",
            "secretAccessKey",
            "api-key",
            "X-Api-Key",
            "Ocp-Apim-Subscription-Key",
            "\\\"",
            ":",
            "-----BEGIN RSA",
            " PRIVATE KEY-----",
            "-----END PRIVATE KEY-----",
            "\\n",
        ];
        let mut draw = crate::testing::draws(0x853c_49e6_748f_ea9b);
        let mut next = |n: usize| draw(n as u64) as usize;
        let mut matched = 0;
        for _ in 0..50_000 {
            let text: String = (0..=next(8)).map(|_| pieces[next(pieces.len())]).collect();
            if ALL_SHAPES.bytes.is_match(text.as_bytes()) {
                matched += 1;
                assert!(ALL_SHAPES.may_hold(text.as_bytes()), "{text}");
            }
        }
        // Enough of the texts hold a secret for the check to mean something.
        assert!(matched > 2_000, "{matched}");
    }

    /// `-----BEGIN <kind>PRIVATE KEY-----`, pieced together for the same reason.
    fn pem_line(edge: &str, kind: &str) -> String {
        format!("-----{edge} {kind}{}-----", ["PRIVATE", "KEY"].join(" "))
    }

    /// Each shape, as it would be logged, and the part that must not survive.
    fn token_shapes() -> Vec<(String, String)> {
        let pem_body = format!("{}\\n{}", noise(64), noise(40));
        let pem = format!(
            "{}\\n{pem_body}\\n{}\\n",
            pem_line("BEGIN", ""),
            pem_line("END", "")
        );
        let aws = format!("{}/{}+", noise(20), noise(18));
        let hex = "0123456789abcdef".repeat(2);
        vec![
            (format!("token ghp_{}", noise(36)), noise(36)),
            (format!("token gho_{}", noise(36)), noise(36)),
            (format!("token ghs_{}", noise(36)), noise(36)),
            (format!("token github_pat_{}", noise(82)), noise(82)),
            (format!("slack xoxb-1234567890-{}", noise(24)), noise(24)),
            (format!("slack xoxp-1234567890-{}", noise(30)), noise(30)),
            (format!("slack xapp-1-{}", noise(30)), noise(30)),
            (
                format!("jwt eyJ{}.eyJ{}.{}", noise(20), noise(30), noise(43)),
                noise(30),
            ),
            (
                format!(r#"{{"aws_secret_access_key": "{aws}"}}"#),
                aws.clone(),
            ),
            (format!("AWS_SECRET_ACCESS_KEY={aws}"), aws.clone()),
            (format!(r#"{{"api-key": "{hex}"}}"#), hex.clone()),
            (format!("Ocp-Apim-Subscription-Key: {hex}"), hex.clone()),
            (format!(r#"{{"private_key": "{pem}"}}"#), noise(64)),
        ]
    }

    #[test]
    fn redacts_and_counts_github_slack_jwt_aws_azure_and_pem_shapes() {
        for (text, secret) in token_shapes() {
            let out = redact(&text);
            assert!(!out.contains(&secret), "{secret} survived in {out}");
            assert_eq!(count_secrets(text.as_bytes()), 1, "{text}");
            assert!(ALL_SHAPES.may_hold(text.as_bytes()), "{text}");
        }
        // A name before a value is kept: the reader sees what was there.
        let named = format!("AWS_SECRET_ACCESS_KEY={}", noise(40));
        assert_eq!(redact(&named), "AWS_SECRET_ACCESS_KEY=[REDACTED]");
        // An OpenSSH key's base64 has long runs of `A`; it is still a key.
        let openssh = format!(
            "{}\n{}AAAAAAAAEbm9uZQ{}\n{}",
            pem_line("BEGIN", "OPENSSH "),
            noise(30),
            noise(200),
            pem_line("END", "OPENSSH ")
        );
        assert_eq!(count_secrets(openssh.as_bytes()), 1);
        assert_eq!(redact(&openssh), REDACTED);
    }

    #[test]
    fn keys_behind_json_escapes_or_percent_encoding_are_found() {
        let body = noise(32);
        let encoded = [
            // `\u0073` is `s`, `\u002d` is `-`.
            format!(r"Incorrect API key provided: \u0073k-proj-{body}"),
            format!(r"key \u0073\u006b\u002dproj\u002d{body}"),
            format!("GET /v1/models?x=1&k=sk%2Dproj%2D{body}"),
            format!("GET /v1/models?k=sk%2dproj%2d{body}"),
            // Encoded twice, and escaped then encoded.
            format!("next=%3Fk%3Dsk%252Dproj%252D{body}"),
            format!(r"k=\u0025{}sk%2D{body}", "2D"),
            format!(r"token ghp\u005f{}", noise(36)),
            format!(r"AWS_SECRET_ACCESS_KEY={}\/{}", noise(20), noise(19)),
        ];
        for text in encoded {
            let out = redact(&text);
            assert!(!out.contains(&body[..20]), "{text} gave {out}");
            assert!(out.contains(REDACTED), "{out}");
            assert_eq!(count_secrets(text.as_bytes()), 1, "{text}");
        }
        // The hot path decodes `\u` only when the JSON reader saw one, and
        // percent-encoding always.
        let escaped = format!(r"\u0073k-proj-{body}");
        assert_eq!(scan(escaped.as_bytes(), true).keys, 1);
        assert_eq!(scan(escaped.as_bytes(), false).keys, 0);
        assert_eq!(
            scan(format!("sk%2Dproj%2D{body}").as_bytes(), false).keys,
            1
        );
        // Decoding writes no control character into the text.
        let text = format!(r"\u001b[31m %0A sk%2Dproj%2D{body}");
        let out = redact(&text);
        assert!(!out.contains(|c: char| c.is_control()), "{out:?}");
        assert_eq!(out, format!(r"\u001b[31m %0A {REDACTED}"));
        // Text with escapes and no secret is left as it was.
        let plain = r"50% off, C:\\path\\to \u00e9t\u00e9 %41%42";
        assert_eq!(redact(plain), plain);
    }

    #[test]
    fn credential_named_values_are_redacted_whatever_their_shape() {
        let v = noise(24);
        let texts = [
            format!(r#"{{"api_key": "{v}", "model": "gpt-4o""#),
            format!(r#"{{"apiKey":"{v}"}}"#),
            format!(r#"{{"API-Key" : "{v}"}}"#),
            format!(r#"{{"openai_api_key": "{v}"}}"#),
            format!(r#"{{"msg": "{{\"x-api-key\":\"{v}\",\"n\":1}}"}}"#),
            format!(r#"{{"msg": "{{\"x-goog-api-key\": \"{v}"#),
            format!("{{'authorization': 'Basic {v}'}}"),
            format!("Authorization: Bearer {v}"),
            format!(r#"{{"token": "{v}"}}"#),
            format!(r#"{{"access_token": "{v}"}}"#),
            format!(r#"{{"Secret": "{v}"}}"#),
            format!(r#"{{"client_secret": "{v}"}}"#),
            format!(r#"{{"password": "{v}"}}"#),
            format!(r#"{{"private_key": "{v}"}}"#),
            format!("connect passwd={v}&user=app"),
            format!("retrying with access-token: {v}"),
            format!("PASSWORD={v}"),
            // An excerpt cut inside the value.
            format!(r#"{{"ts":1,"api_key": "{}"#, &v[..10]),
        ];
        for text in texts {
            let out = redact(&text);
            assert!(!out.contains(&v[..10]), "{text} gave {out}");
            assert!(out.contains(REDACTED), "{out}");
        }
        assert_eq!(
            redact(&format!(r#"{{"api_key": "{v}", "n": 1}}"#)),
            r#"{"api_key": "[REDACTED]", "n": 1}"#
        );
        assert_eq!(
            redact(&format!(r#"{{\"token\":\"{v}\"}}"#)),
            r#"{\"token\":\"[REDACTED]\"}"#
        );
    }

    #[test]
    fn counts_and_other_names_are_not_credentials() {
        for text in [
            r#"{"prompt_tokens": 12, "max_tokens": 4096, "completion_tokens":3}"#,
            r#"{"token": 12, "api_key": null, "secret": true, "password": ""}"#,
            r#"{"user_api_key_hash": "88dc28d0f030c55e", "key_alias": "prod-1"}"#,
            r#"{"tokens": "a1b2c3", "api_keys": "x9", "secretary": "b2"}"#,
            "Invalid token: expired. Authorization: required",
            "max_tokens=4096 and tokenizer: cl100k",
            "The api_key parameter is missing.",
        ] {
            assert_eq!(redact(text), text);
        }
    }

    #[test]
    fn placeholders_and_masked_keys_of_every_kind_are_no_keys() {
        let no_keys = [
            // OpenAI's 401, as it is sent.
            "Incorrect API key provided: sk-abc...xyz. You can find your API key at \
             https://platform.openai.com/account/api-keys.",
            "Authorization: Bearer YOUR_KEY",
            "Authorization: Bearer YOUR_API_KEY_2",
            "https://api.x.com/v1?api_key=REDACTED",
            "https://api.x.com/v1?api_key=REDACTED_01",
            r#"{"api_key": "***"}"#,
            r#"{"api_key": "<your key>"}"#,
            "key sk-...",
            "key sk-abcd1234efgh5678...wxyz",
            "key sk-abcd1234efgh5678\u{2026}wxyz",
            "key sk-proj-abcd1234efgh5678****wxyz",
            "key sk-proj-00000000000000000000",
            "key sk-xxxx1234xxxx5678xxxx",
            "Bearer sk-...ab12",
            "key sk-your-key-here-0123456789",
        ];
        for text in no_keys {
            assert_eq!(count_secrets(text.as_bytes()), 0, "{text}");
        }
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
