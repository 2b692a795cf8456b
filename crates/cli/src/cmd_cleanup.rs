//! `hammer cleanup [<filesystem> …]` and `hammer abort-cleanup`: the
//! nightly housekeeping of DragonFly's tool. For each filesystem (default:
//! every hammerfs mount) it reads the cleanup configuration from the PFS's
//! metadata (storing the default one the first time, or migrating an
//! old-style `<fs>/snapshots/config` file and that directory's snapshot
//! links into the metadata, as DragonFly does on version 3+), picks the snapshots
//! directory (`/var/hammer/<mount point>`, created on first use with
//! DragonFly's "HAMMER UPGRADE" message; `HAMMERFS_CLEANUP_BASE` replaces
//! `/var/hammer`, for tests), locks the filesystem against a concurrent
//! cleanup, and runs each configured directive whose period has passed:
//! `snapshots` (expire old snapshot links and records, then `snapshot`),
//! `prune` (`prune` of the snapshots directory, or `prune-everything` when
//! snapshots are disabled), `rebalance`, `reblock` (B-tree, inodes, dirs,
//! then data at 95%), `recopy` (the same at 100%), `dedup` (not
//! implemented in hammerfs: said so, not run). Directives run in this
//! process with their output discarded (shown with `-vv`), with `-t
//! <time>` from the config line and `-c <snapdir>/.<name>.cycle` as
//! DragonFly's passes them. The last run of each directive is kept in
//! `<snapdir>/.<directive>.period` (hex seconds), and a period counts in
//! calendar units (`1d` runs once per local day). Output lines follow the
//! original (`cleanup <fs> - handle PFS#0 using <dir>`, then `%20s - run`
//! / `skip` / `disabled`, with one dot per sub-step).

use crate::common::Opts;
use crate::control::{errtext, resolve, Target};
use crate::timefmt::{now_secs, strftime};
use std::io::Write;
use std::path::{Path, PathBuf};

fn base_dir() -> PathBuf {
    std::env::var_os("HAMMERFS_CLEANUP_BASE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/hammer"))
}

const PIDFILE_DIR: &str = "/var/run";

/// `<n>[dhms]` in seconds; `Err` names the text, as the original's
/// "illegal suffix converting %s".
pub fn parse_time(s: &str) -> Result<i64, String> {
    let bad = || format!("illegal suffix converting {s}");
    let suffix = s.chars().last().ok_or_else(bad)?;
    let mul = match suffix {
        'd' => 86400,
        'h' => 3600,
        'm' => 60,
        's' => 1,
        _ => return Err(bad()),
    };
    let n = crate::cmd_prune_strtol(&s[..s.len() - 1]).unwrap_or(0);
    Ok(n * mul)
}

/// Whether a directive with `period` seconds is due, given its last run
/// (`None`: never): times compared in local calendar units.
pub fn due(now: i64, last: Option<i64>, period: i64, force: bool) -> bool {
    if force {
        return true;
    }
    let Some(last) = last else { return true };
    let floor = |t: i64| -> i64 {
        // Local time broken down, then the units the period ignores zeroed.
        let tm = local_tm(t);
        let (mut h, mut m, mut s) = (tm.tm_hour as i64, tm.tm_min as i64, tm.tm_sec as i64);
        if period % 60 == 0 {
            s = 0;
        }
        if period % 3600 == 0 {
            m = 0;
        }
        if period % 86400 == 0 {
            h = 0;
        }
        t - (tm.tm_hour as i64 * 3600 + tm.tm_min as i64 * 60 + tm.tm_sec as i64)
            + h * 3600
            + m * 60
            + s
    };
    floor(now) - floor(last) >= period
}

fn local_tm(t: i64) -> libc::tm {
    let tt: libc::time_t = t as libc::time_t;
    // SAFETY: localtime_r writes into the zeroed tm we own.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&tt, &mut tm);
        tm
    }
}

fn read_period(snapdir: &Path, cmd: &str) -> Option<i64> {
    let s = std::fs::read_to_string(snapdir.join(format!(".{cmd}.period"))).ok()?;
    let s = s.trim();
    i64::from_str_radix(s.trim_start_matches("0x"), 16).ok()
}

