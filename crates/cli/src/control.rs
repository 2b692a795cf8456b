//! The control channel between `hammer(8)` and a mounted filesystem's
//! daemon: what DragonFly does with ioctls on any file of a HAMMER mount.
//!
//! Finding the daemon: the CLI resolves a path to its mount point (the
//! longest mount point in `/proc/self/mountinfo` that is a prefix of the
//! canonical path; it must be a FUSE mount, type `fuse*`), and the daemon
//! listens on a Unix stream socket whose path is derived from that mount
//! point ([`socket_path`]): `/run/hammerfs/<escaped mount point>.sock` for
//! a mount made by root, `/tmp/hammerfs-<uid>/…` for one made by another
//! user (the CLI reads the owner from the mount's `user_id=` option). The
//! escaped name keeps letters, digits, `.`, `-` and `_` and writes every
//! other byte as `%XX` (so `/` is `%2F`); a name that would not fit a
//! socket address becomes `h<64-bit FNV-1a hash in hex>`. A path on no FUSE
//! mount, or on a FUSE mount without such a socket, is "not a HAMMER
//! filesystem": the directives fail with ENOTTY ("Inappropriate ioctl for
//! device"), as DragonFly's tool does on a file that is not on HAMMER.
//!
//! Protocol (one request per connection): the client sends one line of
//! text, the directive and its words separated by single spaces
//! (`synctid`, `synctid quick`, `info`, `version`, `stats`), ended by
//! `\n`, at most 4096 bytes. The daemon answers with a 4-byte big-endian
//! length and that many bytes of `key=value` lines; the first is
//! `status=0` on success or `status=<errno>` (then `message=<text>` may
//! follow). Keys of each reply are documented at the daemon's handlers
//! (`control_server`). The daemon reads the caller's credentials with
//! SO_PEERCRED (see `control_server` for who may do what).

use crate::{CliError, CliResult};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Largest request line the daemon accepts.
pub const MAX_REQUEST: usize = 1 << 20;
/// Largest reply the client accepts.
pub const MAX_REPLY: usize = 16 << 20;

/// A parsed reply: `key=value` lines in order (keys may repeat).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reply(pub Vec<(String, String)>);

impl Reply {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A number (decimal or `0x` hex).
    pub fn num(&self, key: &str) -> CliResult<i64> {
        let v = self
            .get(key)
            .ok_or_else(|| CliError(format!("control reply without {key}")))?;
        let r = match v.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).map(|n| n as i64),
            None => v.parse::<i64>(),
        };
        r.map_err(|_| CliError(format!("control reply: bad {key}={v}")))
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut s = String::new();
        for (k, v) in &self.0 {
            // Values are one line: newlines would split the record.
            s.push_str(k);
            s.push('=');
            s.push_str(&v.replace('\n', " "));
            s.push('\n');
        }
        s.into_bytes()
    }

    pub fn decode(b: &[u8]) -> Reply {
        let s = String::from_utf8_lossy(b);
        Reply(
            s.lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }
}

/// Writes a reply frame.
pub fn write_reply(w: &mut dyn Write, r: &Reply) -> std::io::Result<()> {
    let body = r.encode();
    w.write_all(&(body.len() as u32).to_be_bytes())?;
    w.write_all(&body)?;
    w.flush()
}

/// Reads a reply frame.
pub fn read_reply(rd: &mut dyn Read) -> std::io::Result<Reply> {
    let mut len = [0u8; 4];
    rd.read_exact(&mut len)?;
    let n = u32::from_be_bytes(len) as usize;
    if n > MAX_REPLY {
        return Err(std::io::Error::from_raw_os_error(libc::EPROTO));
    }
    let mut body = vec![0u8; n];
    rd.read_exact(&mut body)?;
    Ok(Reply::decode(&body))
}

/// One entry of `/proc/self/mountinfo` that matters here.
#[derive(Debug, Clone, PartialEq)]
pub struct MountEntry {
    pub mount_point: PathBuf,
    /// The directory of the filesystem seen at the mount point (`/` but
    /// for bind mounts, e.g. `/pfs/@@-1:00008`).
    pub root: PathBuf,
    /// `major:minor` of the filesystem.
    pub dev: String,
    pub fstype: String,
    pub source: String,
    /// The FUSE `user_id=` super option: who made the mount.
    pub user_id: Option<u32>,
}

