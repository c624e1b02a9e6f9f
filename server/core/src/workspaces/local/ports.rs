//! The TCP ports a workspace listens on, read from its network namespace's socket tables
//! (`/proc/<pid>/net/tcp{,6}` of a process inside it): no configuration, nothing to run in it.

/// Listening ports of the namespace `pid` is in, ascending, without the ephemeral range
/// (where programs bind for themselves, e.g. a Jupyter kernel's channels).
pub fn listening(pid: i32) -> Vec<u16> {
    let first_ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let mut out: Vec<u16> = ["tcp", "tcp6"]
        .iter()
        .filter_map(|t| std::fs::read_to_string(format!("/proc/{pid}/net/{t}")).ok())
        .flat_map(|table| parse_listening(&table))
        .filter(|p| *p < first_ephemeral)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Ports in state LISTEN (`0A`) of one `/proc/net/tcp`-format table.
fn parse_listening(table: &str) -> Vec<u16> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let local = f.nth(1)?;
            let state = f.nth(1)?;
            (state == "0A")
                .then(|| u16::from_str_radix(local.rsplit_once(':')?.1, 16).ok())
                .flatten()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listening_sockets_count() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 00000000:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0\n\
   1: 0100007F:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 2 1 0\n\
   2: 0100007F:1F40 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 3 1 0\n";
        assert_eq!(parse_listening(table), vec![8000, 3000]);
        assert!(listening(std::process::id() as i32).iter().all(|p| *p > 0));
    }
}
