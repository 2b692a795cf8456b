//! `hammer snap|snaplo|snapq <path> [<note>]`, `snaprm`, `snapls` and the
//! old `snapshot [<filesystem>] <snapshot-dir> [<note>]`: snapshots as
//! DragonFly's tool makes them. A snapshot is a flush (`synctid`) whose
//! TID gets a snapshot record in the PFS's metadata (`Fs::add_snapshot`,
//! over the control channel) and, for `snap`/`snaplo`/`snapshot`, a
//! softlink `snap-YYYYMMDD-HHMM` pointing at the `@@0x<tid>` path of the
//! PFS root (`snap`, the mount's directory) or of the directory itself
//! (`snaplo`). Messages, exit codes (2 for failures, 1 for usage) and the
//! link texts follow DragonFly's tool, including its quirks (a link name
//! reused within the same minute is replaced; a filesystem mounted on `/`
//! gives `//@@0x…`). Records are listed in TID order by `snapls` with
//! times in the local zone.

use crate::control::{errtext, hex, os_error, resolve, syncfs, unhex, Target};
use crate::timefmt::{now_secs, strftime};
use std::io::Write;
use std::path::Path;

const USAGE: &str = "hammer snap <path> [<note>]\t\tcreate snapshot & link, points to\n\
\t\t\t\t\tbase of PFS mount\n\
hammer snaplo <path> [<note>]\t\tcreate snapshot & link, points to\n\
\t\t\t\t\ttarget dir\n\
hammer snapq <dir> [<note>]\t\tcreate snapshot, output path to stdout\n\
hammer snaprm <path> ...\t\tdelete snapshots; filesystem is CWD\n\
hammer snaprm <transid> ...\t\tdelete snapshots\n\
hammer snaprm <filesystem> <transid> ...\tdelete snapshots\n\
hammer snapls [<path> ...]\t\tlist available snapshots\n\
\n\
NOTE: Snapshots are created in filesystem meta-data, any directory\n\
\x20     in a HAMMER filesystem or PFS may be specified.  If the path\n\
\x20     specified does not exist this function will also create a\n\
\x20     softlink.\n\
\n\
\x20     When deleting snapshots transaction ids may be directly specified\n\
\x20     or file paths to snapshot softlinks may be specified.  If a\n\
\x20     softlink is specified the softlink will also be deleted.\n\
\n\
NOTE: The old 'hammer snapshot [<filesystem>] <snapshot-dir>' form\n\
\x20     is still accepted but is a deprecated form.  This form will\n\
\x20     work for older hammer versions.  The new forms only work for\n\
\x20     HAMMER version 3 or later filesystems.  HAMMER can be upgraded\n\
\x20     to version 3 in-place.\n";

/// How a directive ends: exit status after the message it printed.
struct Exit(i32);

type Res<T> = Result<T, Exit>;

fn usage(err: &mut dyn Write) -> Exit {
    let _ = err.write_all(USAGE.as_bytes());
    Exit(1)
}

/// `err(3)`: the message, then the error's text.
fn fail_io(err: &mut dyn Write, code: i32, msg: &str, e: &std::io::Error) -> Exit {
    let _ = writeln!(err, "hammer: {msg}: {}", errtext(e));
    Exit(code)
}

/// `errx(3)`: the message alone.
fn fail(err: &mut dyn Write, code: i32, msg: &str) -> Exit {
    let _ = writeln!(err, "hammer: {msg}");
    Exit(code)
}

/// The directory part of a path as DragonFly's tool takes it: what comes
/// before the last `/` (slashes before it trimmed), or `.` when that is
/// nothing.
pub fn dirpart(path: &str) -> String {
    match path.rfind('/') {
        None => ".".into(),
        Some(i) => {
            let d = path[..i].trim_end_matches('/');
            if d.is_empty() {
                ".".into()
            } else {
                d.to_string()
            }
        }
    }
}

