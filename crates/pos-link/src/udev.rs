//! The udev rules shipped with the POS device layer, and a syntax checker for udev rules files.
//!
//! [`RULES`] is `udev/70-pos-devices.rules` as compiled into this crate; `udev/README.md`
//! explains what each block grants and how to install it. [`check`] parses any rules text the
//! way systemd-udevd does (udev(7)) and returns every problem it finds, each with its line; on
//! success it returns the parsed [`Rule`]s. [`check_policy`] then applies this project's rules
//! for *its own* file: access only through group `pos`, no world bits, links only under
//! `/dev/pos/`, no access on `remove` events, no `uaccess` tag.
//!
//! ```
//! use pos_link::udev;
//!
//! let rules = udev::check(r#"SUBSYSTEM=="tty", ATTRS{idVendor}=="0403", ACTION!="remove", GROUP="pos", MODE="0660""#)
//!     .map_err(|errors| errors[0].to_string())?;
//! assert!(udev::check_policy(&rules).is_empty());
//!
//! let errors = udev::check("SUBSYSTEM==\"tty\", GROUP==\"pos\"\n").unwrap_err();
//! assert_eq!(errors[0].line, 1);
//! assert_eq!(errors[0].kind, udev::ErrorKind::OperatorNotAllowed);
//! # Ok::<(), String>(())
//! ```
//!
//! # What [`check`] accepts
//!
//! The grammar follows systemd's `udev-rules.c`:
//!
//! - The text is read line by line. Blank lines are skipped. A line whose first non-blank
//!   character is `#` is a comment, even in the middle of a continued rule; `#` anywhere else is
//!   not a comment (udev has no end-of-line comments) and is reported.
//! - A line ending in a backslash continues on the next line; the next line's leading blanks are
//!   dropped and nothing is inserted at the join. A file that ends inside a continuation is an
//!   error, and so is a logical line of 16 KiB or more (`UDEV_LINE_SIZE`).
//! - A rule is a comma-separated list of `KEY[{attribute}] OPERATOR "value"` pairs, with blanks
//!   allowed around commas and operators. Operators are `==` and `!=` (match) and `=`, `+=`,
//!   `-=`, `:=` (assignment). Values are double-quoted; `\"` stands for a quote. A value may be
//!   prefixed with `e` (C escapes such as `\n`, `\x41`) and/or `i` (case-insensitive match).
//! - Each key must be known, take the operator used, and have an `{attribute}` exactly when it
//!   needs one (see the table below). Attribute names are checked where udev checks them
//!   (`CONST{arch|virt}`, `IMPORT{program|builtin|file|db|cmdline|parent}`,
//!   `RUN{program|builtin}`, `TEST{octal mode}`); builtin names, `OPTIONS` values, numeric
//!   `MODE`s and `$`/`%` substitutions in values are checked too.
//! - A `GOTO` needs a `LABEL` of the same name *later* in the file (udev only jumps forward).
//!
//! | key | attribute | operators |
//! |---|---|---|
//! | `ACTION`, `DEVPATH`, `KERNEL`, `KERNELS`, `SUBSYSTEM`, `SUBSYSTEMS`, `DRIVER`, `DRIVERS`, `TAGS`, `RESULT` | none | `==` `!=` |
//! | `ATTRS{file}`, `CONST{arch\|virt}` | required | `==` `!=` |
//! | `TEST{mode}` | optional | `==` `!=` |
//! | `ATTR{file}`, `SYSCTL{name}` | required | `==` `!=` `=` |
//! | `ENV{name}` | required | `==` `!=` `=` `+=` |
//! | `TAG` | none | `==` `!=` `=` `+=` `-=` |
//! | `NAME` | none | `==` `!=` `=` `:=` |
//! | `SYMLINK` | none | all six |
//! | `PROGRAM` | none | `==` `!=` `=` |
//! | `IMPORT{type}` | required | `=` `==` `!=` (udev runs it as a match either way) |
//! | `OWNER`, `GROUP`, `MODE` | none | `=` `:=` |
//! | `OPTIONS` | none | `=` `+=` `:=` |
//! | `RUN{type}` | optional | `=` `+=` `:=` |
//! | `SECLABEL{module}` | required | `=` `+=` |
//! | `GOTO`, `LABEL` | none | `=` |
//!
//! # Where this is stricter than udev
//!
//! udev accepts some mistakes with a warning and a guess ("assuming '='"), and `udevadm
//! verify` reports style problems as notices. This checker reports all of them as errors,
//! because in a file we ship each one is a bug:
//! operators udev only accepts by guessing (`GROUP+=`, `ENV{X}:=`, `ATTR{x}+=`, ...); a missing
//! comma between two pairs; a stray, doubled, leading or trailing comma; an unknown `OPTIONS`
//! value; a rule that only matches and assigns nothing ("the line has no effect"); a `LABEL`
//! no `GOTO` jumps to; a second `GOTO` or `LABEL` in one rule. It does not look at the system:
//! user and group names are not resolved, and sysfs attributes are not checked to exist.
//!
//! Line numbers are those of the physical line where the offending text starts (a rule
//! continued over several lines reports the line of the bad pair, not the rule's first line);
//! columns count characters from 1.
#![warn(missing_docs)]

use std::fmt;

use crate::POS_GROUP;

/// The shipped rules file, `udev/70-pos-devices.rules`, as compiled into this crate.
pub const RULES: &str = include_str!("../../../udev/70-pos-devices.rules");

/// The file name to install [`RULES`] under, in `/etc/udev/rules.d/`.
pub const RULES_FILE_NAME: &str = "70-pos-devices.rules";

/// The longest logical line (after joining continuations) udev reads, in bytes: udev's
/// `UDEV_LINE_SIZE`. Lines this long or longer are ignored by udev and reported by [`check`].
pub const MAX_LINE_LEN: usize = 16 * 1024;

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/// A udev operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `==`: the key matches the value (a glob, `|`-separated alternatives).
    Match,
    /// `!=`: the key does not match the value.
    NoMatch,
    /// `=`: assign, replacing earlier values (for lists such as `SYMLINK`, drop the others).
    Assign,
    /// `+=`: add to a list (`SYMLINK`, `TAG`, `RUN`, ...).
    Add,
    /// `-=`: remove from a list.
    Remove,
    /// `:=`: assign and forbid later rules to change the value.
    AssignFinal,
}

impl Operator {
    /// All operators, matches first.
    pub const ALL: [Operator; 6] = [
        Operator::Match,
        Operator::NoMatch,
        Operator::Assign,
        Operator::Add,
        Operator::Remove,
        Operator::AssignFinal,
    ];

    /// The operator as written in a rules file, e.g. `"=="`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Match => "==",
            Operator::NoMatch => "!=",
            Operator::Assign => "=",
            Operator::Add => "+=",
            Operator::Remove => "-=",
            Operator::AssignFinal => ":=",
        }
    }

    /// True for `==` and `!=`.
    pub fn is_match(self) -> bool {
        matches!(self, Operator::Match | Operator::NoMatch)
    }

    fn from_text(text: &str) -> Option<Operator> {
        Operator::ALL.into_iter().find(|op| op.as_str() == text)
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `KEY{attribute} OPERATOR "value"` pair of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// The key, e.g. `ATTRS`.
    pub key: String,
    /// The attribute in braces, e.g. `idVendor` in `ATTRS{idVendor}`; `None` when absent.
    pub attr: Option<String>,
    /// The operator.
    pub op: Operator,
    /// The value with its quotes removed and its escapes resolved (`\"` becomes `"`; with the
    /// `e` prefix, C escapes too). Substitutions such as `$env{ID_SERIAL}` are kept as written.
    pub value: String,
    /// The value had the `e` prefix (C escapes).
    pub escaped: bool,
    /// The value had the `i` prefix (case-insensitive match).
    pub case_insensitive: bool,
    /// Physical line (from 1) where the key starts.
    pub line: usize,
    /// Column (in characters, from 1) where the key starts.
    pub column: usize,
}

impl Pair {
    /// The value's `|`-separated alternatives, as udev matches them for `==` and `!=`.
    pub fn alternatives(&self) -> impl Iterator<Item = &str> {
        self.value.split('|')
    }

    /// True for `=`, `+=`, `-=` and `:=`.
    pub fn is_assignment(&self) -> bool {
        !self.op.is_match()
    }

    /// True if this pair assigns to `key`.
    fn assigns(&self, key: &str) -> bool {
        self.key == key && self.is_assignment()
    }
}

impl fmt::Display for Pair {
    /// Writes the pair back in rules-file syntax, e.g. `ATTRS{idVendor}=="0801"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)?;
        if let Some(attr) = &self.attr {
            write!(f, "{{{attr}}}")?;
        }
        f.write_str(self.op.as_str())?;
        if self.escaped {
            f.write_str("e")?;
        }
        if self.case_insensitive {
            f.write_str("i")?;
        }
        f.write_str("\"")?;
        for c in self.value.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' if self.escaped => f.write_str("\\\\")?,
                '\n' if self.escaped => f.write_str("\\n")?,
                _ => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

/// One rule: a logical line of a rules file (continuations joined) and its pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    line: usize,
    last_line: usize,
    pairs: Vec<Pair>,
}

impl Rule {
    /// The physical line (from 1) the rule starts on.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The physical line the rule ends on (differs from [`line`](Self::line) when the rule is
    /// continued with backslashes).
    pub fn last_line(&self) -> usize {
        self.last_line
    }

    /// The rule's pairs, in the order written.
    pub fn pairs(&self) -> &[Pair] {
        &self.pairs
    }

    /// The pairs that match (`==`, `!=`).
    pub fn matches(&self) -> impl Iterator<Item = &Pair> {
        self.pairs.iter().filter(|p| p.op.is_match())
    }

    /// The pairs that assign (`=`, `+=`, `-=`, `:=`).
    pub fn assignments(&self) -> impl Iterator<Item = &Pair> {
        self.pairs.iter().filter(|p| p.is_assignment())
    }

    /// The pairs with this key (and, when `attr` is `Some`, this attribute).
    pub fn find<'a>(
        &'a self,
        key: &'a str,
        attr: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Pair> + 'a {
        self.pairs
            .iter()
            .filter(move |p| p.key == key && (attr.is_none() || p.attr.as_deref() == attr))
    }

    /// The value of the last assignment to `key` (e.g. `GROUP`), if the rule assigns it.
    pub fn assigned(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|p| p.assigns(key))
            .map(|p| p.value.as_str())
    }

    /// The label this rule defines (`LABEL="x"`), if any.
    pub fn label(&self) -> Option<&str> {
        self.assigned("LABEL")
    }

    /// The label this rule jumps to (`GOTO="x"`), if any.
    pub fn goto(&self) -> Option<&str> {
        self.pairs
            .iter()
            .find(|p| p.assigns("GOTO"))
            .map(|p| p.value.as_str())
    }
}

/// What is wrong, for [`RuleError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Not a udev key (including a key whose `{attribute}` lacks its closing brace).
    UnknownKey,
    /// A key with no operator after it.
    MissingOperator,
    /// Not one of `==`, `!=`, `=`, `+=`, `-=`, `:=` (e.g. `=!`).
    BadOperator,
    /// A real operator that this key does not take (e.g. `GROUP=="pos"`, `SUBSYSTEM="usb"`).
    OperatorNotAllowed,
    /// A key that needs an `{attribute}` has none (e.g. `ATTRS=="x"`).
    MissingAttribute,
    /// A key that takes no `{attribute}` has one (e.g. `GROUP{x}="pos"`).
    UnexpectedAttribute,
    /// An `{attribute}` this key does not accept (e.g. `IMPORT{bogus}`, `CONST{foo}`).
    BadAttribute,
    /// A value not in double quotes, or with an unknown prefix.
    UnquotedValue,
    /// A value whose closing quote is missing.
    UnterminatedValue,
    /// A value the key cannot take: a bad substitution, an unknown builtin or option, a
    /// non-octal `MODE`, an empty value where one is needed, a bad escape.
    BadValue,
    /// Two pairs not separated by a comma.
    MissingComma,
    /// A comma with nothing before or after it, or two commas in a row.
    StrayComma,
    /// A character that cannot start a key, an end-of-line `#`, a backslash that is not last.
    UnexpectedCharacter,
    /// A rule that only matches and assigns nothing.
    NoEffect,
    /// A `GOTO` without a `LABEL` of that name later in the file.
    UndefinedLabel,
    /// A `LABEL` that no `GOTO` jumps to.
    UnusedLabel,
    /// A second `GOTO` or `LABEL` in one rule.
    DuplicateGotoOrLabel,
    /// A logical line of [`MAX_LINE_LEN`] bytes or more.
    LineTooLong,
    /// The file ends right after a line-continuation backslash.
    UnterminatedContinuation,
    /// Policy: a `MODE` broader than 0660 (world bits, execute bits) or not a literal octal.
    UnsafeMode,
    /// Policy: a rule sets `MODE` without `GROUP="pos"`, or sets another group.
    GroupNotPos,
    /// Policy: a link outside `pos/`, or one that replaces other links (`SYMLINK=`).
    SymlinkOutsidePos,
    /// Policy: a rule grants access or makes links on `remove` events too.
    UnguardedRemove,
    /// Policy: `TAG+="uaccess"`, which gives the device to the desktop user.
    UaccessTag,
}

