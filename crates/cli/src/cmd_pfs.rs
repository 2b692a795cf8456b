//! `hammer pfs-master|pfs-slave|pfs-status|pfs-update|pfs-upgrade|
//! pfs-downgrade|pfs-destroy`: pseudo-filesystems, as DragonFly's
//! `cmd_pfs.c` runs them, with its messages and output.
//!
//! A PFS is reached through a softlink in PFS #0 whose stored text is
//! `@@PFS<5 digits>`; the mount shows it as `@@-1:<id>` (a master, live)
//! or `@@0x<sync_end_tid>:<id>` (a slave, read-only at its last mirrored
//! TID). A path names a PFS either through such a link (its text gives the
//! id, the directory holding it reaches the daemon) or by being inside the
//! PFS (the daemon derives the id from the object, as the kernel derives it
//! from the descriptor's inode). The descriptor changes go to the mount's
//! daemon (`pfs-get`, `pfs-free`, `pfs-set`, `pfs-upgrade`,
//! `pfs-downgrade`, `pfs-destroy` requests, see `control_server`).

use crate::common::Opts;
use crate::control::{errtext, hex, resolve, unhex, Target};
use hammer_ondisk::*;
use std::io::{BufRead, Write};
use zerocopy::{FromBytes, FromZeros, IntoBytes};

const USAGE: &str = "hammer pfs-status <dirpath> ...
hammer pfs-master <dirpath> [options]
hammer pfs-slave <dirpath> [options]
hammer pfs-update <dirpath> [options]
hammer pfs-upgrade <dirpath>
hammer pfs-downgrade <dirpath>
hammer pfs-destroy <dirpath>

options:
    sync-beg-tid=0x16llx
    sync-end-tid=0x16llx
    shared-uuid=0x16llx
    unique-uuid=0x16llx
    label=\"string\"
    snapshots=\"/path\"
    snapshots-clear
    prune-min=Nd
    prune-min=[Nd/]hh[:mm[:ss]]
";

const FROM_A_PFS: &str =
    "You are attempting to access a PFS softlink from a PFS.  It may not represent the PFS
on the main filesystem mount that you expect!  You may only access PFS softlinks
via the main filesystem mount!
";

/// A directive's early end: the exit status (its message already written).
struct Exit(i32);
type Res<T> = Result<T, Exit>;

fn errx(err: &mut dyn Write, msg: &str) -> Exit {
    let _ = writeln!(err, "hammer: {msg}");
    Exit(1)
}

fn err_io(err: &mut dyn Write, msg: &str, e: &std::io::Error) -> Exit {
    let _ = writeln!(err, "hammer: {msg}: {}", errtext(e));
    Exit(1)
}

fn cstr(b: &[u8]) -> String {
    let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..n]).into_owned()
}

/// A random version-4 UUID, laid out as DragonFly's `uuid_t` (the version
/// in `time_hi_and_version`, a little-endian field, so the printed form
/// reads `xxxxxxxx-xxxx-4xxx-…`).
fn random_uuid() -> HammerUuid {
    let mut b = [0u8; 16];
    // Without entropy the ids stay zero, which still works: uniqueness
    // only matters between mirrored PFSs.
    let _ = getrandom::fill(&mut b);
    b[7] = (b[7] & 0x0F) | 0x40;
    b[8] = (b[8] & 0x3F) | 0x80;
    HammerUuid { uuid: b }
}

/// The id a PFS link names: its text (or the path's own text when it is
/// not a link) ending in `@@<tid>:<id>`; `None` for anything else,
/// including a path that is something other than a directory.
fn scan_pfs_id(path: &str) -> Option<u32> {
    if let Ok(m) = std::fs::metadata(path) {
        if !m.is_dir() {
            return None;
        }
    }
    // A fresh slave's link leads nowhere yet (no root until the first
    // mirror-write), so the text is what counts.
    let text = match get_link(path) {
        Some(l) => std::fs::read_link(&l).ok()?.to_string_lossy().into_owned(),
        None => path.to_string(),
    };
    let base = text.rsplit('/').next().unwrap_or(&text);
    let rest = base.strip_prefix("@@")?;
    let (tid, id) = rest.split_once(':')?;
    let tid_ok = tid == "-1"
        || tid
            .strip_prefix("0x")
            .is_some_and(|h| !h.is_empty() && h.bytes().all(|c| c.is_ascii_hexdigit()));
    let digits = id.bytes().take_while(u8::is_ascii_digit).count();
    if !tid_ok || digits == 0 {
        return None;
    }
    id[..digits].parse().ok()
}

