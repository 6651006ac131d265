//! How iproute2 reads words, numbers and addresses, and how it writes addresses back.
//!
//! `ip` does not use Rust-like parsing: numbers go through C's `strtol`/`strtoul` with
//! base 0 (so `0x600` and `010` are numbers, and `-1` can reach the kernel), IPv4
//! addresses may have fewer than four parts (`10.8` is `10.8.0.0`), and link-layer
//! addresses are read part by part with `sscanf("%x")`. Error messages and exit
//! statuses depend on exactly which of these steps fails, so they are reproduced here
//! from the documented C behaviour rather than approximated with `str::parse`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address family, as `ip` options and arguments select it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    /// No family chosen: IPv4 or IPv6 decided by the first address seen.
    Unspec,
    /// `-4`, `-f inet`.
    Inet,
    /// `-6`, `-f inet6`.
    Inet6,
    /// `-0`, `-f link`: link layer only.
    Packet,
    /// `-M`, `-B`, `-f mpls`, `-f bridge`: families the stack has nothing in.
    Other(&'static str),
}

impl Family {
    /// The name iproute2 uses in "... address is expected" messages.
    pub(crate) fn verbose_name(self) -> &'static str {
        match self {
            Family::Unspec => "any valid",
            Family::Inet => "inet",
            Family::Inet6 => "inet6",
            Family::Packet => "link",
            Family::Other(name) => name,
        }
    }

    /// The family of an address.
    pub(crate) fn of(addr: IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Inet,
            IpAddr::V6(_) => Family::Inet6,
        }
    }

    /// Reads a `-f`/`-family` argument; `None` for a name iproute2 does not know.
    pub(crate) fn from_name(name: &str) -> Option<Family> {
        match name {
            "inet" => Some(Family::Inet),
            "inet6" => Some(Family::Inet6),
            "link" => Some(Family::Packet),
            "mpls" => Some(Family::Other("mpls")),
            "bridge" => Some(Family::Other("bridge")),
            _ => None,
        }
    }
}

/// The outcome of C's `strtoul`/`strtol` on a string.
struct CNumber {
    /// The magnitude read, saturated at `u64::MAX` on overflow.
    magnitude: u64,
    negative: bool,
    overflow: bool,
    /// Bytes consumed; 0 when no digit was found (C then points back at the start).
    end: usize,
}

fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// C's number scanner shared by `strtoul`, `strtol` and `sscanf("%x")`: leading
/// white space, an optional sign, a base prefix when `base` is 0 or 16, digits.
fn scan_c_number(s: &str, base: u32) -> CNumber {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && is_c_space(b[i]) {
        i += 1;
    }
    let mut negative = false;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        negative = b[i] == b'-';
        i += 1;
    }
    let hex_prefix = i + 1 < b.len()
        && b[i] == b'0'
        && (b[i + 1] | 0x20) == b'x'
        && b.get(i + 2).is_some_and(|c| c.is_ascii_hexdigit());
    let radix = match base {
        0 if hex_prefix => {
            i += 2;
            16
        }
        0 if b.get(i) == Some(&b'0') => 8,
        0 => 10,
        16 => {
            if hex_prefix {
                i += 2;
            }
            16
        }
        other => other,
    };
    let start = i;
    let mut magnitude: u64 = 0;
    let mut overflow = false;
    while let Some(d) = b.get(i).and_then(|&c| (c as char).to_digit(radix)) {
        match magnitude
            .checked_mul(u64::from(radix))
            .and_then(|m| m.checked_add(u64::from(d)))
        {
            Some(m) => magnitude = m,
            None => overflow = true,
        }
        i += 1;
    }
    if overflow {
        magnitude = u64::MAX;
    }
    CNumber {
        magnitude,
        negative,
        overflow,
        end: if i == start { 0 } else { i },
    }
}

/// `strtoul(s, &end, base)`: the value as C returns it (negation wraps) and the
/// number of bytes consumed (0: no digits).
fn c_strtoul(s: &str, base: u32) -> (u64, bool, usize) {
    let n = scan_c_number(s, base);
    let value = if n.overflow {
        u64::MAX
    } else if n.negative {
        n.magnitude.wrapping_neg()
    } else {
        n.magnitude
    };
    (value, n.overflow, n.end)
}