fn finish(r: Res<()>, out: &mut dyn Write) -> i32 {
    let _ = out.flush();
    match r {
        Ok(()) => 0,
        Err(Exit(c)) => c,
    }
}

/// The label as the record keeps it (63 bytes at most).
fn label_of(note: Option<&String>) -> Vec<u8> {
    let mut l = note.map(|s| s.as_bytes().to_vec()).unwrap_or_default();
    l.truncate(hammer_engine::fs::SNAPSHOT_LABEL_MAX);
    l
}

/// Flushes the filesystem of `t` and returns the TID naming that state.
fn synctid(t: &Target) -> std::io::Result<u64> {
    syncfs(&t.file)?;
    let r = t.call("synctid")?;
    r.num("tid")
        .map(|n| n as u64)
        .map_err(|_| os_error(libc::EPROTO))
}

/// Adds the snapshot record; an existing one for the TID is fine.
fn add_record(t: &Target, tid: u64, label: &[u8]) -> std::io::Result<()> {
    let ts = now_secs() as u64 * 1_000_000;
    match t.call(&format!("snap-add 0x{tid:016x} {ts} {}", hex(label))) {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
        r => r.map(|_| ()),
    }
}

/// Replaces whatever is at `link` with a softlink to `target`.
fn make_link(target: &str, link: &str, err: &mut dyn Write) -> Res<()> {
    let _ = std::fs::remove_file(link);
    std::os::unix::fs::symlink(target, link)
        .map_err(|e| fail_io(err, 2, &format!("Unable to create symlink {link}"), &e))
}

#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    Snap,
    SnapLo,
    SnapQ,
}

/// `snap`, `snaplo`, `snapq`.
pub fn snap(kind: Kind, args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let r = (|| {
        if args.is_empty() || args.len() > 2 {
            return Err(usage(err));
        }
        let path = &args[0];
        let (dirpath, tsym) = match std::fs::metadata(path) {
            Err(_) => (dirpart(path), path.clone()),
            Ok(m) if m.is_dir() => {
                let name = strftime("snap-%Y%m%d-%H%M", now_secs());
                (path.clone(), format!("{path}/{name}"))
            }
            Ok(_) => {
                return Err(fail(
                    err,
                    2,
                    &format!("hammer snap: File {path} exists and is not a directory"),
                ))
            }
        };
        let t = match resolve(&dirpath) {
            Ok(t) => t,
            Err((true, e)) => {
                return Err(fail_io(
                    err,
                    2,
                    &format!("hammer snap: Cannot open directory {dirpath}"),
                    &e,
                ))
            }
            Err((false, e)) => return Err(fail_io(err, 2, "Unable to create snapshot", &e)),
        };
        let tid = synctid(&t).map_err(|e| {
            fail_io(
                err,
                2,
                &format!("hammer snap: Synctid {dirpath} failed"),
                &e,
            )
        })?;
        let dotted = dirpath == "." || dirpath == "..";
        let sep = if dotted { "/" } else { "" };
        if kind == Kind::SnapQ {
            let _ = writeln!(out, "{dirpath}{sep}@@0x{tid:016x}");
        }
        let fsym = match kind {
            Kind::Snap => {
                let m = t.base.to_string_lossy().into_owned();
                format!("{m}/@@0x{tid:016x}")
            }
            _ => format!("{dirpath}{sep}@@0x{tid:016x}"),
        };
        add_record(&t, tid, &label_of(args.get(1)))
            .map_err(|e| fail_io(err, 2, "Unable to create snapshot", &e))?;
        if kind != Kind::SnapQ {
            make_link(&fsym, &tsym, err)?;
        }
        Ok(())
    })();
    finish(r, out)
}

/// One snapshot as the daemon lists it.
pub struct SnapInfo {
    pub tid: u64,
    pub ts_us: u64,
    pub label: Vec<u8>,
}