/// `path` itself (trailing slashes dropped) when it is a softlink.
fn get_link(path: &str) -> Option<String> {
    let m = std::fs::symlink_metadata(path).ok()?;
    let p = if m.is_dir() {
        let t = path.trim_end_matches('/');
        if t.is_empty() {
            "/"
        } else {
            t
        }
    } else {
        path
    };
    std::fs::symlink_metadata(p)
        .ok()?
        .file_type()
        .is_symlink()
        .then(|| p.to_string())
}

fn dirname(path: &str) -> String {
    let t = path.trim_end_matches('/');
    match t.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => t[..i].trim_end_matches('/').to_string(),
        None => ".".into(),
    }
}

/// A PFS found from a path: where to ask, its id and descriptor.
struct Pfs {
    t: Target,
    id: u32,
    d: HammerPseudofsData,
}

fn open_target(path: &str, err: &mut dyn Write, what: &str) -> Res<Target> {
    resolve(path).map_err(|(opened, e)| {
        if opened {
            err_io(err, &format!("{what} {path}"), &e)
        } else {
            // The ioctl itself would fail (not HAMMER).
            err_io(err, &format!("Cannot access {path}"), &e)
        }
    })
}

fn get(t: &Target, id: Option<u32>) -> std::io::Result<(u32, HammerPseudofsData)> {
    let line = match id {
        Some(id) => format!("pfs-get {id}"),
        None => "pfs-get".to_string(),
    };
    let r = t.call(&line)?;
    let id = r.num("pfs").map_err(|_| proto())? as u32;
    let bytes = r.get("pfsd").and_then(unhex).ok_or_else(proto)?;
    let d = HammerPseudofsData::read_from_bytes(&bytes[..]).map_err(|_| proto())?;
    Ok((id, d))
}

fn proto() -> std::io::Error {
    std::io::Error::from_raw_os_error(libc::EPROTO)
}

/// DragonFly's `getpfs`.
impl Pfs {
    /// Sends `<what> <id>` to the daemon, unless the PFS root is
    /// bind-mounted or a process's current (or root) directory is in the
    /// PFS: a PFS in use is refused with ENOTEMPTY, as DragonFly refuses
    /// one whose vnodes are referenced. The daemon refuses the same way
    /// while a file or directory of the PFS is open.
    fn call_if_unused(&self, what: &str) -> std::io::Result<crate::control::Reply> {
        if crate::control::pfs_bind_mounted(&self.t, self.id)
            || crate::control::pfs_used_by_process(&self.t, self.id).is_some()
        {
            return Err(std::io::Error::from_raw_os_error(libc::ENOTEMPTY));
        }
        self.t.call(&format!("{what} {}", self.id))
    }
}

fn get_pfs(path: &str, err: &mut dyn Write) -> Res<Pfs> {
    let (open, id) = match scan_pfs_id(path) {
        Some(id) => (dirname(path), Some(id)),
        None => (path.to_string(), None),
    };
    let t = open_target(&open, err, "Failed to open")?;
    let (id, d) = get(&t, id).map_err(|e| err_io(err, &format!("Cannot access {path}"), &e))?;
    Ok(Pfs { t, id, d })
}

fn prune_min_text(secs: i32) -> String {
    let s = secs.max(0);
    let (d, h, m, sec) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    if s < 86400 {
        format!("{h:02}:{m:02}:{sec:02}")
    } else if s % 86400 == 0 {
        format!("{d}d")
    } else {
        format!("{d}d/{h:02}:{m:02}:{sec:02}")
    }
}

