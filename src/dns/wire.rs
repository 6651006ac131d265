//! DNS messages (RFC 1035, AAAA from RFC 3596): the header view, names with
//! compression pointers, the queries a resolver sends and the responses it reads.
//!
//! Reading never trusts a count or a pointer: every length is checked against the
//! bytes there are, a compression pointer must point before the name that uses it
//! (so that pointers cannot loop), and a name may not exceed 255 bytes.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The port name servers listen on.
pub const DNS_PORT: u16 = 53;

/// The largest message over UDP without EDNS (RFC 1035 section 4.2.1); a longer
/// answer comes truncated (the TC bit), to be asked again over TCP.
pub const MAX_UDP_PAYLOAD: usize = 512;

const HEADER_LEN: usize = 12;
const MAX_NAME_LEN: usize = 255;
const MAX_LABEL_LEN: usize = 63;
/// The records read from one response, at most: a resolver needs a few.
const MAX_RECORDS: usize = 256;
/// CNAME links followed from the question's name, at most (glibc: 16 as well).
const MAX_CNAME_CHAIN: usize = 16;
const CLASS_IN: u16 = 1;

/// Why bytes are not a DNS message, or a name not a domain name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsError {
    /// The message ends inside a field.
    Truncated,
    /// A compression pointer points at or after the name that uses it.
    BadPointer,
    /// A label type other than a length or a pointer (RFC 6891's extended labels).
    BadLabel,
    /// A name longer than 255 bytes, or a label longer than 63.
    NameTooLong,
    /// An empty label inside a name (`a..b`), or a name that is not text.
    BadName,
    /// A record's data length does not fit its type (an A record of 5 bytes).
    BadRecord,
    /// A message that is a query, not a response, or has more than one question.
    NotResponse,
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DnsError::Truncated => "DNS message truncated",
            DnsError::BadPointer => "DNS compression pointer does not point backwards",
            DnsError::BadLabel => "unknown DNS label type",
            DnsError::NameTooLong => "DNS name or label too long",
            DnsError::BadName => "malformed DNS name",
            DnsError::BadRecord => "DNS record data does not fit its type",
            DnsError::NotResponse => "not a DNS response to one question",
        })
    }
}

impl std::error::Error for DnsError {}

/// The record types a resolver asks for or follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordType {
    /// An IPv4 address.
    A,
    /// An IPv6 address (RFC 3596).
    Aaaa,
    /// An alias: the canonical name.
    Cname,
    /// A name for an address (reverse lookups).
    Ptr,
    /// Any other type, by number.
    Other(u16),
}

impl RecordType {
    /// The type's number on the wire.
    pub fn code(self) -> u16 {
        match self {
            RecordType::A => 1,
            RecordType::Cname => 5,
            RecordType::Ptr => 12,
            RecordType::Aaaa => 28,
            RecordType::Other(code) => code,
        }
    }

    /// The type of a number on the wire.
    pub fn from_code(code: u16) -> RecordType {
        match code {
            1 => RecordType::A,
            5 => RecordType::Cname,
            12 => RecordType::Ptr,
            28 => RecordType::Aaaa,
            other => RecordType::Other(other),
        }
    }
}

/// A response's status (RFC 1035 section 4.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rcode {
    /// No error (which may still carry no record of the type asked).
    NoError,
    /// The server could not read the query.
    FormErr,
    /// The server failed (try the next server).
    ServFail,
    /// The name does not exist.
    NxDomain,
    /// The server does not implement the query.
    NotImp,
    /// The server refused to answer (try the next server).
    Refused,
    /// Any other code.
    Other(u8),
}

impl Rcode {
    fn from_code(code: u8) -> Rcode {
        match code {
            0 => Rcode::NoError,
            1 => Rcode::FormErr,
            2 => Rcode::ServFail,
            3 => Rcode::NxDomain,
            4 => Rcode::NotImp,
            5 => Rcode::Refused,
            other => Rcode::Other(other),
        }
    }
}

