//! Lexing: physical lines to logical lines (continuations joined, comments dropped), and one
//! `KEY{attribute} OPERATOR "value"` pair at a time.

use crate::error::{ErrorKind, RuleError};
use crate::model::Operator;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Loc {
    pub(crate) line: usize,
    pub(crate) col: usize,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Ch {
    pub(crate) c: char,
    pub(crate) loc: Loc,
}

pub(crate) struct LogicalLine {
    pub(crate) chars: Vec<Ch>,
    pub(crate) first_line: usize,
    pub(crate) last_line: usize,
}

/// udev's WHITESPACE: space, tab, newline, carriage return.
pub(crate) fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

pub(crate) fn logical_lines(text: &str, errors: &mut Vec<RuleError>) -> Vec<LogicalLine> {
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

pub(crate) struct Cursor<'a> {
    pub(crate) chars: &'a [Ch],
    pub(crate) pos: usize,
}

impl Cursor<'_> {
    pub(crate) fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).map(|ch| ch.c)
    }

    fn peek_at(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).map(|ch| ch.c)
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    pub(crate) fn bump(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    pub(crate) fn skip_blanks(&mut self) {
        while self.peek().is_some_and(is_blank) {
            self.pos += 1;
        }
    }

    /// Location of the current character, or just past the last one at the end.
    pub(crate) fn loc(&self) -> Loc {
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
pub(crate) fn is_operator_char(c: char) -> bool {
    matches!(c, '=' | '!' | '+' | '-' | ':' | '<' | '>' | '~')
}

/// A pair as lexed, before the key table is consulted.
pub(crate) struct RawPair {
    pub(crate) key: String,
    pub(crate) attr: Option<String>,
    /// `None` when the operator text was not a udev operator (already reported).
    pub(crate) op: Option<Operator>,
    pub(crate) value: String,
    pub(crate) escaped: bool,
    pub(crate) case_insensitive: bool,
    pub(crate) key_loc: Loc,
    pub(crate) op_loc: Loc,
    pub(crate) value_loc: Loc,
}

impl RawPair {
    pub(crate) fn key_text(&self) -> String {
        match &self.attr {
            Some(attr) => format!("{}{{{attr}}}", self.key),
            None => self.key.clone(),
        }
    }
}

/// Lexes one pair at the cursor. Reports and returns `None` on errors that leave the rest of
/// the line unreadable; pushes recoverable ones and returns the pair with `op: None`.
pub(crate) fn lex_pair(cur: &mut Cursor<'_>, errors: &mut Vec<RuleError>) -> Option<RawPair> {
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
