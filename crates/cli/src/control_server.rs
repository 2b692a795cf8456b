//! The daemon's end of the control channel (protocol and socket naming in
//! [`crate::control`]): `mount_hammer` starts a listener thread once the
//! mount is up and the process has daemonized, and removes the socket when
//! the mount ends (a socket left by a killed daemon is replaced by the next
//! mount of the same directory, and refused connections read as "not
//! HAMMER" to the tool).
//!
//! Who may do what, checked with SO_PEERCRED: when the mount is not
//! `allow_other`, only root and the mount's owner may talk to it at all
//! (others cannot see into the mount either). DragonFly's kernel requires
//! root (PRIV_HAMMER_IOCTL) only for the changing ioctls (prune, reblock,
//! PFS and snapshot changes, version-upgrade, volume-add/del, …); SYNCTID,
//! GET_VERSION and GET_INFO and the statistics sysctls are open to every
//! user, so every directive served today is; [`needs_root`] is where the
//! changing ones will say otherwise (root or the mount's owner, EPERM for
//! anyone else).
//!
//! Replies (after `status=0`):
//! * `synctid [quick]`: `tid=0x<16 hex>`, the TID of the flush. DragonFly
//!   flushes twice for the default (SYNC2: the second flush makes the first
//!   one's FIFO position final) and once for `quick` (SYNC1). Our
//!   `Fs::sync` returns only once its flush is final (the header is written
//!   again with the FIFO's first offset moved), so both forms make one
//!   flush and return its TID; with nothing changed it returns the last
//!   durable TID (`vol0_next_tid`) without writing.
//! * `info`: `label`, `nvolumes`, `fsid`, `version`, `bigblocks`,
//!   `freebigblocks`, `rsvbigblocks`, `inodes`, `mountpoint`, one `volume`
//!   per volume (path as opened), and one `pfs=<id> <MASTER|SLAVE> <snaps>`
//!   per existing PFS (snaps: its number of snapshot records; the tool
//!   finds where each is mounted). `rsvbigblocks` follows the kernel's
//!   `_hammer_checkspace(HAMMER_CHKSPC_WRITE)`: 20 big-blocks of slop plus
//!   the dirty-data limit (`Fs::dirty_limit`, the counterpart of
//!   `hammer_limit_dirtybufspace`) plus the dirty buffers held now, in
//!   big-blocks rounded down.
//! * `version`: `min`, `wip`, `max`, `current`, `description` (the kernel's
//!   strings).
//! * `stats`: `stats=<17 counters separated by spaces>` in the order of
//!   `hammer_engine::stats::NAMES`.
//!
//! Any request may begin with `at=<hex path>`, the path (relative to the
//! mount's root) the tool was given, as a DragonFly ioctl is issued on a
//! descriptor of it: the directive then works in that path's PFS (snapshot,
//! config, prune, reblock, `pfs-get` with no id, `getflags`/`setflags`
//! with no inode number name that object).
//!
//! PFS directives (ids in decimal): `pfs-get [<id>|-1]`: `pfs`, `pfsd` (the
//! 292-byte descriptor in hex; a master's `sync_end_tid` is the newest
//! committed TID) and `prune_min`, `mirror_flags`, `snapshots`, `label`;
//! ENOENT for a PFS that does not exist. `pfs-free`: the lowest free id.
//! `pfs-set <id> <hex descriptor>` (creates a master's root directory when
//! missing), `pfs-upgrade <id>`, `pfs-downgrade <id>`, `pfs-destroy <id>`:
//! `tid` of the flush that made the change durable.
//!
//! History directives (words that may hold any byte are hex; a path is
//! relative to the mount's root, `@@` components allowed; object numbers
//! are the mount's inode numbers). Read-only ones are open to every user
//! who may talk to the mount; the others need root or the mount's owner,
//! except `setflags`, which a file's owner may also send:
//! * `history <path> <atkey 0|1> <key> <nxt_key> <beg> <end>`: `obj`,
//!   `dirty`, `nxt_key`, `next_key`, `eof` and one `h=<tid> <seconds>` per
//!   entry (HAMMERIOC_GETHISTORY's rules, committed TIDs only).
//! * `snap-list`: `pfs` and one `snap=<tid> <µs> <hex label>` per record;
//!   `snap-add <tid> <µs> [<hex label>]`, `snap-del <tid>`: `tid` of the
//!   flush that made the change durable (EEXIST, ENOENT as the kernel).
//! * `config-get`: `text=<hex>` (none when unset); `config-set [<hex>]`.
//! * `getflags <ino>`: `flags`; `setflags <ino> <flags>` (only the
//!   no-history bit is taken).
//! * `prune [deadline=<s>] [below=<hex key>] <beg>:<end>:<mod>…`,
//!   `reblock <classes> <free level> [deadline=<s>] [from=<hex key>]`,
//!   `rebalance <saturation> [deadline=<s>] [from=<hex key>]`: counters,
//!   and `interrupted=<hex key>` when the deadline stopped them; while they
//!   run the daemon sends frames holding only `progress=<done> <total>`.

use crate::control::{hex, socket_path, unhex, write_reply, Reply, MAX_REQUEST};
use crate::{CliError, CliResult};
use hammer_engine::fs::{Fs, PruneElm, PruneLimits, ReblockOpts, SetAttr};
use hammer_fuse::FsHandle;
use hammer_ondisk::*;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;
use zerocopy::{FromBytes, IntoBytes};

pub const VERSION_MIN: u32 = 1;
pub const VERSION_WIP: u32 = 8;
pub const VERSION_MAX: u32 = 7;
/// `_hammer_checkspace`'s slop for writes, in big-blocks.
const CHKSPC_WRITE_SLOP: u64 = 20;

/// The kernel's description of an on-disk version (`None`: unknown).
pub fn version_description(v: u32) -> Option<&'static str> {
    Some(match v {
        1 => "First HAMMER release (DragonFly 2.0+)",
        2 => "New directory entry layout (DragonFly 2.3+)",
        3 => "New snapshot management (DragonFly 2.5+)",
        4 => "New undo/flush, faster flush/sync (DragonFly 2.5+)",
        5 => "Adjustments for dedup support (DragonFly 2.9+)",
        6 => "Directory Hash ALG1 (tmp/rename resistance)",
        7 => "Use ISCSI CRC (faster than original crc32)",
        _ => return None,
    })
}

