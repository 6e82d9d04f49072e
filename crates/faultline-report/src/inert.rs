//! Log text made inert for whoever reads it: a log line's fields are
//! written by anyone who can make a service log something, and a report
//! pastes them into markdown, and the CLI prints them to a terminal.
//!
//! - Controls (C0 but space, DEL, C1) and the bidirectional overrides and
//!   isolates that reorder what is shown are written out visibly (`\n`,
//!   `\u{1b}`, `\u{202e}`), so no field can clear a screen, set a title,
//!   start a line, or reverse the text after it.
//! - In markdown, every character that starts structure inline (emphasis,
//!   code, links and images, raw HTML, entities, tables, strikethrough) is
//!   backslash-escaped; with no line break left, no field can start a
//!   heading, a list or a quote.
//! - In a markdown code span, the fence is one backtick longer than the
//!   longest run inside it.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` is shown as an escape rather than as itself.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

fn push_visible(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        _ => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
}

/// `text` for a terminal: controls and bidi characters shown as escapes.
#[must_use]
pub fn terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) {
            push_visible(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `text` for markdown prose, headings, list items and table cells.
#[must_use]
pub fn markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) {
            push_visible(&mut out, c);
        } else {
            if matches!(
                c,
                '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '&' | '|' | '~' | '!' | '#'
            ) {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

/// `text` as a markdown code span, backticks and all.
#[must_use]
pub fn code_span(text: &str) -> String {
    let text = terminal(text);
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    // A span that starts or ends with a backtick needs a space inside its
    // fence (CommonMark strips one from each side).
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_are_shown_not_obeyed() {
        assert_eq!(terminal("gpt-4o"), "gpt-4o");
        assert_eq!(
            terminal("a\u{1b}]0;owned\u{7}b\nc\u{202e}d\u{9b}"),
            "a\\u{1b}]0;owned\\u{7}b\\nc\\u{202e}d\\u{9b}"
        );
    }

    #[test]
    fn markdown_structure_is_escaped() {
        let text = markdown("x\n# forged <img src=x> [a](javascript:alert(1)) `c` *e* | t");
        assert!(!text.contains('\n'));
        assert!(text.contains("\\<img"), "{text}");
        assert!(text.contains("\\[a\\]("), "{text}");
        assert!(text.contains("\\`c\\`"), "{text}");
        assert!(text.contains("\\|"), "{text}");
    }

    #[test]
    fn code_spans_outlast_the_backticks_inside() {
        assert_eq!(code_span("req_1 (a.jsonl:3)"), "`req_1 (a.jsonl:3)`");
        assert_eq!(code_span("a``b"), "```a``b```");
        assert_eq!(code_span("`x"), "`` `x ``");
        assert_eq!(code_span("a\nb"), "`a\\nb`");
    }
}