/// A view of a DNS message's header over its bytes (checked: at least a header).
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// A view of `buffer`, if it holds a whole header.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, DnsError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(DnsError::Truncated);
        }
        Ok(Packet { buffer })
    }

    fn u16_at(&self, at: usize) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[at], b[at + 1]])
    }

    /// The message's id, which a response copies from its query.
    pub fn id(&self) -> u16 {
        self.u16_at(0)
    }

    /// Whether the message is a response (QR).
    pub fn is_response(&self) -> bool {
        self.buffer.as_ref()[2] & 0x80 != 0
    }

    /// The operation (0: a standard query).
    pub fn opcode(&self) -> u8 {
        (self.buffer.as_ref()[2] >> 3) & 0x0f
    }

    /// Whether the server cut the message to fit (TC): ask again over TCP.
    pub fn truncated(&self) -> bool {
        self.buffer.as_ref()[2] & 0x02 != 0
    }

    /// The response's status.
    pub fn rcode(&self) -> Rcode {
        Rcode::from_code(self.buffer.as_ref()[3] & 0x0f)
    }

    /// The number of questions.
    pub fn question_count(&self) -> u16 {
        self.u16_at(4)
    }

    /// The number of answer records.
    pub fn answer_count(&self) -> u16 {
        self.u16_at(6)
    }

    /// The whole message.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// Puts `name` on the wire as labels (no compression), after checking it.
fn emit_name(name: &str, out: &mut Vec<u8>) -> Result<(), DnsError> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let start = out.len();
    if !name.is_empty() {
        for label in name.split('.') {
            if label.is_empty() {
                return Err(DnsError::BadName);
            }
            if label.len() > MAX_LABEL_LEN {
                return Err(DnsError::NameTooLong);
            }
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
    }
    out.push(0);
    if out.len() - start > MAX_NAME_LEN {
        out.truncate(start);
        return Err(DnsError::NameTooLong);
    }
    Ok(())
}

/// Reads the name at `at` in `msg`, following compression pointers. Returns the
/// name in text (dotted, no final dot, `.` and odd bytes escaped as `\DDD`) and the
/// offset just after the name where it started.
fn read_name(msg: &[u8], at: usize) -> Result<(String, usize), DnsError> {
    let mut text = String::new();
    let mut pos = at;
    let mut end = None;
    let mut wire_len = 0usize;
    // The lowest offset a pointer may point to next: strictly before the
    // label sequence it is read from, so pointers only go back and cannot loop.
    let mut limit = at;
    loop {
        let len = *msg.get(pos).ok_or(DnsError::Truncated)?;
        match len & 0xc0 {
            0x00 => {
                wire_len += usize::from(len) + 1;
                if wire_len > MAX_NAME_LEN {
                    return Err(DnsError::NameTooLong);
                }
                if len == 0 {
                    return Ok((text, end.unwrap_or(pos + 1)));
                }
                let label = msg
                    .get(pos + 1..pos + 1 + usize::from(len))
                    .ok_or(DnsError::Truncated)?;
                if !text.is_empty() {
                    text.push('.');
                }
                for &b in label {
                    if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'*' {
                        text.push(char::from(b));
                    } else {
                        text.push_str(&format!("\\{b:03}"));
                    }
                }
                pos += 1 + usize::from(len);
            }
            0xc0 => {
                let low = *msg.get(pos + 1).ok_or(DnsError::Truncated)?;
                let target = usize::from(u16::from_be_bytes([len & 0x3f, low]));
                if target >= limit {
                    return Err(DnsError::BadPointer);
                }
                end.get_or_insert(pos + 2);
                limit = target;
                pos = target;
            }
            _ => return Err(DnsError::BadLabel),
        }
    }
}

/// Whether two names in text are the same domain name (ASCII case folded, a final
/// dot ignored).
pub(crate) fn same_name(a: &str, b: &str) -> bool {
    a.strip_suffix('.')
        .unwrap_or(a)
        .eq_ignore_ascii_case(b.strip_suffix('.').unwrap_or(b))
}

/// A question to send: recursion desired, one question, class IN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The id the response must carry (the caller chooses it, at random).
    pub id: u16,
    /// The name asked about, dotted (a final dot is allowed).
    pub name: String,
    /// The type asked for.
    pub qtype: RecordType,
}

impl Query {
    /// The query's bytes, or why the name cannot be put on the wire.
    pub fn to_bytes(&self) -> Result<Vec<u8>, DnsError> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.name.len() + 6);
        out.extend_from_slice(&self.id.to_be_bytes());
        // Flags: a standard query with recursion desired (RD).
        out.extend_from_slice(&[0x01, 0x00]);
        out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        emit_name(&self.name, &mut out)?;
        out.extend_from_slice(&self.qtype.code().to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        Ok(out)
    }
}

