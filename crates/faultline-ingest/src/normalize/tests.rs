use std::borrow::Cow;

use super::context::*;
use crate::secret::Fingerprinter;

#[test]
fn texts_are_interned_from_their_second_sighting_in_a_chunk() {
    let fingerprinter = Fingerprinter::default();
    let ctx = Ctx::new(&fingerprinter);
    let text = |t: &str| ctx.intern(Some(Cow::Borrowed(t))).unwrap();
    assert!(ctx.intern(Some(Cow::Borrowed(" "))).is_none());
    let once = text("checkout-api");
    assert!(!once.is_static());
    let twice = text("checkout-api");
    assert!(twice.is_static());
    assert_eq!(once, twice);
    assert!(text("checkout-api").is_static());
    // A key seen once (a per-request hash) stays out of the interner.
    let fp = ctx.fingerprint("sk-one-off-key-0001");
    assert!(!fp.is_static() && fp.starts_with("kf_"));
    assert!(ctx.fingerprint("sk-one-off-key-0001").is_static());
}

#[test]
fn the_last_url_answers_for_itself_only() {
    let fingerprinter = Fingerprinter::default();
    let ctx = Ctx::new(&fingerprinter);
    let urls = [
        "https://api.openai.com/v1",
        "https://api.openai.com/v1",
        "https://api.anthropic.com",
        "https://API.openai.com/v1",
        "https://api.openai.com/v1",
        "  ",
        "https://api.openai.com/v1",
    ];
    for _ in 0..3 {
        for url in urls {
            let host = ctx.host(url);
            let expected = host_of(url).map(Cow::into_owned);
            assert_eq!(host.as_deref(), expected.as_deref(), "{url}");
        }
    }
}

#[test]
fn the_last_key_answers_for_itself_only() {
    let fingerprinter = Fingerprinter::default();
    let ctx = Ctx::new(&fingerprinter);
    let keys = [
        "key-a", "key-b", "key-a", "key-a", "key-c", "key-b", "key-b",
    ];
    for _ in 0..3 {
        for key in keys {
            let fp = ctx.fingerprint(key);
            assert_eq!(fp.as_str(), fingerprinter.fingerprint(key), "{key}");
        }
    }
}

#[test]
fn recent_texts_answer_for_their_own_text_only() {
    let fingerprinter = Fingerprinter::default();
    let ctx = Ctx::new(&fingerprinter);
    // More texts than slots, many of the same length: slots are shared
    // and overwritten, and every lookup still returns its own text.
    let texts: Vec<String> = (0..3 * RECENT)
        .map(|i| format!("model-{i:02}"))
        .chain(["gpt-4o", "gpt-4o-mini", "a", "api.openai.com"].map(String::from))
        .collect();
    for round in 0..4 {
        for text in texts.iter().chain(texts.iter().rev()) {
            let shared = ctx.intern(Some(Cow::Borrowed(text))).unwrap();
            assert_eq!(shared.as_str(), text, "round {round}");
            // Seen twice by the end of the first round: interned.
            assert!(round == 0 || shared.is_static(), "{text}");
        }
    }
}

#[test]
fn trim_is_str_trim() {
    for text in [
        "",
        " ",
        "a",
        " a",
        "a ",
        "\tgpt-4o\n",
        "é",
        " é ",
        "\u{a0}x\u{a0}",
        "x\u{2003}",
        "\u{7f}",
        "api.openai.com",
    ] {
        assert_eq!(trim(text), text.trim(), "{text:?}");
    }
}

#[test]
fn host_of_reads_urls_as_the_str_splits_did() {
    fn by_str_splits(url: &str) -> Option<String> {
        let rest = url.trim();
        let rest = rest.split_once("://").map_or(rest, |(_, r)| r);
        let host = rest.split(['/', '?', '#']).next().unwrap_or(rest);
        let host = host.rsplit_once('@').map_or(host, |(_, h)| h).trim();
        (!host.is_empty()).then(|| host.to_ascii_lowercase())
    }
    for url in [
        "https://api.openai.com/v1/chat/completions",
        "  https://API.Anthropic.com/v1/messages?beta=true ",
        "api.deepseek.com",
        "api.deepseek.com:443",
        "http://user:sk-secret@proxy.internal:8080/v1",
        "https://a@b@host.example/path",
        "https://host.example#frag",
        "https://host.example?x=https://other.example",
        "host/path://odd",
        "https://",
        "://",
        "",
        "   ",
        "https://é.example/ü",
        "https:///path",
        "@",
    ] {
        assert_eq!(
            host_of(url).map(Cow::into_owned),
            by_str_splits(url),
            "{url:?}"
        );
    }
}