/// The snapshot records of the filesystem holding `t`, in TID order.
pub fn list(t: &Target) -> std::io::Result<Vec<SnapInfo>> {
    list_pfs(t).map(|(_, v)| v)
}

/// [`list`], and the id of the PFS they belong to.
pub fn list_pfs(t: &Target) -> std::io::Result<(u32, Vec<SnapInfo>)> {
    let r = t.call("snap-list")?;
    let pfs = r.num("pfs").unwrap_or(0) as u32;
    let mut v = Vec::new();
    for s in r.all("snap") {
        let mut it = s.split(' ');
        let tid = it
            .next()
            .and_then(|x| u64::from_str_radix(x.trim_start_matches("0x"), 16).ok());
        let ts = it.next().and_then(|x| x.parse::<u64>().ok());
        let label = unhex(it.next().unwrap_or(""));
        if let (Some(tid), Some(ts_us), Some(label)) = (tid, ts, label) {
            v.push(SnapInfo { tid, ts_us, label });
        }
    }
    Ok((pfs, v))
}

/// `snapls [<path> …]`; with `--json` one JSON array of
/// `{"path", "pfs", "snapshots": [{"tid", "time", "timestamp", "note"}]}`
/// (`note` empty rather than `-`).
pub fn snapls(args: &[String], json: bool, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let dot = [".".to_string()];
    let paths = if args.is_empty() { &dot[..] } else { args };
    let mut docs = Vec::new();
    let r = (|| {
        for path in paths {
            let t = match resolve(path) {
                Ok(t) => t,
                Err((true, e)) => {
                    return Err(fail_io(
                        err,
                        2,
                        &format!("hammer snapls: cannot open {path}"),
                        &e,
                    ))
                }
                Err((false, e)) => {
                    return Err(fail_io(
                        err,
                        2,
                        &format!("hammer snapls: cannot retrieve PFS info on {path}"),
                        &e,
                    ))
                }
            };
            let (pfs, snaps) = list_pfs(&t).map_err(|e| {
                fail_io(
                    err,
                    2,
                    &format!("hammer snapls: {path}: not HAMMER fs or version < 3"),
                    &e,
                )
            })?;
            if json {
                docs.push(serde_json::json!({
                    "path": path,
                    "pfs": pfs,
                    "snapshots": snaps.iter().map(|s| serde_json::json!({
                        "tid": format!("0x{:016x}", s.tid),
                        "time": s.ts_us / 1_000_000,
                        "timestamp": strftime("%Y-%m-%d %H:%M:%S %Z", (s.ts_us / 1_000_000) as i64),
                        "note": String::from_utf8_lossy(&s.label),
                    })).collect::<Vec<_>>(),
                }));
                continue;
            }
            let _ = writeln!(out, "Snapshots on {path}\tPFS#{pfs}");
            let _ = out.write_all(b"Transaction ID\t\tTimestamp\t\tNote\n");
            for s in snaps {
                let when = strftime("%Y-%m-%d %H:%M:%S %Z", (s.ts_us / 1_000_000) as i64);
                let note = if s.label.is_empty() {
                    "-".to_string()
                } else {
                    String::from_utf8_lossy(&s.label).into_owned()
                };
                let _ = writeln!(out, "0x{:016x}\t{when}\t{note}", s.tid);
            }
        }
        Ok(())
    })();
    if json && r.is_ok() {
        let _ = writeln!(out, "{}", serde_json::Value::Array(docs));
    }
    finish(r, out)
}

/// A whole hex number (`0x` optional), as `strtoull(…, 16)` with nothing
/// left over.
fn parse_tid(s: &str) -> Option<u64> {
    let h = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if h.is_empty() {
        return None;
    }
    u64::from_str_radix(h, 16).ok()
}

/// The TID a snapshot softlink's text names (after its last `@@`).
fn link_tid(text: &str) -> Option<u64> {
    let i = text.rfind('@')?;
    if i == 0 || text.as_bytes()[i - 1] != b'@' || i + 1 >= text.len() {
        return None;
    }
    parse_tid(&text[i + 1..])
}

