//! Rules as data: the embedded default set, user files that add or override
//! rules, and their compiled form.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use regex::{Regex, RegexSet};
use serde::Deserialize;

use crate::taxonomy::{Provider, StatusClass};

/// The default rule set, embedded in the binary.
pub const DEFAULT_RULES: &str = include_str!("../rules/default.toml");

/// A rule file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The rule file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or a rule is malformed.
    #[error("{}:{line}: {reason}", path.display())]
    Invalid {
        /// The rule file.
        path: PathBuf,
        /// 1-based line of the problem (1 when unknown).
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: String,
    class: String,
    cause: String,
    #[serde(default)]
    pattern: String,
    #[serde(default)]
    status: Option<Vec<u16>>,
    #[serde(default)]
    providers: Option<Vec<String>>,
    #[serde(default)]
    why: String,
    #[serde(default)]
    example: String,
    #[serde(default)]
    false_positives: String,
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique id; a user rule with the same id replaces the default one.
    pub id: Arc<str>,
    /// The status class it assigns.
    pub class: StatusClass,
    /// The cause it assigns.
    pub cause: Arc<str>,
    /// The pattern as written (empty: the rule decides by status and provider alone).
    pub pattern: String,
    /// The pattern compiled on its own, on first use: calls are matched
    /// through the set's one automaton of every pattern, so a run need not
    /// pay for compiling each rule's regex too.
    regex: OnceLock<Option<Regex>>,
    /// HTTP statuses it is limited to (`None`: any).
    pub status: Option<Vec<u16>>,
    /// Providers it is limited to (`None`: any).
    pub providers: Option<Vec<Provider>>,
    /// Why the rule matters.
    pub why: String,
    /// An example record it matches.
    pub example: String,
    /// Known false positives.
    pub false_positives: String,
    /// Where the rule came from (`default` or a file path).
    pub origin: Arc<str>,
}

impl Rule {
    /// The statuses it is limited to, as text (`none` for "no status"), or `None` when any.
    #[must_use]
    pub fn status_text(&self) -> Option<String> {
        let list: Vec<String> = self
            .status
            .as_ref()?
            .iter()
            .map(|s| {
                if *s == 0 {
                    "none".to_owned()
                } else {
                    s.to_string()
                }
            })
            .collect();
        Some(list.join(", "))
    }

    /// The providers it is limited to, as text, or `None` when any.
    #[must_use]
    pub fn providers_text(&self) -> Option<String> {
        let list: Vec<&str> = self
            .providers
            .as_ref()?
            .iter()
            .map(|p| p.as_str())
            .collect();
        Some(list.join(", "))
    }

    /// Whether the rule's pattern matches `text` (ignoring its status and provider limits).
    #[must_use]
    pub fn matches_text(&self, text: &str) -> bool {
        self.regex().is_some_and(|r| r.is_match(text))
    }

    pub(crate) fn applies(&self, status: Option<u16>, provider: Provider, text: &str) -> bool {
        self.fits(status, provider)
            && (self.pattern.is_empty() || self.regex().is_some_and(|r| r.is_match(text)))
    }

    /// The pattern as the regex engine takes it: matched case-insensitively.
    fn source(&self) -> String {
        format!("(?i){}", self.pattern)
    }

    /// The rule's own regex (`None` without a pattern). Patterns are checked
    /// when the rule set is made, so compiling one here does not fail.
    fn regex(&self) -> Option<&Regex> {
        self.regex
            .get_or_init(|| {
                if self.pattern.is_empty() {
                    None
                } else {
                    Regex::new(&self.source()).ok()
                }
            })
            .as_ref()
    }

    /// Whether the rule's status and provider limits admit the call. A rule
    /// that names its statuses decides for them; one that does not decides
    /// only where the call's status allows its class.
    fn fits(&self, status: Option<u16>, provider: Provider) -> bool {
        match &self.status {
            // Status 0 in a rule stands for "no HTTP status".
            Some(statuses) => {
                if !statuses.contains(&status.unwrap_or(0)) {
                    return false;
                }
            }
            None => {
                if !self.class.possible_with(status) {
                    return false;
                }
            }
        }
        if let Some(providers) = &self.providers {
            if !providers.contains(&provider) {
                return false;
            }
        }
        true
    }
}