/// Whether a directive changes the filesystem and so needs root or the
/// mount's owner, as DragonFly's PRIV_HAMMER_IOCTL check does.
pub fn needs_root(directive: &str) -> bool {
    !matches!(
        directive,
        "synctid"
            | "info"
            | "version"
            | "stats"
            | "history"
            | "snap-list"
            | "config-get"
            | "getflags"
            | "pfs-get"
            | "pfs-free"
            | "read-asof"
    )
}

/// Connections served at once.
const MAX_CLIENTS: usize = 32;

/// How long a long directive holds the filesystem at a time: prune,
/// reblock and rebalance run in steps of about this long, releasing the
/// lock in between so the mount keeps serving (each step ends in a flush
/// and resumes where the last one stopped, as a cycle file would).
const STEP: Duration = Duration::from_millis(300);

fn step_deadline(overall: Option<std::time::Instant>) -> Option<std::time::Instant> {
    let s = std::time::Instant::now() + STEP;
    Some(overall.map_or(s, |o| o.min(s)))
}

fn passed(d: Option<std::time::Instant>) -> bool {
    d.is_some_and(|d| std::time::Instant::now() >= d)
}

/// Progress over steps: each step reports against what remained when it
/// began; the first step's total is the whole.
struct StepProgress<'a> {
    inner: &'a mut dyn FnMut(u64, u64),
    whole: Option<u64>,
}

impl StepProgress<'_> {
    fn report(&mut self, done: u64, total: u64) {
        let whole = *self.whole.get_or_insert(total);
        (self.inner)(whole.saturating_sub(total) + done, whole);
    }
}

/// Runs a long directive in steps: `step(fs, deadline, resume)` works from
/// `resume` until the step's deadline and returns where it stopped (`None`
/// when done). The filesystem lock is released between steps. The result
/// is `None` once unmounted, else where the work stopped because the
/// caller's own `deadline` passed (`None`: finished).
fn in_steps(
    h: &FsHandle,
    deadline: Option<std::time::Instant>,
    mut resume: Option<HammerBaseElm>,
    mut step: impl FnMut(
        &mut Fs,
        Option<std::time::Instant>,
        Option<HammerBaseElm>,
    ) -> hammer_engine::Result<Option<HammerBaseElm>>,
) -> Option<hammer_engine::Result<Option<HammerBaseElm>>> {
    loop {
        let d = step_deadline(deadline);
        match h.with(|fs| step(fs, d, resume))? {
            Err(e) => return Some(Err(e)),
            Ok(None) => return Some(Ok(None)),
            Ok(Some(k)) if passed(deadline) => return Some(Ok(Some(k))),
            Ok(Some(k)) => resume = Some(k),
        }
    }
}

fn prune_in_steps(
    h: &FsHandle,
    elms: &[PruneElm],
    limits: &PruneLimits,
    progress: &mut dyn FnMut(u64, u64),
) -> Option<hammer_engine::Result<hammer_engine::fs::PruneOutcome>> {
    let mut p = StepProgress {
        inner: progress,
        whole: None,
    };
    let mut total = hammer_engine::fs::PruneOutcome::default();
    let mut first = true;
    let r = in_steps(h, limits.deadline, limits.below, |fs, deadline, below| {
        let lim = PruneLimits { below, deadline };
        let o = fs.prune_limited(elms, &lim, &mut |d, t| p.report(d, t))?;
        if first {
            // Later steps see only what is left: the first saw it all.
            total.stats.scanned = o.stats.scanned;
            first = false;
        }
        total.stats.pruned += o.stats.pruned;
        total.stats.dirents += o.stats.dirents;
        total.stats.bytes += o.stats.bytes;
        Ok(o.interrupted_at)
    });
    Some(r?.map(|at| {
        total.interrupted_at = at;
        total
    }))
}

fn reblock_in_steps(
    h: &FsHandle,
    o: &ReblockOpts,
    progress: &mut dyn FnMut(u64, u64),
) -> Option<hammer_engine::Result<hammer_engine::fs::ReblockStats>> {
    let mut p = StepProgress {
        inner: progress,
        whole: None,
    };
    // The nodes in one go (there are few), then the records in steps.
    let mut total = hammer_engine::fs::ReblockStats::default();
    if o.btree {
        let nodes = ReblockOpts {
            inodes: false,
            dirs: false,
            data: false,
            ..*o
        };
        match h.with(|fs| fs.reblock(&nodes, &mut |_, _| {}))? {
            Ok(st) => {
                total.btree_moves = st.btree_moves;
                total.btree_count = st.btree_count;
                if st.interrupted_at.is_some() {
                    total.interrupted_at = st.interrupted_at;
                    return Some(Ok(total));
                }
            }
            Err(e) => return Some(Err(e)),
        }
    }
    if !(o.inodes || o.dirs || o.data) {
        return Some(Ok(total));
    }
    let r = in_steps(h, o.deadline, o.start, |fs, deadline, start| {
        let step = ReblockOpts {
            btree: false,
            start,
            deadline,
            ..*o
        };
        let st = fs.reblock(&step, &mut |d, t| p.report(d, t))?;
        total.data_moves += st.data_moves;
        total.data_count += st.data_count;
        total.data_byte_moves += st.data_byte_moves;
        total.data_byte_count += st.data_byte_count;
        Ok(st.interrupted_at)
    });
    Some(r?.map(|at| {
        total.interrupted_at = at;
        total
    }))
}

fn rebalance_in_steps(
    h: &FsHandle,
    saturation: usize,
    deadline: Option<std::time::Instant>,
    start: Option<HammerBaseElm>,
    progress: &mut dyn FnMut(u64, u64),
) -> Option<hammer_engine::Result<hammer_engine::fs::RebalanceStats>> {
    let mut p = StepProgress {
        inner: progress,
        whole: None,
    };
    let mut total = hammer_engine::fs::RebalanceStats::default();
    let mut first = true;
    let r = in_steps(h, deadline, start, |fs, d, start| {
        let st = fs.rebalance(saturation, d, start.as_ref(), &mut |a, b| p.report(a, b))?;
        if first {
            total.scanned = st.scanned;
            first = false;
        }
        total.deleted += st.deleted;
        total.rebalanced += st.rebalanced;
        Ok(st.interrupted_at)
    });
    Some(r?.map(|at| {
        total.interrupted_at = at;
        total
    }))
}