/// What a record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordData {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// The canonical name the owner is an alias of.
    Cname(String),
    /// The name of an address.
    Ptr(String),
    /// A record of another type (its data is not read).
    Other(RecordType),
}

/// One resource record of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The owner's name.
    pub name: String,
    /// The class (1: IN).
    pub class: u16,
    /// Seconds the record may be cached.
    pub ttl: u32,
    /// The data.
    pub data: RecordData,
}

/// A response read whole: its header's fields, its question and its answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The id (the query's, if it answers it).
    pub id: u16,
    /// The status.
    pub rcode: Rcode,
    /// The server cut the message (TC).
    pub truncated: bool,
    /// The question the server answers: name, type, class.
    pub question: (String, RecordType, u16),
    /// The answer section's records.
    pub answers: Vec<Record>,
}

/// What a response means for the query it may answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Not an answer to this query (another id, name or type): ignore it and keep
    /// waiting, as an attacker or a late answer may send it.
    Unrelated,
    /// The addresses at the end of the CNAME chain, and the chain's last name.
    Addresses(Vec<IpAddr>, String),
    /// The name exists but has no address of the type asked.
    NoData,
    /// The name does not exist.
    NxDomain,
    /// The server failed, refused or did not understand: try another.
    ServerFailure(Rcode),
    /// The answer did not fit: ask again over TCP.
    Truncated,
}

impl Response {
    /// Reads a whole response. A query, a message with other than one question, or
    /// any malformed part of the question or the answers is an error; the
    /// authority and additional sections are not read.
    pub fn parse(bytes: &[u8]) -> Result<Response, DnsError> {
        let packet = Packet::new_checked(bytes)?;
        if !packet.is_response() || packet.question_count() != 1 || packet.opcode() != 0 {
            return Err(DnsError::NotResponse);
        }
        let msg = packet.as_bytes();
        let (qname, mut pos) = read_name(msg, HEADER_LEN)?;
        let fixed = msg.get(pos..pos + 4).ok_or(DnsError::Truncated)?;
        let qtype = RecordType::from_code(u16::from_be_bytes([fixed[0], fixed[1]]));
        let qclass = u16::from_be_bytes([fixed[2], fixed[3]]);
        pos += 4;
        let mut answers = Vec::new();
        for _ in 0..usize::from(packet.answer_count()).min(MAX_RECORDS) {
            let (record, next) = read_record(msg, pos)?;
            answers.push(record);
            pos = next;
        }
        Ok(Response {
            id: packet.id(),
            rcode: packet.rcode(),
            truncated: packet.truncated(),
            question: (qname, qtype, qclass),
            answers,
        })
    }

    /// Whether this response answers `query`: same id, same question.
    pub fn answers(&self, query: &Query) -> bool {
        let (name, qtype, class) = &self.question;
        self.id == query.id
            && *qtype == query.qtype
            && *class == CLASS_IN
            && same_name(name, &query.name)
    }

    /// What this response means for `query` (RFC 1034 section 5.3.3): the CNAME
    /// chain from the question's name is followed through the answers (at most 16
    /// links), and the records of the type asked for the chain's last name are its
    /// addresses.
    pub fn answer_for(&self, query: &Query) -> Answer {
        if !self.answers(query) {
            return Answer::Unrelated;
        }
        if self.truncated {
            return Answer::Truncated;
        }
        match self.rcode {
            Rcode::NoError => {}
            Rcode::NxDomain => return Answer::NxDomain,
            other => return Answer::ServerFailure(other),
        }
        let name = self.chain_end(query.name.strip_suffix('.').unwrap_or(&query.name));
        let addrs: Vec<IpAddr> = self
            .answers
            .iter()
            .filter(|r| r.class == CLASS_IN && same_name(&r.name, &name))
            .filter_map(|r| match (&r.data, query.qtype) {
                (RecordData::A(a), RecordType::A) => Some(IpAddr::V4(*a)),
                (RecordData::Aaaa(a), RecordType::Aaaa) => Some(IpAddr::V6(*a)),
                _ => None,
            })
            .collect();
        if addrs.is_empty() {
            Answer::NoData
        } else {
            Answer::Addresses(addrs, name)
        }
    }

