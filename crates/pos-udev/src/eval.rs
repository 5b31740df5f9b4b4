//! What udev would do with one device event: [`evaluate`] applies parsed rules files, in
//! udev's order, to a described [`Event`] and returns the resulting `GROUP`, `MODE`, `OWNER`,
//! links, tags and properties ([`Outcome`]).
//!
//! It is for questions such as "which group does a CCID reader end up in when pcscd's
//! `92_pcscd_ccid.rules` is installed next to our `70-pos-devices.rules`?", answered without
//! udev, root or a device. It follows systemd-udevd (`udev-rules.c`, udev(7)):
//!
//! - **Order.** Files are applied in the order of their file names (bytewise, as udev sorts
//!   them), whichever directory they are in. Of two files with the same name, only the one in
//!   the directory of highest precedence is read: `/etc/udev/rules.d` over
//!   `/run/udev/rules.d` over `/usr/local/lib/udev/rules.d` over `/usr/lib/udev/rules.d`
//!   over `/lib/udev/rules.d` ([`RulesDir`], [`ordered`]).
//! - **Rules.** A rule applies when all its matches hold. As udev does, a rule's matches are
//!   all tested before any of its assignments runs, and the assignments then run in the order
//!   written.
//! - **Matches.** `==` holds when one of the value's `|` alternatives matches as a shell glob
//!   (`*`, `?`, `[...]`, `[!...]`; fnmatch(3) without flags); `!=` when none does. The `i`
//!   prefix compares case-insensitively. `ACTION`, `SUBSYSTEM` and `KERNEL` match the event's
//!   fields; `ENV{X}` the current properties, an absent property matching as the empty string
//!   (so `ENV{X}!="1"` holds when `X` is unset); `ATTR{x}` and `ATTRS{x}` the event's
//!   attributes, where an absent attribute fails the match whatever the operator (udev cannot
//!   read it) and trailing blanks of the value are ignored unless the pattern ends in one;
//!   `SYMLINK` and `TAG` the links and tags assigned so far.
//! - **Assignments.** `GROUP`, `OWNER`, `MODE`: `=` replaces, `:=` replaces and makes the
//!   value final, after which every later assignment to that key (`=` or `:=`, in any file) is
//!   ignored; udev(7): "Assign a value to a key finally; disallow any later changes".
//!   `SYMLINK`: `+=` adds (the value may hold several links separated by blanks), `-=`
//!   removes, `=` and `:=` drop the links so far first, and `:=` makes the list final. `TAG`:
//!   `+=`, `-=`, `=`. `ENV{X}=` sets a property (an empty value removes it), `ENV{X}+=`
//!   appends with a blank; later rules match on the new value. Values are substituted first
//!   (below).
//! - **`GOTO`/`LABEL`.** A rule that applies and has `GOTO="x"` continues at the first
//!   later rule of the *same file* with `LABEL="x"` (that rule is applied too); without one,
//!   the `GOTO` is ignored, as udev does after logging an error.
//! - **Substitutions.** `$kernel`/`%k`, `$number`/`%n` (the trailing digits of the kernel
//!   name), `$env{X}`/`%E{X}`, `$attr{x}`/`$sysfs{x}`/`%s{x}`, `$id`/`%b`
//!   ([`Event::parent_kernel`]), `$$` and `%%`. In `SYMLINK` values, as udev does by default,
//!   substituted text has its blanks replaced by `_`, and then every character other than
//!   ASCII letters, digits, `#+-.:=@_/`, blanks and non-ASCII characters is replaced by `_`.
//!
//! # Limits
//!
//! This is a model of udev, not udev, and it says where it cannot decide rather than guess:
//!
//! - **Matches it cannot evaluate** make the rule not apply, and are reported in
//!   [`Outcome::unevaluated`] when the rule's other matches all held (so the report lists the
//!   rules that *might* have applied): `IMPORT` (it runs a program, a builtin or reads a
//!   file), `PROGRAM`, `RESULT`, `TEST`, `KERNELS`, `SUBSYSTEMS`, `DRIVERS`, `DRIVER`,
//!   `DEVPATH`, `NAME`, `CONST`, `SYSCTL`, and any key this module does not know. Properties
//!   an `IMPORT` would set must be given in [`Event::env`] (as udev's earlier rules would have
//!   set them: `ID_USB_INTERFACES`, `ID_SERIAL`, ...).
//! - Attributes are one map for the device and all its parents, so `ATTR{x}` may match an
//!   attribute only a parent has, and the `ATTRS` of one rule are not required to match on
//!   the same parent device, as udev requires.
//! - Substitutions it does not model (`$devpath`, `$driver`, `$major`, `$minor`, `$result`,
//!   `$parent`, `$name`, `$links`, `$root`, `$sys`, `$devnode`, and `%` forms of those) become
//!   empty and are reported in [`Outcome::unevaluated`].
//! - `OPTIONS` (`string_escape=`, `link_priority=`, ...), `RUN`, `ATTR{x}=`, `SYSCTL{x}=`,
//!   `NAME=`, `SECLABEL`, `IMPORT` side effects and program output are not modelled; the
//!   device is assumed to have a device node (udev ignores `SYMLINK` on devices without one).
//! - User and group names are not resolved: an unknown group is reported by udev at load
//!   time and ignored, here it is returned as written.
//!
//! [`evaluate`] never panics, whatever rules (as [`check`](crate::check) returns them) and
//! event it is given, and always ends: `GOTO` only jumps forward.