/// The directory a softlink's target lives in (its filesystem).
fn link_fs(link: &str, target: &str) -> String {
    if target.starts_with('/') {
        dirpart(target)
    } else {
        dirpart(&format!("{}/{target}", dirpart(link)))
    }
}

fn delete_tid(t: &Target, tid: u64, err: &mut dyn Write) -> Res<()> {
    match t.call(&format!("snap-del 0x{tid:016x}")) {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            let _ = writeln!(
                err,
                "Warning: hammer snaprm 0x{tid:016x}: meta-data not found"
            );
            Ok(())
        }
        // Anything else failed the request itself (not HAMMER, not
        // allowed, I/O): stop before a softlink is removed.
        Err(e) => Err(fail_io(err, 2, &format!("hammer snaprm 0x{tid:016x}"), &e)),
    }
}

/// `snaprm <path>…`, `snaprm <transid>…`, `snaprm <filesystem> <transid>…`.
pub fn snaprm(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    #[derive(PartialEq)]
    enum Mode {
        Unset,
        Tid,
        Path,
    }
    let r = (|| {
        if args.is_empty() {
            return Err(usage(err));
        }
        let mut mode = Mode::Unset;
        let mut fs: Option<Target> = None;
        let open_fs = |dir: &str, err: &mut dyn Write| -> Res<Target> {
            resolve(dir).map_err(|(_, e)| {
                fail_io(err, 2, &format!("hammer snaprm: cannot open dir {dir}"), &e)
            })
        };
        for (i, a) in args.iter().enumerate() {
            match std::fs::symlink_metadata(a) {
                Err(_) => {
                    let Some(tid) = parse_tid(a) else {
                        return Err(fail(
                            err,
                            2,
                            &format!("hammer snaprm: not a file or tid: {a}"),
                        ));
                    };
                    if mode == Mode::Path {
                        return Err(usage(err));
                    }
                    mode = Mode::Tid;
                    if fs.is_none() {
                        fs = Some(open_fs(".", err)?);
                    }
                    delete_tid(fs.as_ref().expect("opened"), tid, err)?;
                }
                Ok(m) if m.is_dir() => {
                    if i != 0 || args.len() < 2 {
                        return Err(usage(err));
                    }
                    fs = Some(open_fs(a, err)?);
                    mode = Mode::Tid;
                }
                Ok(m) if m.file_type().is_symlink() => {
                    let target = std::fs::read_link(a).map_err(|e| {
                        fail_io(
                            err,
                            2,
                            &format!("hammer snaprm: cannot read softlink: {a}"),
                            &e,
                        )
                    })?;
                    let target = target.to_string_lossy().into_owned();
                    let dir = link_fs(a, &target);
                    fs = Some(open_fs(&dir, err)?);
                    if i == 0 && args.len() > 1 {
                        let next = &args[1];
                        if std::fs::symlink_metadata(next).is_err() && parse_tid(next).is_some() {
                            mode = Mode::Tid;
                            continue;
                        }
                        mode = Mode::Path;
                    } else if i != 0 {
                        if mode == Mode::Tid {
                            return Err(usage(err));
                        }
                        mode = Mode::Path;
                    }
                    if let Some(tid) = link_tid(&target) {
                        delete_tid(fs.as_ref().expect("opened"), tid, err)?;
                        let _ = std::fs::remove_file(a);
                    }
                }
                Ok(_) => {
                    return Err(fail(
                        err,
                        2,
                        &format!("hammer snaprm: not directory or snapshot softlink: {a}"),
                    ))
                }
            }
        }
        Ok(())
    })();
    finish(r, out)
}

