//! The problems [`check`](crate::check) and [`check_policy`](crate::check_policy) report.

use std::fmt;

#[cfg(doc)]
use crate::{MAX_LINE_LEN, check, check_policy};

use crate::lexer::Loc;
use crate::model::Pair;

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
    pub(crate) fn new(
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

    pub(crate) fn at(loc: Loc, kind: ErrorKind, message: impl Into<String>) -> Self {
        RuleError::new(loc.line, Some(loc.col), kind, message)
    }

    pub(crate) fn on_pair(pair: &Pair, kind: ErrorKind, message: impl Into<String>) -> Self {
        RuleError::new(pair.line, Some(pair.column), kind, message)
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for RuleError {}
