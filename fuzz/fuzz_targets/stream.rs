//! `stream`: arbitrary bytes into the VDE stream decoder, in arbitrary pieces.
//!
//! Input layout: byte 0 holds the number of chunk-size bytes that follow (mod 16);
//! each of those describes one piece of the stream (cycled until the stream is
//! used up):
//! - bits 0..=5: the size (bit 6 set: times 256, for pieces as long as a frame);
//! - bit 7: after pushing the piece, take at most one frame instead of all of them,
//!   so that bytes are pushed while decoded ones still wait at the front.
//!
//! A piece of size 0 is an empty `push` (when all sizes are 0, the whole stream then
//! goes in as one piece). The rest of the input is the stream.
//!
//! Checked against a reference decoder over the whole stream (a plain loop over
//! length fields): the same frames, the same framing error at the same place, the
//! same count of buffered bytes after every call; the error sticks; and the frames,
//! encoded again with `encode_frame` and decoded in one piece, come back unchanged.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vdestack::link::{encode_frame, FramingError, StreamDecoder, MAX_STREAM_FRAME};

/// The reference: what the next record of `stream[*at..]` is.
enum Record {
    /// More bytes are needed.
    Incomplete,
    /// A frame at this range (zero-length frames are skipped by the caller).
    Frame(std::ops::Range<usize>),
    /// A length field above the limit.
    Bad(usize),
}

fn record(stream: &[u8], at: usize) -> Record {
    let Some(header) = stream.get(at..at + 2) else {
        return Record::Incomplete;
    };
    let len = usize::from(header[0]) << 8 | usize::from(header[1]);
    if len > MAX_STREAM_FRAME {
        return Record::Bad(len);
    }
    if stream.len() < at + 2 + len {
        return Record::Incomplete;
    }
    Record::Frame(at + 2..at + 2 + len)
}

/// The reference decoder's next answer, as `next_frame` should give it.
fn reference_next(
    stream: &[u8],
    at: &mut usize,
    error: &mut Option<usize>,
) -> Option<Result<std::ops::Range<usize>, usize>> {
    if let Some(len) = *error {
        return Some(Err(len));
    }
    loop {
        match record(stream, *at) {
            Record::Incomplete => return None,
            Record::Bad(len) => {
                *error = Some(len);
                return Some(Err(len));
            }
            Record::Frame(range) => {
                *at = range.end;
                if !range.is_empty() {
                    return Some(Ok(range));
                }
            }
        }
    }
}

struct Harness<'a> {
    decoder: StreamDecoder,
    /// Everything pushed so far.
    stream: &'a [u8],
    pushed: usize,
    /// The reference decoder's position and error.
    at: usize,
    error: Option<usize>,
    frames: Vec<Vec<u8>>,
}

impl Harness<'_> {
    /// One `next_frame`, compared with the reference. Returns whether it gave a frame.
    fn next(&mut self) -> bool {
        let expected = reference_next(&self.stream[..self.pushed], &mut self.at, &mut self.error);
        let got = self.decoder.next_frame();
        match (got, expected) {
            (None, None) => {
                assert!(!self.decoder.is_broken());
                assert_eq!(self.decoder.buffered(), self.pushed - self.at);
                false
            }
            (Some(Ok(frame)), Some(Ok(range))) => {
                assert!(!frame.is_empty() && frame.len() <= MAX_STREAM_FRAME);
                assert_eq!(frame, &self.stream[range], "a frame came out changed");
                self.frames.push(frame.to_vec());
                assert_eq!(self.decoder.buffered(), self.pushed - self.at);
                true
            }
            (Some(Err(e)), Some(Err(len))) => {
                assert_eq!(e.frame_len(), len);
                assert!(e.frame_len() > MAX_STREAM_FRAME);
                assert!(self.decoder.is_broken());
                assert_eq!(self.decoder.buffered(), 0, "a broken stream holds nothing");
                false
            }
            (got, expected) => panic!(
                "decoder gave {:?}, reference {expected:?} (at {} of {} pushed)",
                got.map(|r| r.map(<[u8]>::len)),
                self.at,
                self.pushed
            ),
        }
    }

    fn push(&mut self, len: usize) {
        let piece = &self.stream[self.pushed..self.pushed + len];
        let broken = self.decoder.is_broken();
        self.decoder.push(piece);
        self.pushed += len;
        if broken {
            // Ignored: the error stays, nothing is buffered.
            assert!(self.decoder.is_broken());
            assert_eq!(self.decoder.buffered(), 0);
        }
    }

    fn drain(&mut self) {
        // Bounded: each frame takes at least 3 bytes of the stream.
        for _ in 0..=self.stream.len() {
            if !self.next() {
                return;
            }
        }
        panic!("more frames than the stream can hold");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&count, rest)) = data.split_first() else {
        return;
    };
    let count = usize::from(count % 16).min(rest.len());
    let (sizes, stream) = rest.split_at(count);
    let mut h = Harness {
        decoder: StreamDecoder::new(),
        stream,
        pushed: 0,
        at: 0,
        error: None,
        frames: Vec::new(),
    };
    let mut i = 0;
    while h.pushed < stream.len() {
        let (size, one_only) = match sizes.get(i % sizes.len().max(1)) {
            Some(&b) => {
                let size = usize::from(b & 0x3f) * if b & 0x40 != 0 { 256 } else { 1 };
                (size, b & 0x80 != 0)
            }
            None => (stream.len(), false),
        };
        i += 1;
        // Sizes that are all zero would never get through the stream.
        let size = if i > sizes.len() && h.pushed == 0 && size == 0 {
            stream.len()
        } else {
            size
        };
        h.push(size.min(stream.len() - h.pushed));
        if one_only {
            h.next();
        } else {
            h.drain();
        }
    }
    // An empty push changes nothing; then everything left comes out.
    h.push(0);
    h.drain();

    // Once broken, always broken, with the same error.
    let error = h.error;
    if let Some(len) = error {
        for _ in 0..3 {
            h.decoder.push(b"\x00\x01x");
            match h.decoder.next_frame() {
                Some(Err(e)) => assert_eq!(e.frame_len(), len),
                other => panic!("the error did not stick: {:?}", other.map(|r| r.is_ok())),
            }
        }
    }
    if error.is_none() {
        // What is left is an incomplete record (or nothing).
        assert!(h.decoder.buffered() < 2 + MAX_STREAM_FRAME);
    }

    // Round trip: the frames, encoded again, decode to themselves in one piece.
    let mut encoded = Vec::new();
    for f in &h.frames {
        let before = encoded.len();
        encode_frame(f, &mut encoded).expect("a decoded frame encodes");
        assert_eq!(encoded.len(), before + 2 + f.len());
    }
    let mut again = StreamDecoder::new();
    again.push(&encoded);
    for f in &h.frames {
        match again.next_frame() {
            Some(Ok(g)) => assert_eq!(g, &f[..], "round trip changed a frame"),
            other => panic!("round trip lost a frame: {:?}", other.map(|r| r.is_ok())),
        }
    }
    assert!(again.next_frame().is_none());
    assert_eq!(again.buffered(), 0);

    // Frames beyond the limit are refused without touching the output.
    if let Some(&extra) = stream.first() {
        let long = vec![0u8; MAX_STREAM_FRAME + 1 + usize::from(extra)];
        let mut out = vec![7u8];
        let err: FramingError = encode_frame(&long, &mut out).expect_err("too long");
        assert_eq!(err.frame_len(), long.len());
        assert_eq!(out, [7u8]);
    }
});