impl ErrorKind {
    /// True for the kinds only [`check_policy`] reports.
    pub fn is_policy(self) -> bool {
        matches!(
            self,
            ErrorKind::UnsafeMode
                | ErrorKind::GroupNotPos
                | ErrorKind::SymlinkOutsidePos
                | ErrorKind::UnguardedRemove
                | ErrorKind::UaccessTag
        )
    }
}

/// A problem found by [`check`] or [`check_policy`]. Displays as `line 12: unknown key "FOO"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// Physical line (from 1).
    pub line: usize,
    /// Column (in characters, from 1) of the offending text, when known.
    pub column: Option<usize>,
    /// What kind of problem it is.
    pub kind: ErrorKind,
    /// What is wrong, naming the key, operator or value.
    pub message: String,
}

impl RuleError {
    fn new(
        line: usize,
        column: Option<usize>,
        kind: ErrorKind,
        message: impl Into<String>,
    ) -> Self {
        RuleError {
            line,
            column,
            kind,
            message: message.into(),
        }
    }

    fn at(loc: Loc, kind: ErrorKind, message: impl Into<String>) -> Self {
        RuleError::new(loc.line, Some(loc.col), kind, message)
    }

    fn on_pair(pair: &Pair, kind: ErrorKind, message: impl Into<String>) -> Self {
        RuleError::new(pair.line, Some(pair.column), kind, message)
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for RuleError {}

// ---------------------------------------------------------------------------------------------
// Checking
// ---------------------------------------------------------------------------------------------

/// Parses udev rules text and checks its syntax (see the [module docs](self) for the grammar).
///
/// Returns the rules (one per logical line that is not blank or a comment) when there is no
/// error, or every error found, in line order. Never panics, whatever the input.
pub fn check(text: &str) -> Result<Vec<Rule>, Vec<RuleError>> {
    let mut errors = Vec::new();
    let mut rules = Vec::new();
    for logical in logical_lines(text, &mut errors) {
        let bytes: usize = logical.chars.iter().map(|ch| ch.c.len_utf8()).sum();
        if bytes >= MAX_LINE_LEN {
            errors.push(RuleError::new(
                logical.first_line,
                None,
                ErrorKind::LineTooLong,
                format!(
                    "rule is {bytes} bytes long; udev ignores lines of {MAX_LINE_LEN} bytes or more"
                ),
            ));
            continue;
        }
        if let Some(rule) = parse_rule(&logical, &mut errors) {
            rules.push(rule);
        }
    }
    check_labels(&rules, &mut errors);
    if errors.is_empty() {
        Ok(rules)
    } else {
        errors.sort_by_key(|e| (e.line, e.column.unwrap_or(0)));
        Err(errors)
    }
}

/// Checks this project's policy on parsed rules (normally those of [`RULES`]):
///
/// - every `MODE` is a literal octal mode of 0660 or stricter: no world bits (the last digit
///   is 0), no execute, setuid, setgid or sticky bits;
/// - every rule that assigns `MODE` also assigns `GROUP="pos"`, and no rule assigns another
///   group;
/// - every `SYMLINK` assignment uses `+=` (`=` and `:=` would drop the links other rules make,
///   such as `/dev/serial/by-id/`) and every link it names starts with `pos/` and has no `..`;
/// - every rule that assigns `MODE`, `GROUP`, `OWNER` or `SYMLINK` ignores `remove` events,
///   either through its own `ACTION` match (`ACTION!="remove"`, `ACTION=="add|change"`) or by
///   sitting between an `ACTION=="remove", GOTO="x"` rule and `LABEL="x"`;
/// - no `TAG` assignment adds `uaccess`.
///
/// Returns the violations, in rule order; empty when there are none.
pub fn check_policy(rules: &[Rule]) -> Vec<RuleError> {
    let mut errors = Vec::new();
    // The label up to which `remove` events are jumped over, if we are inside such a region.
    let mut skipping_remove_until: Option<&str> = None;
    for rule in rules {
        if let (Some(target), Some(label)) = (skipping_remove_until, rule.label()) {
            if target == label {
                skipping_remove_until = None;
            }
        }

        let grants = rule.assignments().any(|p| {
            matches!(p.key.as_str(), "MODE" | "GROUP" | "OWNER" | "SYMLINK")
                && p.op != Operator::Remove
        });
        if grants && skipping_remove_until.is_none() && !excludes_remove(rule) {
            errors.push(RuleError::new(
                rule.line(),
                None,
                ErrorKind::UnguardedRemove,
                "rule grants access or adds links without excluding remove events: add ACTION!=\"remove\"",
            ));
        }

        let mut mode_pair = None;
        for pair in rule.assignments() {
            match pair.key.as_str() {
                "MODE" => {
                    mode_pair = Some(pair);
                    check_mode_policy(pair, &mut errors);
                }
                "GROUP" if pair.value != POS_GROUP => errors.push(RuleError::on_pair(
                    pair,
                    ErrorKind::GroupNotPos,
                    format!(
                        "GROUP=\"{}\": devices in this file are for group \"{POS_GROUP}\" only",
                        pair.value
                    ),
                )),
                "SYMLINK" => check_symlink_policy(pair, &mut errors),
                "TAG" if pair.op != Operator::Remove && pair.value == "uaccess" => {
                    errors.push(RuleError::on_pair(
                        pair,
                        ErrorKind::UaccessTag,
                        format!(
                            "TAG{}\"uaccess\" gives the device to the user logged in at the seat; \
                         the POS service gets access through GROUP=\"{POS_GROUP}\"",
                            pair.op
                        ),
                    ))
                }
                _ => {}
            }
        }
        if let Some(mode) = mode_pair {
            if rule.assigned("GROUP") != Some(POS_GROUP) {
                errors.push(RuleError::on_pair(
                    mode,
                    ErrorKind::GroupNotPos,
                    format!(
                        "rule sets MODE=\"{}\" but not GROUP=\"{POS_GROUP}\"",
                        mode.value
                    ),
                ));
            }
        }

        if let Some(target) = rule.goto() {
            if skipping_remove_until.is_none() && is_remove_skip(rule) {
                skipping_remove_until = Some(target);
            }
        }
    }
    errors
}

fn check_mode_policy(pair: &Pair, errors: &mut Vec<RuleError>) {
    match parse_octal_mode(&pair.value) {
        None => errors.push(RuleError::on_pair(
            pair,
            ErrorKind::UnsafeMode,
            format!("MODE=\"{}\" is not a literal octal mode, so it cannot be checked", pair.value),
        )),
        Some(mode) if mode & 0o007 != 0 => errors.push(RuleError::on_pair(
            pair,
            ErrorKind::UnsafeMode,
            format!(
                "MODE=\"{}\" is world-accessible: the last digit must be 0 (use 0660: owner and group \
                 {POS_GROUP} only)",
                pair.value
            ),
        )),
        Some(mode) if mode & !0o660 != 0 => errors.push(RuleError::on_pair(
            pair,
            ErrorKind::UnsafeMode,
            format!("MODE=\"{}\" grants more than 0660 (execute, setuid/setgid or sticky bits)", pair.value),
        )),
        Some(_) => {}
    }
}

fn check_symlink_policy(pair: &Pair, errors: &mut Vec<RuleError>) {
    match pair.op {
        Operator::Remove => return,
        Operator::Add => {}
        op => errors.push(RuleError::on_pair(
            pair,
            ErrorKind::SymlinkOutsidePos,
            format!(
                "SYMLINK{op}\"{}\" drops the links other rules made: use SYMLINK+=",
                pair.value
            ),
        )),
    }
    for link in pair.value.split_ascii_whitespace() {
        let inside = link.strip_prefix("pos/").is_some_and(|rest| {
            !rest.is_empty() && !rest.split('/').any(|part| part == ".." || part == ".")
        });
        if !inside {
            errors.push(RuleError::on_pair(
                pair,
                ErrorKind::SymlinkOutsidePos,
                format!("link \"{link}\" is outside /dev/pos/: links must start with \"pos/\""),
            ));
        }
    }
}

/// Whether an event with ACTION `remove` can never match this rule's ACTION pairs.
fn excludes_remove(rule: &Rule) -> bool {
    rule.find("ACTION", None)
        .any(|p| !action_pair_passes(p, "remove"))
}

/// A rule that only matches on ACTION, matches `remove` events and jumps: the classic
/// `ACTION=="remove", GOTO="end"` (or `ACTION!="add|change", GOTO="end"`).
fn is_remove_skip(rule: &Rule) -> bool {
    let mut matches = rule.matches().peekable();
    matches.peek().is_some()
        && matches.all(|p| p.key == "ACTION" && action_pair_passes(p, "remove"))
}

fn action_pair_passes(pair: &Pair, action: &str) -> bool {
    let any = pair.alternatives().any(|alt| {
        if pair.case_insensitive {
            glob_match(&alt.to_lowercase(), &action.to_lowercase())
        } else {
            glob_match(alt, action)
        }
    });
    match pair.op {
        Operator::Match => any,
        Operator::NoMatch => !any,
        _ => true,
    }
}

/// Shell-style glob match (`*`, `?`, `[...]`, `[!...]`), as fnmatch(3) without flags.
fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
                continue;
            }
            Some('?') => Some(pi + 1),
            Some('[') => match bracket_match(&p, pi, t[ti]) {
                Some((true, next)) => Some(next),
                Some((false, _)) => None,
                // An unclosed bracket is a literal '['.
                None => (t[ti] == '[').then_some(pi + 1),
            },
            Some(&c) => (c == t[ti]).then_some(pi + 1),
            None => None,
        };
        match step {
            Some(next) => {
                pi = next;
                ti += 1;
            }
            None => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi.min(p.len())..].iter().all(|&c| c == '*')
}

