#![allow(clippy::wildcard_imports)]

use super::check::*;
use super::kernels::*;
use super::shapes::*;
use super::tape::*;
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
    let got = members(r#" {"a": 1, "b":"x\"y", "c" : {"d":[1,2.5e-3,true,null]}, "e\u0041":-0} "#)
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
            proptest::collection::vec((key, inner.clone(), ws(), ws()), 0..6).prop_map(|members| {
                let members: Vec<String> = members
                    .into_iter()
                    .map(|(k, v, w1, w2)| format!("{w1}\"{k}\"{w2}:{w1}{v}{w2}"))
                    .collect();
                format!("{{{}}}", members.join(","))
            }),
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
