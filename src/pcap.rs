//! Frame captures in the classic pcap format, readable by tcpdump and Wireshark.
//!
//! Both the threaded stacks (`Stack::builder().pcap(path)`) and the deterministic
//! simulation ([`crate::sim::SimNetwork::capture`]) write through this one writer.
//! Not API: programs ask for a capture with a path or a writer and read it with
//! the tools of the format.

use std::io::{self, Write};
use std::time::Duration;

/// Link type of the capture: Ethernet.
const LINKTYPE_ETHERNET: u32 = 1;

/// The longest frame kept whole; longer ones are cut (pcap's snapshot length).
const SNAPLEN: u32 = 65535;

/// Writes frames to `W` as a pcap file.
#[derive(Debug)]
pub(crate) struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    /// Starts a capture: writes the file header.
    pub(crate) fn new(mut out: W) -> io::Result<PcapWriter<W>> {
        let mut header = Vec::with_capacity(24);
        header.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes()); // magic, microseconds
        header.extend_from_slice(&2u16.to_le_bytes()); // version 2.4
        header.extend_from_slice(&4u16.to_le_bytes());
        header.extend_from_slice(&0i32.to_le_bytes()); // GMT offset
        header.extend_from_slice(&0u32.to_le_bytes()); // timestamp accuracy
        header.extend_from_slice(&SNAPLEN.to_le_bytes());
        header.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&header)?;
        Ok(PcapWriter { out })
    }

    /// Appends one frame seen at `time` (since the Unix epoch for real captures, or
    /// virtual time in a simulation).
    pub(crate) fn write_frame(&mut self, time: Duration, frame: &[u8]) -> io::Result<()> {
        let kept = frame.len().min(SNAPLEN as usize);
        let mut record = Vec::with_capacity(16 + kept);
        record.extend_from_slice(&(time.as_secs() as u32).to_le_bytes());
        record.extend_from_slice(&time.subsec_micros().to_le_bytes());
        record.extend_from_slice(&(kept as u32).to_le_bytes());
        record.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        record.extend_from_slice(&frame[..kept]);
        self.out.write_all(&record)
    }

    /// Flushes what is buffered.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The underlying writer.
    #[cfg(test)]
    pub(crate) fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capture_is_a_header_then_one_record_per_frame() {
        let mut pcap = PcapWriter::new(Vec::new()).unwrap();
        pcap.write_frame(Duration::from_millis(1), &[0xff; 60])
            .unwrap();
        assert_eq!(pcap.into_inner().len(), 24 + 16 + 60);
    }
}