use std::collections::BTreeMap;
use std::fmt;

use crate::keys::substitution_at;
use crate::model::{Operator, Pair, Rule};
use crate::policy::glob_match;

/// A directory udev reads rules files from, in order of precedence: of two files with the
/// same name, the one in the directory that sorts first here wins ([`RulesDir::Etc`] first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RulesDir {
    /// `/etc/udev/rules.d`: the administrator's files.
    Etc,
    /// `/run/udev/rules.d`: runtime files.
    Run,
    /// `/usr/local/lib/udev/rules.d`: locally installed packages.
    UsrLocalLib,
    /// `/usr/lib/udev/rules.d`: the distribution's packages (systemd, libccid, ...).
    UsrLib,
    /// `/lib/udev/rules.d`: the same on systems whose `/lib` is not a link to `/usr/lib`.
    Lib,
}

impl RulesDir {
    /// All directories, highest precedence first.
    pub const ALL: [RulesDir; 5] = [
        RulesDir::Etc,
        RulesDir::Run,
        RulesDir::UsrLocalLib,
        RulesDir::UsrLib,
        RulesDir::Lib,
    ];

    /// The directory's path, e.g. `/etc/udev/rules.d`.
    pub fn path(self) -> &'static str {
        match self {
            RulesDir::Etc => "/etc/udev/rules.d",
            RulesDir::Run => "/run/udev/rules.d",
            RulesDir::UsrLocalLib => "/usr/local/lib/udev/rules.d",
            RulesDir::UsrLib => "/usr/lib/udev/rules.d",
            RulesDir::Lib => "/lib/udev/rules.d",
        }
    }
}

impl fmt::Display for RulesDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.path())
    }
}

/// One parsed rules file and where it is installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesFile {
    /// The directory it is in.
    pub dir: RulesDir,
    /// Its file name, e.g. `70-pos-devices.rules`. udev reads only names ending in `.rules`;
    /// [`ordered`] skips the others.
    pub name: String,
    /// Its rules, as [`check`](crate::check) returns them.
    pub rules: Vec<Rule>,
}

impl RulesFile {
    /// A rules file named `name` in `dir`.
    pub fn new(dir: RulesDir, name: impl Into<String>, rules: Vec<Rule>) -> RulesFile {
        RulesFile {
            dir,
            name: name.into(),
            rules,
        }
    }
}

/// The files udev would read, in the order it applies them: names ending in `.rules` only,
/// one file per name (the one in the directory of highest precedence, see [`RulesDir`]),
/// sorted by name. Of two files with the same name in the same directory, the first given
/// wins.
pub fn ordered(files: &[RulesFile]) -> Vec<&RulesFile> {
    let mut chosen: BTreeMap<&str, &RulesFile> = BTreeMap::new();
    for file in files.iter().filter(|f| f.name.ends_with(".rules")) {
        match chosen.get(file.name.as_str()) {
            Some(current) if current.dir <= file.dir => {}
            _ => {
                chosen.insert(file.name.as_str(), file);
            }
        }
    }
    // BTreeMap<&str, _> iterates in bytewise name order, which is strcmp's, udev's order.
    chosen.into_values().collect()
}