/// `[Nd/]hh[:mm[:ss]]` or `Nd` in seconds (capped as the tool caps it).
fn parse_prune_min(v: &str) -> Option<i32> {
    fn num(s: &str) -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    }
    let (days, rest) = match v.split_once('d') {
        Some((d, rest)) => (num(d)?, rest),
        None => (0, v),
    };
    let hms = if v.contains('d') {
        match rest {
            "" => None,
            r => Some(r.strip_prefix('/')?),
        }
    } else {
        Some(rest)
    };
    let mut secs = days.saturating_mul(86400);
    if let Some(hms) = hms {
        let parts: Vec<&str> = hms.split(':').collect();
        if parts.len() > 3 {
            return None;
        }
        for (p, mul) in parts.iter().zip([3600u64, 60, 1]) {
            secs = secs.saturating_add(num(p)?.saturating_mul(mul));
        }
    }
    Some(secs.min(0x7FFF_FFFF) as i32)
}

/// C's `strtoull(s, NULL, 16)`.
fn strtoull16(s: &str) -> u64 {
    let s = s.trim_start();
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    s.bytes()
        .take_while(u8::is_ascii_hexdigit)
        .fold(0u64, |n, c| {
            n.wrapping_mul(16)
                .wrapping_add((c as char).to_digit(16).unwrap_or(0) as u64)
        })
}

/// Applies `name=value` options to a descriptor.
fn apply_options(d: &mut HammerPseudofsData, opts: &[String], err: &mut dyn Write) -> Res<()> {
    for o in opts {
        let Some((name, value)) = o.split_once('=') else {
            return Err(errx(err, &format!("option {o} requires an assignment")));
        };
        match name {
            "sync-beg-tid" => d.sync_beg_tid = strtoull16(value),
            "sync-end-tid" => d.sync_end_tid = strtoull16(value),
            "shared-uuid" | "unique-uuid" => {
                let u = HammerUuid::parse_dfly(value).ok_or_else(|| {
                    errx(err, &format!("option {name}: error parsing uuid {value}"))
                })?;
                if name == "shared-uuid" {
                    d.shared_uuid = u;
                } else {
                    d.unique_uuid = u;
                }
            }
            "label" => {
                let v = match value.strip_prefix('"') {
                    Some(inner) => inner
                        .strip_suffix('"')
                        .ok_or_else(|| errx(err, &format!("option {name}: malformed string")))?,
                    None => value,
                };
                let b = v.as_bytes();
                let n = b.len().min(63);
                d.label = [0; 64];
                d.label[..n].copy_from_slice(&b[..n]);
            }
            "snapshots" => {
                if !value.starts_with('/') {
                    let _ = writeln!(err, "option {name}: '{value}' must be an absolute path");
                    if value.is_empty() {
                        let _ = writeln!(err, "use 'snapshots-clear' to unset snapshots dir");
                    }
                    return Err(Exit(1));
                }
                if value.len() >= 64 {
                    return Err(errx(
                        err,
                        &format!(
                            "option {name}: path too long, {} character limit",
                            value.len()
                        ),
                    ));
                }
                d.snapshots = [0; 64];
                d.snapshots[..value.len()].copy_from_slice(value.as_bytes());
            }
            "snapshots-clear" => d.snapshots = [0; 64],
            "prune-min" => {
                d.prune_min = parse_prune_min(value).ok_or_else(|| {
                    errx(
                        err,
                        &format!("option {value}: illegal time spec, use Nd or [Nd/]hh[:mm[:ss]]"),
                    )
                })?;
            }
            _ => return Err(errx(err, &format!("invalid option: {name}"))),
        }
    }
    Ok(())
}