/// iproute2's `get_integer(.., 0)`: a whole-string C `long` that fits an `int`.
pub(crate) fn get_integer(s: &str) -> Option<i32> {
    let n = scan_c_number(s, 0);
    if s.is_empty() || n.end != s.len() || n.overflow {
        return None;
    }
    let value = if n.negative {
        -i128::from(n.magnitude)
    } else {
        i128::from(n.magnitude)
    };
    // strtol saturates at the long range before get_integer narrows it to int.
    if value < i128::from(i64::MIN) || value > i128::from(i64::MAX) {
        return None;
    }
    i32::try_from(value).ok()
}

/// iproute2's `get_unsigned(.., 0)`: a whole-string C `unsigned long` that fits
/// an `unsigned int` (`-1` wraps to a huge value and is refused).
pub(crate) fn get_unsigned(s: &str) -> Option<u32> {
    let (value, overflow, end) = c_strtoul(s, 0);
    if s.is_empty() || end != s.len() || overflow {
        return None;
    }
    u32::try_from(value).ok()
}

/// iproute2's `get_u32(.., 0)`: a whole-string C `unsigned long` up to 2^32 - 1.
pub(crate) fn get_u32(s: &str) -> Option<u32> {
    get_unsigned(s)
}

/// iproute2's own IPv4 reader: one to four parts, each a C number up to 255, the
/// missing parts zero (`10.8` is `10.8.0.0`).
fn parse_ipv4_iproute(s: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut rest = s;
    for (i, octet) in octets.iter_mut().enumerate() {
        let (value, _, end) = c_strtoul(rest, 0);
        if value > 255 || end == 0 {
            return None;
        }
        *octet = value as u8;
        match rest.as_bytes().get(end) {
            None => break,
            Some(b'.') if i < 3 => rest = &rest[end + 1..],
            Some(_) => return None,
        }
    }
    Some(Ipv4Addr::from(octets))
}

/// An address or prefix as iproute2's `get_addr_1`/`get_prefix_1` understand it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// A real address; `prefix_len` is `None` when the word had no `/`.
    Addr {
        addr: IpAddr,
        prefix_len: Option<u8>,
    },
    /// `default`: the zero-length prefix of the requested family.
    Default,
    /// `all` or `any`: like `default`, but as a selector it selects everything.
    Any,
}

/// `get_addr_1`: one address, no prefix length. `None` when iproute2 would refuse.
pub(crate) fn parse_addr(s: &str, family: Family) -> Option<Parsed> {
    if matches!(s, "default" | "all" | "any") {
        return match family {
            Family::Other("mpls") => None,
            _ if s == "default" => Some(Parsed::Default),
            _ => Some(Parsed::Any),
        };
    }
    let addr = match family {
        Family::Packet | Family::Other(_) => return None,
        _ if s.contains(':') => {
            if !matches!(family, Family::Unspec | Family::Inet6) {
                return None;
            }
            IpAddr::V6(s.parse::<Ipv6Addr>().ok()?)
        }
        Family::Inet6 => return None,
        _ => IpAddr::V4(parse_ipv4_iproute(s)?),
    };
    Some(Parsed::Addr {
        addr,
        prefix_len: None,
    })
}

/// `get_prefix_1`: `ADDR[/LEN]`, where LEN is a C number or a dotted netmask.
pub(crate) fn parse_prefix(s: &str, family: Family) -> Option<Parsed> {
    let (addr_part, len_part) = match s.find('/') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let parsed = parse_addr(addr_part, family)?;
    let Some(len_part) = len_part else {
        return Some(parsed);
    };
    let Parsed::Addr { addr, .. } = parsed else {
        return None;
    };
    let len = get_unsigned(len_part).or_else(|| netmask_bits(len_part))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if len > max {
        return None;
    }
    Some(Parsed::Addr {
        addr,
        prefix_len: Some(len as u8),
    })
}