/// A device event, as far as [`evaluate`] looks at it. Build one with [`Event::new`] and the
/// builder methods.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// `add`, `change`, `bind`, `remove`, ... (`ACTION`).
    pub action: String,
    /// The device's subsystem, e.g. `usb`, `tty`, `hidraw` (`SUBSYSTEM`).
    pub subsystem: String,
    /// The device type, e.g. `usb_device` or `usb_interface` (the `DEVTYPE` property).
    pub devtype: Option<String>,
    /// The device's kernel name, e.g. `1-1.4` or `ttyUSB0` (`KERNEL`, `$kernel`).
    pub kernel: String,
    /// The kernel name of the parent device whose attributes `ATTRS{}` found (`$id`), e.g.
    /// the USB device `1-1.4` above `ttyUSB0`; `$id` is empty when `None`.
    pub parent_kernel: Option<String>,
    /// The properties the event has when the rules run (`ENV{}`): those of the uevent and
    /// those earlier rules imported. `ACTION`, `SUBSYSTEM` and `DEVTYPE` are added from the
    /// fields above unless given here.
    pub env: BTreeMap<String, String>,
    /// The sysfs attributes of the device and its parents (`ATTR{}`, `ATTRS{}`), e.g.
    /// `idVendor` = `046a`.
    pub attrs: BTreeMap<String, String>,
}

impl Event {
    /// An event `action` (e.g. `add`) on the device `kernel` (e.g. `1-1.4`) of `subsystem`.
    pub fn new(action: &str, subsystem: &str, kernel: &str) -> Event {
        Event {
            action: action.to_string(),
            subsystem: subsystem.to_string(),
            kernel: kernel.to_string(),
            ..Event::default()
        }
    }

    /// A USB device (subsystem `usb`, devtype `usb_device`) with vendor and product ID (four
    /// hex digits each, lower case as sysfs shows them) and the interface list
    /// `ID_USB_INTERFACES` as `usb_id` sets it, e.g. `:0b0000:`.
    pub fn usb_device(
        action: &str,
        kernel: &str,
        vendor: &str,
        product: &str,
        interfaces: &str,
    ) -> Event {
        Event::new(action, "usb", kernel)
            .devtype("usb_device")
            .attr("idVendor", vendor)
            .attr("idProduct", product)
            .env("ID_USB_INTERFACES", interfaces)
    }

    /// Sets the device type.
    pub fn devtype(mut self, devtype: &str) -> Event {
        self.devtype = Some(devtype.to_string());
        self
    }

    /// Sets the parent's kernel name (`$id`).
    pub fn parent_kernel(mut self, kernel: &str) -> Event {
        self.parent_kernel = Some(kernel.to_string());
        self
    }

    /// Adds a property.
    pub fn env(mut self, name: &str, value: &str) -> Event {
        self.env.insert(name.to_string(), value.to_string());
        self
    }

    /// Adds an attribute (of the device or of a parent).
    pub fn attr(mut self, name: &str, value: &str) -> Event {
        self.attrs.insert(name.to_string(), value.to_string());
        self
    }
}

/// A value assigned to `GROUP`, `MODE` or `OWNER`, and the rule that assigned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assigned {
    /// The value, substitutions applied.
    pub value: String,
    /// Where it was assigned.
    pub at: Place,
    /// It was assigned with `:=`: later assignments were ignored.
    pub fixed: bool,
}

/// A rule in a rules file: directory, file name and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The directory of the file.
    pub dir: RulesDir,
    /// The file name.
    pub file: String,
    /// The line the rule starts on.
    pub line: usize,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.dir, self.file, self.line)
    }
}

/// Something [`evaluate`] could not model (see the [module docs](self) for the limits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unevaluated {
    /// The rule.
    pub at: Place,
    /// What: e.g. `match IMPORT{builtin}="usb_id"` (the rule was taken not to apply) or
    /// `substitution $devpath` (it became empty).
    pub what: String,
}

impl fmt::Display for Unevaluated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: not evaluated: {}", self.at, self.what)
    }
}