/// An ordered, compiled set of rules.
#[derive(Debug, Clone)]
pub struct RuleSet {
    rules: Vec<Rule>,
    /// Every rule's pattern in one automaton, so a message is read once
    /// however many rules are tried; `None` if the patterns do not fit in
    /// one (each rule's own regex is then used). Built when a failure first
    /// needs it: building it is most of a small run's time (tens of
    /// milliseconds), and a run without failures, `faultline rules` and
    /// `explain` never need it.
    set: OnceLock<Option<RegexSet>>,
    /// Each rule's index in `set`, for rules with a pattern.
    in_set: Vec<Option<usize>>,
}

impl RuleSet {
    /// The rules, their patterns to be put in one automaton when first
    /// needed. Every pattern is valid (checked by [`RuleSet::parse`], or
    /// by the tests for the embedded rules), so that does not fail.
    fn new(rules: Vec<Rule>) -> RuleSet {
        let mut next = 0;
        let in_set = rules
            .iter()
            .map(|r| {
                (!r.pattern.is_empty()).then(|| {
                    next += 1;
                    next - 1
                })
            })
            .collect();
        RuleSet {
            rules,
            set: OnceLock::new(),
            in_set,
        }
    }

    /// The automaton of every pattern, built on first use.
    fn set(&self) -> Option<&RegexSet> {
        self.set
            .get_or_init(|| {
                let patterns = self
                    .rules
                    .iter()
                    .filter(|r| !r.pattern.is_empty())
                    .map(Rule::source);
                RegexSet::new(patterns).ok()
            })
            .as_ref()
    }

    /// The first rule that applies to a call with this status, provider and
    /// error text.
    pub(crate) fn first_match(
        &self,
        status: Option<u16>,
        provider: Provider,
        text: &str,
    ) -> Option<&Rule> {
        let Some(set) = self.set() else {
            return self
                .rules
                .iter()
                .find(|r| r.applies(status, provider, text));
        };
        // Read the text only once a rule's status and providers fit.
        let mut matched = None;
        self.rules.iter().zip(&self.in_set).find_map(|(rule, at)| {
            if !rule.fits(status, provider) {
                return None;
            }
            let hit =
                at.is_none_or(|at| matched.get_or_insert_with(|| set.matches(text)).matched(at));
            hit.then_some(rule)
        })
    }

    /// The embedded default rules.
    ///
    /// # Panics
    ///
    /// Never in a released build: the embedded file is checked by the tests.
    #[must_use]
    pub fn defaults() -> RuleSet {
        // Their patterns are checked by the tests, not on every run.
        RuleSet::read(DEFAULT_RULES, Path::new("default"))
            .expect("the embedded default rules are valid")
    }

    /// Parses a rule file's text and checks every pattern; `path` names it
    /// in errors.
    pub fn parse(text: &str, path: &Path) -> Result<RuleSet, Error> {
        let (set, lines) = RuleSet::read_lines(text, path)?;
        // All patterns in one automaton, kept for the run. When that cannot
        // be built (a pattern is invalid, or the patterns do not fit in one
        // automaton), each is compiled on its own and the first that fails
        // is named.
        if set.set().is_none() {
            for (rule, &line) in set.rules.iter().zip(&lines) {
                if rule.pattern.is_empty() {
                    continue;
                }
                let regex = Regex::new(&rule.source()).map_err(|e| Error::Invalid {
                    path: path.to_path_buf(),
                    line,
                    reason: format!("rule {}: invalid pattern: {e}", rule.id),
                })?;
                let _ = rule.regex.set(Some(regex));
            }
        }
        Ok(set)
    }

    /// Parses a rule file's text without compiling its patterns.
    fn read(text: &str, path: &Path) -> Result<RuleSet, Error> {
        RuleSet::read_lines(text, path).map(|(set, _)| set)
    }