/// A dotted-quad netmask (`255.255.255.0`) as a prefix length, if contiguous.
fn netmask_bits(s: &str) -> Option<u32> {
    if s.contains(':') {
        return None;
    }
    let mask = u32::from(parse_ipv4_iproute(s)?);
    let host = !mask;
    if host & host.wrapping_add(1) != 0 {
        return None;
    }
    Some(mask.leading_ones())
}

/// The ways iproute2's `ll_addr_a2n` refuses a link-layer address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LladdrError {
    /// A part that is not a hex byte: `"zz" is invalid lladdr.`
    Invalid(String),
}

/// `ll_addr_a2n`: colon-separated hex bytes (each read like `sscanf("%x")`), or a
/// dotted IPv4 address for tunnels. Returns the bytes; their count is checked by the
/// caller because the message names the device's expected length.
pub(crate) fn parse_lladdr(s: &str) -> Result<Vec<u8>, LladdrError> {
    const MAX_PARTS: usize = 32;
    if s.contains('.') {
        return match parse_ipv4_iproute(s) {
            Some(v4) => Ok(v4.octets().to_vec()),
            None => Err(LladdrError::Invalid(s.to_string())),
        };
    }
    let mut bytes = Vec::new();
    let mut parts = s.split(':');
    for part in parts.by_ref() {
        let n = scan_c_number(part, 16);
        // sscanf stores the converted unsigned long into an int: keep its low 32 bits.
        let value = if n.negative {
            n.magnitude.wrapping_neg()
        } else {
            n.magnitude
        } as u32 as i32;
        if n.end == 0 || !(0..=255).contains(&value) {
            return Err(LladdrError::Invalid(part.to_string()));
        }
        bytes.push(value as u8);
        if bytes.len() == MAX_PARTS {
            break;
        }
    }
    if parts.next().is_some() {
        // iproute2 reports one more than its buffer when the string goes on.
        bytes.push(0);
    }
    Ok(bytes)
}

/// Writes a MAC address the way `ip` does: lower-case hex, colon-separated.
pub(crate) fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Writes an address the way glibc's `inet_ntop` does (and so `ip`): RFC 5952 for
/// IPv6, except that IPv4-compatible addresses (`::1.2.3.4`) keep the dotted tail.
pub(crate) fn format_addr(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format_ipv6(v6),
    }
}

