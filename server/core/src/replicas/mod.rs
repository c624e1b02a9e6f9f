//! Several control-plane replicas on one database: who this replica is, which one runs the
//! background work ([`lease`]), and how a change made on one reaches the others ([`feed`]).
//!
//! Every process-local fact that must hold across replicas either lives in the database
//! (claims on workspaces, used tokens, rate windows, sessions) or is invalidated through the
//! feed (the dashboards' live lists and the gateway's host answers). SQLite means one
//! replica: its feed is in-process only and its lease is always this process's.

pub mod feed;
pub mod lease;

use rand::Rng;
use std::path::Path;

/// This replica's name in leases and claims: stable across restarts of the same data dir, so
/// a restarted replica takes its own leftovers back at once instead of waiting for them to
/// lapse.
pub fn replica_id(data_dir: &Path) -> std::io::Result<String> {
    let path = data_dir.join("replica.id");
    match std::fs::read_to_string(&path) {
        Ok(id) if valid(id.trim()) => return Ok(id.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let id = new_id();
    std::fs::write(&path, format!("{id}\n"))?;
    Ok(id)
}

/// A fresh random id, for a process with no data dir of its own (tests).
pub fn new_id() -> String {
    let host = hostname();
    let n: u32 = rand::thread_rng().gen();
    format!("{host}-{n:08x}")
}

/// Letters, digits, `-` and `.`: nothing that means something in a `LIKE` pattern or in a
/// claim token (`<replica>#<n>`).
fn valid(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b))
}

fn hostname() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name: String = name
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(60)
        .collect();
    if name.is_empty() {
        "replica".into()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_survives_a_restart_and_a_bad_file_is_replaced() {
        let dir = std::env::temp_dir().join(new_id());
        std::fs::create_dir_all(&dir).unwrap();
        let first = replica_id(&dir).unwrap();
        assert!(valid(&first), "{first}");
        assert_eq!(replica_id(&dir).unwrap(), first);
        std::fs::write(dir.join("replica.id"), "no spaces allowed\n").unwrap();
        let again = replica_id(&dir).unwrap();
        assert_ne!(again, first);
        assert!(valid(&again));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