fn save_period(snapdir: &Path, cmd: &str, t: i64) {
    let p = snapdir.join(format!(".{cmd}.period"));
    let tmp = snapdir.join(format!(".{cmd}.period.new"));
    if std::fs::write(&tmp, format!("0x{t:08x}\n")).is_ok() {
        let _ = std::fs::rename(&tmp, &p);
    }
}

/// Whether the directory holds `@@` snapshot softlinks.
fn has_snap_links(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten().any(|e| {
                std::fs::read_link(e.path())
                    .map(|t| t.to_string_lossy().contains("@@"))
                    .unwrap_or(false)
            })
        })
        .unwrap_or(false)
}

/// Removes snapshot softlinks and records older than `keep` seconds.
fn expire(t: &Target, snapdir: &Path, keep: i64, any: bool, verbose: bool, out: &mut dyn Write) {
    let now = now_secs();
    if let Ok(rd) = std::fs::read_dir(snapdir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !any && !name.starts_with("snap-") {
                continue;
            }
            let Ok(md) = std::fs::symlink_metadata(e.path()) else {
                continue;
            };
            if !md.file_type().is_symlink() {
                continue;
            }
            let Some(i) = name.find(['-', '.']) else {
                continue;
            };
            let Some(when) = parse_link_date(&name[i + 1..]) else {
                continue;
            };
            if now - when > keep {
                if verbose {
                    let _ = writeln!(out, "    expire {}", e.path().display());
                }
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    if let Ok(list) = crate::cmd_snapshot::list(t) {
        for s in list {
            let ts = (s.ts_us / 1_000_000) as i64;
            if s.tid == 0 || now - ts > keep {
                if verbose {
                    let _ = writeln!(
                        out,
                        "    expire 0x{:016x} {} {}",
                        s.tid,
                        strftime("%Y-%m-%d %H:%M:%S %Z", ts),
                        String::from_utf8_lossy(&s.label)
                    );
                }
                if let Err(e) = t.call(&format!("snap-del 0x{:016x}", s.tid)) {
                    let _ = writeln!(out, "    Ioctl to delete snapshots failed: {}", errtext(&e));
                }
            }
        }
    }
}

/// `YYYYMMDD-HHMM` (local time) at the start of `s`.
fn parse_link_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 8 || !b[..8].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i32> { s.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi) = if b.len() >= 13 && b[8] == b'-' {
        (num(9..11).unwrap_or(0), num(11..13).unwrap_or(0))
    } else {
        (0, 0)
    };
    // SAFETY: mktime reads and normalises the tm we own.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        tm.tm_year = y - 1900;
        tm.tm_mon = mo - 1;
        tm.tm_mday = d;
        tm.tm_hour = h;
        tm.tm_min = mi;
        tm.tm_isdst = -1;
        let t = libc::mktime(&mut tm);
        (t != -1).then_some(t as i64)
    }
}

/// Old-style snapshot links (`snap-YYYYMMDD-HHMM -> …@@0x<tid>`) of
/// `dir` become snapshot records labelled `migrated`; the links stay.
fn migrate_snapshots(t: &Target, dir: &Path, out: &mut dyn Write) {
    let mut batch: Vec<(u64, i64)> = Vec::new();
    let flush = |batch: &mut Vec<(u64, i64)>, out: &mut dyn Write| {
        if batch.is_empty() {
            return;
        }
        let _ = write!(out, " ({} snapshots)", batch.len());
        let mut index = 0;
        for (tid, when) in batch.drain(..) {
            let r = t.call(&format!(
                "snap-add 0x{tid:016x} {} {}",
                when.max(0) as u64 * 1_000_000,
                crate::control::hex(b"migrated")
            ));
            match r {
                Ok(_) => index += 1,
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => index += 1,
                Err(e) => {
                    let _ = write!(
                        out,
                        "    Ioctl to migrate snapshots failed: {}",
                        errtext(&e)
                    );
                    break;
                }
            }
        }
        let _ = writeln!(out, "index {index}");
    };
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let p = e.path();
            let Ok(md) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if !md.file_type().is_symlink() {
                continue;
            }
            let target = std::fs::read_link(&p)
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default();
            let when = name
                .find(['-', '.'])
                .and_then(|i| parse_link_date(&name[i + 1..]));
            let tid = target.rfind('@').and_then(|i| {
                (i > 0 && target.as_bytes()[i - 1] == b'@')
                    .then(|| u64::from_str_radix(target[i + 1..].trim_start_matches("0x"), 16).ok())
                    .flatten()
            });
            match (when, tid) {
                (Some(w), Some(tid)) => {
                    batch.push((tid, w));
                    if batch.len() == 16 {
                        flush(&mut batch, out);
                    }
                }
                _ => {
                    let _ = writeln!(
                        out,
                        "    non-canonical snapshot softlink: {}->{target}",
                        p.display()
                    );
                }
            }
        }
    }
    flush(&mut batch, out);
}