/// What the rules made of the event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The last `GROUP` that took effect, if any rule assigned one.
    pub group: Option<Assigned>,
    /// The last `MODE` that took effect.
    pub mode: Option<Assigned>,
    /// The last `OWNER` that took effect.
    pub owner: Option<Assigned>,
    /// The links under `/dev/`, relative to it (e.g. `pos/ccid-X`), in the order added.
    pub symlinks: Vec<String>,
    /// The device's tags.
    pub tags: Vec<String>,
    /// The properties after the rules ran (including those the event came with).
    pub env: BTreeMap<String, String>,
    /// The rules that applied, in order.
    pub applied: Vec<Place>,
    /// What could not be evaluated (rules taken not to apply, substitutions left empty).
    pub unevaluated: Vec<Unevaluated>,
}

impl Outcome {
    /// The group's value, e.g. `Some("pos")`.
    pub fn group(&self) -> Option<&str> {
        self.group.as_ref().map(|a| a.value.as_str())
    }

    /// The mode's value, e.g. `Some("0660")`.
    pub fn mode(&self) -> Option<&str> {
        self.mode.as_ref().map(|a| a.value.as_str())
    }

    /// The owner's value.
    pub fn owner(&self) -> Option<&str> {
        self.owner.as_ref().map(|a| a.value.as_str())
    }
}

/// Applies `files` to `event` as udev would (see the [module docs](self)): the files in
/// [`ordered`]'s order, each rule whose matches hold, `GOTO` within a file. Never panics.
pub fn evaluate(files: &[RulesFile], event: &Event) -> Outcome {
    let mut state = State::new(event);
    for file in ordered(files) {
        state.run_file(file);
    }
    state.outcome
}

/// Which of `GROUP`, `MODE`, `OWNER` an assignment is to.
#[derive(Clone, Copy)]
enum Setting {
    Group,
    Mode,
    Owner,
}

struct State<'e> {
    event: &'e Event,
    outcome: Outcome,
    group_final: bool,
    mode_final: bool,
    owner_final: bool,
    links_final: bool,
}

/// The result of testing one rule's matches.
enum Verdict {
    Applies,
    DoesNot,
    /// The evaluable matches held but these could not be evaluated.
    Unknown(Vec<String>),
}