    /// The last name of the CNAME chain from `name` through the answers (at most
    /// 16 links).
    fn chain_end(&self, name: &str) -> String {
        let mut name = name.to_owned();
        for _ in 0..MAX_CNAME_CHAIN {
            let next = self.answers.iter().find_map(|r| match &r.data {
                RecordData::Cname(target) if r.class == CLASS_IN && same_name(&r.name, &name) => {
                    Some(target.clone())
                }
                _ => None,
            });
            match next {
                Some(target) => name = target,
                None => break,
            }
        }
        name
    }

    /// The names PTR records give for the question's name, following CNAMEs as
    /// [`Response::answer_for`] does (RFC 2317 delegations use them).
    pub fn ptr_names(&self) -> Vec<String> {
        let name = self.chain_end(&self.question.0);
        self.answers
            .iter()
            .filter(|r| same_name(&r.name, &name))
            .filter_map(|r| match &r.data {
                RecordData::Ptr(p) => Some(p.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Reads the resource record at `pos`; returns it and the offset after it.
fn read_record(msg: &[u8], pos: usize) -> Result<(Record, usize), DnsError> {
    let (name, pos) = read_name(msg, pos)?;
    let fixed = msg.get(pos..pos + 10).ok_or(DnsError::Truncated)?;
    let rtype = RecordType::from_code(u16::from_be_bytes([fixed[0], fixed[1]]));
    let class = u16::from_be_bytes([fixed[2], fixed[3]]);
    let ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
    let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
    let start = pos + 10;
    let rdata = msg.get(start..start + rdlen).ok_or(DnsError::Truncated)?;
    let data = match rtype {
        RecordType::A => {
            let octets: [u8; 4] = rdata.try_into().map_err(|_| DnsError::BadRecord)?;
            RecordData::A(Ipv4Addr::from(octets))
        }
        RecordType::Aaaa => {
            let octets: [u8; 16] = rdata.try_into().map_err(|_| DnsError::BadRecord)?;
            RecordData::Aaaa(Ipv6Addr::from(octets))
        }
        RecordType::Cname | RecordType::Ptr => {
            let (target, after) = read_name(msg, start)?;
            if after != start + rdlen {
                return Err(DnsError::BadRecord);
            }
            if rtype == RecordType::Cname {
                RecordData::Cname(target)
            } else {
                RecordData::Ptr(target)
            }
        }
        other => RecordData::Other(other),
    };
    Ok((
        Record {
            name,
            class,
            ttl,
            data,
        },
        start + rdlen,
    ))
}

/// The name a reverse (PTR) lookup asks about for `addr`: `4.3.2.1.in-addr.arpa`,
/// or the 32 nibbles of an IPv6 address under `ip6.arpa` (RFC 3596 section 2.5).
pub fn reverse_name(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => {
            let [a, b, c, d] = a.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(a) => {
            let mut out = String::with_capacity(72);
            for byte in a.octets().iter().rev() {
                out.push_str(&format!("{:x}.{:x}.", byte & 0x0f, byte >> 4));
            }
            out.push_str("ip6.arpa");
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: RecordType) -> Query {
        Query {
            id: 0x1234,
            name: name.into(),
            qtype,
        }
    }

    #[test]
    fn query_bytes() {
        let bytes = query("www.example.com", RecordType::A).to_bytes().unwrap();
        let expected: &[u8] = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\
            \x03www\x07example\x03com\x00\x00\x01\x00\x01";
        assert_eq!(bytes, expected);
        assert_eq!(
            query("a.", RecordType::Aaaa).to_bytes().unwrap()[12..],
            *b"\x01a\x00\x00\x1c\x00\x01"
        );
        assert_eq!(
            query("a..b", RecordType::A).to_bytes(),
            Err(DnsError::BadName)
        );
        let long = "a".repeat(64);
        assert_eq!(
            query(&long, RecordType::A).to_bytes(),
            Err(DnsError::NameTooLong)
        );
        let many = vec!["abcdefghi"; 30].join(".");
        assert_eq!(
            query(&many, RecordType::A).to_bytes(),
            Err(DnsError::NameTooLong)
        );
    }

    /// A response to `www.example.com` A (id 0x1234), by hand: a CNAME to
    /// `web.example.com` (compressed), then two A records for it.
    const CNAME_RESPONSE: &[u8] = b"\x12\x34\x81\x80\x00\x01\x00\x03\x00\x00\x00\x00\
        \x03www\x07example\x03com\x00\x00\x01\x00\x01\
        \xc0\x0c\x00\x05\x00\x01\x00\x00\x0e\x10\x00\x06\x03web\xc0\x10\
        \xc0\x2d\x00\x01\x00\x01\x00\x00\x0e\x10\x00\x04\xc0\x00\x02\x01\
        \xc0\x2d\x00\x01\x00\x01\x00\x00\x0e\x10\x00\x04\xc0\x00\x02\x02";

    #[test]
    fn cname_chain_and_addresses() {
        let r = Response::parse(CNAME_RESPONSE).unwrap();
        assert_eq!(r.answers.len(), 3);
        assert_eq!(
            r.answers[0].data,
            RecordData::Cname("web.example.com".into())
        );
        let q = query("WWW.example.com.", RecordType::A);
        assert_eq!(
            r.answer_for(&q),
            Answer::Addresses(
                vec!["192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap()],
                "web.example.com".into()
            )
        );
        // Another id, name or type: not an answer to it.
        assert_eq!(
            r.answer_for(&Query { id: 1, ..q.clone() }),
            Answer::Unrelated
        );
        assert_eq!(
            r.answer_for(&query("example.com", RecordType::A)),
            Answer::Unrelated
        );
        assert_eq!(
            r.answer_for(&query("www.example.com", RecordType::Aaaa)),
            Answer::Unrelated
        );
    }

    #[test]
    fn rcodes_and_truncation() {
        let mut m = CNAME_RESPONSE.to_vec();
        let q = query("www.example.com", RecordType::A);
        m[3] = 0x83;
        assert_eq!(
            Response::parse(&m).unwrap().answer_for(&q),
            Answer::NxDomain
        );
        m[3] = 0x82;
        assert_eq!(
            Response::parse(&m).unwrap().answer_for(&q),
            Answer::ServerFailure(Rcode::ServFail)
        );
        m[3] = 0x85;
        assert_eq!(
            Response::parse(&m).unwrap().answer_for(&q),
            Answer::ServerFailure(Rcode::Refused)
        );
        m[3] = 0x80;
        m[2] = 0x83;
        assert_eq!(
            Response::parse(&m).unwrap().answer_for(&q),
            Answer::Truncated
        );
        // No answer records: no data.
        let mut empty = CNAME_RESPONSE[..33].to_vec();
        empty[7] = 0;
        assert_eq!(
            Response::parse(&empty).unwrap().answer_for(&q),
            Answer::NoData
        );
        // A query is not a response.
        let mut asked = empty.clone();
        asked[2] = 0x01;
        assert_eq!(Response::parse(&asked), Err(DnsError::NotResponse));
    }

    #[test]
    fn bad_messages_are_errors() {
        for cut in 0..CNAME_RESPONSE.len() {
            assert!(
                Response::parse(&CNAME_RESPONSE[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        // A pointer to itself, and one pointing forward.
        let mut looped = CNAME_RESPONSE.to_vec();
        looped[33] = 0xc0;
        looped[34] = 33;
        assert_eq!(Response::parse(&looped), Err(DnsError::BadPointer));
        let mut label = CNAME_RESPONSE.to_vec();
        label[12] = 0x43;
        assert_eq!(Response::parse(&label), Err(DnsError::BadLabel));
        // An A record of 5 bytes.
        let mut a5 = CNAME_RESPONSE[..CNAME_RESPONSE.len() - 16].to_vec();
        a5.extend_from_slice(
            b"\xc0\x2d\x00\x01\x00\x01\x00\x00\x0e\x10\x00\x05\xc0\x00\x02\x01\x00",
        );
        assert_eq!(Response::parse(&a5), Err(DnsError::BadRecord));
    }

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_name("192.0.2.1".parse().unwrap()),
            "1.2.0.192.in-addr.arpa"
        );
        let v6 = reverse_name("2001:db8::567:89ab".parse().unwrap());
        assert_eq!(
            v6,
            "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
    }
}