/// Undoes mountinfo's octal escapes (`\040` for a space, …).
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Parses mountinfo text.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    use std::os::unix::ffi::OsStringExt;
    let mut v = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let f: Vec<&str> = left.split(' ').collect();
        let (Some(dev), Some(root), Some(mp)) = (f.get(2), f.get(3), f.get(4)) else {
            continue;
        };
        let mut r = right.split(' ');
        let fstype = r.next().unwrap_or("").to_string();
        let source = String::from_utf8_lossy(&unescape(r.next().unwrap_or(""))).into_owned();
        let user_id = r.next().and_then(|opts| {
            opts.split(',')
                .find_map(|o| o.strip_prefix("user_id="))
                .and_then(|u| u.parse().ok())
        });
        v.push(MountEntry {
            mount_point: PathBuf::from(std::ffi::OsString::from_vec(unescape(mp))),
            root: PathBuf::from(std::ffi::OsString::from_vec(unescape(root))),
            dev: dev.to_string(),
            fstype,
            source,
            user_id,
        });
    }
    v
}

/// The mounts of this process's namespace.
pub fn mounts() -> Vec<MountEntry> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| parse_mountinfo(&t))
        .unwrap_or_default()
}

/// The FUSE mount holding `path` (already canonical), if any: the longest
/// mount point prefix; a later entry for the same point wins (it is on top).
pub fn fuse_mount_of(path: &Path, all: &[MountEntry]) -> Option<MountEntry> {
    let mut best: Option<&MountEntry> = None;
    for m in all {
        if path.starts_with(&m.mount_point)
            && best
                .is_none_or(|b| m.mount_point.as_os_str().len() >= b.mount_point.as_os_str().len())
        {
            best = Some(m);
        }
    }
    best.filter(|m| m.fstype.starts_with("fuse")).cloned()
}

/// The directory of the sockets of mounts made by `uid`.
pub fn socket_dir(uid: u32) -> PathBuf {
    if uid == 0 {
        PathBuf::from("/run/hammerfs")
    } else {
        PathBuf::from(format!("/tmp/hammerfs-{uid}"))
    }
}

fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &c| {
        (h ^ c as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The socket of the mount at `mount_point` (canonical) made by `uid`.
pub fn socket_path(mount_point: &Path, uid: u32) -> PathBuf {
    let dir = socket_dir(uid);
    let raw = mount_point.as_os_str().as_encoded_bytes();
    let mut name = String::new();
    for &c in raw {
        if c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_') {
            name.push(c as char);
        } else {
            name.push_str(&format!("%{c:02X}"));
        }
    }
    // sun_path holds 108 bytes with the NUL.
    if dir.as_os_str().len() + 1 + name.len() + 5 >= 108 {
        name = format!("h{:016x}", fnv1a(raw));
    }
    dir.join(format!("{name}.sock"))
}

/// A mounted hammerfs reached from a path inside it.
pub struct Target {
    /// The path as given, opened (for syncfs).
    pub file: std::fs::File,
    /// The mount of the filesystem's root (a bind mount of a directory
    /// inside it, such as a PFS, leads here too).
    pub mount: MountEntry,
    pub socket: PathBuf,
    /// The path relative to the filesystem's root, as the daemon walks it.
    pub rel: Vec<u8>,
    /// The base of the PFS the path is in, as DragonFly's `statfs` names
    /// it (`f_mntonname`): the mount point — of a bind mount too, the
    /// counterpart of a null mount — or, for a PFS reached through its
    /// link, the path of that PFS root (`<mount>/pfs/@@-1:00008`).
    pub base: PathBuf,
}

impl Target {
    /// A request about the object the target names (the daemon works in
    /// its PFS, as an ioctl on its descriptor would).
    pub fn call(&self, line: &str) -> std::io::Result<Reply> {
        self.call_progress(line, &mut |_, _| {})
    }

    /// Sends a request whose reply comes as many frames (see [`Stream`]).
    pub fn stream(&self, line: &str) -> std::io::Result<Stream> {
        let mut s = connect(&self.socket)?;
        s.write_all(format!("at={} {line}\n", hex(&self.rel)).as_bytes())?;
        Ok(Stream { s, done: false })
    }

    /// [`Target::call`] with progress frames.
    pub fn call_progress(
        &self,
        line: &str,
        progress: &mut dyn FnMut(u64, u64),
    ) -> std::io::Result<Reply> {
        let line = format!("at={} {line}", hex(&self.rel));
        request_progress(&self.socket, &line, progress)
    }
}

/// An error carrying the errno DragonFly's message would end with.
pub fn os_error(code: i32) -> std::io::Error {
    std::io::Error::from_raw_os_error(code)
}

/// The `strerror` text of an io error, without Rust's " (os error N)".
pub fn errtext(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Opens `path` and finds its mount's daemon. `Err(io)` is what the ioctl
/// would have failed with: the open's error, or ENOTTY off hammerfs.
/// The first element of the error says whether the open itself failed.
pub fn resolve(path: &str) -> Result<Target, (bool, std::io::Error)> {
    let file = std::fs::File::open(path).map_err(|e| (true, e))?;
    let canon = std::fs::canonicalize(path).map_err(|e| (true, e))?;
    let all = mounts();
    let found = fuse_mount_of(&canon, &all).ok_or((false, os_error(libc::ENOTTY)))?;
    let inside = canon
        .strip_prefix(&found.mount_point)
        .map_err(|_| (false, os_error(libc::ENOTTY)))?;
    // A bind mount of a directory of the filesystem (DragonFly's null
    // mount of a PFS link) is served by the daemon of the mount of the
    // filesystem's root: the same device, root `/`.
    let base = if found.root == Path::new("/") {
        // The last PFS root on the way, if any.
        let mut base = found.mount_point.clone();
        let mut walked = found.mount_point.clone();
        for c in inside.components() {
            walked.push(c);
            if is_pfs_root_name(c.as_os_str().as_encoded_bytes()) {
                base = walked.clone();
            }
        }
        base
    } else {
        found.mount_point.clone()
    };
    let (mount, rel) = if found.root == Path::new("/") {
        (found.clone(), inside.to_path_buf())
    } else {
        let top = all
            .iter()
            .rev()
            .find(|m| m.dev == found.dev && m.root == Path::new("/"))
            .cloned()
            .ok_or((false, os_error(libc::ENOTTY)))?;
        let root = found.root.strip_prefix("/").unwrap_or(&found.root);
        (top, root.join(inside))
    };
    let socket = socket_path(&mount.mount_point, mount.user_id.unwrap_or(0));
    if !socket.exists() {
        return Err((false, os_error(libc::ENOTTY)));
    }
    use std::os::unix::ffi::OsStrExt;
    Ok(Target {
        file,
        mount,
        socket,
        rel: rel.as_os_str().as_bytes().to_vec(),
        base,
    })
}

/// The PFS a bind mount's root directory is the root of (its last
/// component is a PFS root's name).
pub fn pfs_id_of_root(root: &Path) -> Option<u32> {
    let last = root.file_name()?.as_encoded_bytes();
    if !is_pfs_root_name(last) {
        return None;
    }
    std::str::from_utf8(&last[last.len() - 5..])
        .ok()?
        .parse()
        .ok()
}

/// `@@-1:<5 digits>` or `@@0x<16 hex>:<5 digits>`: a PFS root's name.
fn is_pfs_root_name(n: &[u8]) -> bool {
    let Some(rest) = n.strip_prefix(b"@@") else {
        return false;
    };
    let Some(colon) = rest.iter().position(|&c| c == b':') else {
        return false;
    };
    let (tid, id) = (&rest[..colon], &rest[colon + 1..]);
    let tid_ok = tid == b"-1"
        || tid
            .strip_prefix(b"0x")
            .is_some_and(|h| h.len() == 16 && h.iter().all(u8::is_ascii_hexdigit));
    tid_ok && id.len() == 5 && id.iter().all(u8::is_ascii_digit)
}

/// Pushes the kernel's dirty pages of the filesystem holding `file` to the
/// daemon (syncfs(2)), so a flush that follows includes them.
pub fn syncfs(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid open descriptor.
    if unsafe { libc::syncfs(file.as_raw_fd()) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Bytes as lowercase hex, for request words and reply values that may
/// hold any byte (labels, config text).
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|c| format!("{c:02x}")).collect()
}

/// The inverse of [`hex`]; `None` for anything that is not pairs of hex
/// digits.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Sends one request to the daemon at `socket` and returns its reply; a
/// `status` other than 0 becomes the matching OS error. A daemon that is
/// gone (a stale socket) is ENOTTY like any non-HAMMER file.
pub fn request(socket: &Path, line: &str) -> std::io::Result<Reply> {
    request_progress(socket, line, &mut |_, _| {})
}

/// [`request`] for long directives: the daemon may send frames holding
/// only `progress=<done> <total>` before the reply; each goes to
/// `progress`.
pub fn request_progress(
    socket: &Path,
    line: &str,
    progress: &mut dyn FnMut(u64, u64),
) -> std::io::Result<Reply> {
    let mut s = connect(socket)?;
    s.write_all(line.as_bytes())?;
    s.write_all(b"\n")?;
    let r = loop {
        let r = read_reply(&mut s)?;
        match (r.0.len(), r.get("progress")) {
            (1, Some(p)) => {
                let mut it = p.split(' ').map(|n| n.parse::<u64>().unwrap_or(0));
                progress(it.next().unwrap_or(0), it.next().unwrap_or(0));
            }
            _ => break r,
        }
    };
    final_status(r)
}

fn final_status(r: Reply) -> std::io::Result<Reply> {
    match r.get("status").map(str::parse::<i32>) {
        Some(Ok(0)) => Ok(r),
        Some(Ok(code)) => Err(os_error(code)),
        _ => Err(os_error(libc::EPROTO)),
    }
}

/// A connection to the daemon at `socket` (ENOTTY when there is none).
fn connect(socket: &Path) -> std::io::Result<UnixStream> {
    let s = UnixStream::connect(socket).map_err(|e| match e.raw_os_error() {
        Some(libc::ECONNREFUSED) | Some(libc::ENOENT) => os_error(libc::ENOTTY),
        _ => e,
    })?;
    // A flush of a big change may take a while; a hung daemon must not
    // hang the tool forever.
    s.set_read_timeout(Some(Duration::from_secs(600)))?;
    Ok(s)
}

/// The frames of one streamed reply, read as they come: the daemon writes
/// them without waiting, so many small answers cost one connection and no
/// round trip each.
pub struct Stream {
    s: UnixStream,
    done: bool,
}

impl Stream {
    /// The next frame; `None` after the final one, which must say
    /// `status=0` (any other status is its error).
    pub fn next_frame(&mut self) -> std::io::Result<Option<Reply>> {
        if self.done {
            return Ok(None);
        }
        let r = read_reply(&mut self.s)?;
        if r.get("status").is_some() {
            self.done = true;
            final_status(r)?;
            return Ok(None);
        }
        Ok(Some(r))
    }
}

/// What `hammer cleanup` with no argument handles, in mount-table order
/// (as DragonFly takes its hammer mounts and the null mounts of PFS
/// links): every hammerfs mount with a live daemon, and every bind mount
/// of a PFS root of one.
pub fn cleanup_mount_points() -> Vec<PathBuf> {
    let all = mounts();
    let live: Vec<&MountEntry> = all
        .iter()
        .filter(|m| m.fstype.starts_with("fuse") && m.root == Path::new("/"))
        .filter(|m| socket_path(&m.mount_point, m.user_id.unwrap_or(0)).exists())
        .collect();
    all.iter()
        .filter(|m| {
            live.iter().any(|l| l.mount_point == m.mount_point)
                || (pfs_id_of_root(&m.root).is_some() && live.iter().any(|l| l.dev == m.dev))
        })
        .map(|m| m.mount_point.clone())
        .collect()
}

/// Whether the root of PFS `id` of `t`'s filesystem is bind-mounted
/// somewhere (the Linux form of DragonFly's null mount, which keeps the
/// PFS in use).
pub fn pfs_bind_mounted(t: &Target, id: u32) -> bool {
    mounts()
        .iter()
        .any(|m| m.dev == t.mount.dev && pfs_id_of_root(&m.root) == Some(id))
}

/// A process whose working or root directory lies in PFS `id` of `t`'s
/// filesystem, if one does. DragonFly refuses to destroy, upgrade or
/// downgrade a PFS while any of its vnodes is referenced, a shell's
/// current directory included; the FUSE daemon never hears of a `chdir`,
/// so the processes are asked here. The PFS of a directory is the last
/// PFS root its path passes through (`@@-1:<id>`, where `/pfs/<name>`
/// links lead), none being the root PFS.
pub fn pfs_used_by_process(t: &Target, id: u32) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let dev = t
        .mount
        .dev
        .split_once(':')
        .and_then(|(a, b)| Some(libc::makedev(a.parse().ok()?, b.parse().ok()?)))?;
    let procs = std::fs::read_dir("/proc").ok()?;
    procs.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        ["cwd", "root"].iter().find_map(|link| {
            let at = e.path().join(link);
            let path = std::fs::read_link(&at).ok()?;
            let rel = path.strip_prefix(&t.mount.mount_point).ok()?;
            let in_pfs = pfs_of_path(&t.mount.root.join(rel)) == id;
            // The same filesystem (not another one mounted below it).
            (in_pfs && std::fs::metadata(&at).ok()?.dev() == dev).then_some(pid)
        })
    })
}

