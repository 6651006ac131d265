//! The `resolv.conf` format (resolv.conf(5)) and the resolver's options, with
//! glibc's defaults and limits: a stack takes its name servers from the user, and
//! from the host's file only when the user asks for it.

use std::net::IpAddr;
use std::time::Duration;

/// How long and how often a resolver asks (glibc's `RES_TIMEOUT`, `RES_DFLRETRY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolverOptions {
    /// How long to wait for one server's answer (default 5 s, at most 30 s).
    pub timeout: Duration,
    /// How many rounds over all the servers (default 2, at most 5).
    pub attempts: u32,
    /// Names with fewer dots than this are tried with the search domains first
    /// (default 1, at most 15).
    pub ndots: u32,
}

impl Default for ResolverOptions {
    fn default() -> ResolverOptions {
        ResolverOptions {
            timeout: Duration::from_secs(5),
            attempts: 2,
            ndots: 1,
        }
    }
}

/// glibc's `MAXNS`: servers after the third are ignored.
const MAX_SERVERS: usize = 3;
/// glibc's limit of search domains.
const MAX_SEARCH: usize = 6;

/// A `resolv.conf` file, read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvConf {
    /// The name servers' addresses (at most 3, as glibc).
    pub name_servers: Vec<IpAddr>,
    /// The search domains (`search` or `domain`, the last one read wins).
    pub search: Vec<String>,
    /// The options.
    pub options: ResolverOptions,
}

impl ResolvConf {
    /// Reads a `resolv.conf` file. As glibc, a line or option it does not know is
    /// skipped, and an option's value beyond its limit is the limit.
    pub fn parse(text: &str) -> ResolvConf {
        let mut conf = ResolvConf::default();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut words = line.split_ascii_whitespace();
            match words.next() {
                Some("nameserver") => {
                    // A scoped IPv6 address (`fe80::1%eth0`) names a host interface.
                    let addr = words.next().and_then(|w| w.parse::<IpAddr>().ok());
                    if let Some(addr) = addr {
                        if conf.name_servers.len() < MAX_SERVERS {
                            conf.name_servers.push(addr);
                        }
                    }
                }
                Some("search") | Some("domain") => {
                    conf.search = words.take(MAX_SEARCH).map(str::to_owned).collect();
                }
                Some("options") => {
                    for option in words {
                        let (key, value) = option.split_once(':').unwrap_or((option, ""));
                        let Ok(value) = value.parse::<u32>() else {
                            continue;
                        };
                        match key {
                            "timeout" => {
                                conf.options.timeout =
                                    Duration::from_secs(value.clamp(1, 30).into())
                            }
                            "attempts" => conf.options.attempts = value.clamp(1, 5),
                            "ndots" => conf.options.ndots = value.min(15),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        conf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_options() {
        let conf = ResolvConf::parse("");
        assert_eq!(conf.options.timeout, Duration::from_secs(5));
        assert_eq!(conf.options.attempts, 2);
        let conf = ResolvConf::parse(
            "# c\nnameserver 10.0.0.53\nnameserver ::1\nnameserver bad\nnameserver 1.1.1.1\n\
             nameserver 8.8.8.8\nsearch a.test b.test\noptions timeout:60 attempts:0 ndots:2 rotate\n",
        );
        assert_eq!(conf.name_servers.len(), 3);
        assert_eq!(conf.name_servers[1], "::1".parse::<IpAddr>().unwrap());
        assert_eq!(conf.search, vec!["a.test", "b.test"]);
        assert_eq!(conf.options.timeout, Duration::from_secs(30));
        assert_eq!(conf.options.attempts, 1);
        assert_eq!(conf.options.ndots, 2);
    }
}
