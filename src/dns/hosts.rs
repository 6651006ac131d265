//! The `/etc/hosts` format (hosts(5)): an address, its canonical name, its aliases;
//! `#` starts a comment. glibc skips a line it cannot read and so does [`Hosts`];
//! [`HostsEntry::parse_line`] says why a line was skipped.

use std::net::IpAddr;

/// One line of a hosts file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostsEntry {
    /// The address.
    pub addr: IpAddr,
    /// The canonical name, then the aliases.
    pub names: Vec<String>,
}

/// Why a line of a hosts file is not an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostsError {
    /// The first word is not an IPv4 or IPv6 address.
    BadAddress,
    /// An address with no name after it.
    NoName,
}

impl HostsEntry {
    /// Reads one line: `Ok(None)` for a blank line or a comment.
    pub fn parse_line(line: &str) -> Result<Option<HostsEntry>, HostsError> {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_ascii_whitespace();
        let Some(first) = words.next() else {
            return Ok(None);
        };
        let addr: IpAddr = first.parse().map_err(|_| HostsError::BadAddress)?;
        let names: Vec<String> = words.map(str::to_owned).collect();
        if names.is_empty() {
            return Err(HostsError::NoName);
        }
        Ok(Some(HostsEntry { addr, names }))
    }
}

/// A hosts file, read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hosts {
    /// The entries, in the file's order.
    pub entries: Vec<HostsEntry>,
}

impl Hosts {
    /// Reads a hosts file; lines that are not entries are skipped, as glibc does.
    pub fn parse(text: &str) -> Hosts {
        Hosts {
            entries: text
                .lines()
                .filter_map(|line| HostsEntry::parse_line(line).ok().flatten())
                .collect(),
        }
    }

    /// The addresses of `name` (any of an entry's names, case folded), in the
    /// file's order, without repeats.
    pub fn lookup(&self, name: &str) -> Vec<IpAddr> {
        let mut out = Vec::new();
        for e in &self.entries {
            if e.names.iter().any(|n| super::wire::same_name(n, name)) && !out.contains(&e.addr) {
                out.push(e.addr);
            }
        }
        out
    }

    /// The canonical name of the first entry for `addr` (reverse lookups).
    pub fn name_of(&self, addr: IpAddr) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.addr == addr)
            .and_then(|e| e.names.first())
            .map(String::as_str)
    }

    /// The canonical name of the first entry naming `name` (`AI_CANONNAME`).
    pub fn canonical_name(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.names.iter().any(|n| super::wire::same_name(n, name)))
            .and_then(|e| e.names.first())
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# comment\n127.0.0.1\tlocalhost\n\n::1 localhost ip6-localhost # v6\n\
        10.0.0.5 Server.test server alias\nnot-an-address x\n10.0.0.6\n10.0.0.7 server.test\n";

    #[test]
    fn lookups() {
        let hosts = Hosts::parse(FILE);
        assert_eq!(hosts.entries.len(), 4);
        assert_eq!(
            hosts.lookup("localhost"),
            vec![
                "127.0.0.1".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        assert_eq!(
            hosts.lookup("SERVER.test."),
            vec![
                "10.0.0.5".parse::<IpAddr>().unwrap(),
                "10.0.0.7".parse().unwrap()
            ]
        );
        assert_eq!(hosts.canonical_name("alias"), Some("Server.test"));
        assert_eq!(hosts.name_of("::1".parse().unwrap()), Some("localhost"));
        assert!(hosts.lookup("nothing").is_empty());
    }

    #[test]
    fn bad_lines() {
        assert_eq!(HostsEntry::parse_line("x y"), Err(HostsError::BadAddress));
        assert_eq!(
            HostsEntry::parse_line("10.0.0.1  # c"),
            Err(HostsError::NoName)
        );
        assert_eq!(HostsEntry::parse_line("   # c"), Ok(None));
    }
}