/// The old `snapshot [<filesystem>] <snapshot-dir> [<note>]`.
pub fn snapshot(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let r = (|| {
        let (fs_arg, dir, note) = match args {
            [d] => (None, d.clone(), None),
            [f, d] => (Some(f.clone()), d.clone(), None),
            [f, d, n] => (Some(f.clone()), d.clone(), Some(n)),
            _ => return Err(usage(err)),
        };
        let mount_of = |p: &str| -> Option<String> {
            let canon = std::fs::canonicalize(p).ok()?;
            if let Ok(t) = resolve(p) {
                return Some(t.base.to_string_lossy().into_owned());
            }
            let all = crate::control::mounts();
            let m = all
                .iter()
                .filter(|m| canon.starts_with(&m.mount_point))
                .max_by_key(|m| m.mount_point.as_os_str().len())?;
            Some(m.mount_point.to_string_lossy().into_owned())
        };
        let (fs, format) = match std::fs::metadata(&dir) {
            Ok(m) => {
                if !m.is_dir() {
                    return Err(fail_io(
                        err,
                        2,
                        &format!("File {dir} already exists"),
                        &os_error(libc::EEXIST),
                    ));
                }
                let fs = match fs_arg {
                    Some(f) => f,
                    None => mount_of(&dir).ok_or_else(|| {
                        fail_io(
                            err,
                            2,
                            &format!("Unable to determine filesystem of {dir}"),
                            &os_error(libc::ENOENT),
                        )
                    })?,
                };
                let sep = if dir.ends_with('/') { "" } else { "/" };
                (fs, format!("{dir}{sep}snap-%Y%m%d-%H%M"))
            }
            Err(_) => {
                let fs = match fs_arg {
                    Some(f) => f,
                    None => {
                        let parent = dir.rfind('/').map(|i| &dir[..i]);
                        let ok = parent
                            .filter(|p| Path::new(if p.is_empty() { "/" } else { p }).is_dir());
                        let Some(p) = ok else {
                            return Err(fail_io(
                                err,
                                2,
                                &format!("Unable to determine softlink dir {dir}"),
                                &os_error(libc::ENOENT),
                            ));
                        };
                        mount_of(if p.is_empty() { "/" } else { p }).ok_or_else(|| {
                            fail_io(
                                err,
                                2,
                                &format!("Unable to determine softlink dir {dir}"),
                                &os_error(libc::ENOENT),
                            )
                        })?
                    }
                };
                (fs, dir.clone())
            }
        };
        let t =
            resolve(&fs).map_err(|(_, e)| fail_io(err, 2, &format!("Unable to open {fs}"), &e))?;
        let tid = synctid(&t).map_err(|e| fail_io(err, 2, &format!("Synctid {fs} failed"), &e))?;
        let link = strftime(&format, now_secs());
        add_record(&t, tid, &label_of(note))
            .map_err(|e| fail_io(err, 2, "Unable to create snapshot", &e))?;
        make_link(&format!("{fs}/@@0x{tid:016x}"), &link, err)?;
        let _ = writeln!(out, "{link}");
        Ok(())
    })();
    finish(r, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirparts_and_links() {
        assert_eq!(dirpart("/miku/hachune"), "/miku");
        assert_eq!(dirpart("/foo"), ".");
        assert_eq!(dirpart("foo"), ".");
        assert_eq!(dirpart("a//b"), "a");
        assert_eq!(dirpart("//@@0x1"), ".");
        assert_eq!(link_tid("/miku/@@0x000000010b40f540"), Some(0x10b40f540));
        assert_eq!(link_tid("/miku/@0x1"), None);
        assert_eq!(link_tid("/miku@@"), None);
        assert_eq!(link_fs("/s/link", "/pfs/miku/@@0x1"), "/pfs/miku");
        assert_eq!(link_fs("/s/link", "../m/@@0x1"), "/s/../m");
        assert_eq!(parse_tid("0x10"), Some(16));
        assert_eq!(parse_tid("10g"), None);
    }
}