fn format_ipv6(addr: Ipv6Addr) -> String {
    let words = addr.segments();
    // The longest run of zero words (at least two), the first one on a tie.
    let (mut best_start, mut best_len) = (0, 0);
    let mut i = 0;
    while i < 8 {
        if words[i] == 0 {
            let start = i;
            while i < 8 && words[i] == 0 {
                i += 1;
            }
            if i - start > best_len {
                (best_start, best_len) = (start, i - start);
            }
        } else {
            i += 1;
        }
    }
    if best_len < 2 {
        best_len = 0;
    }
    let dotted_tail = best_start == 0 && (best_len == 6 || (best_len == 5 && words[5] == 0xffff));
    let mut out = String::new();
    let mut i = 0;
    while i < 8 {
        if best_len > 0 && i == best_start {
            out.push_str("::");
            i += best_len;
            continue;
        }
        if !out.is_empty() && !out.ends_with(':') {
            out.push(':');
        }
        if dotted_tail && i == 6 {
            let o = addr.octets();
            out.push_str(&Ipv4Addr::new(o[12], o[13], o[14], o[15]).to_string());
            break;
        }
        out.push_str(&format!("{:x}", words[i]));
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        IpAddr::V4(s.parse().unwrap())
    }

    #[test]
    fn integers_follow_c_base_zero() {
        assert_eq!(get_integer("1500"), Some(1500));
        assert_eq!(get_integer("0x600"), Some(0x600));
        assert_eq!(get_integer("010"), Some(8));
        assert_eq!(get_integer("-1"), Some(-1));
        assert_eq!(get_integer("+7"), Some(7));
        assert_eq!(get_integer(" 7"), Some(7));
        assert_eq!(get_integer("4294967295"), None);
        assert_eq!(get_integer("abc"), None);
        assert_eq!(get_integer(""), None);
        assert_eq!(get_integer("7x"), None);
        assert_eq!(get_integer("0x"), None);
        assert_eq!(get_integer("99999999999999999999999"), None);
    }

    #[test]
    fn unsigned_refuses_wrapped_negatives() {
        assert_eq!(get_unsigned("24"), Some(24));
        assert_eq!(get_unsigned("0x18"), Some(24));
        assert_eq!(get_unsigned("-1"), None);
        assert_eq!(get_unsigned("-0"), Some(0));
        assert_eq!(get_unsigned(""), None);
    }

    #[test]
    fn ipv4_short_forms_and_masks() {
        let p = |s| parse_prefix(s, Family::Unspec);
        assert_eq!(
            p("10.0.0"),
            Some(Parsed::Addr {
                addr: v4("10.0.0.0"),
                prefix_len: None
            })
        );
        assert_eq!(
            p("10.0.1.1/255.255.255.0"),
            Some(Parsed::Addr {
                addr: v4("10.0.1.1"),
                prefix_len: Some(24)
            })
        );
        assert_eq!(
            p("10.0.2.1/0x18"),
            Some(Parsed::Addr {
                addr: v4("10.0.2.1"),
                prefix_len: Some(24)
            })
        );
        assert_eq!(
            p("0x0a.010.0.1"),
            Some(Parsed::Addr {
                addr: v4("10.8.0.1"),
                prefix_len: None
            })
        );
        for bad in [
            "10.0.0.x/24",
            "10.0.0.1/33",
            "10.0.0.1/-1",
            "10.0.0.1/",
            "10.0.0.256",
            "10.0.0.1.2",
            "10.",
            "abc",
            "default/0",
            "10.0.0.1/255.0.255.0",
        ] {
            assert_eq!(p(bad), None, "{bad}");
        }
        assert_eq!(p("default"), Some(Parsed::Default));
        assert_eq!(p("all"), Some(Parsed::Any));
        assert_eq!(parse_prefix("10.0.0.1", Family::Inet6), None);
        assert_eq!(parse_prefix("2001:db8::1/64", Family::Inet), None);
        assert_eq!(parse_prefix("2001:db8::1/129", Family::Unspec), None);
    }

    #[test]
    fn lladdr_reads_like_sscanf() {
        assert_eq!(parse_lladdr("2:0:0:0:0:1"), Ok(vec![2, 0, 0, 0, 0, 1]));
        assert_eq!(parse_lladdr("020000000002"), Ok(vec![2]));
        assert_eq!(parse_lladdr("02-00-00-00-00-03"), Ok(vec![2]));
        assert_eq!(
            parse_lladdr("02:00:00:00:00:0100"),
            Err(LladdrError::Invalid("0100".into()))
        );
        assert_eq!(
            parse_lladdr("zz:00:00:00:00:01"),
            Err(LladdrError::Invalid("zz".into()))
        );
        assert_eq!(
            parse_lladdr("02::00:00:00:01"),
            Err(LladdrError::Invalid("".into()))
        );
        assert_eq!(parse_lladdr("1.2.3.4"), Ok(vec![1, 2, 3, 4]));
    }

    #[test]
    fn ipv6_text_matches_inet_ntop() {
        let f = |s: &str| format_addr(IpAddr::V6(s.parse().unwrap()));
        assert_eq!(f("fe80::11:22ff:fe33:4455"), "fe80::11:22ff:fe33:4455");
        assert_eq!(f("::1"), "::1");
        assert_eq!(f("::"), "::");
        assert_eq!(f("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1");
        assert_eq!(f("2001:db8:0:1:1:1:1:1"), "2001:db8:0:1:1:1:1:1");
        assert_eq!(f("::1.2.3.4"), "::1.2.3.4");
        assert_eq!(f("::ffff:1.2.3.4"), "::ffff:1.2.3.4");
        assert_eq!(f("1::"), "1::");
    }
}