/// Matches `c` against the bracket expression starting at `p[start] == '['`. Returns whether
/// it matched and the index after the closing `]`, or `None` if the bracket is not closed.
fn bracket_match(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let &lo = p.get(i)?;
        if lo == ']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&hi| hi != ']') {
            let &hi = p.get(i + 2)?;
            matched |= lo <= c && c <= hi;
            i += 3;
        } else {
            matched |= lo == c;
            i += 1;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lexing: physical lines -> logical lines
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Loc {
    line: usize,
    col: usize,
}

#[derive(Debug, Clone, Copy)]
struct Ch {
    c: char,
    loc: Loc,
}

struct LogicalLine {
    chars: Vec<Ch>,
    first_line: usize,
    last_line: usize,
}

/// udev's WHITESPACE: space, tab, newline, carriage return.
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

fn logical_lines(text: &str, errors: &mut Vec<RuleError>) -> Vec<LogicalLine> {
    let mut out = Vec::new();
    let mut continued: Option<LogicalLine> = None;
    let mut last_line_no = 0;
    let mut physical: Vec<&str> = text.split('\n').collect();
    if text.ends_with('\n') {
        physical.pop();
    }
    for (index, raw) in physical.into_iter().enumerate() {
        let line_no = index + 1;
        last_line_no = line_no;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let body: Vec<Ch> = raw
            .chars()
            .enumerate()
            .map(|(i, c)| Ch {
                c,
                loc: Loc {
                    line: line_no,
                    col: i + 1,
                },
            })
            .skip_while(|ch| is_blank(ch.c))
            .collect();
        // Comment lines are skipped even inside a continued rule, as udev does.
        if body.first().is_some_and(|ch| ch.c == '#') {
            continue;
        }
        let mut logical = continued.take().unwrap_or(LogicalLine {
            chars: Vec::new(),
            first_line: line_no,
            last_line: line_no,
        });
        if logical.chars.is_empty() {
            logical.first_line = line_no;
        }
        logical.chars.extend(body);
        logical.last_line = line_no;
        if logical.chars.last().is_some_and(|ch| ch.c == '\\') {
            logical.chars.pop();
            continued = Some(logical);
            continue;
        }
        if !logical.chars.is_empty() {
            out.push(logical);
        }
    }
    if continued.is_some() {
        errors.push(RuleError::new(
            last_line_no,
            None,
            ErrorKind::UnterminatedContinuation,
            "file ends right after a line-continuation backslash",
        ));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Parsing a logical line into pairs
// ---------------------------------------------------------------------------------------------

struct Cursor<'a> {
    chars: &'a [Ch],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).map(|ch| ch.c)
    }

    fn peek_at(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).map(|ch| ch.c)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn skip_blanks(&mut self) {
        while self.peek().is_some_and(is_blank) {
            self.pos += 1;
        }
    }

    /// Location of the current character, or just past the last one at the end.
    fn loc(&self) -> Loc {
        match (self.chars.get(self.pos), self.chars.last()) {
            (Some(ch), _) => ch.loc,
            (None, Some(last)) => Loc {
                line: last.loc.line,
                col: last.loc.col + 1,
            },
            (None, None) => Loc { line: 1, col: 1 },
        }
    }

    fn take_while(&mut self, mut keep: impl FnMut(&Self) -> bool) -> String {
        let mut s = String::new();
        while !self.at_end() && keep(self) {
            if let Some(c) = self.bump() {
                s.push(c);
            }
        }
        s
    }
}

/// Characters that may form operators.
fn is_operator_char(c: char) -> bool {
    matches!(c, '=' | '!' | '+' | '-' | ':' | '<' | '>' | '~')
}

/// A pair as lexed, before the key table is consulted.
struct RawPair {
    key: String,
    attr: Option<String>,
    /// `None` when the operator text was not a udev operator (already reported).
    op: Option<Operator>,
    value: String,
    escaped: bool,
    case_insensitive: bool,
    key_loc: Loc,
    op_loc: Loc,
    value_loc: Loc,
}

impl RawPair {
    fn key_text(&self) -> String {
        match &self.attr {
            Some(attr) => format!("{}{{{attr}}}", self.key),
            None => self.key.clone(),
        }
    }
}

fn parse_rule(logical: &LogicalLine, errors: &mut Vec<RuleError>) -> Option<Rule> {
    let errors_before = errors.len();
    let mut cur = Cursor {
        chars: &logical.chars,
        pos: 0,
    };
    let mut pairs = Vec::new();
    let mut ok = true;

    cur.skip_blanks();
    if cur.peek() == Some(',') {
        errors.push(RuleError::at(
            cur.loc(),
            ErrorKind::StrayComma,
            "stray comma at the start of the rule",
        ));
        while cur.peek().is_some_and(|c| c == ',' || is_blank(c)) {
            cur.bump();
        }
    }

    loop {
        cur.skip_blanks();
        if cur.at_end() {
            break;
        }
        let raw = match lex_pair(&mut cur, errors) {
            Some(raw) => raw,
            None => {
                ok = false;
                break; // cannot resynchronise inside this line
            }
        };
        let previous = raw.key_text();
        if validate_pair(&raw, errors) {
            if let Some(op) = raw.op {
                pairs.push(Pair {
                    key: raw.key,
                    attr: raw.attr,
                    op,
                    value: raw.value,
                    escaped: raw.escaped,
                    case_insensitive: raw.case_insensitive,
                    line: raw.key_loc.line,
                    column: raw.key_loc.col,
                });
            }
        } else {
            ok = false;
        }

        // Between pairs: blanks, exactly one comma, blanks.
        cur.skip_blanks();
        match cur.peek() {
            None => break,
            Some(',') => {
                cur.bump();
                cur.skip_blanks();
                match cur.peek() {
                    None => {
                        errors.push(RuleError::at(
                            cur.loc(),
                            ErrorKind::StrayComma,
                            format!("stray comma after {previous} at the end of the rule"),
                        ));
                        ok = false;
                        break;
                    }
                    Some(',') => {
                        errors.push(RuleError::at(
                            cur.loc(),
                            ErrorKind::StrayComma,
                            format!("more than one comma after {previous}"),
                        ));
                        ok = false;
                        while cur.peek().is_some_and(|c| c == ',' || is_blank(c)) {
                            cur.bump();
                        }
                    }
                    Some(_) => {}
                }
            }
            Some('#') => {
                errors.push(RuleError::at(
                    cur.loc(),
                    ErrorKind::UnexpectedCharacter,
                    format!(
                        "\"#\" after {previous}: udev has no end-of-line comments, \
                         put the comment on a line of its own"
                    ),
                ));
                ok = false;
                break;
            }
            Some('\\') => {
                errors.push(RuleError::at(
                    cur.loc(),
                    ErrorKind::UnexpectedCharacter,
                    format!(
                        "backslash after {previous} is not the last character of the line \
                         (trailing blanks after a continuation backslash?)"
                    ),
                ));
                ok = false;
                break;
            }
            Some(_) => {
                let next_loc = cur.loc();
                let next: String = cur.chars[cur.pos..]
                    .iter()
                    .map(|ch| ch.c)
                    .take_while(|&c| !is_blank(c) && !is_operator_char(c) && c != '"' && c != ',')
                    .take(40)
                    .collect();
                errors.push(RuleError::at(
                    next_loc,
                    ErrorKind::MissingComma,
                    format!("missing comma between {previous} and {next}"),
                ));
                ok = false;
                // The next pair starts here: keep going to find more errors.
            }
        }
    }

    if !ok || errors.len() > errors_before {
        return None;
    }
    let rule = Rule {
        line: logical.first_line,
        last_line: logical.last_line,
        pairs,
    };
    check_rule(&rule, errors);
    Some(rule)
}

/// Lexes one pair at the cursor. Reports and returns `None` on errors that leave the rest of
/// the line unreadable; pushes recoverable ones and returns the pair with `op: None`.
fn lex_pair(cur: &mut Cursor<'_>, errors: &mut Vec<RuleError>) -> Option<RawPair> {
    // Key: up to a blank, a brace, a quote, a comma or an operator character.
    let key_loc = cur.loc();
    let key = cur.take_while(|c| {
        c.peek().is_some_and(|ch| {
            !is_blank(ch)
                && !is_operator_char(ch)
                && !matches!(ch, '{' | '}' | '"' | ',' | '#' | '\\')
        })
    });
    if key.is_empty() {
        let (kind, message) = match cur.peek() {
            Some('\\') => (
                ErrorKind::UnexpectedCharacter,
                "a backslash that is not the last character of the line \
                 (blanks after a continuation backslash?)"
                    .to_string(),
            ),
            Some('#') => (
                ErrorKind::UnexpectedCharacter,
                "\"#\" inside a rule: udev has no end-of-line comments, put the comment on a line of its own"
                    .to_string(),
            ),
            Some(c) if is_operator_char(c) => {
                (ErrorKind::UnknownKey, format!("operator {c:?} without a key before it"))
            }
            Some(c) => (ErrorKind::UnexpectedCharacter, format!("expected a key such as SUBSYSTEM, found {c:?}")),
            None => (ErrorKind::UnexpectedCharacter, "expected a key such as SUBSYSTEM".to_string()),
        };
        errors.push(RuleError::at(key_loc, kind, message));
        return None;
    }

    // Optional {attribute}.
    let mut attr = None;
    if cur.peek() == Some('{') {
        cur.bump();
        let name = cur.take_while(|c| {
            c.peek()
                .is_some_and(|ch| !is_blank(ch) && !matches!(ch, '}' | '{' | '"' | ',' | '='))
        });
        if cur.peek() != Some('}') {
            errors.push(RuleError::at(
                key_loc,
                ErrorKind::UnknownKey,
                format!("unknown key \"{key}{{{name}\" (missing \"}}\" after the attribute name)"),
            ));
            return None;
        }
        cur.bump();
        attr = Some(name);
    }
    let key_text = match &attr {
        Some(a) => format!("{key}{{{a}}}"),
        None => key.clone(),
    };

    // Operator.
    cur.skip_blanks();
    let op_loc = cur.loc();
    let op_text = cur.take_while(|c| c.peek().is_some_and(is_operator_char));
    if op_text.is_empty() {
        let found = match cur.peek() {
            Some(c) => format!("found {c:?}"),
            None => "found the end of the line".to_string(),
        };
        errors.push(RuleError::at(
            op_loc,
            ErrorKind::MissingOperator,
            format!(
                "missing operator after {key_text} ({found}); expected ==, !=, =, +=, -= or :="
            ),
        ));
        return None;
    }
    let op = Operator::from_text(&op_text);
    if op.is_none() {
        let hint = match op_text.as_str() {
            "=!" => " (did you mean \"!=\"?)",
            "=+" => " (did you mean \"+=\"?)",
            "=-" => " (did you mean \"-=\"?)",
            "=:" => " (did you mean \":=\"?)",
            "===" => " (did you mean \"==\"?)",
            _ => "",
        };
        errors.push(RuleError::at(
            op_loc,
            ErrorKind::BadOperator,
            format!("bad operator \"{op_text}\" after {key_text}{hint}; expected ==, !=, =, +=, -= or :="),
        ));
    }

    // Value: optional e/i prefixes, then a double-quoted string.
    cur.skip_blanks();
    let value_loc = cur.loc();
    let mut escaped = false;
    let mut case_insensitive = false;
    for _ in 0..2 {
        match cur.peek() {
            Some('e') if !escaped && cur.peek_at(1).is_some_and(|c| matches!(c, '"' | 'i')) => {
                escaped = true
            }
            Some('i')
                if !case_insensitive && cur.peek_at(1).is_some_and(|c| matches!(c, '"' | 'e')) =>
            {
                case_insensitive = true
            }
            _ => break,
        }
        cur.bump();
    }
    if cur.peek() != Some('"') {
        let found = match cur.peek() {
            Some(c) => format!("found {c:?}"),
            None => "found the end of the line".to_string(),
        };
        errors.push(RuleError::at(
            value_loc,
            ErrorKind::UnquotedValue,
            format!("value of {key_text} must be in double quotes ({found})"),
        ));
        return None;
    }
    let open_loc = cur.loc();
    cur.bump();
    let mut raw_value: Vec<char> = Vec::new();
    loop {
        match cur.bump() {
            None => {
                errors.push(RuleError::at(
                    open_loc,
                    ErrorKind::UnterminatedValue,
                    format!(
                        "missing closing quote in the value of {key_text} (opened at line {}, column {})",
                        open_loc.line, open_loc.col
                    ),
                ));
                return None;
            }
            Some('"') => break,
            Some('\\') if escaped => {
                // With `e`, a backslash protects the next character, whatever it is.
                raw_value.push('\\');
                match cur.bump() {
                    Some(c) => raw_value.push(c),
                    None => {
                        errors.push(RuleError::at(
                            open_loc,
                            ErrorKind::UnterminatedValue,
                            format!("missing closing quote in the value of {key_text}"),
                        ));
                        return None;
                    }
                }
            }
            Some('\\') if cur.peek() == Some('"') => {
                cur.bump();
                raw_value.push('"');
            }
            Some(c) => raw_value.push(c),
        }
    }

    let value = if escaped {
        match c_unescape(&raw_value) {
            Ok(v) => v,
            Err(msg) => {
                errors.push(RuleError::at(
                    value_loc,
                    ErrorKind::BadValue,
                    format!("value of {key_text}: {msg}"),
                ));
                String::new()
            }
        }
    } else {
        raw_value.into_iter().collect()
    };

    Some(RawPair {
        key,
        attr,
        op,
        value,
        escaped,
        case_insensitive,
        key_loc,
        op_loc,
        value_loc,
    })
}

/// Resolves C escapes as systemd's `cunescape()` does for `e"..."` values.
fn c_unescape(raw: &[char]) -> Result<String, String> {
    let mut out = String::new();
    let mut i = 0;
    while let Some(&c) = raw.get(i) {
        i += 1;
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(&e) = raw.get(i) else {
            return Err("backslash at the end of the value".into());
        };
        i += 1;
        let simple = match e {
            'a' => Some('\u{7}'),
            'b' => Some('\u{8}'),
            'f' => Some('\u{c}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\u{b}'),
            's' => Some(' '),
            '\\' => Some('\\'),
            '"' => Some('"'),
            '\'' => Some('\''),
            _ => None,
        };
        if let Some(s) = simple {
            out.push(s);
            continue;
        }
        let (digits, radix) = match e {
            'x' => (2, 16),
            'u' => (4, 16),
            'U' => (8, 16),
            '0'..='7' => {
                i -= 1; // the digit is part of the number
                (3, 8)
            }
            other => return Err(format!("unknown escape \"\\{other}\"")),
        };
        let number: String = raw.iter().skip(i).take(digits).collect();
        if number.chars().count() != digits || !number.chars().all(|d| d.is_digit(radix)) {
            return Err(format!(
                "escape \"\\{e}\" needs {digits} digits in base {radix}"
            ));
        }
        i += digits;
        let code = u32::from_str_radix(&number, radix).map_err(|err| err.to_string())?;
        match char::from_u32(code) {
            Some('\0') => return Err("escape produces a NUL character".into()),
            Some(ch) => out.push(ch),
            None => return Err(format!("escape produces an invalid character (0x{code:x})")),
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The key table and per-pair checks
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AttrRule {
    Forbidden,
    Required,
    Optional,
}

struct KeySpec {
    name: &'static str,
    attr: AttrRule,
    ops: &'static [Operator],
}

const MATCH_OPS: &[Operator] = &[Operator::Match, Operator::NoMatch];
const MATCH_OR_ASSIGN: &[Operator] = &[Operator::Match, Operator::NoMatch, Operator::Assign];
const ENV_OPS: &[Operator] = &[
    Operator::Match,
    Operator::NoMatch,
    Operator::Assign,
    Operator::Add,
];
const TAG_OPS: &[Operator] = &[
    Operator::Match,
    Operator::NoMatch,
    Operator::Assign,
    Operator::Add,
    Operator::Remove,
];
const NAME_OPS: &[Operator] = &[
    Operator::Match,
    Operator::NoMatch,
    Operator::Assign,
    Operator::AssignFinal,
];
const IMPORT_OPS: &[Operator] = &[Operator::Assign, Operator::Match, Operator::NoMatch];
const FINAL_ASSIGN: &[Operator] = &[Operator::Assign, Operator::AssignFinal];
const LIST_ASSIGN: &[Operator] = &[Operator::Assign, Operator::Add, Operator::AssignFinal];
const SECLABEL_OPS: &[Operator] = &[Operator::Assign, Operator::Add];
const PLAIN_ASSIGN: &[Operator] = &[Operator::Assign];

const KEYS: &[KeySpec] = &[
    KeySpec {
        name: "ACTION",
        attr: AttrRule::Forbidden,
        ops: MATCH_OPS,
    },
    KeySpec {
        name: "DEVPATH",
        attr: AttrRule::Forbidden,
        ops: MATCH_OPS,
    },
    KeySpec {
        name: "KERNEL",
        attr: AttrRule::Forbidden,
        ops: MATCH_OPS,
    },
    KeySpec {
        name: "KERNELS",
        attr: AttrRule::Forbidden,
        ops: MATCH_OPS,
    },
    KeySpec {
        name: "SUBSYSTEM",
        attr: AttrRule::Forbidden,
        ops: MATCH_OPS,
    },
    KeySpec {
        name: "SUBSYSTEMS",
        attr: AttrRule::Forbidden,
        ops: MATCH_OPS,
    },
    KeySpec {
        name: "DRIVER",
        attr: AttrRule::Forbidden,
        ops: MATCH_OPS,
    },
    KeySpec {
        name: "DRIVERS",
        attr: AttrRule::Forbidden,
        ops: MATCH_OPS,
    },
    KeySpec {
        name: "TAGS",
        attr: AttrRule::Forbidden,
        ops: MATCH_OPS,
    },
    KeySpec {
        name: "RESULT",
        attr: AttrRule::Forbidden,
        ops: MATCH_OPS,
    },
    KeySpec {
        name: "ATTRS",
        attr: AttrRule::Required,
        ops: MATCH_OPS,
    },
    KeySpec {
        name: "CONST",
        attr: AttrRule::Required,
        ops: MATCH_OPS,
    },
    KeySpec {
        name: "TEST",
        attr: AttrRule::Optional,
        ops: MATCH_OPS,
    },
    KeySpec {
        name: "ATTR",
        attr: AttrRule::Required,
        ops: MATCH_OR_ASSIGN,
    },
    KeySpec {
        name: "SYSCTL",
        attr: AttrRule::Required,
        ops: MATCH_OR_ASSIGN,
    },
    KeySpec {
        name: "ENV",
        attr: AttrRule::Required,
        ops: ENV_OPS,
    },
    KeySpec {
        name: "TAG",
        attr: AttrRule::Forbidden,
        ops: TAG_OPS,
    },
    KeySpec {
        name: "NAME",
        attr: AttrRule::Forbidden,
        ops: NAME_OPS,
    },
    KeySpec {
        name: "SYMLINK",
        attr: AttrRule::Forbidden,
        ops: &Operator::ALL,
    },
    KeySpec {
        name: "PROGRAM",
        attr: AttrRule::Forbidden,
        ops: MATCH_OR_ASSIGN,
    },
    KeySpec {
        name: "IMPORT",
        attr: AttrRule::Required,
        ops: IMPORT_OPS,
    },
    KeySpec {
        name: "OWNER",
        attr: AttrRule::Forbidden,
        ops: FINAL_ASSIGN,
    },
    KeySpec {
        name: "GROUP",
        attr: AttrRule::Forbidden,
        ops: FINAL_ASSIGN,
    },
    KeySpec {
        name: "MODE",
        attr: AttrRule::Forbidden,
        ops: FINAL_ASSIGN,
    },
    KeySpec {
        name: "OPTIONS",
        attr: AttrRule::Forbidden,
        ops: LIST_ASSIGN,
    },
    KeySpec {
        name: "RUN",
        attr: AttrRule::Optional,
        ops: LIST_ASSIGN,
    },
    KeySpec {
        name: "SECLABEL",
        attr: AttrRule::Required,
        ops: SECLABEL_OPS,
    },
    KeySpec {
        name: "GOTO",
        attr: AttrRule::Forbidden,
        ops: PLAIN_ASSIGN,
    },
    KeySpec {
        name: "LABEL",
        attr: AttrRule::Forbidden,
        ops: PLAIN_ASSIGN,
    },
];

/// Names of udev builtins (`IMPORT{builtin}`, `RUN{builtin}`), as of systemd 257.
const BUILTINS: &[&str] = &[
    "blkid",
    "btrfs",
    "dissect_image",
    "factory_reset",
    "hwdb",
    "input_id",
    "keyboard",
    "kmod",
    "net_driver",
    "net_id",
    "net_setup_link",
    "path_id",
    "tpm2_id",
    "uaccess",
    "usb_id",
];

/// Device properties udev refuses to let rules set (`device_property_can_set()`).
const READ_ONLY_PROPERTIES: &[&str] = &[
    "ACTION",
    "SEQNUM",
    "SYNTH_UUID",
    "DEVPATH",
    "DEVPATH_OLD",
    "SUBSYSTEM",
    "DEVTYPE",
    "DRIVER",
    "MODALIAS",
    "DEVNAME",
    "DEVMODE",
    "DEVUID",
    "DEVGID",
    "MAJOR",
    "MINOR",
    "DISKSEQ",
    "PARTN",
    "IFINDEX",
    "INTERFACE",
    "INTERFACE_OLD",
    "DEVLINKS",
    "TAGS",
    "CURRENT_TAGS",
    "USEC_INITIALIZED",
    "UDEV_DATABASE_VERSION",
];

/// Keys that old udev versions had and current ones reject, with what to use instead.
const REMOVED_KEYS: &[(&str, &str)] = &[
    ("BUS", "SUBSYSTEMS"),
    ("SYSFS", "ATTRS{...}"),
    ("ID", "KERNELS"),
    (
        "DEVLINKS",
        "SYMLINK (or ENV{DEVLINKS} to match the property)",
    ),
    ("DEVTYPE", "ENV{DEVTYPE}"),
    ("IDVENDOR", "ATTRS{idVendor}"),
];

fn key_spec(name: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|spec| spec.name == name)
}

fn ops_list(ops: &[Operator]) -> String {
    ops.iter()
        .map(|op| op.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks a lexed pair against the key table and the value rules. Returns true if it is valid.
fn validate_pair(raw: &RawPair, errors: &mut Vec<RuleError>) -> bool {
    let before = errors.len();
    let key_text = raw.key_text();
    let key = raw.key.as_str();

    let Some(spec) = key_spec(key) else {
        let hint = if let Some((_, instead)) = REMOVED_KEYS
            .iter()
            .find(|(old, _)| old.eq_ignore_ascii_case(key))
        {
            format!(" (use {instead})")
        } else if let Some(spec) = KEYS.iter().find(|spec| spec.name.eq_ignore_ascii_case(key)) {
            format!(" (keys are upper case: {})", spec.name)
        } else {
            String::new()
        };
        errors.push(RuleError::at(
            raw.key_loc,
            ErrorKind::UnknownKey,
            format!("unknown key \"{key_text}\"{hint}"),
        ));
        return false;
    };

    match (spec.attr, raw.attr.as_deref()) {
        (AttrRule::Forbidden, Some(attr)) => errors.push(RuleError::at(
            raw.key_loc,
            ErrorKind::UnexpectedAttribute,
            format!("{key} takes no {{attribute}}, found \"{key}{{{attr}}}\""),
        )),
        (AttrRule::Required, None | Some("")) => errors.push(RuleError::at(
            raw.key_loc,
            ErrorKind::MissingAttribute,
            format!("{key} needs an attribute: {key}{{name}}"),
        )),
        (AttrRule::Optional, Some("")) => errors.push(RuleError::at(
            raw.key_loc,
            ErrorKind::MissingAttribute,
            format!("{key}{{}} has an empty attribute"),
        )),
        _ => {}
    }

    let Some(op) = raw.op else {
        return false; // bad operator, already reported
    };
    if !spec.ops.contains(&op) {
        let match_only = spec.ops.iter().all(|o| o.is_match());
        let assign_only = spec.ops.iter().all(|o| !o.is_match());
        let message = if op.is_match() && assign_only {
            format!(
                "{key} is assigned, not matched: use {} instead of \"{op}\"",
                spec.ops
                    .iter()
                    .map(|o| format!("\"{o}\""))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )
        } else if !op.is_match() && match_only {
            format!("{key} can only be matched: use \"==\" or \"!=\" instead of \"{op}\"")
        } else {
            format!(
                "operator \"{op}\" is not allowed for {key_text} (allowed: {})",
                ops_list(spec.ops)
            )
        };
        errors.push(RuleError::at(
            raw.op_loc,
            ErrorKind::OperatorNotAllowed,
            message,
        ));
        return false;
    }

    if raw.case_insensitive {
        if !op.is_match() {
            errors.push(RuleError::at(
                raw.value_loc,
                ErrorKind::UnquotedValue,
                format!("the \"i\" prefix (case-insensitive) only works with == and !=, not {key_text}{op}"),
            ));
        } else if matches!(key, "TEST" | "PROGRAM" | "IMPORT") {
            errors.push(RuleError::at(
                raw.value_loc,
                ErrorKind::UnquotedValue,
                format!("{key} does not take the \"i\" prefix"),
            ));
        }
    }

    check_attribute(raw, op, errors);
    check_value(raw, op, errors);
    errors.len() == before
}

fn check_attribute(raw: &RawPair, op: Operator, errors: &mut Vec<RuleError>) {
    let Some(attr) = raw.attr.as_deref().filter(|a| !a.is_empty()) else {
        return;
    };
    let key = raw.key.as_str();
    let bad = |errors: &mut Vec<RuleError>, why: String| {
        errors.push(RuleError::at(raw.key_loc, ErrorKind::BadAttribute, why));
    };
    match key {
        "CONST" if !matches!(attr, "arch" | "virt") => bad(
            errors,
            format!("CONST{{{attr}}}: the attribute must be \"arch\" or \"virt\""),
        ),
        "IMPORT"
            if !matches!(
                attr,
                "program" | "builtin" | "file" | "db" | "cmdline" | "parent"
            ) =>
        {
            bad(
                errors,
                format!(
                    "IMPORT{{{attr}}}: the type must be program, builtin, file, db, cmdline or parent"
                ),
            )
        }
        "RUN" if !matches!(attr, "program" | "builtin") => bad(
            errors,
            format!("RUN{{{attr}}}: the type must be program or builtin"),
        ),
        "TEST" if parse_octal_mode(attr).is_none() => bad(
            errors,
            format!("TEST{{{attr}}}: the attribute must be an octal file mode such as 0644"),
        ),
        "ATTR" | "SYSCTL" | "ATTRS" => {
            if let Err(why) = check_format(attr) {
                bad(errors, format!("{key}{{{attr}}}: {why}"));
            }
        }
        "ENV"
            if !op.is_match()
                && (READ_ONLY_PROPERTIES.contains(&attr) || attr.starts_with("SYNTH_ARG_")) =>
        {
            bad(
                errors,
                format!("ENV{{{attr}}} cannot be set by rules (udev or the kernel owns it)"),
            )
        }
        _ => {}
    }
}

fn check_value(raw: &RawPair, op: Operator, errors: &mut Vec<RuleError>) {
    let key = raw.key.as_str();
    let key_text = raw.key_text();
    let value = raw.value.as_str();
    let bad = |errors: &mut Vec<RuleError>, why: String| {
        errors.push(RuleError::at(raw.value_loc, ErrorKind::BadValue, why));
    };
    let format_ok = |errors: &mut Vec<RuleError>, nonempty: bool| {
        if nonempty && value.is_empty() {
            bad(errors, format!("{key_text} needs a non-empty value"));
        } else if let Err(why) = check_format(value) {
            bad(errors, format!("value of {key_text} \"{value}\": {why}"));
        }
    };

    match key {
        "SUBSYSTEM" if matches!(value, "bus" | "class") => bad(
            errors,
            format!("SUBSYSTEM{op}\"{value}\": write \"subsystem\", not \"{value}\""),
        ),
        "SYMLINK" | "ENV" | "ATTR" | "SYSCTL" if !op.is_match() => format_ok(errors, false),
        "TAG" if !op.is_match() => format_ok(errors, true),
        "NAME" if !op.is_match() => {
            if value.is_empty() {
                bad(
                    errors,
                    "NAME=\"\" has no effect: udev never deletes network interfaces".into(),
                );
            } else if value == "%k" {
                bad(errors, "NAME=\"%k\" has no effect".into());
            } else {
                format_ok(errors, false);
            }
        }
        "TEST" | "PROGRAM" | "SECLABEL" => format_ok(errors, true),
        "IMPORT" | "RUN" => {
            format_ok(errors, true);
            if raw.attr.as_deref() == Some("builtin") {
                let name = value.split_ascii_whitespace().next().unwrap_or("");
                if !value.is_empty() && !BUILTINS.contains(&name) {
                    bad(
                        errors,
                        format!(
                            "unknown builtin \"{name}\" in {key_text} (known: {})",
                            BUILTINS.join(", ")
                        ),
                    );
                }
            }
        }
        // A numeric uid/gid needs no further check; a name must be non-empty, without blanks.
        "OWNER" | "GROUP" if value.parse::<u32>().is_err() => {
            format_ok(errors, true);
            if value.chars().any(is_blank) {
                bad(
                    errors,
                    format!("{key}=\"{value}\": a user or group name has no blanks"),
                );
            }
        }
        // A literal octal mode is fine; otherwise it must be a substitution udev resolves later.
        "MODE" if parse_octal_mode(value).is_none() => {
            if value.contains(['$', '%']) {
                format_ok(errors, true);
            } else {
                bad(
                    errors,
                    format!("MODE=\"{value}\" is not an octal mode such as 0660"),
                );
            }
        }
        "OPTIONS" => {
            if let Err(why) = check_option(value) {
                bad(errors, format!("OPTIONS{op}\"{value}\": {why}"));
            }
        }
        "GOTO" | "LABEL" if value.is_empty() => {
            bad(errors, format!("{key} needs a non-empty label name"))
        }
        _ => {}
    }
}

/// `OPTIONS` values udev knows (one per pair).
fn check_option(value: &str) -> Result<(), String> {
    const FLAGS: &[&str] = &[
        "dump",
        "string_escape=none",
        "string_escape=replace",
        "db_persist",
        "watch",
        "nowatch",
    ];
    const LOG_LEVELS: &[&str] = &[
        "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug", "reset",
    ];
    if FLAGS.contains(&value) {
        return Ok(());
    }
    if let Some(node) = value.strip_prefix("static_node=") {
        return if node.is_empty() {
            Err("static_node= needs a device node name".into())
        } else {
            Ok(())
        };
    }
    if let Some(prio) = value.strip_prefix("link_priority=") {
        return prio
            .parse::<i32>()
            .map(|_| ())
            .map_err(|_| format!("link priority \"{prio}\" is not an integer"));
    }
    if let Some(level) = value.strip_prefix("log_level=") {
        let numeric = level.parse::<u8>().is_ok_and(|n| n <= 7);
        return if numeric || LOG_LEVELS.contains(&level) {
            Ok(())
        } else {
            Err(format!(
                "log level \"{level}\" is not one of {} or 0-7",
                LOG_LEVELS.join(", ")
            ))
        };
    }
    Err(format!(
        "unknown option (known: {}, static_node=, link_priority=, log_level=; one option per OPTIONS pair)",
        FLAGS.join(", ")
    ))
}

/// A literal octal mode (1 to 4 octal digits, at most 07777), as udev's `parse_mode()`.
fn parse_octal_mode(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| matches!(b, b'0'..=b'7')) {
        return None;
    }
    u32::from_str_radix(text, 8).ok().filter(|&m| m <= 0o7777)
}

/// The `$name` / `%c` substitutions udev knows (`udev-format.c`), in its lookup order.
const SUBSTITUTIONS: &[(&str, char)] = &[
    ("devnode", 'N'),
    ("tempnode", 'N'),
    ("attr", 's'),
    ("sysfs", 's'),
    ("env", 'E'),
    ("kernel", 'k'),
    ("number", 'n'),
    ("driver", 'd'),
    ("devpath", 'p'),
    ("id", 'b'),
    ("major", 'M'),
    ("minor", 'm'),
    ("result", 'c'),
    ("parent", 'P'),
    ("name", 'D'),
    ("links", 'L'),
    ("root", 'r'),
    ("sys", 'S'),
];

/// Checks `$name{arg}` and `%c{arg}` substitutions strictly, as `udev_check_format()`:
/// every `$` and `%` must start a known substitution or be doubled (`$$`, `%%`).
fn check_format(value: &str) -> Result<(), String> {
    let chars: Vec<char> = value.chars().collect();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if c != '$' && c != '%' {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        if chars.get(i) == Some(&c) {
            i += 1; // "$$" or "%%"
            continue;
        }
        let rest: String = chars[i..].iter().collect();
        let found = if c == '$' {
            SUBSTITUTIONS
                .iter()
                .find(|(name, _)| rest.starts_with(name))
                .map(|&(name, _)| (name, name.chars().count()))
        } else {
            SUBSTITUTIONS
                .iter()
                .find(|&&(_, letter)| chars.get(i) == Some(&letter))
                .map(|&(name, _)| (name, 1))
        };
        let Some((name, len)) = found else {
            let shown: String = chars[start..].iter().take(12).collect();
            return Err(format!(
                "unknown substitution \"{shown}\" (write \"{c}{c}\" for a literal \"{c}\")"
            ));
        };
        i += len;
        let mut arg = String::new();
        if chars.get(i) == Some(&'{') {
            let Some(close) = chars[i..].iter().position(|&ch| ch == '}') else {
                return Err(format!(
                    "substitution \"{c}{name}{{\" has no closing \"}}\""
                ));
            };
            arg = chars[i + 1..i + close].iter().collect();
            if arg.is_empty() {
                return Err(format!(
                    "substitution \"{c}{name}{{}}\" has an empty argument"
                ));
            }
            i += close + 1;
        }
        if matches!(name, "attr" | "sysfs" | "env") && arg.is_empty() {
            return Err(format!(
                "substitution \"{c}{name}\" needs an argument: {c}{name}{{NAME}}"
            ));
        }
        if name == "result" && !arg.is_empty() {
            let number = arg.strip_suffix('+').unwrap_or(&arg);
            if number.parse::<u32>().is_err() {
                return Err(format!(
                    "\"{c}result{{{arg}}}\": the argument must be a number, optionally followed by +"
                ));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Whole-rule and whole-file checks
// ---------------------------------------------------------------------------------------------

fn check_rule(rule: &Rule, errors: &mut Vec<RuleError>) {
    for key in ["GOTO", "LABEL"] {
        let mut found = rule.pairs.iter().filter(|p| p.key == key);
        if let (Some(_), Some(second)) = (found.next(), found.next()) {
            errors.push(RuleError::on_pair(
                second,
                ErrorKind::DuplicateGotoOrLabel,
                format!(
                    "a second {key} in one rule: udev ignores {key}=\"{}\"",
                    second.value
                ),
            ));
        }
    }
    let has_effect = rule
        .pairs
        .iter()
        .any(|p| p.is_assignment() || matches!(p.key.as_str(), "PROGRAM" | "IMPORT"));
    if !has_effect {
        let keys: Vec<String> = rule.pairs.iter().map(|p| p.to_string()).collect();
        errors.push(RuleError::new(
            rule.line,
            None,
            ErrorKind::NoEffect,
            format!(
                "rule only matches ({}) and assigns nothing, so it has no effect",
                keys.join(", ")
            ),
        ));
    }
}

/// Each GOTO needs a LABEL of that name in a later rule; each LABEL should be jumped to.
fn check_labels(rules: &[Rule], errors: &mut Vec<RuleError>) {
    let mut used = vec![false; rules.len()];
    for (index, rule) in rules.iter().enumerate() {
        let Some(goto) = rule.pairs.iter().find(|p| p.assigns("GOTO")) else {
            continue;
        };
        let target = rules
            .iter()
            .enumerate()
            .skip(index + 1)
            .find(|(_, later)| later.label() == Some(goto.value.as_str()));
        match target {
            Some((target_index, _)) => {
                if let Some(flag) = used.get_mut(target_index) {
                    *flag = true;
                }
            }
            None => {
                let earlier = rules[..index]
                    .iter()
                    .any(|r| r.label() == Some(goto.value.as_str()));
                let why = if earlier {
                    " (udev only jumps forward; that label comes earlier)"
                } else {
                    ""
                };
                errors.push(RuleError::on_pair(
                    goto,
                    ErrorKind::UndefinedLabel,
                    format!(
                        "GOTO=\"{}\" has no matching LABEL=\"{}\" later in the file{why}",
                        goto.value, goto.value
                    ),
                ));
            }
        }
    }
    for (rule, used) in rules.iter().zip(used) {
        if used {
            continue;
        }
        if let Some(label) = rule.pairs.iter().find(|p| p.assigns("LABEL")) {
            errors.push(RuleError::on_pair(
                label,
                ErrorKind::UnusedLabel,
                format!("LABEL=\"{}\" is not the target of any GOTO", label.value),
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Checks `text`, expecting failure; returns the errors.
    fn errors_of(text: &str) -> Vec<RuleError> {
        match check(text) {
            Ok(rules) => panic!("expected errors, got {} rules for:\n{text}", rules.len()),
            Err(errors) => errors,
        }
    }

    /// Checks `text`, expecting exactly one error; returns it.
    fn only_error(text: &str) -> RuleError {
        let errors = errors_of(text);
        assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
        errors.into_iter().next().expect("one error")
    }

    fn rules_of(text: &str) -> Vec<Rule> {
        match check(text) {
            Ok(rules) => rules,
            Err(errors) => {
                panic!(
                    "expected no errors, got:\n{}",
                    errors.iter().map(|e| format!("{e}\n")).collect::<String>()
                )
            }
        }
    }

    /// A rule in good standing that the error tests below surround their typos with.
    const GOOD: &str =
        r#"SUBSYSTEM=="tty", ATTRS{idVendor}=="0403", ACTION!="remove", GROUP="pos", MODE="0660""#;

    // --- the shipped file -------------------------------------------------------------------

    #[test]
    fn shipped_rules_pass_check_and_policy() {
        let rules = rules_of(RULES);
        assert!(rules.len() >= 10, "only {} rules", rules.len());
        let violations = check_policy(&rules);
        assert!(violations.is_empty(), "policy violations: {violations:#?}");
    }

    #[test]
    fn shipped_rules_file_name_matches_the_permission_hint() {
        assert!(crate::UDEV_RULES_FILE.ends_with(RULES_FILE_NAME));
        assert!(RULES_FILE_NAME.ends_with(".rules"));
    }

    /// Rules that match `key{attr}` against `wanted` (as one `|` alternative, or within one)
    /// and grant GROUP="pos".
    fn granting_rules<'a>(
        rules: &'a [Rule],
        key: &str,
        attr: Option<&str>,
        wanted: &str,
    ) -> Vec<&'a Rule> {
        rules
            .iter()
            .filter(|rule| {
                rule.find(key, attr).any(|p| {
                    p.op == Operator::Match && p.alternatives().any(|alt| alt.contains(wanted))
                })
            })
            .filter(|rule| {
                rule.assigned("GROUP") == Some(POS_GROUP) && rule.assigned("MODE") == Some("0660")
            })
            .collect()
    }

    #[test]
    fn shipped_rules_cover_ccid_printers_magtek_and_ftdi_with_group_pos() {
        let rules = rules_of(RULES);
        let ccid = granting_rules(&rules, "ENV", Some("ID_USB_INTERFACES"), ":0b????:");
        assert_eq!(ccid.len(), 1, "CCID class 0x0B rule");
        assert!(
            ccid[0]
                .find("ENV", Some("DEVTYPE"))
                .any(|p| p.value == "usb_device")
        );
        assert!(ccid[0].find("SUBSYSTEM", None).any(|p| p.value == "usb"));
        assert!(
            ccid[0]
                .find("SYMLINK", None)
                .any(|p| p.value.starts_with("pos/ccid-"))
        );

        let printer_class = granting_rules(&rules, "ENV", Some("ID_USB_INTERFACES"), ":07????:");
        assert_eq!(printer_class.len(), 1, "printer class 0x07 rule");
        let usblp = granting_rules(&rules, "KERNEL", None, "lp[0-9]*");
        assert_eq!(usblp.len(), 1, "usblp rule");
        assert!(
            usblp[0]
                .find("SUBSYSTEM", None)
                .any(|p| p.value == "usbmisc")
        );
        for vendor in ["04b8", "0519", "1504", "1d90"] {
            assert_eq!(
                granting_rules(&rules, "ATTR", Some("idVendor"), vendor).len(),
                1,
                "printer vendor {vendor}"
            );
        }

        for vendor in ["0801", "0acd"] {
            // usb_device, hidraw and the keyboard-wedge event node.
            let usb = granting_rules(&rules, "ATTR", Some("idVendor"), vendor);
            assert_eq!(usb.len(), 1, "usb_device rule for {vendor}");
            let attrs = granting_rules(&rules, "ATTRS", Some("idVendor"), vendor);
            let subsystems: Vec<&str> = attrs
                .iter()
                .flat_map(|r| r.find("SUBSYSTEM", None))
                .map(|p| p.value.as_str())
                .collect();
            assert!(
                subsystems.contains(&"hidraw"),
                "hidraw rule for {vendor}: {subsystems:?}"
            );
            assert!(
                subsystems.contains(&"input"),
                "event rule for {vendor}: {subsystems:?}"
            );
        }

        for (vendor, product) in [
            ("0403", "6001"),
            ("067b", "2303"),
            ("1a86", "7523"),
            ("10c4", "ea60"),
        ] {
            let serial = granting_rules(&rules, "ATTRS", Some("idVendor"), vendor);
            assert_eq!(serial.len(), 1, "USB-serial rule for {vendor}");
            assert!(serial[0].find("SUBSYSTEM", None).any(|p| p.value == "tty"));
            assert!(
                serial[0]
                    .find("ATTRS", Some("idProduct"))
                    .any(|p| p.value == product)
            );
        }
    }

    #[test]
    fn shipped_rules_never_open_devices_to_everyone() {
        let rules = rules_of(RULES);
        for pair in rules
            .iter()
            .flat_map(|r| r.assignments())
            .filter(|p| p.key == "MODE")
        {
            assert_eq!(pair.value, "0660", "line {}", pair.line);
        }
        let tags: Vec<&Pair> = rules.iter().flat_map(|r| r.find("TAG", None)).collect();
        assert!(
            tags.is_empty(),
            "no tags, in particular no uaccess: {tags:?}"
        );
        assert!(
            rules
                .iter()
                .flat_map(|r| r.find("OWNER", None))
                .next()
                .is_none(),
            "access is by group only"
        );
        // Every pair's link is under pos/.
        for pair in rules.iter().flat_map(|r| r.find("SYMLINK", None)) {
            assert_eq!(pair.op, Operator::Add);
            assert!(
                pair.value.starts_with("pos/"),
                "line {}: {}",
                pair.line,
                pair.value
            );
        }
    }

    // --- each kind of typo, with its line ----------------------------------------------------

    #[test]
    fn unknown_key_is_reported_with_its_line() {
        let e = only_error(&format!(
            "{GOOD}\n{GOOD}\nSUBSYSTEM==\"usb\", VENDOR==\"0801\", GROUP=\"pos\"\n"
        ));
        assert_eq!(
            (e.line, e.column, e.kind),
            (3, Some(19), ErrorKind::UnknownKey)
        );
        assert_eq!(e.to_string(), "line 3: unknown key \"VENDOR\"");
    }

    #[test]
    fn lower_case_and_removed_keys_get_a_hint() {
        let e = only_error("subsystem==\"usb\", GROUP=\"pos\"\n");
        assert_eq!(e.kind, ErrorKind::UnknownKey);
        assert!(e.message.contains("SUBSYSTEM"), "{e}");
        let e = only_error("BUS==\"usb\", GROUP=\"pos\"\n");
        assert!(e.message.contains("SUBSYSTEMS"), "{e}");
    }

    #[test]
    fn unclosed_attribute_brace_is_an_unknown_key() {
        let e = only_error(&format!(
            "# header\n\n{GOOD}\nSUBSYSTEM==\"usb\", ATTR{{idVendor==\"0801\", GROUP=\"pos\"\n"
        ));
        assert_eq!((e.line, e.kind), (4, ErrorKind::UnknownKey));
        assert!(
            e.to_string()
                .starts_with("line 4: unknown key \"ATTR{idVendor\""),
            "{e}"
        );
    }

    #[test]
    fn bad_operator_is_reported() {
        let e = only_error(&format!(
            "{GOOD}\nSUBSYSTEM==\"usb\", ACTION=!\"remove\", GROUP=\"pos\"\n"
        ));
        assert_eq!(
            (e.line, e.column, e.kind),
            (2, Some(25), ErrorKind::BadOperator)
        );
        assert!(
            e.message.contains("\"=!\"")
                && e.message.contains("ACTION")
                && e.message.contains("!="),
            "{e}"
        );

        for op in ["===", "=>", "<=", "=+", "!"] {
            let e = only_error(&format!("KERNEL{op}\"lp0\", GROUP=\"pos\"\n"));
            assert_eq!(e.kind, ErrorKind::BadOperator, "{op}: {e}");
        }
    }

    #[test]
    fn match_operator_on_assignment_only_key() {
        let e = only_error(&format!(
            "{GOOD}\n\n\nSUBSYSTEM==\"usb\", GROUP==\"pos\", MODE=\"0660\"\n"
        ));
        assert_eq!((e.line, e.kind), (4, ErrorKind::OperatorNotAllowed));
        assert!(
            e.message.contains("GROUP") && e.message.contains("\"==\""),
            "{e}"
        );
        for text in [
            "MODE!=\"0660\"",
            "OWNER==\"root\"",
            "RUN==\"/bin/true\"",
            "GOTO==\"x\"",
            "OPTIONS==\"watch\"",
        ] {
            let e = only_error(&format!("KERNEL==\"lp0\", {text}\n"));
            assert_eq!(e.kind, ErrorKind::OperatorNotAllowed, "{text}: {e}");
        }
    }

    #[test]
    fn assignment_operator_on_match_only_key() {
        let e = only_error(&format!("{GOOD}\nSUBSYSTEM=\"usb\", GROUP=\"pos\"\n"));
        assert_eq!(
            (e.line, e.column, e.kind),
            (2, Some(10), ErrorKind::OperatorNotAllowed)
        );
        assert!(
            e.message.contains("SUBSYSTEM") && e.message.contains("\"==\""),
            "{e}"
        );
        for text in [
            "KERNEL+=\"lp0\"",
            "ATTRS{idVendor}=\"0801\"",
            "ACTION:=\"add\"",
            "DRIVERS-=\"usb\"",
        ] {
            let e = only_error(&format!("{text}, GROUP=\"pos\"\n"));
            assert_eq!(e.kind, ErrorKind::OperatorNotAllowed, "{text}: {e}");
        }
    }

    #[test]
    fn operators_udev_only_guesses_at_are_rejected() {
        for text in [
            "GROUP+=\"pos\"",
            "ENV{X}:=\"1\"",
            "ATTR{power/control}+=\"on\"",
            "TAG:=\"x\"",
            "GOTO:=\"x\"",
        ] {
            let e = only_error(&format!("KERNEL==\"lp0\", {text}\n"));
            assert_eq!(e.kind, ErrorKind::OperatorNotAllowed, "{text}: {e}");
            assert!(e.message.contains("not allowed"), "{e}");
        }
    }

    #[test]
    fn missing_closing_quote() {
        // `"pos, MODE="` reads as GROUP's value; what follows it is garbage, all on line 3.
        let errors = errors_of(&format!(
            "{GOOD}\n{GOOD}\nKERNEL==\"lp0\", GROUP=\"pos, MODE=\"0660\"\n"
        ));
        assert!(errors.iter().all(|e| e.line == 3), "{errors:#?}");
        assert!(
            errors.iter().any(|e| e.message.contains("\"pos, MODE=\"")),
            "{errors:#?}"
        );
        assert!(
            errors.iter().any(|e| e.kind == ErrorKind::MissingComma),
            "{errors:#?}"
        );

        let e = only_error(&format!("{GOOD}\nKERNEL==\"lp0\", GROUP=\"pos\n{GOOD}\n"));
        assert_eq!(
            (e.line, e.column, e.kind),
            (2, Some(22), ErrorKind::UnterminatedValue)
        );
        assert!(e.message.contains("GROUP"), "{e}");
    }

    #[test]
    fn unquoted_value() {
        let e = only_error(&format!("{GOOD}\nKERNEL==lp0, GROUP=\"pos\"\n"));
        assert_eq!((e.line, e.kind), (2, ErrorKind::UnquotedValue));
        assert!(
            e.message.contains("KERNEL") && e.message.contains("double quotes"),
            "{e}"
        );
        let e = only_error("KERNEL=='lp0', GROUP=\"pos\"\n");
        assert_eq!(e.kind, ErrorKind::UnquotedValue);
    }

    #[test]
    fn missing_comma_between_pairs() {
        let e = only_error(&format!(
            "{GOOD}\nSUBSYSTEM==\"usb\" GROUP=\"pos\", MODE=\"0660\"\n"
        ));
        assert_eq!(
            (e.line, e.column, e.kind),
            (2, Some(18), ErrorKind::MissingComma)
        );
        assert!(
            e.message.contains("SUBSYSTEM") && e.message.contains("GROUP"),
            "{e}"
        );
        // No blank at all.
        let e = only_error("SUBSYSTEM==\"usb\"GROUP=\"pos\"\n");
        assert_eq!(e.kind, ErrorKind::MissingComma);
    }

    #[test]
    fn errors_after_a_missing_comma_are_still_found() {
        let errors = errors_of("SUBSYSTEM==\"usb\" GROUP==\"pos\"\n");
        let kinds: Vec<ErrorKind> = errors.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [ErrorKind::MissingComma, ErrorKind::OperatorNotAllowed]
        );
    }

    #[test]
    fn stray_commas() {
        for text in [
            ", KERNEL==\"lp0\", GROUP=\"pos\"",
            "KERNEL==\"lp0\", GROUP=\"pos\",",
            "KERNEL==\"lp0\",, GROUP=\"pos\"",
        ] {
            let e = only_error(text);
            assert_eq!(e.kind, ErrorKind::StrayComma, "{text}: {e}");
        }
    }

    #[test]
    fn missing_attribute_on_attrs() {
        let e = only_error(&format!(
            "{GOOD}\nSUBSYSTEM==\"tty\", ATTRS==\"0403\", GROUP=\"pos\"\n"
        ));
        assert_eq!((e.line, e.kind), (2, ErrorKind::MissingAttribute));
        assert!(e.message.contains("ATTRS{"), "{e}");
        for text in [
            "ENV==\"x\"",
            "ATTR{}==\"x\"",
            "IMPORT=\"usb_id\"",
            "SECLABEL=\"x\"",
        ] {
            let e = only_error(&format!("KERNEL==\"lp0\", {text}, GROUP=\"pos\"\n"));
            assert_eq!(e.kind, ErrorKind::MissingAttribute, "{text}: {e}");
        }
    }

    #[test]
    fn unexpected_attribute_on_group() {
        let e = only_error(&format!("{GOOD}\nKERNEL==\"lp0\", GROUP{{gid}}=\"pos\"\n"));
        assert_eq!(
            (e.line, e.column, e.kind),
            (2, Some(16), ErrorKind::UnexpectedAttribute)
        );
        assert!(e.message.contains("GROUP{gid}"), "{e}");
        let e = only_error("SUBSYSTEM{x}==\"usb\", GROUP=\"pos\"\n");
        assert_eq!(e.kind, ErrorKind::UnexpectedAttribute);
    }

    #[test]
    fn bad_attributes() {
        for text in [
            "CONST{foo}==\"x\"",
            "IMPORT{bogus}=\"x\"",
            "RUN{script}+=\"x\"",
            "TEST{rw}==\"/x\"",
        ] {
            let e = only_error(&format!("KERNEL==\"lp0\", {text}, GROUP=\"pos\"\n"));
            assert_eq!(e.kind, ErrorKind::BadAttribute, "{text}: {e}");
        }
        let e = only_error("KERNEL==\"lp0\", ENV{DEVNAME}=\"x\"\n");
        assert_eq!(e.kind, ErrorKind::BadAttribute);
        // Matching a read-only property is fine.
        rules_of("ENV{DEVTYPE}==\"usb_device\", GROUP=\"pos\"\n");
    }

    #[test]
    fn goto_without_label() {
        let e = only_error(&format!(
            "{GOOD}\nACTION==\"remove\", GOTO=\"pos_end\"\n{GOOD}\n"
        ));
        assert_eq!(
            (e.line, e.column, e.kind),
            (2, Some(19), ErrorKind::UndefinedLabel)
        );
        assert_eq!(
            e.to_string(),
            "line 2: GOTO=\"pos_end\" has no matching LABEL=\"pos_end\" later in the file"
        );
    }

    #[test]
    fn goto_and_label_problems_are_all_reported() {
        let errors = errors_of(&format!(
            "{GOOD}\nACTION==\"remove\", GOTO=\"pos_end\"\n{GOOD}\nLABEL=\"pos_ned\"\n"
        ));
        let found: Vec<(usize, ErrorKind)> = errors.iter().map(|e| (e.line, e.kind)).collect();
        assert_eq!(
            found,
            [(2, ErrorKind::UndefinedLabel), (4, ErrorKind::UnusedLabel)]
        );

        // udev only jumps forward.
        let errors = errors_of("LABEL=\"back\"\nACTION==\"remove\", GOTO=\"back\"\n");
        let found: Vec<(usize, ErrorKind)> = errors.iter().map(|e| (e.line, e.kind)).collect();
        assert_eq!(
            found,
            [(1, ErrorKind::UnusedLabel), (2, ErrorKind::UndefinedLabel)]
        );
        assert!(errors[1].message.contains("forward"), "{}", errors[1]);

        let e = only_error("ACTION==\"remove\", GOTO=\"a\", GOTO=\"b\"\nLABEL=\"a\"\n");
        assert_eq!(e.kind, ErrorKind::DuplicateGotoOrLabel);
    }

    #[test]
    fn goto_with_label_is_accepted() {
        let rules = rules_of(&format!(
            "ACTION==\"remove\", GOTO=\"pos_end\"\n{GOOD}\nLABEL=\"pos_end\"\n"
        ));
        assert_eq!(rules[0].goto(), Some("pos_end"));
        assert_eq!(rules[2].label(), Some("pos_end"));
    }

    #[test]
    fn values_are_checked() {
        for (text, needle) in [
            ("SYMLINK+=\"pos/x-$env\"", "$env"),
            ("SYMLINK+=\"pos/x-$bogus\"", "unknown substitution"),
            ("SYMLINK+=\"pos/x-$env{ID_SERIAL\"", "closing"),
            ("SYMLINK+=\"pos/x-%q\"", "unknown substitution"),
            ("IMPORT{builtin}=\"usb_ids\"", "unknown builtin"),
            ("RUN{builtin}+=\"frobnicate\"", "unknown builtin"),
            ("OPTIONS+=\"watch,nowatch\"", "unknown option"),
            ("OPTIONS=\"link_priority=high\"", "integer"),
            ("MODE=\"rw-rw----\"", "octal"),
            ("MODE=\"08\"", "octal"),
            ("TAG+=\"\"", "non-empty"),
            ("RUN+=\"\"", "non-empty"),
            ("NAME=\"%k\"", "no effect"),
            ("SYMLINK+=e\"pos/\\q\"", "escape"),
        ] {
            let e = only_error(&format!("KERNEL==\"lp0\", {text}\n"));
            assert_eq!(e.kind, ErrorKind::BadValue, "{text}: {e}");
            assert!(e.message.contains(needle), "{text}: {e}");
        }
        // Doubled $ and % are literal; globs in match values are not substitutions.
        rules_of(
            "KERNEL==\"lp[0-9]*|usb%d\", RUN+=\"/bin/echo $$HOME 100%%\", SYMLINK+=\"pos/$result{2+}\"\n",
        );
    }

    #[test]
    fn rule_without_assignment_has_no_effect() {
        let e = only_error(&format!(
            "{GOOD}\nSUBSYSTEM==\"usb\", ATTR{{idVendor}}==\"0801\"\n"
        ));
        assert_eq!((e.line, e.kind), (2, ErrorKind::NoEffect));
        // IMPORT and PROGRAM count as doing something.
        rules_of(
            "SUBSYSTEM==\"hidraw\", IMPORT{builtin}=\"usb_id\"\nSUBSYSTEM==\"usb\", PROGRAM==\"/bin/true\"\n",
        );
    }

    #[test]
    fn end_of_line_comment_and_misplaced_backslash() {
        let e = only_error(&format!("{GOOD} # printers\n"));
        assert_eq!((e.line, e.kind), (1, ErrorKind::UnexpectedCharacter));
        assert!(e.message.contains("comment"), "{e}");
        let e = only_error(&format!("{GOOD}, \\ \nKERNEL==\"lp0\", GROUP=\"pos\"\n"));
        assert_eq!(e.kind, ErrorKind::UnexpectedCharacter);
        assert!(e.message.contains("backslash"), "{e}");
    }

    #[test]
    fn errors_are_collected_across_lines() {
        let text = "FOO==\"x\", GROUP=\"pos\"\nSUBSYSTEM=\"usb\", GROUP=\"pos\"\n# ok\nKERNEL==\"lp0\", GROUP==\"pos\"\n";
        let errors = errors_of(text);
        let found: Vec<(usize, ErrorKind)> = errors.iter().map(|e| (e.line, e.kind)).collect();
        assert_eq!(
            found,
            [
                (1, ErrorKind::UnknownKey),
                (2, ErrorKind::OperatorNotAllowed),
                (4, ErrorKind::OperatorNotAllowed)
            ]
        );
    }

    // --- policy ------------------------------------------------------------------------------

    fn policy_errors(text: &str) -> Vec<RuleError> {
        check_policy(&rules_of(text))
    }

    fn only_policy_error(text: &str) -> RuleError {
        let errors = policy_errors(text);
        assert_eq!(
            errors.len(),
            1,
            "expected one policy error, got {errors:#?}"
        );
        errors.into_iter().next().expect("one error")
    }

    #[test]
    fn policy_rejects_world_writable_mode() {
        let text = format!(
            "{GOOD}\n\nKERNEL==\"lp0\", ACTION!=\"remove\", GROUP=\"pos\", MODE=\"0666\"\n"
        );
        let e = only_policy_error(&text);
        assert_eq!(
            (e.line, e.column, e.kind),
            (3, Some(47), ErrorKind::UnsafeMode)
        );
        assert!(
            e.message.contains("0666") && e.message.contains("world"),
            "{e}"
        );
        assert!(e.kind.is_policy());
        for mode in ["0664", "0606", "666", "0777"] {
            let text =
                format!("KERNEL==\"lp0\", ACTION!=\"remove\", GROUP=\"pos\", MODE=\"{mode}\"\n");
            assert_eq!(
                only_policy_error(&text).kind,
                ErrorKind::UnsafeMode,
                "{mode}"
            );
        }
        for mode in ["0670", "2660", "0760"] {
            let text =
                format!("KERNEL==\"lp0\", ACTION!=\"remove\", GROUP=\"pos\", MODE=\"{mode}\"\n");
            assert_eq!(
                only_policy_error(&text).kind,
                ErrorKind::UnsafeMode,
                "{mode}"
            );
        }
        for mode in ["0660", "0640", "0600", "0620", "660"] {
            let text =
                format!("KERNEL==\"lp0\", ACTION!=\"remove\", GROUP=\"pos\", MODE=\"{mode}\"\n");
            assert!(policy_errors(&text).is_empty(), "{mode}");
        }
    }

    #[test]
    fn policy_requires_group_pos_with_mode() {
        let e = only_policy_error("KERNEL==\"lp0\", ACTION!=\"remove\", MODE=\"0660\"\n");
        assert_eq!(e.kind, ErrorKind::GroupNotPos);
        let errors =
            policy_errors("KERNEL==\"lp0\", ACTION!=\"remove\", GROUP=\"lp\", MODE=\"0660\"\n");
        assert!(errors.iter().all(|e| e.kind == ErrorKind::GroupNotPos) && !errors.is_empty());
    }

    #[test]
    fn policy_rejects_symlink_outside_pos() {
        let text = format!(
            "{GOOD}\nKERNEL==\"lp0\", ACTION!=\"remove\", SYMLINK+=\"printer-$env{{ID_SERIAL}}\"\n"
        );
        let e = only_policy_error(&text);
        assert_eq!((e.line, e.kind), (2, ErrorKind::SymlinkOutsidePos));
        assert!(
            e.message.contains("printer-$env{ID_SERIAL}") && e.message.contains("pos/"),
            "{e}"
        );
        // Every link of a space-separated list counts; ".." may not climb out.
        for value in ["pos/a serial/b", "pos/../usb/lp0", "pos/", "/dev/pos/x"] {
            let text = format!("KERNEL==\"lp0\", ACTION!=\"remove\", SYMLINK+=\"{value}\"\n");
            assert_eq!(
                only_policy_error(&text).kind,
                ErrorKind::SymlinkOutsidePos,
                "{value}"
            );
        }
        // `=` would drop /dev/serial/by-id/ and the like.
        let e = only_policy_error("KERNEL==\"lp0\", ACTION!=\"remove\", SYMLINK=\"pos/x\"\n");
        assert!(e.message.contains("+="), "{e}");
    }

    #[test]
    fn policy_requires_remove_guard() {
        let e = only_policy_error("KERNEL==\"lp0\", GROUP=\"pos\", MODE=\"0660\"\n");
        assert_eq!((e.line, e.kind), (1, ErrorKind::UnguardedRemove));
        let e = only_policy_error(
            "KERNEL==\"lp0\", ACTION==\"add|remove\", GROUP=\"pos\", MODE=\"0660\"\n",
        );
        assert_eq!(e.kind, ErrorKind::UnguardedRemove);
        for guard in [
            "ACTION!=\"remove\"",
            "ACTION==\"add|change\"",
            "ACTION==\"add\"",
            "ACTION!=\"rem*\"",
        ] {
            assert!(
                policy_errors(&format!(
                    "KERNEL==\"lp0\", {guard}, GROUP=\"pos\", MODE=\"0660\"\n"
                ))
                .is_empty()
            );
        }
        // The GOTO style guards everything up to the label, and nothing after it.
        let text = "ACTION==\"remove\", GOTO=\"pos_end\"\nKERNEL==\"lp0\", GROUP=\"pos\", MODE=\"0660\"\n\
                    LABEL=\"pos_end\"\nKERNEL==\"lp1\", GROUP=\"pos\", MODE=\"0660\"\n";
        let e = only_policy_error(text);
        assert_eq!((e.line, e.kind), (4, ErrorKind::UnguardedRemove));
        // A jump that only some remove events take guards nothing.
        let text = "ACTION==\"remove\", SUBSYSTEM==\"usb\", GOTO=\"pos_end\"\n\
                    KERNEL==\"lp0\", GROUP=\"pos\", MODE=\"0660\"\nLABEL=\"pos_end\"\n";
        assert_eq!(only_policy_error(text).kind, ErrorKind::UnguardedRemove);
    }

    #[test]
    fn policy_rejects_uaccess() {
        let e = only_policy_error(&format!(
            "{GOOD}\nKERNEL==\"hidraw*\", ACTION!=\"remove\", TAG+=\"uaccess\"\n"
        ));
        assert_eq!((e.line, e.kind), (2, ErrorKind::UaccessTag));
    }

    // --- lexing ------------------------------------------------------------------------------

    #[test]
    fn line_continuation_joins_lines() {
        let text = "# comment\nSUBSYSTEM==\"usb\", \\\n   ENV{DEVTYPE}==\"usb_device\", \\\n\tGROUP=\"pos\"\n\n";
        let rules = rules_of(text);
        assert_eq!(rules.len(), 1);
        let rule = &rules[0];
        assert_eq!((rule.line(), rule.last_line()), (2, 4));
        let keys: Vec<(&str, usize, usize)> = rule
            .pairs()
            .iter()
            .map(|p| (p.key.as_str(), p.line, p.column))
            .collect();
        assert_eq!(keys, [("SUBSYSTEM", 2, 1), ("ENV", 3, 4), ("GROUP", 4, 2)]);
        assert_eq!(rule.pairs()[1].attr.as_deref(), Some("DEVTYPE"));
        assert_eq!(rule.pairs()[1].value, "usb_device");
    }

    #[test]
    fn errors_in_continued_rules_report_the_physical_line() {
        let text = "SUBSYSTEM==\"usb\", \\\n  ENV{DEVTYPE}==\"usb_device\", \\\n  GROUP==\"pos\"\n";
        let e = only_error(text);
        assert_eq!(
            (e.line, e.column, e.kind),
            (3, Some(8), ErrorKind::OperatorNotAllowed)
        );
    }

    #[test]
    fn continuation_joins_without_a_blank() {
        // udev drops the next line's indentation and inserts nothing: the pairs touch.
        let e = only_error("SUBSYSTEM==\"usb\"\\\n  GROUP=\"pos\"\n");
        assert_eq!((e.line, e.kind), (2, ErrorKind::MissingComma));
        // A quoted value may span a continuation.
        let rules = rules_of("KERNEL==\"lp0\", RUN+=\"/bin/echo a \\\n  b\"\n");
        assert_eq!(rules[0].pairs()[1].value, "/bin/echo a b");
    }

    #[test]
    fn comment_lines_inside_a_continuation_are_skipped() {
        let text =
            "SUBSYSTEM==\"usb\", \\\n# why the group\n  # indented comment \\\n  GROUP=\"pos\"\n";
        let rules = rules_of(text);
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].pairs().len(), 2);
        assert_eq!(rules[0].assigned("GROUP"), Some("pos"));
    }

    #[test]
    fn comments_blank_lines_and_crlf_are_ignored() {
        let text = "# a comment\r\n\r\n   \t\r\n    # indented comment \"with quotes\r\nKERNEL==\"lp0\", GROUP=\"pos\"\r\n";
        let rules = rules_of(text);
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].line(), 5);
        assert_eq!(rules[0].assigned("GROUP"), Some("pos"));
        assert_eq!(check("").map(|r| r.len()), Ok(0));
        assert_eq!(check("# only a comment\n\n").map(|r| r.len()), Ok(0));
    }

    #[test]
    fn file_ending_in_a_continuation_is_an_error() {
        let e = only_error("KERNEL==\"lp0\", GROUP=\"pos\", \\\n");
        assert_eq!((e.line, e.kind), (1, ErrorKind::UnterminatedContinuation));
    }

    #[test]
    fn over_long_lines_are_rejected() {
        let text = format!(
            "KERNEL==\"lp0\", RUN+=\"/bin/echo {}\"\n",
            "x".repeat(MAX_LINE_LEN)
        );
        assert_eq!(only_error(&text).kind, ErrorKind::LineTooLong);
    }

    #[test]
    fn quotes_escapes_and_prefixes() {
        let rules = rules_of(
            "KERNEL==\"lp0\", ENV{X}=\"say \\\"hi\\\"\", ENV{Y}=e\"a\\tb\\x41\\n\", ATTRS{product}==i\"magtek*\", \
             ENV{Z}==ei\"x\\\\y\", SYMLINK += \"pos/spaced\"\n",
        );
        let pairs = rules[0].pairs();
        assert_eq!(pairs[1].value, "say \"hi\"");
        assert!(!pairs[1].escaped);
        assert_eq!(pairs[2].value, "a\tbA\n");
        assert!(pairs[2].escaped);
        assert!(pairs[3].case_insensitive && !pairs[3].escaped);
        assert_eq!(pairs[4].value, "x\\y");
        assert!(pairs[4].escaped && pairs[4].case_insensitive);
        assert_eq!(
            (pairs[5].op, pairs[5].value.as_str()),
            (Operator::Add, "pos/spaced")
        );
        // Display writes a pair back in rules syntax.
        assert_eq!(pairs[1].to_string(), "ENV{X}=\"say \\\"hi\\\"\"");
        assert_eq!(pairs[3].to_string(), "ATTRS{product}==i\"magtek*\"");

        // A backslash before the closing quote escapes it, as in udev.
        assert_eq!(
            only_error("KERNEL==\"lp0\", RUN+=\"c:\\\"\n").kind,
            ErrorKind::UnterminatedValue
        );
        // `i` only with matches; TEST, PROGRAM and IMPORT do not take it.
        assert_eq!(
            only_error("KERNEL==\"lp0\", GROUP=i\"pos\"\n").kind,
            ErrorKind::UnquotedValue
        );
        assert_eq!(
            only_error("KERNEL==\"lp0\", TEST==i\"/x\", GROUP=\"pos\"\n").kind,
            ErrorKind::UnquotedValue
        );
        // Unknown or doubled prefixes.
        assert_eq!(
            only_error("KERNEL==x\"lp0\", GROUP=\"pos\"\n").kind,
            ErrorKind::UnquotedValue
        );
        assert_eq!(
            only_error("KERNEL==ee\"lp0\", GROUP=\"pos\"\n").kind,
            ErrorKind::UnquotedValue
        );
    }

    #[test]
    fn every_key_in_the_table_parses_with_its_operators() {
        for spec in KEYS {
            for &op in spec.ops {
                let attr = match (spec.name, spec.attr) {
                    ("CONST", _) => "{arch}",
                    ("IMPORT", _) | ("RUN", _) => "{program}",
                    ("TEST", _) => "{0644}",
                    ("ENV", _) => "{POS_X}",
                    (_, AttrRule::Required) => "{x}",
                    _ => "",
                };
                let value = match spec.name {
                    "MODE" => "0660",
                    "OPTIONS" => "watch",
                    "GOTO" => "pos_end",
                    "LABEL" => "pos_start",
                    _ => "/bin/true",
                };
                let mut text = format!(
                    "KERNEL==\"lp0\", {}{attr}{op}\"{value}\", ENV{{POS_Y}}=\"1\"\n",
                    spec.name
                );
                if spec.name == "GOTO" {
                    text.push_str("LABEL=\"pos_end\"\n");
                }
                if spec.name == "LABEL" {
                    text.insert_str(0, "GOTO=\"pos_start\"\n");
                }
                let rules = rules_of(&text);
                let rule = if spec.name == "LABEL" {
                    &rules[1]
                } else {
                    &rules[0]
                };
                let pair = &rule.pairs()[1];
                assert_eq!(pair.key, spec.name, "{text}");
                assert_eq!(pair.op, op, "{text}");
                assert_eq!(pair.value, value, "{text}");
            }
        }
    }

    #[test]
    fn glob_matching_for_action_guards() {
        assert!(glob_match("remove", "remove"));
        assert!(glob_match("rem*", "remove"));
        assert!(glob_match("*", "remove"));
        assert!(glob_match("r?move", "remove"));
        assert!(glob_match("[qr]emove", "remove"));
        assert!(glob_match("[a-z]emove", "remove"));
        assert!(!glob_match("[!r]emove", "remove"));
        assert!(!glob_match("add", "remove"));
        assert!(!glob_match("remove?", "remove"));
        assert!(glob_match("[", "["));
        assert!(!glob_match("[abc", "a"));
    }

    // --- properties --------------------------------------------------------------------------

    /// Fragments that make up udev-ish text, to reach deep into the lexer.
    fn fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("SUBSYSTEM".to_string()),
            Just("ATTRS{idVendor}".to_string()),
            Just("ENV{".to_string()),
            Just("GROUP".to_string()),
            Just("GOTO".to_string()),
            Just("LABEL".to_string()),
            Just("==".to_string()),
            Just("=".to_string()),
            Just("!".to_string()),
            Just("+=".to_string()),
            Just("\"".to_string()),
            Just("e\"".to_string()),
            Just("\\".to_string()),
            Just("\\x4".to_string()),
            Just("\\\"".to_string()),
            Just(",".to_string()),
            Just(" ".to_string()),
            Just("\n".to_string()),
            Just("\\\n".to_string()),
            Just("#".to_string()),
            Just("}".to_string()),
            Just("$env{".to_string()),
            Just("%".to_string()),
            Just("[".to_string()),
            "[a-z0-9]{0,4}",
            any::<char>().prop_map(|c| c.to_string()),
        ]
    }

    fn line_count(text: &str) -> usize {
        text.split('\n').count().max(1)
    }

    proptest! {
        #[test]
        fn check_never_panics_on_arbitrary_text(text in any::<String>()) {
            if let Err(errors) = check(&text) {
                prop_assert!(!errors.is_empty());
                for e in &errors {
                    prop_assert!(e.line >= 1 && e.line <= line_count(&text), "{e:?}");
                    prop_assert!(!e.message.is_empty());
                }
            }
        }

        #[test]
        fn check_never_panics_on_udev_like_text(parts in proptest::collection::vec(fragment(), 0..60)) {
            let text: String = parts.concat();
            match check(&text) {
                Ok(rules) => {
                    // Whatever parses also passes the policy checker without panicking.
                    let _ = check_policy(&rules);
                    for rule in &rules {
                        prop_assert!(rule.line() <= rule.last_line());
                        prop_assert!(!rule.pairs().is_empty());
                    }
                }
                Err(errors) => {
                    for e in &errors {
                        prop_assert!(e.line >= 1 && e.line <= line_count(&text), "{e:?}");
                    }
                }
            }
        }

        #[test]
        fn well_formed_rules_are_accepted_and_round_trip(
            vendor in "[0-9a-f]{4}",
            serial in "[A-Za-z0-9_.-]{1,12}",
            blanks in "[ \t]{0,3}",
            continued in any::<bool>(),
        ) {
            let sep = if continued { format!(",{blanks}\\\n{blanks}") } else { format!(",{blanks}") };
            let text = [
                "SUBSYSTEM==\"tty\"".to_string(),
                format!("ATTRS{{idVendor}}{blanks}=={blanks}\"{vendor}\""),
                format!("ATTRS{{serial}}==\"{serial}\""),
                "ACTION!=\"remove\"".to_string(),
                "GROUP=\"pos\"".to_string(),
                "MODE=\"0660\"".to_string(),
                format!("SYMLINK+=\"pos/serial-{serial}\""),
            ]
            .join(&sep);
            let rules = check(&text).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            prop_assert_eq!(rules.len(), 1);
            prop_assert_eq!(rules[0].pairs().len(), 7);
            prop_assert!(check_policy(&rules).is_empty());
            // Writing the pairs back gives text that parses to the same pairs.
            let again: Vec<String> = rules[0].pairs().iter().map(|p| p.to_string()).collect();
            let reparsed = check(&again.join(", ")).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            let strip = |r: &Rule| r.pairs().iter().map(|p| (p.key.clone(), p.attr.clone(), p.op, p.value.clone())).collect::<Vec<_>>();
            prop_assert_eq!(strip(&reparsed[0]), strip(&rules[0]));
        }
    }
}
