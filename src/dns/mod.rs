//! Names: DNS messages, `/etc/hosts` and resolver options, without I/O.
//!
//! A stack resolves names through its own name servers and its own sockets, never
//! the host's resolver (whose queries would leave by the host's network). What a
//! resolver must know of the bytes on the wire and of the files it reads is here,
//! pure as `cmd` is: no system call, no clock, no randomness (the caller gives the
//! query id), so that every parser can be fuzzed and any input is refused with an
//! error, never a panic. The stack's lookup (`Stack::lookup_host`) and the C
//! library's `getaddrinfo` both build on it.
//!
//! As smoltcp does, a message is read through a view over its bytes
//! ([`Packet`]: checked accessors on the header) and turned into a representation
//! ([`Response`]: the question and the records, names decompressed), which the
//! resolver asks what it means for the question it sent ([`Response::answer_for`]:
//! addresses at the end of the CNAME chain, no such name, no data, a server
//! failure, truncation, or not an answer to it at all).
//!
//! Submodules:
//! - `wire`: RFC 1035/3596 messages: names, queries, responses;
//! - `hosts`: the `/etc/hosts` format;
//! - `conf`: the `resolv.conf` format and the resolver's options (glibc's
//!   defaults: 5 s per try, 2 tries).

mod conf;
mod hosts;
mod wire;

pub use conf::{ResolvConf, ResolverOptions};
pub use hosts::{Hosts, HostsEntry, HostsError};
pub use wire::{
    reverse_name, Answer, DnsError, Packet, Query, Rcode, Record, RecordData, RecordType, Response,
    DNS_PORT, MAX_UDP_PAYLOAD,
};

/// The names every resolver answers itself, whatever `/etc/hosts` says: glibc
/// answers `localhost` (and names under it, RFC 6761) from `/etc/hosts` only, and a
/// stack with no file still has its loopback.
pub fn is_localhost(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    name.eq_ignore_ascii_case("localhost")
        || name
            .len()
            .checked_sub(".localhost".len())
            .and_then(|at| name.get(at..))
            .is_some_and(|tail| tail.eq_ignore_ascii_case(".localhost"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_names() {
        assert!(is_localhost("localhost"));
        assert!(is_localhost("LocalHost."));
        assert!(is_localhost("a.localhost"));
        assert!(!is_localhost("localhost.example"));
        assert!(!is_localhost("xlocalhost"));
        assert!(!is_localhost(""));
    }
}