/// Runs a `hammer` directive in this process, its output kept only with
/// -vv; returns its exit status.
fn sub(opts: &Opts, argv: &[String], out: &mut dyn Write) -> i32 {
    if opts.verbose > 0 {
        let _ = writeln!(out, "    hammer {}", argv.join(" "));
    }
    let mut sink = Vec::new();
    let mut err_sink = Vec::new();
    let rc = crate::hammer::main("hammer", argv, &mut sink, &mut err_sink);
    if opts.verbose > 1 {
        let _ = out.write_all(&sink);
        let _ = out.write_all(&err_sink);
    }
    rc
}

fn dot(opts: &Opts, out: &mut dyn Write) {
    if opts.verbose == 0 {
        let _ = write!(out, ".");
        let _ = out.flush();
    }
}

fn s(x: impl ToString) -> String {
    x.to_string()
}

pub fn run(opts: &Opts, args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let paths: Vec<String> = if args.is_empty() {
        crate::control::cleanup_mount_points()
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect()
    } else {
        args.to_vec()
    };
    let mut handled: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    for path in &paths {
        if let Err(m) = one(opts, path, &mut handled, out) {
            let _ = out.flush();
            let _ = writeln!(err, "hammer: {m}");
            return 1;
        }
    }
    let _ = out.flush();
    0
}

