//! `dns_response`: arbitrary bytes as a DNS response (`vdestack::dns`).
//!
//! Reading must give a response or an error, never a panic; a response read must
//! give an answer for any query, and follow no CNAME chain forever.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vdestack::dns::{Answer, Packet, Query, RecordType, Response};

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = Packet::new_checked(data) {
        let _ = (packet.id(), packet.rcode(), packet.truncated(), packet.answer_count());
    }
    let Ok(response) = Response::parse(data) else {
        return;
    };
    for qtype in [RecordType::A, RecordType::Aaaa, response.question.1] {
        let query = Query {
            id: response.id,
            name: response.question.0.clone(),
            qtype,
        };
        if let Answer::Addresses(addrs, _) = response.answer_for(&query) {
            assert!(!addrs.is_empty());
        }
    }
    let _ = response.ptr_names();
});
