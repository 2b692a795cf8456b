//! Translation between the engine's types and the FUSE protocol's: object
//! types to file kinds, attributes to `FileAttr` (times in microseconds to
//! `SystemTime`, device numbers in Linux's encoding), and engine errors to
//! errno values. Nothing here decides anything about the filesystem.

use fuser::{Errno, FileAttr, FileType, INodeNo, TimeOrNow};
use hammer_engine::fs::Attr;
use hammer_engine::Error;
use hammer_ondisk::*;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Block size reported by `stat` and `statfs` (a HAMMER buffer).
pub const BLOCK_SIZE: u32 = 16384;

/// The FUSE kind of a HAMMER object type.
pub fn kind(obj_type: u8) -> FileType {
    match obj_type {
        HAMMER_OBJTYPE_DIRECTORY | HAMMER_OBJTYPE_PSEUDOFS => FileType::Directory,
        HAMMER_OBJTYPE_FIFO => FileType::NamedPipe,
        HAMMER_OBJTYPE_CDEV => FileType::CharDevice,
        HAMMER_OBJTYPE_BDEV => FileType::BlockDevice,
        HAMMER_OBJTYPE_SOFTLINK => FileType::Symlink,
        HAMMER_OBJTYPE_SOCKET => FileType::Socket,
        _ => FileType::RegularFile,
    }
}

/// Microseconds since the epoch as a `SystemTime`.
pub fn time(us: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(us)
}

/// A time from a setattr request, in microseconds since the epoch (times
/// before the epoch are clamped to it: HAMMER stores them unsigned).
pub fn micros(t: TimeOrNow) -> u64 {
    let st = match t {
        TimeOrNow::SpecificTime(st) => st,
        TimeOrNow::Now => SystemTime::now(),
    };
    st.duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Linux's 32-bit device encoding (`new_encode_dev`), which FUSE carries.
pub fn encode_dev(major: u32, minor: u32) -> u32 {
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12)
}

/// The inverse of [`encode_dev`]: (major, minor).
pub fn decode_dev(dev: u32) -> (u32, u32) {
    ((dev & 0xfff00) >> 8, (dev & 0xff) | ((dev >> 12) & 0xfff00))
}

/// The FUSE attributes of an object shown under inode number `ino`, with
/// `nlink` already decided by the caller (directories count their
/// subdirectories).
pub fn file_attr(ino: u64, a: &Attr, nlink: u64) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: a.size,
        blocks: a.size.div_ceil(512),
        atime: time(a.atime),
        mtime: time(a.mtime),
        ctime: time(a.ctime),
        crtime: time(a.ctime),
        kind: kind(a.obj_type),
        perm: a.mode & 0o7777,
        nlink: nlink.min(u32::MAX as u64) as u32,
        uid: a.uid,
        gid: a.gid,
        rdev: encode_dev(a.rdev.0, a.rdev.1),
        blksize: BLOCK_SIZE,
        flags: a.uflags,
    }
}

/// The errno for an engine error: refusals carry their own, anything else
/// (I/O, corruption) is EIO and is logged, since the caller only sees EIO.
pub fn errno(e: &Error) -> Errno {
    match e {
        Error::Fs(f) => Errno::from_i32(f.errno()),
        other => {
            eprintln!("mount_hammer: {other}");
            Errno::EIO
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_round_trip() {
        for (ma, mi) in [(0, 0), (1, 3), (8, 1), (259, 65536), (4095, 0xfffff)] {
            assert_eq!(decode_dev(encode_dev(ma, mi)), (ma, mi));
        }
        // Matches libc's makedev for small numbers.
        assert_eq!(encode_dev(8, 1), libc::makedev(8, 1) as u32);
    }
}
