//! `hammer namekey1|namekey2|namekey32 name`: print a name's directory
//! hash. `namekey1` is ALG0; `namekey2` is the userland tool's own
//! experimental hash (not the kernel's ALG1); `namekey32` the 31-bit CRC.

use hammer_ondisk::{crc32, namekey_alg0};
use std::io::Write;

/// The userland tool's `namekey2` hash: the CRC in the low half, five bits of
/// the first and last characters, the second and second-to-last, the third,
/// and six bits of the middle's CRC above it.
pub fn namekey2(name: &[u8]) -> u64 {
    let n = name.len();
    let mut k = (crc32(name) & 0xFFFF_FFFE) as u64;
    if n >= 6 {
        let mut c = crc32(&name[3..n - 2]);
        c = c ^ (c >> 6) ^ (c >> 12);
        k |= ((c & 0x3F) as u64) << 42;
    }
    if n >= 3 {
        k |= ((name[2] & 0x1F) as u64) << 48;
    }
    if n >= 2 {
        k |= ((name[1] & 0x1F) as u64) << 53;
        k |= ((name[n - 2] & 0x1F) as u64) << 37;
    }
    if n >= 1 {
        k |= ((name[0] & 0x1F) as u64) << 58;
        k |= ((name[n - 1] & 0x1F) as u64) << 32;
    }
    if k == 0 {
        k = 0x1_0000_0000;
    }
    k
}

pub fn run(cmd: &str, name: &[u8], out: &mut dyn Write) -> std::io::Result<()> {
    match cmd {
        "namekey1" => writeln!(out, "0x{:016x}", namekey_alg0(name) as u64),
        "namekey2" => writeln!(out, "0x{:016x}", namekey2(name)),
        _ => {
            let mut k = crc32(name) & 0x7FFF_FFFF;
            if k == 0 {
                k = 1;
            }
            writeln!(out, "0x{:08x}", k)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_s(cmd: &str, name: &str) -> String {
        let mut v = Vec::new();
        run(cmd, name.as_bytes(), &mut v).unwrap();
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn golden_hello() {
        assert_eq!(run_s("namekey1", "hello"), "0x3610a68600000000\n");
        assert_eq!(run_s("namekey2", "hello"), "0x20ac018f3610a686\n");
        assert_eq!(run_s("namekey32", "hello"), "0x3610a686\n");
    }

    #[test]
    fn derived_values() {
        assert_eq!(namekey2(b""), 0x0000000100000000);
        assert_eq!(namekey2(b"a"), 0x04000001e8b7be42);
        assert_eq!(namekey2(b"ab"), 0x044000229e83486c);
        assert_eq!(namekey2(b"abc"), 0x04430043352441c2);
        assert_eq!(namekey2(b"abcdef"), 0x0443cca64b8e39ee);
        assert_eq!(namekey2(b"hello.txt"), 0x20ac9f141260ceba);
    }
}
