//! `dns_files`: arbitrary text as `/etc/hosts` and as `resolv.conf`
//! (`vdestack::dns`): lines that are not entries are skipped, never a panic, and
//! the options stay within glibc's limits.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vdestack::dns::{Hosts, HostsEntry, ResolvConf};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let hosts = Hosts::parse(&text);
    for line in text.lines() {
        let _ = HostsEntry::parse_line(line);
    }
    for entry in &hosts.entries {
        assert!(!entry.names.is_empty());
        for name in &entry.names {
            assert!(hosts.lookup(name).contains(&entry.addr) || hosts.entries.is_empty());
        }
    }
    let conf = ResolvConf::parse(&text);
    assert!(conf.name_servers.len() <= 3);
    assert!((1..=5).contains(&conf.options.attempts));
    assert!(conf.options.timeout.as_secs() <= 30);
});