/// `now + secs`, or no deadline when that is past what the clock can hold.
fn deadline_in(secs: u64) -> Option<std::time::Instant> {
    std::time::Instant::now().checked_add(Duration::from_secs(secs))
}

/// The running listener; dropping it removes the socket.
pub struct ControlServer {
    path: PathBuf,
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl ControlServer {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Makes the socket directory (0755, ours, not a link).
fn socket_dir_ready(dir: &Path, uid: u32) -> CliResult<()> {
    match std::fs::create_dir(dir) {
        Ok(()) => std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(CliError(format!("{}: {e}", dir.display()))),
    }
    let md = std::fs::symlink_metadata(dir)?;
    if !md.is_dir() || md.uid() != uid || md.mode() & 0o022 != 0 {
        return Err(CliError(format!(
            "{}: not a directory of uid {uid} writable only by it",
            dir.display()
        )));
    }
    Ok(())
}

/// Creates the socket of the mount at `mount_point` (canonical). Done
/// before the mount appears and before the daemon forks, so the channel
/// answers as soon as `mount_hammer` returns (connections wait in the
/// backlog until [`serve`] runs).
pub fn bind(mount_point: &Path) -> CliResult<(ControlServer, UnixListener)> {
    // SAFETY: geteuid has no preconditions.
    let owner = unsafe { libc::geteuid() };
    let path = socket_path(mount_point, owner);
    if let Some(dir) = path.parent() {
        socket_dir_ready(dir, owner)?;
    }
    // A socket left by a killed daemon of this mount point.
    let _ = std::fs::remove_file(&path);
    let listener =
        UnixListener::bind(&path).map_err(|e| CliError(format!("{}: {e}", path.display())))?;
    let server = ControlServer { path };
    std::fs::set_permissions(&server.path, std::fs::Permissions::from_mode(0o666))?;
    Ok((server, listener))
}

/// Serves the channel in a thread (after the fork: threads do not survive
/// it). `allow_other` is the mount's option.
pub fn serve(
    listener: UnixListener,
    handle: FsHandle,
    mount_point: &Path,
    allow_other: bool,
) -> CliResult<()> {
    // SAFETY: geteuid has no preconditions.
    let owner = unsafe { libc::geteuid() };
    let mount_point = mount_point.to_path_buf();
    // One thread per connection (at most MAX_CLIENTS at once), so a slow
    // or stuck client delays nobody else; each has 5 s to send its line.
    let busy = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("hammer-control".into())
        .spawn(move || {
            use std::sync::atomic::Ordering;
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                if !handle.is_open() {
                    break;
                }
                if busy.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
                    busy.fetch_sub(1, Ordering::SeqCst);
                    let mut conn = conn;
                    let _ = write_reply(&mut conn, &error_reply(libc::EBUSY, "too many requests"));
                    continue;
                }
                let (h, mp, mine) = (handle.clone(), mount_point.clone(), busy.clone());
                let spawned = std::thread::Builder::new()
                    .name("hammer-control-conn".into())
                    .spawn(move || {
                        serve_one(conn, &h, &mp, owner, allow_other);
                        mine.fetch_sub(1, Ordering::SeqCst);
                    });
                if spawned.is_err() {
                    busy.fetch_sub(1, Ordering::SeqCst);
                }
            }
        })?;
    Ok(())
}

/// The connected peer's uid.
/// The caller as permission checks see it: uid and every group.
pub struct Cred {
    pub uid: u32,
    pub gids: Vec<u32>,
}

/// The peer's credentials: SO_PEERCRED's uid and gid, and the
/// supplementary groups from `/proc/<pid>/status`.
fn peer_cred(s: &UnixStream) -> Option<Cred> {
    let c = peer_ucred(s)?;
    let mut gids = vec![c.gid];
    if let Ok(st) = std::fs::read_to_string(format!("/proc/{}/status", c.pid)) {
        if let Some(l) = st.lines().find(|l| l.starts_with("Groups:")) {
            gids.extend(
                l[7..]
                    .split_whitespace()
                    .filter_map(|g| g.parse::<u32>().ok()),
            );
        }
    }
    Some(Cred { uid: c.uid, gids })
}

/// Whether `cred` has permission `bit` (4 read, 1 search) on an object
/// with these attributes, by the mode bits as the kernel checks them.
fn may(cred: Option<&Cred>, a: &hammer_engine::fs::Attr, bit: u16) -> bool {
    let Some(c) = cred else { return false };
    if c.uid == 0 {
        return true;
    }
    let class = if a.uid == c.uid {
        a.mode >> 6
    } else if c.gids.contains(&a.gid) {
        a.mode >> 3
    } else {
        a.mode
    };
    class & bit != 0
}

fn peer_ucred(s: &UnixStream) -> Option<libc::ucred> {
    use std::os::fd::AsRawFd;
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt into a correctly sized ucred.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            &mut cred as *mut libc::ucred as *mut libc::c_void,
            &mut len,
        )
    };
    (r == 0).then_some(cred)
}

fn error_reply(code: i32, msg: &str) -> Reply {
    let mut r = vec![("status".to_string(), code.to_string())];
    if !msg.is_empty() {
        r.push(("message".into(), msg.into()));
    }
    Reply(r)
}

