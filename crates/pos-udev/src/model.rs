//! What a parsed rules file is: [`Rule`]s of [`Pair`]s, each with its [`Operator`].

use std::fmt;

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

    pub(crate) fn from_text(text: &str) -> Option<Operator> {
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
    pub(crate) fn assigns(&self, key: &str) -> bool {
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
    pub(crate) line: usize,
    pub(crate) last_line: usize,
    pub(crate) pairs: Vec<Pair>,
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