/// The descriptor's lines, as `dump_pfsd` prints them.
fn dump(t: &Target, d: &HammerPseudofsData, out: &mut dyn Write) {
    let _ = writeln!(out, "    sync-beg-tid=0x{:016x}", { d.sync_beg_tid });
    let _ = writeln!(out, "    sync-end-tid=0x{:016x}", { d.sync_end_tid });
    let _ = writeln!(out, "    shared-uuid={}", d.shared_uuid.to_dfly_string());
    let _ = writeln!(out, "    unique-uuid={}", d.unique_uuid.to_dfly_string());
    let _ = writeln!(out, "    label=\"{}\"", cstr(&d.label));
    let snaps = cstr(&d.snapshots);
    if !snaps.is_empty() {
        let _ = writeln!(out, "    snapshots=\"{snaps}\"");
    }
    let _ = writeln!(out, "    prune-min={}", prune_min_text(d.prune_min));
    let slave = d.mirror_flags & HAMMER_PFSD_SLAVE != 0;
    let _ = writeln!(
        out,
        "    operating as a {}",
        if slave { "SLAVE" } else { "MASTER" }
    );
    if snaps.is_empty() {
        let version = t
            .call("version")
            .ok()
            .and_then(|r| r.get("current").and_then(|v| v.parse::<u32>().ok()));
        match version {
            Some(v) if v >= 3 => {
                let _ = writeln!(out, "    snapshots directory defaults to /var/hammer/<pfs>");
            }
            Some(_) if slave => {
                let _ = writeln!(out, "    snapshots directory not set for slave");
            }
            Some(_) => {
                let _ = writeln!(
                    out,
                    "    snapshots directory for master defaults to <pfs>/snapshots"
                );
            }
            None => {}
        }
    }
}

fn set(t: &Target, id: u32, d: &HammerPseudofsData) -> std::io::Result<()> {
    t.call(&format!("pfs-set {id} {}", hex(d.as_bytes())))
        .map(|_| ())
}

fn run(out: &mut dyn Write, f: impl FnOnce(&mut dyn Write) -> Res<()>) -> i32 {
    let r = f(out);
    let _ = out.flush();
    match r {
        Ok(()) => 0,
        Err(Exit(c)) => c,
    }
}

fn usage(err: &mut dyn Write) -> i32 {
    let _ = err.write_all(USAGE.as_bytes());
    1
}

/// `pfs-master` / `pfs-slave <dirpath> [options]`.
pub fn create(slave: bool, args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let Some(path) = args.first() else {
        return usage(err);
    };
    run(out, |out| {
        if std::fs::symlink_metadata(path).is_ok() {
            return Err(errx(err, &format!("Cannot create {path}, file exists!")));
        }
        if path.ends_with('/') {
            return Err(errx(
                err,
                &format!("Invalid PFS path {path} with trailing /"),
            ));
        }
        let dir = dirname(path);
        let from_pfs = |err: &mut dyn Write| {
            let _ = err.write_all(FROM_A_PFS.as_bytes());
            Exit(1)
        };
        let t = match resolve(&dir) {
            Ok(t) => t,
            Err((true, e)) => return Err(err_io(err, &format!("Cannot open directory {dir}"), &e)),
            Err((false, _)) => return Err(from_pfs(err)),
        };
        if !matches!(get(&t, None), Ok((0, _))) {
            return Err(from_pfs(err));
        }
        let id = match t.call("pfs-free") {
            Ok(r) => r.num("pfs").map_err(|_| Exit(1))? as u32,
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                return Err(errx(err, &format!("Cannot create {path}, all PFSs in use")))
            }
            Err(e) => return Err(err_io(err, &format!("Cannot create {path}"), &e)),
        };
        if id == 0 {
            return Err(errx(err, "Fatal error: PFS#0 must exist"));
        }
        let _ = write!(out, "Creating PFS#{id}\t");
        let _ = out.flush();
        let mut d = HammerPseudofsData::new_zeroed();
        d.sync_beg_tid = 1;
        d.sync_end_tid = 1;
        d.shared_uuid = random_uuid();
        d.unique_uuid = random_uuid();
        if slave {
            d.mirror_flags = HAMMER_PFSD_SLAVE;
        }
        if let Err(e) = set(&t, id, &d) {
            let _ = writeln!(out, "failed: {}", errtext(&e));
            return Ok(());
        }
        if let Err(e) = std::os::unix::fs::symlink(format!("@@PFS{id:05}"), path) {
            let _ = writeln!(out, "failed: cannot create symlink: {}", errtext(&e));
            return Ok(());
        }
        let _ = writeln!(out, "succeeded!");
        update_inner(path, &args[1..], out, err)
    })
}