/// Serves one connection: reads the request line, checks, answers.
fn serve_one(mut s: UnixStream, h: &FsHandle, mount_point: &Path, owner: u32, allow_other: bool) {
    let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
    let cred = peer_cred(&s);
    let uid = cred.as_ref().map(|c| c.uid);
    let privileged = matches!(uid, Some(u) if u == 0 || u == owner);
    // Who may talk at all is known before reading anything.
    if !allow_other && !privileged {
        let _ = write_reply(&mut s, &error_reply(libc::EACCES, ""));
        return;
    }
    // The whole line within 5 s, however it trickles in.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut line = Vec::new();
    let mut b = [0u8; 4096];
    let mut end = None;
    while end.is_none() && line.len() <= MAX_REQUEST {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || s.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match s.read(&mut b) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                end = b[..n]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map(|i| line.len() + i);
                line.extend_from_slice(&b[..n]);
            }
        }
    }
    let reply = match end {
        None => error_reply(libc::EINVAL, "request too long or unterminated"),
        Some(end) => {
            let text = String::from_utf8_lossy(&line[..end]).into_owned();
            let mut words: Vec<&str> = text.split(' ').filter(|w| !w.is_empty()).collect();
            // `at=<hex path>`: the object the tool opened, as an ioctl's
            // descriptor names it; the directive works in its PFS.
            let at = match words.first().and_then(|w| w.strip_prefix("at=")) {
                Some(p) => {
                    let r = unhex(p)
                        .ok_or(hammer_engine::Error::Fs(
                            hammer_engine::error::FsError::Invalid,
                        ))
                        .and_then(|p| {
                            h.with(|fs| walk(fs, &p, cred.as_ref()))
                                .unwrap_or(Err(hammer_engine::error::FsError::NotFound.into()))
                        });
                    words.remove(0);
                    Some(r)
                }
                None => None,
            };
            let at = match at {
                Some(Err(e)) => {
                    let _ = write_reply(&mut s, &engine_error(&e));
                    return;
                }
                Some(Ok(w)) => Some(w),
                None => None,
            };
            let h = &h.in_pfs(at.map_or(0, |w| w.pfs));
            match words.first() {
                None => error_reply(libc::EINVAL, "empty request"),
                // A file's own flags are its owner's to change, as with
                // chflags(2) and the user flags (UF_NOHISTORY).
                Some(&"setflags") if !privileged && !owns(h, at, words.get(1), uid) => {
                    error_reply(libc::EPERM, "")
                }
                Some(d) if *d != "setflags" && needs_root(d) && !privileged => {
                    error_reply(libc::EPERM, "")
                }
                Some(d) => {
                    // Long directives send progress frames before the reply.
                    let mut last = std::time::Instant::now();
                    let mut progress = |done: u64, total: u64| {
                        if last.elapsed() >= Duration::from_millis(200) {
                            last = std::time::Instant::now();
                            let f = Reply(vec![("progress".into(), format!("{done} {total}"))]);
                            let _ = write_reply(&mut s, &f);
                        }
                    };
                    if *d == "prune" {
                        prune(&words[1..], h, &mut progress)
                    } else if *d == "read-asof" {
                        let mut send = |r: &Reply| write_reply(&mut s, r).is_ok();
                        read_asof(&words[1..], h, at, cred.as_ref(), &mut send)
                    } else {
                        let c = Ctx {
                            h,
                            mount_point,
                            cred: cred.as_ref(),
                            at,
                        };
                        handle(d, &words[1..], &c, &mut progress)
                    }
                }
            }
        }
    };
    let _ = write_reply(&mut s, &reply);
}

fn ok(kv: Vec<(&str, String)>) -> Reply {
    let mut r = vec![("status".to_string(), "0".to_string())];
    r.extend(kv.into_iter().map(|(k, v)| (k.to_string(), v)));
    Reply(r)
}

/// Where a request came from and what it names.
struct Ctx<'a> {
    /// The filesystem, working in the PFS of `at` (else PFS #0).
    h: &'a FsHandle,
    mount_point: &'a Path,
    cred: Option<&'a Cred>,
    /// The object of the request's `at=` path.
    at: Option<Walked>,
}

