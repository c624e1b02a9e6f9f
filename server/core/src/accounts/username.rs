//! The one grammar for user names: they become host labels (`<user>-<ws>.<domain>`), paths
//! and keys, so anything else is rejected, never "cleaned".

use super::AccountError;

/// Shown next to the field and in the error.
pub const USERNAME_RULE: &str =
    "User names are 3 to 31 characters: a lowercase letter, then lowercase letters or digits.";

/// `^[a-z][a-z0-9]{2,30}$`
pub fn validate_username(name: &str) -> Result<(), AccountError> {
    if qingting_gateway::names::is_username(name) {
        Ok(())
    } else {
        Err(AccountError::InvalidUsername)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar() {
        for ok in ["abc", "alice", "a12", &format!("a{}", "b".repeat(30))] {
            assert!(validate_username(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "ab",
            "1abc",
            "Alice",
            "al-ice",
            "al_ice",
            "al ice",
            "alicé",
            "аlice",
            &format!("a{}", "b".repeat(31)),
        ] {
            assert!(validate_username(bad).is_err(), "{bad}");
        }
    }
}