fn one(
    opts: &Opts,
    path: &str,
    handled: &mut Vec<(PathBuf, Vec<u8>)>,
    out: &mut dyn Write,
) -> Result<(), String> {
    let _ = write!(out, "cleanup {path:<20} -");
    let _ = out.flush();
    let t = match resolve(path) {
        Ok(t) => t,
        Err((true, e)) => {
            let _ = writeln!(out, " unable to access directory: {}", errtext(&e));
            return Ok(());
        }
        Err((false, e)) => {
            let _ = writeln!(out, " not a HAMMER filesystem: {}", errtext(&e));
            return Ok(());
        }
    };
    // The PFS the path is in: its id, whether it is a slave, its own
    // snapshots directory if it names one, and its unique id (several
    // bind mounts may show one PFS: it is cleaned once).
    let pfs = t.call("pfs-get").ok();
    let pfs_id = pfs.as_ref().and_then(|r| r.num("pfs").ok()).unwrap_or(0);
    let slave = pfs
        .as_ref()
        .and_then(|r| r.num("mirror_flags").ok())
        .is_some_and(|f| f as i32 & hammer_ondisk::HAMMER_PFSD_SLAVE != 0);
    let unique = pfs
        .as_ref()
        .and_then(|r| r.get("pfsd"))
        .and_then(crate::control::unhex)
        .and_then(|b| b.get(56..72).map(<[u8]>::to_vec))
        .unwrap_or_default();
    let key = (t.socket.clone(), unique);
    if handled.contains(&key) {
        let _ = writeln!(out, " PFS#{pfs_id} already handled");
        return Ok(());
    }
    handled.push(key);
    let pfs_dir = pfs
        .as_ref()
        .and_then(|r| r.get("snapshots").and_then(crate::control::unhex))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let olddir = if pfs_dir.starts_with('/') {
        Some(PathBuf::from(&pfs_dir))
    } else if !pfs_dir.is_empty() {
        let _ = writeln!(out, " WARNING: pfs-slave's snapshots dir is not absolute");
        return Ok(());
    } else if slave {
        // A slave has no old-style directory (version 3 and later).
        None
    } else {
        Some(PathBuf::from(format!(
            "{}/snapshots",
            path.trim_end_matches('/')
        )))
    };
    // An old-style `<snapshots>/config` file (before version 3) moves into
    // the metadata, with the directory's snapshot links as records.
    let old_config = olddir.as_ref().map(|d| d.join("config"));
    let migrated = match old_config.as_ref().map(std::fs::read) {
        None => None,
        Some(r) => match r {
            Ok(mut text) => {
                let _ = write!(out, "(migrating) ");
                let _ = out.flush();
                text.truncate(crate::cmd_config::DEFAULT_LIMIT);
                if let Some(i) = text.iter().position(|&c| c == 0) {
                    text.truncate(i);
                }
                migrate_snapshots(&t, olddir.as_deref().unwrap_or(Path::new("/")), out);
                if crate::cmd_config::set(&t, &text).is_err() {
                    let _ = writeln!(out, " cannot init meta-data config!");
                    return Ok(());
                }
                if let Some(c) = &old_config {
                    let _ = std::fs::remove_file(c);
                }
                Some(text)
            }
            Err(_) => None,
        },
    };
    let config = match migrated
        .map(|m| Ok(Some(m)))
        .unwrap_or_else(|| crate::cmd_config::get(&t))
    {
        Ok(Some(c)) => c,
        Ok(None) => {
            let text = if ["/tmp", "/var/tmp", "/usr/obj"].contains(&path) {
                crate::cmd_config::DEFAULT_CONFIG_NOSNAP
            } else {
                crate::cmd_config::DEFAULT_CONFIG
            };
            if crate::cmd_config::set(&t, text.as_bytes()).is_err() {
                let _ = writeln!(out, " cannot init meta-data config!");
                return Ok(());
            }
            text.as_bytes().to_vec()
        }
        Err(e) => {
            let _ = writeln!(out, " not a HAMMER filesystem: {}", errtext(&e));
            return Ok(());
        }
    };
    // The snapshots directory: the PFS's own setting when absolute, else
    // /var/hammer/<path>.
    let snapdir = if pfs_dir.starts_with('/') {
        PathBuf::from(&pfs_dir)
    } else {
        if !path.starts_with('/') {
            let _ = writeln!(out, " path must start with '/'");
            return Ok(());
        }
        let rel = path.trim_start_matches('/');
        let newdir = base_dir().join(if rel.is_empty() { "root" } else { rel });
        if !newdir.exists() {
            match &olddir {
                // A slave's directory appears without a word.
                None => {
                    let _ = std::fs::create_dir_all(&newdir);
                }
                Some(olddir) if olddir.is_dir() => {
                    let _ = writeln!(out, " HAMMER UPGRADE: Moving snapshots");
                    let _ = writeln!(
                        out,
                        "\tMoving snapshots from {} to {}",
                        olddir.display(),
                        newdir.display()
                    );
                    let ok = std::fs::create_dir_all(&newdir).is_ok()
                        && std::process::Command::new("cp")
                            .arg("-a")
                            .arg(format!("{}/.", olddir.display()))
                            .arg(&newdir)
                            .status()
                            .map(|s| s.success())
                            .unwrap_or(false);
                    if !ok {
                        let _ = writeln!(out, "Unable to move snapshots directory!");
                        let _ = writeln!(out, "Please fix this critical error.");
                        let _ = writeln!(out, "Aborting cleanup of {path}");
                        return Ok(());
                    }
                    let _ = std::fs::remove_dir_all(olddir);
                }
                Some(_) => {
                    let _ = writeln!(out, " HAMMER UPGRADE: Creating snapshots");
                    let _ = writeln!(out, "\tCreating snapshots in {}", newdir.display());
                    let _ = std::fs::create_dir_all(&newdir);
                }
            }
        }
        newdir
    };
    // One cleanup per filesystem at a time.
    let lock = std::fs::File::open(path).map_err(|e| format!("{path}: {}", errtext(&e)))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe {
        libc::flock(
            std::os::fd::AsRawFd::as_raw_fd(&lock),
            libc::LOCK_EX | libc::LOCK_NB,
        )
    } != 0
    {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            let _ = writeln!(out, " PFS#{pfs_id} locked by other process");
        } else {
            let _ = writeln!(out, " can not lock {path}: {}", errtext(&e));
        }
        return Ok(());
    }
    let _ = writeln!(out, " handle PFS#{pfs_id} using {}", snapdir.display());
    let pidfile = PathBuf::from(format!(
        "{PIDFILE_DIR}/hammer.cleanup.{}",
        std::process::id()
    ));
    let pid = std::fs::File::create(&pidfile).ok();
    if let Some(f) = &pid {
        // SAFETY: flock on a descriptor we own; abort-cleanup tests it.
        unsafe {
            libc::flock(
                std::os::fd::AsRawFd::as_raw_fd(f),
                libc::LOCK_EX | libc::LOCK_NB,
            )
        };
    }
    let r = directives(opts, path, &t, &snapdir, &config, out);
    drop(pid);
    let _ = std::fs::remove_file(&pidfile);
    drop(lock);
    r
}