fn handle(
    directive: &str,
    args: &[&str],
    c: &Ctx<'_>,
    progress: &mut dyn FnMut(u64, u64),
) -> Reply {
    let (h, mount_point, cred) = (c.h, c.mount_point, c.cred);
    let gone = || error_reply(libc::ENOTTY, "filesystem unmounted");
    match (directive, args) {
        ("synctid", []) | ("synctid", ["quick"]) => match h.sync() {
            Ok(Some(tid)) => ok(vec![("tid", format!("0x{tid:016x}"))]),
            Ok(None) => gone(),
            Err(e) => error_reply(libc::EIO, &e.to_string()),
        },
        ("synctid", _) => error_reply(libc::EINVAL, "synctid takes only `quick`"),
        ("version", []) => match h.with(|fs| fs.volumes().version()) {
            Some(v) => ok(vec![
                ("min", VERSION_MIN.to_string()),
                ("wip", VERSION_WIP.to_string()),
                ("max", VERSION_MAX.to_string()),
                ("current", v.to_string()),
                (
                    "description",
                    version_description(v).unwrap_or("Unknown").to_string(),
                ),
            ]),
            None => gone(),
        },
        ("info", []) => match h.with(|fs| info(fs, mount_point)) {
            Some(Ok(r)) => r,
            Some(Err(e)) => error_reply(libc::EIO, &e.to_string()),
            None => gone(),
        },
        ("history", [path, atkey, key, nxt_key, beg, end]) => {
            let (Some(path), Some(atkey), Some(key), Some(nxt), Some(beg), Some(end)) = (
                unhex(path),
                num(atkey),
                num(key),
                num(nxt_key),
                num(beg),
                num(end),
            ) else {
                return error_reply(libc::EINVAL, "bad history arguments");
            };
            let at = (atkey != 0).then_some((key as i64, nxt as i64));
            match h.with(|fs| {
                walk(fs, &path, cred).and_then(|w| {
                    fs.enter_pfs(w.pfs)?;
                    fs.history_call(w.ino, at, beg, end)
                })
            }) {
                Some(Ok(r)) => {
                    let mut kv = vec![
                        ("obj", format!("0x{:016x}", r.obj_id)),
                        ("dirty", (r.dirty as u8).to_string()),
                        ("nxt_key", format!("0x{:x}", r.nxt_key as u64)),
                        ("next_key", (r.next_key as u8).to_string()),
                        ("eof", (r.eof as u8).to_string()),
                    ];
                    for (t, ts) in r.entries {
                        kv.push(("h", format!("0x{t:016x} {ts}")));
                    }
                    ok(kv)
                }
                Some(Err(e)) => engine_error(&e),
                None => gone(),
            }
        }
        ("reblock", [classes, free_level, rest @ ..]) => {
            let (Some(classes), Some(free_level)) = (num(classes), num(free_level)) else {
                return error_reply(libc::EINVAL, "bad reblock arguments");
            };
            let deadline = rest
                .iter()
                .find_map(|a| a.strip_prefix("deadline=").and_then(num))
                .and_then(deadline_in);
            let start = rest
                .iter()
                .find_map(|a| a.strip_prefix("from=").and_then(base_elm));
            let o = ReblockOpts {
                btree: classes & 1 != 0,
                inodes: classes & 2 != 0,
                dirs: classes & 4 != 0,
                data: classes & 8 != 0,
                free_level,
                deadline,
                start,
            };
            match reblock_in_steps(h, &o, progress) {
                Some(Ok(st)) => {
                    let mut kv = vec![
                        ("btree_moves", st.btree_moves.to_string()),
                        ("btree_count", st.btree_count.to_string()),
                        ("data_moves", st.data_moves.to_string()),
                        ("data_count", st.data_count.to_string()),
                        ("data_byte_moves", st.data_byte_moves.to_string()),
                        ("data_byte_count", st.data_byte_count.to_string()),
                    ];
                    if let Some(k) = st.interrupted_at {
                        kv.push(("interrupted", hex(k.as_bytes())));
                    }
                    ok(kv)
                }
                Some(Err(e)) => engine_error(&e),
                None => gone(),
            }
        }
        ("rebalance", [sat, rest @ ..]) => {
            let Some(sat) = num(sat) else {
                return error_reply(libc::EINVAL, "bad saturation");
            };
            let deadline = rest
                .iter()
                .find_map(|a| a.strip_prefix("deadline=").and_then(num))
                .and_then(deadline_in);
            let start = rest
                .iter()
                .find_map(|a| a.strip_prefix("from=").and_then(base_elm));
            match rebalance_in_steps(h, sat as usize, deadline, start, progress) {
                Some(Ok(st)) => {
                    let mut kv = vec![
                        ("scanned", st.scanned.to_string()),
                        ("deleted", st.deleted.to_string()),
                        ("rebalanced", st.rebalanced.to_string()),
                    ];
                    if let Some(k) = st.interrupted_at {
                        kv.push(("interrupted", hex(k.as_bytes())));
                    }
                    ok(kv)
                }
                Some(Err(e)) => engine_error(&e),
                None => gone(),
            }
        }
        ("snap-list", []) => match h.with(|fs| fs.snapshots().map(|l| (fs.pfs_id(), l))) {
            Some(Ok((pfs, list))) => {
                let mut kv = vec![("pfs", pfs.to_string())];
                for sn in list {
                    kv.push((
                        "snap",
                        format!("0x{:016x} {} {}", sn.tid, sn.ts, hex(&sn.label)),
                    ));
                }
                ok(kv)
            }
            Some(Err(e)) => engine_error(&e),
            None => gone(),
        },
        ("snap-add", [tid, ts, label]) => {
            let (Some(tid), Some(ts), Some(label)) = (num(tid), num(ts), unhex(label)) else {
                return error_reply(libc::EINVAL, "bad snap-add arguments");
            };
            changed(h, |fs| fs.add_snapshot(tid, ts, &label))
        }
        ("snap-add", [tid, ts]) => {
            let (Some(tid), Some(ts)) = (num(tid), num(ts)) else {
                return error_reply(libc::EINVAL, "bad snap-add arguments");
            };
            changed(h, |fs| fs.add_snapshot(tid, ts, b""))
        }
        ("snap-del", [tid]) => {
            let Some(tid) = num(tid) else {
                return error_reply(libc::EINVAL, "bad snapshot TID");
            };
            changed(h, |fs| fs.del_snapshot(tid))
        }
        ("config-get", []) => match h.with(|fs| fs.config()) {
            Some(Ok(Some(text))) => ok(vec![("text", hex(&text))]),
            Some(Ok(None)) => ok(vec![]),
            Some(Err(e)) => engine_error(&e),
            None => gone(),
        },
        ("config-set", [text]) => {
            let Some(text) = unhex(text) else {
                return error_reply(libc::EINVAL, "bad config text");
            };
            changed(h, |fs| fs.set_config(&text))
        }
        ("config-set", []) => changed(h, |fs| fs.set_config(b"")),
        ("getflags", []) | ("setflags", [_]) if c.at.is_none() => {
            error_reply(libc::EINVAL, "no object named")
        }
        ("getflags", []) => {
            match h.with(|fs| fs.getattr(c.at.map_or(0, |w| w.ino), HAMMER_MAX_TID)) {
                Some(Ok(a)) => ok(vec![("flags", a.uflags.to_string())]),
                Some(Err(e)) => engine_error(&e),
                None => gone(),
            }
        }
        ("setflags", [flags]) => {
            let Some(flags) = num(flags) else {
                return error_reply(libc::EINVAL, "bad flags");
            };
            set_nohistory(h, c.at.map_or(0, |w| w.ino), flags)
        }
        ("getflags", [ino]) => {
            let Some(ino) = object(ino) else {
                return error_reply(libc::EINVAL, "not an object of the mount's current view");
            };
            match h.with(|fs| fs.getattr(ino, HAMMER_MAX_TID)) {
                Some(Ok(a)) => ok(vec![("flags", a.uflags.to_string())]),
                Some(Err(e)) => engine_error(&e),
                None => gone(),
            }
        }
        ("setflags", [ino, flags]) => {
            let (Some(ino), Some(flags)) = (object(ino), num(flags)) else {
                return error_reply(libc::EINVAL, "not an object of the mount's current view");
            };
            set_nohistory(h, ino, flags)
        }
        ("pfs-get", []) | ("pfs-get", ["-1"]) => pfs_get(h, None),
        ("pfs-get", [id]) => match id.parse::<u32>() {
            Ok(id) => pfs_get(h, Some(id)),
            Err(_) => error_reply(libc::EINVAL, "bad PFS id"),
        },
        ("pfs-free", []) => match h.with(|fs| fs.pfs_free_id()) {
            Some(Ok(Some(id))) => ok(vec![("pfs", id.to_string())]),
            Some(Ok(None)) => error_reply(libc::ENOSPC, "all PFSs in use"),
            Some(Err(e)) => engine_error(&e),
            None => gone(),
        },
        ("pfs-set", [id, data]) => {
            let (Ok(id), Some(bytes)) = (id.parse::<u32>(), unhex(data)) else {
                return error_reply(libc::EINVAL, "bad pfs-set arguments");
            };
            let Ok(d) = HammerPseudofsData::read_from_bytes(&bytes[..]) else {
                return error_reply(libc::EINVAL, "a PFS descriptor is 292 bytes");
            };
            let uid = cred.map_or(0, |c| c.uid);
            let gid = cred.and_then(|c| c.gids.first().copied()).unwrap_or(0);
            changed(h, |fs| fs.pfs_set(id, &d, uid, gid))
        }
        ("pfs-upgrade", [id]) | ("pfs-downgrade", [id]) | ("pfs-destroy", [id]) => {
            let Ok(id) = id.parse::<u32>() else {
                return error_reply(libc::EINVAL, "bad PFS id");
            };
            // DragonFly refuses while anything of the PFS is in use.
            if h.open_handles(id) > 0 {
                return error_reply(libc::ENOTEMPTY, "files of the PFS are open");
            }
            changed(h, |fs| match directive {
                "pfs-upgrade" => fs.pfs_upgrade(id),
                "pfs-downgrade" => fs.pfs_downgrade(id),
                _ => fs.pfs_destroy(id),
            })
        }
        ("update", opts) if !opts.is_empty() => update(h, opts),
        ("stats", []) => {
            let v = hammer_engine::stats::snapshot();
            let s: Vec<String> = v.iter().map(u64::to_string).collect();
            ok(vec![("stats", s.join(" "))])
        }
        _ => error_reply(libc::ENOTTY, ""),
    }
}