    /// [`RuleSet::read`], with the line of each rule.
    fn read_lines(text: &str, path: &Path) -> Result<(RuleSet, Vec<usize>), Error> {
        let invalid = |line: usize, reason: String| Error::Invalid {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let file: RuleFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |span| line_of(span.start));
            invalid(line, e.message().to_owned())
        })?;
        let origin: Arc<str> = Arc::from(path.display().to_string());
        let mut rules = Vec::with_capacity(file.rule.len());
        let mut lines = Vec::with_capacity(file.rule.len());
        for raw in file.rule {
            // TOML spans are not kept per table; find the rule by its id.
            let line = text.find(&format!("\"{}\"", raw.id)).map_or(1, line_of);
            lines.push(line);
            let class = StatusClass::parse(&raw.class).ok_or_else(|| {
                invalid(
                    line,
                    format!("rule {}: unknown class {:?}", raw.id, raw.class),
                )
            })?;
            if raw.pattern.is_empty() && raw.status.is_none() && raw.providers.is_none() {
                return Err(invalid(
                    line,
                    format!("rule {}: needs a pattern, a status or providers", raw.id),
                ));
            }
            let providers = match raw.providers {
                None => None,
                Some(names) => Some(
                    names
                        .iter()
                        .map(|name| {
                            Provider::parse(name).ok_or_else(|| {
                                invalid(line, format!("rule {}: unknown provider {name:?}", raw.id))
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                ),
            };
            if rules.iter().any(|r: &Rule| *r.id == *raw.id) {
                return Err(invalid(line, format!("rule {}: duplicate id", raw.id)));
            }
            rules.push(Rule {
                id: Arc::from(raw.id),
                class,
                cause: Arc::from(raw.cause),
                pattern: raw.pattern,
                regex: OnceLock::new(),
                status: raw.status,
                providers,
                why: raw.why,
                example: raw.example,
                false_positives: raw.false_positives,
                origin: Arc::clone(&origin),
            });
        }
        Ok((RuleSet::new(rules), lines))
    }

    /// Reads a user rule file.
    pub fn load(path: &Path) -> Result<RuleSet, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        RuleSet::parse(&text, path)
    }

    /// `user` rules first (they win), then the rules of `self` whose id the
    /// user did not override.
    #[must_use]
    pub fn with_overrides(self, user: RuleSet) -> RuleSet {
        let mut rules = user.rules;
        for rule in self.rules {
            if !rules.iter().any(|r| r.id == rule.id) {
                rules.push(rule);
            }
        }
        RuleSet::new(rules)
    }

    /// The rules in the order they are tried.
    #[must_use]
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rule reference (docs/rules.md): each rule with what it matches,
    /// why it matters, an example record and known false positives.
    #[must_use]
    pub fn to_markdown(&self) -> String {
        use std::fmt::Write;
        let mut out = String::from(
            "# Classification rules\n\n\
             Generated from `crates/faultline-classify/rules/default.toml` by\n\
             `UPDATE_DOCS=1 cargo test -p faultline-classify --test docs`; CI fails when it is stale.\n\n\
             Rules are tried in this order on every failed call; the first that matches decides the\n\
             status class and cause. A failure no rule matches keeps the class its HTTP status implies,\n\
             with the cause it implies (`invalid_api_key` for 401, `insufficient_balance` for 402,\n\
             `rate_limit` for 429, `unknown` for most); those left `unknown` are listed in the summary's\n\
             `top_unknown_errors`. Add or override\n\
             rules with `--rules FILE` (same format; a rule with an existing id replaces it).\n",
        );
        out.push_str(
            "\n## What a status allows\n\n\
             A client error's status is the provider's own verdict on who is at fault, so it bounds\n\
             the classes a rule's words can choose: a rule without a `status` list is skipped when\n\
             its class is not allowed for the call's status, and the next rule is tried. A rule that\n\
             lists statuses decides for them. A 2xx carrying an error, a 5xx (gateways wrap every\n\
             kind of upstream failure in 500s), other statuses and no status at all allow every\n\
             class. After the rules, a `rate_limit` whose Retry-After (or `retry_after` field) is an\n\
             hour or more becomes `quota` / `quota_exhausted` (rule id `retry-after-hours`): no\n\
             backoff outlasts it.\n\n\
             | status | classes allowed |\n|---|---|\n",
        );
        for status in [400u16, 401, 402, 403, 404, 405, 408, 410, 413, 422, 429] {
            let allowed: Vec<&str> = StatusClass::allowed_with(status)
                .into_iter()
                .map(StatusClass::as_str)
                .collect();
            let _ = writeln!(out, "| {status} | {} |", allowed.join(", "));
        }
        for (n, rule) in self.rules.iter().enumerate() {
            let _ = write!(
                out,
                "\n## {}. `{}` -> {} / `{}`\n\n",
                n + 1,
                rule.id,
                rule.class,
                rule.cause
            );
            if rule.pattern.is_empty() {
                let _ = writeln!(out, "**Matches:** any failure");
            } else {
                let _ = writeln!(
                    out,
                    "**Matches:** `{}` (case-insensitive, in type, code and message)",
                    rule.pattern.replace('|', "\\|")
                );
            }
            if let Some(status) = rule.status_text() {
                let _ = writeln!(out, "only with HTTP status {status}");
            }
            if let Some(providers) = rule.providers_text() {
                let _ = writeln!(out, "only for {providers}");
            }
            let strategy = rule.class.strategy();
            let _ = write!(
                out,
                "\n**Why it matters:** {}\n\n**Do:** {} (retryable: {}); escalate to {}.\n\n**Example:**\n\n```json\n{}\n```\n\n**Known false positives:** {}\n",
                rule.why,
                strategy.action,
                if strategy.retryable { "yes" } else { "no" },
                strategy.escalation,
                rule.example,
                rule.false_positives
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_combined_automaton_picks_the_rule_each_regex_would() {
        let set = RuleSet::defaults();
        assert!(
            set.set().is_some(),
            "the default patterns fit in one automaton"
        );
        let mut statuses: Vec<Option<u16>> = vec![None, Some(200)];
        for rule in set.rules() {
            for &status in rule.status.iter().flatten() {
                statuses.push((status != 0).then_some(status));
            }
        }
        statuses.sort_unstable();
        statuses.dedup();
        let mut texts: Vec<String> = set.rules().iter().map(|r| r.example.clone()).collect();
        texts.push(String::new());
        texts.push(texts.join(" "));
        let mut checked = 0;
        for text in &texts {
            for &status in &statuses {
                for &provider in Provider::ALL {
                    let one_by_one = set
                        .rules()
                        .iter()
                        .find(|r| r.applies(status, provider, text));
                    let combined = set.first_match(status, provider, text);
                    assert_eq!(
                        combined.map(|r| &r.id),
                        one_by_one.map(|r| &r.id),
                        "{status:?} {provider:?} {text:?}"
                    );
                    checked += usize::from(combined.is_some());
                }
            }
        }
        assert!(checked > texts.len(), "the examples match rules");
    }

    #[test]
    fn defaults_compile_with_unique_ids() {
        // What `defaults` skips: every pattern is compiled and checked.
        let set = RuleSet::parse(DEFAULT_RULES, Path::new("default")).unwrap();
        assert!(set.rules().len() > 15);
        assert!(set
            .rules()
            .iter()
            .all(|r| !r.why.is_empty() && !r.example.is_empty()));
        // A TOML basic string reads `\b` as a backspace: a pattern must say `\\b`.
        for rule in set.rules() {
            assert!(
                !rule.pattern.chars().any(char::is_control),
                "rule {}: a control character in its pattern",
                rule.id
            );
        }
    }

    #[test]
    fn invalid_files_name_the_line_and_reason() {
        let text = "[[rule]]\nid = \"x\"\nclass = \"rate_limit\"\ncause = \"c\"\npattern = \"(\"\n";
        let err = RuleSet::parse(text, Path::new("mine.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("mine.toml:2: rule x: invalid pattern"),
            "{err}"
        );

        let text = "[[rule]]\nid = \"y\"\nclass = \"nope\"\ncause = \"c\"\npattern = \"a\"\n";
        let err = RuleSet::parse(text, Path::new("mine.toml"))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "mine.toml:2: rule y: unknown class \"nope\"");

        let err = RuleSet::parse("[[rule]]\nid = 3\n", Path::new("m.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("m.toml:2: "), "{err}");
    }

    #[test]
    fn user_rules_come_first_and_replace_same_ids() {
        let user = RuleSet::parse(
            "[[rule]]\nid = \"timeout\"\nclass = \"timeout\"\ncause = \"mine\"\npattern = \"slow\"\n",
            Path::new("u.toml"),
        )
        .unwrap();
        let merged = RuleSet::defaults().with_overrides(user);
        assert_eq!(&*merged.rules()[0].cause, "mine");
        assert_eq!(
            merged
                .rules()
                .iter()
                .filter(|r| &*r.id == "timeout")
                .count(),
            1
        );
    }
}
