//! The udev rules shipped with the POS device layer.
//!
//! [`RULES`] is `udev/70-pos-devices.rules` as compiled into this crate; `udev/README.md`
//! explains what each block grants and how to install it. The permission hints name the file
//! ([`UDEV_RULES_FILE`](crate::UDEV_RULES_FILE)). The rules' checker (udev syntax and this
//! project's policy) is the `pos-udev` crate; `posctl udev-rules` prints the rules or checks
//! an installed copy.

/// The shipped rules file, `udev/70-pos-devices.rules`, as compiled into this crate.
pub const RULES: &str = include_str!("../../../udev/70-pos-devices.rules");

/// The file name to install [`RULES`] under, in `/etc/udev/rules.d/`.
pub const RULES_FILE_NAME: &str = "70-pos-devices.rules";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_rules_file_name_matches_the_permission_hint() {
        assert!(crate::UDEV_RULES_FILE.ends_with(RULES_FILE_NAME));
        assert!(RULES_FILE_NAME.ends_with(".rules"));
    }
}