fn cstr(b: &[u8]) -> Vec<u8> {
    let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    b[..n].to_vec()
}

/// A `hammer_base_elm` sent as hex (a cycle file's position).
fn base_elm(s: &str) -> Option<HammerBaseElm> {
    unhex(s).and_then(|b| HammerBaseElm::read_from_bytes(&b[..]).ok())
}

/// A decimal or `0x` hex number.
fn num(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Resolves a path relative to the mount's root the way the mount does,
/// `name@@0x<tid>` and `name@@<date>` components included: the object and
/// the TID it is seen as of.
fn walk(fs: &mut Fs, path: &[u8], cred: Option<&Cred>) -> hammer_engine::Result<Walked> {
    use hammer_engine::error::{Error, FsError};
    use hammer_fuse::history::{split_asof_name, AsOf};
    let denied = || Error::Fs(FsError::Access);
    let (mut ino, mut asof) = (HAMMER_OBJID_ROOT, HAMMER_MAX_TID);
    fs.enter_pfs(0)?;
    for comp in path.split(|&c| c == b'/') {
        // Searching a directory needs its x bit, as open(2) would.
        if !comp.is_empty() && comp != b"." && !may(cred, &fs.getattr(ino, asof)?, 1) {
            return Err(denied());
        }
        match comp {
            b"" | b"." => continue,
            b".." => {
                let a = fs.getattr(ino, asof)?;
                if ino != HAMMER_OBJID_ROOT {
                    ino = a.parent;
                }
                continue;
            }
            _ => {}
        }
        let (name, next_asof) = match split_asof_name(comp) {
            Some((base, AsOf::Tid(t))) => (base, t),
            Some((base, AsOf::Time(secs))) => {
                let t = fs.tid_at(secs)?.ok_or(Error::Fs(FsError::NotFound))?;
                (base, t)
            }
            // A PFS root, as the mount resolves `@@-1:<id>` names.
            Some((_, AsOf::PfsRoot { tid, pfs })) => {
                let t = fs.pfs_root_view(pfs, tid)?;
                fs.enter_pfs(pfs)?;
                ino = HAMMER_OBJID_ROOT;
                asof = if pfs == 0 && t == HAMMER_MAX_TID {
                    fs.last_tid()
                } else {
                    t
                };
                continue;
            }
            None => (comp, asof),
        };
        // `name@@0x<tid>` is the name looked up as of the TID.
        if !name.is_empty() {
            ino = fs
                .lookup(ino, name, next_asof)?
                .ok_or(Error::Fs(FsError::NotFound))?
                .obj_id;
        }
        asof = next_asof;
    }
    // DragonFly's tools open the object for reading first (a fresh slave
    // has no root yet: its PFS is still named).
    let pfs = fs.pfs_id();
    match fs.getattr(ino, asof) {
        Ok(a) if !may(cred, &a, 4) => return Err(denied()),
        Ok(_) => {}
        Err(_) if pfs != 0 && ino == HAMMER_OBJID_ROOT => {}
        Err(e) => return Err(e),
    }
    Ok(Walked { pfs, ino })
}

/// What a path names: an object of a PFS.
#[derive(Clone, Copy, Debug)]
struct Walked {
    pfs: u32,
    ino: i64,
}

/// Whether `uid` owns the object a `setflags` request names (its `at=`
/// path, or the inode number argument).
fn owns(h: &FsHandle, at: Option<Walked>, ino: Option<&&str>, uid: Option<u32>) -> bool {
    let ino = match at {
        Some(w) => Some(w.ino),
        None => ino.and_then(|s| object(s)),
    };
    let (Some(ino), Some(uid)) = (ino, uid) else {
        return false;
    };
    matches!(h.with(|fs| fs.getattr(ino, HAMMER_MAX_TID)), Some(Ok(a)) if a.uid == uid)
}

/// Sets or clears only the no-history bit (the directive's job); every
/// other flag keeps its value.
fn set_nohistory(h: &FsHandle, ino: i64, flags: u64) -> Reply {
    changed(h, |fs| {
        let old = fs.getattr(ino, HAMMER_MAX_TID)?.uflags;
        let set = SetAttr {
            uflags: Some((old & !UF_NOHISTORY) | (flags as u32 & UF_NOHISTORY)),
            ..Default::default()
        };
        fs.setattr(ino, &set).map(|_| ())
    })
}

/// `update <option>…` (`mount_hammer -u`): `ro` (sync, then refuse
/// changes), `rw` (take changes again, reopening volumes opened read-only),
/// `nohistory`/`history`, `noatime`/`relatime`/`atime`. Replies nothing
/// but the status; an option it does not know is EINVAL before anything
/// changes.
fn update(h: &FsHandle, opts: &[&str]) -> Reply {
    use hammer_engine::fs::AtimeMode;
    let known = |o: &&str| {
        matches!(
            *o,
            "ro" | "rw"
                | "nohistory"
                | "history"
                | "noatime"
                | "relatime"
                | "atime"
                | "strictatime"
        )
    };
    if let Some(o) = opts.iter().find(|o| !known(o)) {
        return error_reply(
            libc::EINVAL,
            &format!("-o {o}: cannot be changed on a mounted filesystem"),
        );
    }
    for o in opts {
        let r = match *o {
            "ro" => h.set_read_only(true),
            "rw" => h.set_read_only(false),
            _ => {
                let done = h.with(|fs| match *o {
                    "nohistory" => fs.set_nohistory(true),
                    "history" => fs.set_nohistory(false),
                    "noatime" => fs.atime = AtimeMode::Never,
                    "relatime" => fs.atime = AtimeMode::Relative,
                    _ => fs.atime = AtimeMode::Always,
                });
                done.ok_or(hammer_engine::Error::Fs(
                    hammer_engine::error::FsError::NotFound,
                ))
            }
        };
        if let Err(e) = r {
            return engine_error(&e);
        }
    }
    ok(vec![])
}

/// Largest data frame of `read-asof`, in bytes before hex.
const READ_FRAME: usize = 256 << 10;
/// Largest file `read-asof` sends whole (bigger ones are read through the
/// mount as before).
const READ_ASOF_MAX: u64 = 64 << 20;

/// `at=<dir> read-asof <hex name> <tid>…`: the contents of `name` as
/// `dir/name@@0x<tid>` shows them, for each TID in turn, as frames: `v=<tid>`
/// with `size=<bytes>` followed by `d=<hex>` frames, or `v=<tid>` with
/// `errno=<n>` when there is no such file then (or it may not be read);
/// then the final reply. `undo -a` reads every version this way instead of
/// one round trip per version through the mount.
fn read_asof(
    args: &[&str],
    h: &FsHandle,
    at: Option<Walked>,
    cred: Option<&Cred>,
    send: &mut dyn FnMut(&Reply) -> bool,
) -> Reply {
    let (Some(dir), Some((name, tids))) = (at, args.split_first()) else {
        return error_reply(libc::EINVAL, "read-asof needs at=, a name and TIDs");
    };
    let (Some(name), Some(tids)) = (
        unhex(name),
        tids.iter().map(|t| num(t)).collect::<Option<Vec<u64>>>(),
    ) else {
        return error_reply(libc::EINVAL, "bad read-asof arguments");
    };
    for tid in tids {
        let r = h.with(|fs| -> hammer_engine::Result<(i64, u64)> {
            use hammer_engine::error::{Error, FsError};
            let e = fs
                .lookup(dir.ino, &name, tid)?
                .ok_or(Error::Fs(FsError::NotFound))?;
            let a = fs.getattr(e.obj_id, tid)?;
            if !may(cred, &a, 4) {
                return Err(FsError::Access.into());
            }
            if a.obj_type != HAMMER_OBJTYPE_REGFILE {
                return Err(FsError::IsDir.into());
            }
            if a.size > READ_ASOF_MAX {
                return Err(FsError::TooBig.into());
            }
            Ok((e.obj_id, a.size))
        });
        let head =
            |kv: Vec<(&str, String)>| Reply(kv.into_iter().map(|(k, v)| (k.into(), v)).collect());
        let (obj, size) = match r {
            None => return error_reply(libc::ENOTTY, "filesystem unmounted"),
            Some(Err(e)) => {
                let code = match &e {
                    hammer_engine::Error::Fs(f) => f.errno(),
                    _ => libc::EIO,
                };
                if !send(&head(vec![
                    ("v", format!("0x{tid:016x}")),
                    ("errno", code.to_string()),
                ])) {
                    return error_reply(libc::EPIPE, "");
                }
                continue;
            }
            Some(Ok(v)) => v,
        };
        if !send(&head(vec![
            ("v", format!("0x{tid:016x}")),
            ("size", size.to_string()),
        ])) {
            return error_reply(libc::EPIPE, "");
        }
        let mut off = 0u64;
        while off < size {
            let n = (size - off).min(READ_FRAME as u64) as usize;
            let data = match h.with(|fs| fs.read(obj, off, n, tid)) {
                Some(Ok(d)) if !d.is_empty() => d,
                Some(Ok(_)) => break,
                Some(Err(e)) => return engine_error(&e),
                None => return error_reply(libc::ENOTTY, "filesystem unmounted"),
            };
            off += data.len() as u64;
            if !send(&head(vec![("d", hex(&data))])) {
                return error_reply(libc::EPIPE, "");
            }
        }
    }
    ok(vec![])
}

/// GET_PSEUDOFS: PFS `id` (the request's own PFS for `None`): `pfs`,
/// `pfsd` (the 292 bytes in hex, a master's `sync_end_tid` being the
/// newest committed TID), and for the simpler readers `prune_min`,
/// `mirror_flags`, `snapshots`, `label`. ENOENT for a PFS that does not
/// exist.
fn pfs_get(h: &FsHandle, id: Option<u32>) -> Reply {
    match h.with(|fs| {
        let id = id.unwrap_or(fs.pfs_id());
        fs.pfs_get(id).map(|d| d.map(|d| (id, d)))
    }) {
        Some(Ok(Some((id, d)))) => ok(vec![
            ("pfs", id.to_string()),
            ("pfsd", hex(d.as_bytes())),
            ("prune_min", { d.prune_min }.to_string()),
            ("mirror_flags", { d.mirror_flags }.to_string()),
            ("snapshots", hex(&cstr(&d.snapshots))),
            ("label", hex(&cstr(&d.label))),
        ]),
        Some(Ok(None)) => error_reply(libc::ENOENT, "no such PFS"),
        Some(Err(e)) => engine_error(&e),
        None => error_reply(libc::ENOENT, "no such PFS"),
    }
}

/// A FUSE inode number of the mount's own view is the object id; the
/// synthetic numbers of as-of views (top bit set) name no current object.
fn object(s: &str) -> Option<i64> {
    let n = num(s)?;
    (n != 0 && n < 1 << 63).then_some(n as i64)
}

/// An engine error as a reply: its errno when it has one.
fn engine_error(e: &hammer_engine::Error) -> Reply {
    let code = match e {
        hammer_engine::Error::Fs(f) => f.errno(),
        _ => libc::EIO,
    };
    error_reply(code, &e.to_string())
}

/// Runs a change and makes it durable before answering, as DragonFly's
/// snapshot and config ioctls are durable when they return.
fn changed(h: &FsHandle, f: impl FnOnce(&mut Fs) -> hammer_engine::Result<()>) -> Reply {
    match h.with(|fs| f(fs).and_then(|_| fs.sync())) {
        Some(Ok(tid)) => ok(vec![("tid", format!("0x{tid:016x}"))]),
        Some(Err(e)) => engine_error(&e),
        None => error_reply(libc::ENOTTY, "filesystem unmounted"),
    }
}

/// `prune [deadline=<seconds>] [below=<hex base elm>] <beg>:<end>:<mod>…`
/// (TIDs in hex or decimal): prunes PFS #0, for at most `deadline`
/// seconds, visiting only keys below `below` (a cycle file's 40-byte
/// `hammer_base_elm`). Replies `scanned`, `pruned`, `dirents`, `bytes`,
/// and `interrupted=<hex base elm>` when the deadline stopped it.
fn prune(args: &[&str], h: &FsHandle, progress: &mut dyn FnMut(u64, u64)) -> Reply {
    let mut elms = Vec::new();
    let mut limits = PruneLimits::default();
    for a in args {
        if let Some(v) = a.strip_prefix("deadline=") {
            let Some(secs) = num(v) else {
                return error_reply(libc::EINVAL, "bad deadline");
            };
            limits.deadline = deadline_in(secs);
            continue;
        }
        if let Some(v) = a.strip_prefix("below=") {
            match base_elm(v) {
                Some(k) => limits.below = Some(k),
                None => return error_reply(libc::EINVAL, "bad cycle position"),
            }
            continue;
        }
        let mut it = a.split(':').map(num);
        match (it.next(), it.next(), it.next(), it.next()) {
            (Some(Some(beg_tid)), Some(Some(end_tid)), Some(Some(mod_tid)), None)
                if beg_tid < end_tid =>
            {
                elms.push(PruneElm {
                    beg_tid,
                    end_tid,
                    mod_tid,
                })
            }
            _ => return error_reply(libc::EINVAL, &format!("bad prune element {a}")),
        }
    }
    match prune_in_steps(h, &elms, &limits, progress) {
        Some(Ok(o)) => {
            let st = o.stats;
            let mut kv = vec![
                ("scanned", st.scanned.to_string()),
                ("pruned", st.pruned.to_string()),
                ("dirents", st.dirents.to_string()),
                ("bytes", st.bytes.to_string()),
            ];
            if let Some(k) = o.interrupted_at {
                kv.push(("interrupted", hex(k.as_bytes())));
            }
            ok(kv)
        }
        Some(Err(e)) => engine_error(&e),
        None => error_reply(libc::ENOTTY, "filesystem unmounted"),
    }
}

fn info(fs: &mut Fs, mount_point: &Path) -> hammer_engine::Result<Reply> {
    let mut pfs = Vec::new();
    for (id, d) in fs.pfs_list()? {
        fs.enter_pfs(id)?;
        pfs.push((id, d, fs.snapshots()?.len()));
    }
    fs.enter_pfs(0)?;
    let dirty_limit = fs.dirty_limit();
    let set = fs.volumes();
    let hd = set.header();
    let rsv_bytes = CHKSPC_WRITE_SLOP * HAMMER_BIGBLOCK_SIZE
        + dirty_limit
        + set.dirty_buffers() as u64 * HAMMER_BUFSIZE;
    let mut kv = vec![
        ("label", hd.label()),
        ("nvolumes", hd.vol_count.to_string()),
        ("fsid", hd.vol_fsid.to_dfly_string()),
        ("version", set.version().to_string()),
        ("bigblocks", hd.vol0_stat_bigblocks.to_string()),
        ("freebigblocks", hd.vol0_stat_freebigblocks.to_string()),
        (
            "rsvbigblocks",
            (rsv_bytes / HAMMER_BIGBLOCK_SIZE).to_string(),
        ),
        ("inodes", hd.vol0_stat_inodes.to_string()),
        ("mountpoint", mount_point.to_string_lossy().into_owned()),
    ];
    for v in set.iter() {
        kv.push(("volume", v.name.clone()));
    }
    for (id, d, snaps) in pfs {
        let mode = if d.mirror_flags & HAMMER_PFSD_SLAVE != 0 {
            "SLAVE"
        } else {
            "MASTER"
        };
        kv.push(("pfs", format!("{id} {mode} {snaps}")));
    }
    Ok(ok(kv))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(mode: u16, uid: u32, gid: u32) -> hammer_engine::fs::Attr {
        hammer_engine::fs::Attr {
            ino: 2,
            obj_type: HAMMER_OBJTYPE_DIRECTORY,
            mode,
            uid,
            gid,
            nlinks: 1,
            size: 0,
            rdev: (0, 0),
            uflags: 0,
            atime: 0,
            mtime: 0,
            ctime: 0,
            parent: 1,
        }
    }

    #[test]
    fn permission_bits_as_the_kernel_checks_them() {
        let alice = Cred {
            uid: 1000,
            gids: vec![1000, 27],
        };
        let root = Cred {
            uid: 0,
            gids: vec![0],
        };
        // 0700 owned by bob: alice may not search or read it; root may.
        assert!(!may(Some(&alice), &attr(0o700, 1001, 1001), 1));
        assert!(may(Some(&root), &attr(0o700, 1001, 1001), 1));
        // Owner bits for the owner even when "other" allows more.
        assert!(!may(Some(&alice), &attr(0o077, 1000, 1000), 4));
        // A supplementary group counts.
        assert!(may(Some(&alice), &attr(0o050, 1001, 27), 1));
        assert!(may(Some(&alice), &attr(0o004, 1001, 1001), 4));
        assert!(!may(None, &attr(0o777, 0, 0), 4));
    }
}
