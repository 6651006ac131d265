//! Whether a program can run under `vdestack run`: the library reaches a program
//! only through the dynamic loader (`LD_PRELOAD`), so a statically linked
//! executable (an ELF file without a `PT_INTERP` program header) would make its
//! sockets on the host's network. It is refused instead.

/// How an executable file is linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linking {
    /// An ELF file with an interpreter (the dynamic loader).
    Dynamic,
    /// An ELF file without one: the loader never runs, `LD_PRELOAD` is ignored.
    Static,
    /// Not an ELF file (a script: its interpreter is what runs).
    NotElf,
    /// An ELF file whose headers could not be read.
    Broken,
}

const PT_INTERP: u32 = 3;

/// How the ELF file whose first bytes are `bytes` is linked (`bytes` must hold
/// its program headers: [`needed`] says how many bytes that takes).
pub fn linking(bytes: &[u8]) -> Linking {
    let Some(header) = Header::read(bytes) else {
        return if bytes.starts_with(b"\x7fELF") {
            Linking::Broken
        } else {
            Linking::NotElf
        };
    };
    for i in 0..header.phnum {
        let offset = header.phoff + i * header.phentsize;
        match header.u32_at(bytes, offset) {
            Some(PT_INTERP) => return Linking::Dynamic,
            Some(_) => {}
            None => return Linking::Broken,
        }
    }
    Linking::Static
}

/// How many bytes of the file [`linking`] needs, from its first 64.
pub fn needed(first: &[u8]) -> usize {
    Header::read(first).map_or(first.len(), |h| h.phoff + h.phnum * h.phentsize)
}

/// What the program headers' place is.
struct Header {
    little: bool,
    phoff: usize,
    phentsize: usize,
    phnum: usize,
}

impl Header {
    fn read(bytes: &[u8]) -> Option<Header> {
        if !bytes.starts_with(b"\x7fELF") || bytes.len() < 64 {
            return None;
        }
        let little = match bytes[5] {
            1 => true,
            2 => false,
            _ => return None,
        };
        let n = |offset: usize, len: usize| -> Option<usize> {
            let field = bytes.get(offset..offset + len)?;
            let mut value = 0u64;
            for i in 0..len {
                let byte = if little { field[len - 1 - i] } else { field[i] };
                value = value << 8 | u64::from(byte);
            }
            usize::try_from(value).ok()
        };
        let (phoff, phentsize, phnum) = match bytes[4] {
            1 => (n(28, 4)?, n(42, 2)?, n(44, 2)?),
            2 => (n(32, 8)?, n(54, 2)?, n(56, 2)?),
            _ => return None,
        };
        if phentsize < 4 || phoff.checked_add(phnum.checked_mul(phentsize)?)? > 1 << 24 {
            return None;
        }
        Some(Header {
            little,
            phoff,
            phentsize,
            phnum,
        })
    }

    fn u32_at(&self, bytes: &[u8], offset: usize) -> Option<u32> {
        let field: [u8; 4] = bytes.get(offset..offset + 4)?.try_into().ok()?;
        Some(if self.little {
            u32::from_le_bytes(field)
        } else {
            u32::from_be_bytes(field)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 64-bit little-endian ELF header with `types` as its program headers.
    fn elf64(types: &[u32]) -> Vec<u8> {
        let mut bytes = vec![0u8; 64];
        bytes[..4].copy_from_slice(b"\x7fELF");
        bytes[4] = 2;
        bytes[5] = 1;
        bytes[32..40].copy_from_slice(&64u64.to_le_bytes());
        bytes[54..56].copy_from_slice(&56u16.to_le_bytes());
        bytes[56..58].copy_from_slice(&(types.len() as u16).to_le_bytes());
        for t in types {
            let mut ph = vec![0u8; 56];
            ph[..4].copy_from_slice(&t.to_le_bytes());
            bytes.extend(ph);
        }
        bytes
    }

    #[test]
    fn an_interpreter_makes_it_dynamic() {
        assert_eq!(linking(&elf64(&[6, PT_INTERP, 1])), Linking::Dynamic);
        assert_eq!(linking(&elf64(&[6, 1, 1])), Linking::Static);
        assert_eq!(needed(&elf64(&[6, 1, 1])), 64 + 3 * 56);
    }

    #[test]
    fn scripts_and_short_files() {
        assert_eq!(linking(b"#!/bin/sh\necho hi\n"), Linking::NotElf);
        assert_eq!(linking(b""), Linking::NotElf);
        assert_eq!(linking(b"\x7fELF\x02\x01"), Linking::Broken);
        let full = elf64(&[PT_INTERP]);
        assert_eq!(linking(&full[..66]), Linking::Broken, "headers cut short");
    }

    #[test]
    fn the_programs_of_this_machine() {
        let sh = std::fs::read("/bin/sh").expect("/bin/sh");
        assert_eq!(linking(&sh), Linking::Dynamic);
    }
}