impl<'e> State<'e> {
    fn new(event: &'e Event) -> State<'e> {
        let mut env = event.env.clone();
        env.entry("ACTION".into())
            .or_insert_with(|| event.action.clone());
        env.entry("SUBSYSTEM".into())
            .or_insert_with(|| event.subsystem.clone());
        if let Some(devtype) = &event.devtype {
            env.entry("DEVTYPE".into())
                .or_insert_with(|| devtype.clone());
        }
        State {
            event,
            outcome: Outcome {
                env,
                ..Outcome::default()
            },
            group_final: false,
            mode_final: false,
            owner_final: false,
            links_final: false,
        }
    }

    fn run_file(&mut self, file: &RulesFile) {
        let mut i = 0;
        while let Some(rule) = file.rules.get(i) {
            let place = Place {
                dir: file.dir,
                file: file.name.clone(),
                line: rule.line(),
            };
            i += 1;
            match self.verdict(rule) {
                Verdict::DoesNot => continue,
                Verdict::Unknown(keys) => {
                    for what in keys {
                        self.outcome.unevaluated.push(Unevaluated {
                            at: place.clone(),
                            what,
                        });
                    }
                    continue;
                }
                Verdict::Applies => {}
            }
            for pair in rule.pairs().iter().filter(|p| !is_match_like(p)) {
                self.assign(pair, &place);
            }
            self.outcome.applied.push(place);
            if let Some(target) = rule.goto() {
                // udev jumps to the first later rule with that label; none: the GOTO is ignored.
                if let Some(offset) = file.rules[i..]
                    .iter()
                    .position(|r| r.label() == Some(target))
                {
                    i += offset;
                }
            }
        }
    }

    fn verdict(&self, rule: &Rule) -> Verdict {
        let mut unknown = Vec::new();
        for pair in rule.pairs().iter().filter(|p| is_match_like(p)) {
            match self.test(pair) {
                Some(true) => {}
                Some(false) => return Verdict::DoesNot,
                None => unknown.push(format!("match {pair}")),
            }
        }
        if unknown.is_empty() {
            Verdict::Applies
        } else {
            Verdict::Unknown(unknown)
        }
    }

    /// Whether a match pair holds; `None` when it cannot be evaluated.
    fn test(&self, pair: &Pair) -> Option<bool> {
        let attr = pair.attr.as_deref();
        let event = self.event;
        let held = match (pair.key.as_str(), attr) {
            ("ACTION", None) => matches_value(pair, &event.action),
            ("SUBSYSTEM", None) => matches_value(pair, &event.subsystem),
            ("KERNEL", None) => matches_value(pair, &event.kernel),
            ("ENV", Some(name)) => {
                matches_value(pair, self.outcome.env.get(name).map_or("", String::as_str))
            }
            ("ATTR" | "ATTRS", Some(name)) => match event.attrs.get(name) {
                // udev cannot read the attribute: the match fails, whatever the operator.
                None => return Some(false),
                Some(value) => {
                    let ends_blank = pair.value.ends_with(|c: char| c.is_ascii_whitespace());
                    let value = if ends_blank {
                        value.as_str()
                    } else {
                        value.trim_end_matches(|c: char| c.is_ascii_whitespace())
                    };
                    matches_value(pair, value)
                }
            },
            ("SYMLINK", None) => matches_any(pair, &self.outcome.symlinks),
            ("TAG", None) => matches_any(pair, &self.outcome.tags),
            _ => return None,
        };
        Some(held)
    }

    fn assign(&mut self, pair: &Pair, place: &Place) {
        match (pair.key.as_str(), pair.attr.as_deref()) {
            ("GROUP", None) => self.set(Setting::Group, pair, place),
            ("MODE", None) => self.set(Setting::Mode, pair, place),
            ("OWNER", None) => self.set(Setting::Owner, pair, place),
            ("SYMLINK", None) => self.links(pair, place),
            ("TAG", None) => {
                let tag = self.substitute(&pair.value, place, false);
                match pair.op {
                    Operator::Remove => self.outcome.tags.retain(|t| *t != tag),
                    op => {
                        if matches!(op, Operator::Assign | Operator::AssignFinal) {
                            self.outcome.tags.clear();
                        }
                        if !tag.is_empty() && !self.outcome.tags.contains(&tag) {
                            self.outcome.tags.push(tag);
                        }
                    }
                }
            }
            ("ENV", Some(name)) => {
                let value = self.substitute(&pair.value, place, false);
                let name = name.to_string();
                if pair.value.is_empty() {
                    // udev: an empty value removes the property (`+=` of nothing does nothing).
                    if pair.op != Operator::Add {
                        self.outcome.env.remove(&name);
                    }
                    return;
                }
                match (pair.op, self.outcome.env.get(&name)) {
                    (Operator::Add, Some(old)) => {
                        let joined = format!("{old} {value}");
                        self.outcome.env.insert(name, joined);
                    }
                    _ => {
                        self.outcome.env.insert(name, value);
                    }
                }
            }
            // Not modelled: RUN, OPTIONS, ATTR{}=, SYSCTL{}=, NAME, SECLABEL, GOTO, LABEL
            // (GOTO is handled by the caller).
            _ => {}
        }
    }

    fn set(&mut self, setting: Setting, pair: &Pair, place: &Place) {
        let fixed = match setting {
            Setting::Group => self.group_final,
            Setting::Mode => self.mode_final,
            Setting::Owner => self.owner_final,
        };
        if fixed {
            return;
        }
        let now_final = pair.op == Operator::AssignFinal;
        let assigned = Some(Assigned {
            value: self.substitute(&pair.value, place, false),
            at: place.clone(),
            fixed: now_final,
        });
        match setting {
            Setting::Group => {
                self.group_final = now_final;
                self.outcome.group = assigned;
            }
            Setting::Mode => {
                self.mode_final = now_final;
                self.outcome.mode = assigned;
            }
            Setting::Owner => {
                self.owner_final = now_final;
                self.outcome.owner = assigned;
            }
        }
    }

    fn links(&mut self, pair: &Pair, place: &Place) {
        if self.links_final {
            return;
        }
        let text = self.substitute(&pair.value, place, true);
        let text: String = text
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "#+-.:=@_/ ".contains(c) || !c.is_ascii() {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let links = text
            .split(' ')
            .filter(|l| !l.is_empty())
            .map(str::to_string);
        match pair.op {
            Operator::Remove => {
                let gone: Vec<String> = links.collect();
                self.outcome.symlinks.retain(|l| !gone.contains(l));
            }
            op => {
                if matches!(op, Operator::Assign | Operator::AssignFinal) {
                    self.outcome.symlinks.clear();
                }
                if op == Operator::AssignFinal {
                    self.links_final = true;
                }
                for link in links {
                    if !self.outcome.symlinks.contains(&link) {
                        self.outcome.symlinks.push(link);
                    }
                }
            }
        }
    }

    /// Resolves `$`/`%` substitutions in `value`. With `blanks_to_underscore` (SYMLINK), blanks
    /// in substituted text become `_`. Unmodelled substitutions become empty and are reported.
    fn substitute(&mut self, value: &str, place: &Place, blanks_to_underscore: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let mut out = String::new();
        let mut i = 0;
        while let Some(&c) = chars.get(i) {
            i += 1;
            if c != '$' && c != '%' {
                out.push(c);
                continue;
            }
            if chars.get(i) == Some(&c) {
                out.push(c);
                i += 1;
                continue;
            }
            let Some((name, len)) = substitution_at(c, &chars, i) else {
                // Not a substitution: udev keeps the character.
                out.push(c);
                continue;
            };
            i += len;
            let mut arg: Option<String> = None;
            if chars.get(i) == Some(&'{') {
                if let Some(close) = chars[i..].iter().position(|&ch| ch == '}') {
                    arg = Some(chars[i + 1..i + close].iter().collect());
                    i += close + 1;
                }
            }
            let text = match (name, arg.as_deref()) {
                ("kernel", _) => self.event.kernel.clone(),
                ("number", _) => {
                    let kernel = &self.event.kernel;
                    let digits = kernel
                        .char_indices()
                        .rev()
                        .take_while(|(_, ch)| ch.is_ascii_digit())
                        .last()
                        .map_or(kernel.len(), |(at, _)| at);
                    kernel[digits..].to_string()
                }
                ("id", _) => self.event.parent_kernel.clone().unwrap_or_default(),
                ("env", Some(key)) => self.outcome.env.get(key).cloned().unwrap_or_default(),
                ("attr" | "sysfs", Some(key)) => {
                    self.event.attrs.get(key).cloned().unwrap_or_default()
                }
                _ => {
                    let shown = match &arg {
                        Some(arg) => format!("{c}{name}{{{arg}}}"),
                        None => format!("{c}{name}"),
                    };
                    self.outcome.unevaluated.push(Unevaluated {
                        at: place.clone(),
                        what: format!("substitution {shown} (left empty)"),
                    });
                    String::new()
                }
            };
            if blanks_to_underscore {
                out.extend(
                    text.chars()
                        .map(|ch| if ch.is_whitespace() { '_' } else { ch }),
                );
            } else {
                out.push_str(&text);
            }
        }
        out
    }
}

/// Keys udev treats as matches whatever the operator (`IMPORT{..}="x"`, `PROGRAM="x"` run and
/// match), besides every `==`/`!=` pair.
fn is_match_like(pair: &Pair) -> bool {
    pair.op.is_match() || matches!(pair.key.as_str(), "IMPORT" | "PROGRAM")
}

/// `==`: one alternative matches `value`; `!=`: none does.
fn matches_value(pair: &Pair, value: &str) -> bool {
    let any = if pair.case_insensitive {
        let value = value.to_lowercase();
        pair.alternatives()
            .any(|alt| glob_match(&alt.to_lowercase(), &value))
    } else {
        pair.alternatives().any(|alt| glob_match(alt, value))
    };
    if pair.op == Operator::NoMatch {
        !any
    } else {
        any
    }
}

/// For lists (links, tags): `==` holds when one item matches; `!=` when none does.
fn matches_any(pair: &Pair, items: &[String]) -> bool {
    let mut positive = pair.clone();
    positive.op = Operator::Match;
    let any = items.iter().any(|item| matches_value(&positive, item));
    if pair.op == Operator::NoMatch {
        !any
    } else {
        any
    }
}