fn directives(
    opts: &Opts,
    path: &str,
    t: &Target,
    snapdir: &Path,
    config: &[u8],
    out: &mut dyn Write,
) -> Result<(), String> {
    let text = String::from_utf8_lossy(config).into_owned();
    let mut snapshots_disabled = false;
    let mut prune_warning = false;
    let sd = snapdir.to_string_lossy().into_owned();
    // Lines without a final newline are ignored, as the original does.
    let complete = match text.rfind('\n') {
        Some(i) => &text[..i + 1],
        None => "",
    };
    for line in complete.lines() {
        let toks: Vec<&str> = line
            .split([' ', '\t', '\r'])
            .filter(|w| !w.is_empty())
            .collect();
        let Some(&cmd) = toks.first() else { continue };
        if cmd.starts_with('#') {
            continue;
        }
        let arg1 = match toks.get(1) {
            Some(a) => parse_time(a)?,
            None => 0,
        };
        let arg2 = match toks.get(2) {
            Some(a) => parse_time(a)?,
            None => 0,
        };
        let any = toks.get(3) == Some(&"any");
        let _ = write!(out, "{cmd:>20} - ");
        let _ = out.flush();
        let now = now_secs();
        let is_due = due(now, read_period(snapdir, cmd), arg1, opts.force);
        let ok = match cmd {
            "snapshots" => {
                if arg1 == 0 {
                    let present = has_snap_links(snapdir)
                        || crate::cmd_snapshot::list(t)
                            .map(|l| !l.is_empty())
                            .unwrap_or(false);
                    if arg2 != 0 && present {
                        let _ = writeln!(out, "only removing old snapshots");
                        prune_warning = true;
                        expire(t, snapdir, arg2, any, opts.verbose > 0, out);
                    } else {
                        let _ = writeln!(out, "disabled");
                        snapshots_disabled = true;
                    }
                    true
                } else if is_due {
                    let _ = writeln!(out, "run");
                    expire(t, snapdir, arg2, any, opts.verbose > 0, out);
                    // A failed snapshot is retried on the next run.
                    sub(opts, &[s("snapshot"), s(path), sd.clone()], out) == 0
                } else {
                    let _ = writeln!(out, "skip");
                    false
                }
            }
            _ if arg1 == 0 => {
                let _ = writeln!(out, "disabled");
                false
            }
            "prune" if is_due => {
                if prune_warning {
                    let _ = writeln!(
                        out,
                        "run - WARNING snapshot softlinks present but snapshots disabled"
                    );
                } else {
                    let _ = writeln!(out, "run");
                }
                if snapshots_disabled {
                    let _ = sub(opts, &[s("prune-everything"), s(path)], out);
                } else {
                    let target = if has_snap_links(snapdir) {
                        sd.clone()
                    } else {
                        s(path)
                    };
                    let mut a = Vec::new();
                    if arg2 != 0 {
                        a.extend([s("-c"), format!("{sd}/.prune.cycle"), s("-t"), s(arg2)]);
                    }
                    a.extend([s("prune"), target]);
                    let _ = sub(opts, &a, out);
                }
                true
            }
            "rebalance" if is_due => {
                let _ = write!(out, "run");
                if opts.verbose > 0 {
                    let _ = writeln!(out);
                }
                dot(opts, out);
                sub(
                    opts,
                    &[
                        s("-c"),
                        format!("{sd}/.rebalance.cycle"),
                        s("-t"),
                        s(arg2),
                        s("rebalance"),
                        s(path),
                    ],
                    out,
                );
                dot(opts, out);
                if opts.verbose == 0 {
                    let _ = writeln!(out);
                }
                true
            }
            "reblock" | "recopy" if is_due => {
                let _ = write!(out, "run");
                if opts.verbose > 0 {
                    let _ = writeln!(out);
                }
                let steps = [
                    ("1", "reblock-btree"),
                    ("2", "reblock-inodes"),
                    ("4", "reblock-dirs"),
                    ("3", "reblock-data"),
                ];
                for (n, d) in steps {
                    dot(opts, out);
                    let mut a = vec![
                        s("-c"),
                        format!("{sd}/.{cmd}-{n}.cycle"),
                        s("-t"),
                        s(arg2),
                        s(d),
                        s(path),
                    ];
                    if cmd == "reblock" && d == "reblock-data" {
                        a.push(s("95"));
                    }
                    let _ = sub(opts, &a, out);
                }
                if opts.verbose == 0 {
                    let _ = writeln!(out);
                }
                true
            }
            "dedup" if is_due => {
                let _ = writeln!(out, "skipped: dedup is not implemented in hammerfs");
                false
            }
            "prune" | "rebalance" | "reblock" | "recopy" | "dedup" => {
                let _ = writeln!(out, "skip");
                false
            }
            _ => {
                let _ = writeln!(out, "unknown directive");
                false
            }
        };
        if ok {
            save_period(snapdir, cmd, now);
        }
    }
    Ok(())
}

