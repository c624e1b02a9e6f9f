//! The grammars of the two names that make up a workspace host label. Every place that accepts
//! a user or workspace name checks it here: reject, never "clean".

/// `^[a-z][a-z0-9]{2,30}$`: no hyphen, so the first hyphen of a host label splits it.
pub fn is_username(name: &str) -> bool {
    let b = name.as_bytes();
    (3..=31).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// `^[a-z][a-z0-9-]{0,30}$`
pub fn is_workspace_name(name: &str) -> bool {
    let b = name.as_bytes();
    (1..=31).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}