/// The PFS a path in the filesystem is in: the id of the last PFS root
/// among its components, or 0.
pub fn pfs_of_path(path: &Path) -> u32 {
    path.iter()
        .rev()
        .find_map(|c| pfs_id_of_root(Path::new(c)))
        .unwrap_or(0)
}

/// The hammerfs mounts of this namespace whose daemon has a socket, by
/// mount point (for `hammer info` with no path and the statistics).
pub fn hammer_mounts() -> BTreeMap<PathBuf, PathBuf> {
    mounts()
        .into_iter()
        .filter(|m| m.fstype.starts_with("fuse"))
        .filter_map(|m| {
            let s = socket_path(&m.mount_point, m.user_id.unwrap_or(0));
            s.exists().then_some((m.mount_point, s))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_and_paths() {
        let t = "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n\
                 40 22 0:50 / /mnt/a\\040b rw,nosuid - fuse.hammer /x/v.img rw,user_id=0,group_id=0\n\
                 41 22 0:51 / /mnt rw - fuse /y rw,user_id=1000,group_id=1000\n";
        let all = parse_mountinfo(t);
        assert_eq!(all.len(), 3);
        assert_eq!(all[1].mount_point, PathBuf::from("/mnt/a b"));
        assert_eq!(all[1].user_id, Some(0));
        let m = fuse_mount_of(Path::new("/mnt/a b/c/d"), &all).unwrap();
        assert_eq!(m.fstype, "fuse.hammer");
        let m = fuse_mount_of(Path::new("/mnt/ab"), &all).unwrap();
        assert_eq!(m.user_id, Some(1000));
        assert!(fuse_mount_of(Path::new("/etc"), &all).is_none());
        assert_eq!(
            socket_path(Path::new("/mnt/a b"), 0),
            PathBuf::from("/run/hammerfs/%2Fmnt%2Fa%20b.sock")
        );
        let long = "/x".repeat(80);
        let p = socket_path(Path::new(&long), 1000);
        assert!(p.as_os_str().len() < 108);
        assert!(p.starts_with("/tmp/hammerfs-1000"));
    }

    #[test]
    fn pfs_of_paths() {
        assert_eq!(pfs_of_path(Path::new("/")), 0);
        assert_eq!(pfs_of_path(Path::new("/a/b")), 0);
        assert_eq!(pfs_of_path(Path::new("/pfs/@@-1:00003")), 3);
        assert_eq!(pfs_of_path(Path::new("/pfs/@@-1:00003/x/y")), 3);
        assert_eq!(pfs_of_path(Path::new("/@@0x0000000106e55da0:00007/x")), 7);
        assert_eq!(pfs_of_path(Path::new("/@@-1:00003/d/@@-1:00012")), 12);
        // A name like a PFS root's but not one.
        assert_eq!(pfs_of_path(Path::new("/@@-1:3/@@0x12:00001")), 0);
    }

    #[test]
    fn reply_frames() {
        let r = Reply(vec![
            ("status".into(), "0".into()),
            ("tid".into(), "0x0000000100000002".into()),
            ("pfs".into(), "0 MASTER 0".into()),
        ]);
        let mut buf = Vec::new();
        write_reply(&mut buf, &r).unwrap();
        let back = read_reply(&mut &buf[..]).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.num("tid").unwrap(), 0x100000002);
        assert_eq!(back.all("pfs").count(), 1);
    }
}