/// `abort-cleanup`: stops running cleanups (their pid files are locked).
pub fn abort(out: &mut dyn Write) -> i32 {
    let Ok(rd) = std::fs::read_dir(PIDFILE_DIR) else {
        return 0;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("hammer.cleanup.")
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if let Ok(f) = std::fs::File::open(e.path()) {
            // SAFETY: flock on a descriptor we own.
            let locked = unsafe {
                libc::flock(
                    std::os::fd::AsRawFd::as_raw_fd(&f),
                    libc::LOCK_EX | libc::LOCK_NB,
                )
            } != 0;
            if locked {
                // SAFETY: kill with a pid read from the file name.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
                let _ = writeln!(out, "Terminated cleanup process {pid}");
            }
        }
        let _ = std::fs::remove_file(e.path());
    }
    let _ = out.flush();
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_periods() {
        assert_eq!(parse_time("1d"), Ok(86400));
        assert_eq!(parse_time("5m"), Ok(300));
        assert_eq!(parse_time("30d"), Ok(30 * 86400));
        assert_eq!(parse_time("0d"), Ok(0));
        assert!(parse_time("5").is_err());
        std::env::set_var("TZ", "UTC");
        // 1d: once per calendar day.
        let day = 86400 * 20000;
        assert!(!due(day + 3600 * 23, Some(day + 60), 86400, false));
        assert!(due(day + 86400 + 10, Some(day + 3600 * 23), 86400, false));
        assert!(due(day, None, 86400, false));
        assert!(due(day, Some(day), 86400, true));
        assert!(parse_link_date("20121126-1855").is_some());
        assert!(parse_link_date("x").is_none());
    }
}