fn update_inner(path: &str, opts: &[String], out: &mut dyn Write, err: &mut dyn Write) -> Res<()> {
    let p = get_pfs(path, err)?;
    let _ = writeln!(out, "{path}");
    let _ = out.flush();
    let mut d = p.d;
    apply_options(&mut d, opts, err)?;
    if d.mirror_flags & HAMMER_PFSD_SLAVE != 0 && p.id == 0 {
        return Err(errx(
            err,
            "The real mount point cannot be made a PFS slave, only PFS sub-directories can be made slaves",
        ));
    }
    set(&p.t, p.id, &d).map_err(|e| err_io(err, "Unable to adjust PFS configuration", &e))?;
    let (_, d) = get(&p.t, Some(p.id)).map_err(|e| {
        err_io(
            err,
            "Unable to retrieve PFS configuration after successful update",
            &e,
        )
    })?;
    dump(&p.t, &d, out);
    Ok(())
}

/// `pfs-update <dirpath> [options]`.
pub fn update(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let Some(path) = args.first() else {
        return usage(err);
    };
    run(out, |out| update_inner(path, &args[1..], out, err))
}

/// `pfs-status [<dirpath> ...]`.
pub fn status(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let paths: Vec<String> = if args.is_empty() {
        vec![".".into()]
    } else {
        args.to_vec()
    };
    run(out, |out| {
        for path in &paths {
            let p = get_pfs(path, err)?;
            let _ = write!(out, "{path}\t");
            match get(&p.t, Some(p.id)) {
                Ok((id, d)) => {
                    let _ = writeln!(out, "PFS#{id} {{");
                    dump(&p.t, &d, out);
                    let _ = writeln!(out, "}}");
                }
                Err(_) => {
                    let _ = writeln!(out, "Invalid PFS path {path}");
                }
            }
        }
        Ok(())
    })
}

/// `pfs-upgrade` / `pfs-downgrade <dirpath>`.
pub fn change_mode(
    upgrade: bool,
    args: &[String],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let Some(path) = args.first() else {
        return usage(err);
    };
    run(out, |out| {
        let p = get_pfs(path, err)?;
        let slave = p.d.mirror_flags & HAMMER_PFSD_SLAVE != 0;
        let label = cstr(&p.d.label);
        let what = if upgrade {
            if p.id == 0 {
                return Err(errx(
                    err,
                    &format!(
                        "You cannot upgrade PFS#{} (It should already be a master)",
                        p.id
                    ),
                ));
            }
            if !slave {
                return Err(errx(err, "It is already a master"));
            }
            "pfs-upgrade"
        } else {
            if p.id == 0 {
                return Err(errx(err, &format!("You cannot downgrade PFS#{}", p.id)));
            }
            if slave {
                return Err(errx(err, "It is already a slave"));
            }
            "pfs-downgrade"
        };
        match p.call_if_unused(what) {
            Ok(_) => {
                let _ = writeln!(out, "{what} of PFS#{} ({label}) succeeded", p.id);
                Ok(())
            }
            Err(e) => Err(err_io(
                err,
                &format!("{what} of PFS#{} ({label}) failed", p.id),
                &e,
            )),
        }
    })
}

/// One line from standard input: yes only for `y`, `yes`, `Y`, `YES`.
fn get_yn(input: &mut dyn BufRead) -> bool {
    let mut line = String::new();
    if input.read_line(&mut line).unwrap_or(0) == 0 {
        return false;
    }
    matches!(
        line.trim_end_matches(['\r', '\n']),
        "y" | "yes" | "Y" | "YES"
    )
}

/// `pfs-destroy <dirpath>`: asks (twice for a master), counts down unless
/// `-d`, destroys, and removes the link.
pub fn destroy(
    opts: &Opts,
    args: &[String],
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let Some(path) = args.first() else {
        return usage(err);
    };
    run(out, |out| {
        let p = get_pfs(path, err)?;
        if p.id == 0 {
            return Err(errx(err, &format!("You cannot destroy PFS#{}", p.id)));
        }
        let label = cstr(&p.d.label);
        let _ = writeln!(
            out,
            "You have requested that PFS#{} ({label}) be destroyed",
            p.id
        );
        let _ = writeln!(
            out,
            "This will irrevocably destroy all data on this PFS!!!!!"
        );
        let _ = write!(out, "Do you really want to do this? [y/n] ");
        let _ = out.flush();
        let refuse = |err: &mut dyn Write| errx(err, &format!("No action taken on PFS#{}", p.id));
        if !get_yn(input) {
            return Err(refuse(err));
        }
        if p.d.mirror_flags & HAMMER_PFSD_SLAVE == 0 {
            let _ = writeln!(out, "This PFS is currently setup as a MASTER!");
            let _ = write!(
                out,
                "Are you absolutely sure you want to destroy it? [y/n] "
            );
            let _ = out.flush();
            if !get_yn(input) {
                return Err(refuse(err));
            }
        }
        let _ = write!(out, "Destroying PFS#{} ({label})", p.id);
        if opts.debug {
            let _ = writeln!(out);
        } else {
            let _ = write!(out, " in");
            for i in (1..=5).rev() {
                let _ = write!(out, " {i}");
                let _ = out.flush();
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
            let _ = writeln!(out, ".. starting destruction pass");
        }
        let _ = out.flush();
        match p.call_if_unused("pfs-destroy") {
            Ok(_) => {
                let _ = writeln!(out, "pfs-destroy of PFS#{} succeeded!", p.id);
                if let Some(l) = get_link(path) {
                    std::fs::remove_file(&l)
                        .map_err(|e| err_io(err, &format!("Unable to remove softlink {l}"), &e))?;
                }
            }
            Err(e) => {
                let _ = writeln!(out, "pfs-destroy of PFS#{} failed: {}", p.id, errtext(&e));
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_min_forms() {
        assert_eq!(parse_prune_min("5"), Some(5 * 3600));
        assert_eq!(parse_prune_min("1d"), Some(86400));
        assert_eq!(parse_prune_min("1d/2"), Some(86400 + 7200));
        assert_eq!(parse_prune_min("01:30:15"), Some(5415));
        assert_eq!(parse_prune_min("1d/"), None);
        assert_eq!(parse_prune_min("-1"), None);
        assert_eq!(parse_prune_min("1x"), None);
        assert_eq!(prune_min_text(0), "00:00:00");
        assert_eq!(prune_min_text(86400 * 2), "2d");
        assert_eq!(prune_min_text(86400 + 5415), "1d/01:30:15");
    }

    #[test]
    fn pfs_link_texts() {
        let d = tempfile::tempdir().unwrap();
        let l = d.path().join("miku");
        std::os::unix::fs::symlink("@@-1:00008", &l).unwrap();
        assert_eq!(scan_pfs_id(l.to_str().unwrap()), Some(8));
        let s = d.path().join("negi");
        std::os::unix::fs::symlink("@@0x0000000000000001:00009", &s).unwrap();
        assert_eq!(scan_pfs_id(s.to_str().unwrap()), Some(9));
        let raw = d.path().join("raw");
        std::os::unix::fs::symlink("@@PFS00003", &raw).unwrap();
        assert_eq!(scan_pfs_id(raw.to_str().unwrap()), None);
        assert_eq!(scan_pfs_id(d.path().to_str().unwrap()), None);
        assert_eq!(dirname("/pfs/miku"), "/pfs");
        assert_eq!(dirname("miku"), ".");
        assert_eq!(dirname("/miku"), "/");
        assert_eq!(strtoull16("0x1f"), 31);
        assert_eq!(strtoull16("zz"), 0);
    }
}
