//! `mount_hammer [-f] [-o options] [-T 0x<tid>] vol[:vol…] dir`: opens the
//! volumes (running crash recovery), mounts them through FUSE, and serves
//! the mount until it is unmounted. It daemonizes once the mount is ready,
//! so the command exits 0 only when the mount works; `-f` stays in the
//! foreground. SIGTERM, SIGINT and SIGHUP sync and unmount. At the end the
//! last changes are synced and the volumes' lock is released after the
//! last write. Options: DragonFly's `ro`, `rw`, `nohistory` and `-T` (a
//! read-only view as of a TID), and for Linux `allow_other` and
//! `default_permissions` (both the default when root mounts),
//! `flush_interval=SECONDS` (periodic sync, default 5, 0 for none),
//! `writeback` (kernel writeback caching: faster random writes) and the
//! generic `atime`, `noatime`, `dev`, `nodev`, `suid`, `nosuid`, `exec`,
//! `noexec`, and DragonFly's `master=<id>` (multi-master TIDs), `nomirror`
//! (no `mirror_tid` propagation), plus `cache=<size>` (the one budget of
//! metadata buffers, data records and data waiting for the flush; default
//! `hammer_engine::volume::default_cache_bytes`), `readahead=<size>` (the
//! kernel's readahead window for the mount, default 1 MiB, 0 for the
//! kernel's own), `threads=N` (FUSE request threads, default 2) and the atime modes `relatime` (default), `atime`/`strictatime`, `noatime`
//! (access times are written in place, as DragonFly writes them).
//! `mount_hammer -u -o ro|rw|nohistory|… dir` changes a live mount. Once serving, the daemon answers `hammer`'s directives on
//! the mount over the control channel (`control_server`); its socket goes
//! away with the mount.

use crate::{CliError, CliResult};
use fuser::{Config, MountOption, Session, SessionACL};
use hammer_engine::fs::{AtimeMode, Fs};
use hammer_engine::{OpenOptions, VolumeSet};
use hammer_fuse::{spawn_flusher, FsHandle, HammerFuse, MountView};
use hammer_ondisk::{HAMMER_MAX_TID, HAMMER_OBJID_ROOT};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// FUSE request threads without `-o threads=`.
const DEFAULT_THREADS: usize = 2;

pub const USAGE: &str =
    "usage: mount_hammer [-f] [-o options] [-T transaction-id] special[:special]* node
       mount_hammer -u [-o options] node
";

/// A parsed command line.
#[derive(Debug, Clone, PartialEq)]
pub struct MountArgs {
    /// `-u` (or `-o update`): change the options of the mount at the
    /// mount point instead of mounting.
    pub update: bool,
    /// The `-o` options as given (what `-u` sends to the mount).
    pub options: Vec<String>,
    pub foreground: bool,
    pub read_only: bool,
    pub nohistory: bool,
    pub allow_other: bool,
    pub default_permissions: bool,
    pub asof: u64,
    pub flush_interval: Duration,
    /// `-o writeback`: kernel writeback caching.
    pub writeback: bool,
    /// When reads update access times (`noatime`, `relatime` — the
    /// default — or `atime`/`strictatime`).
    pub atime: AtimeMode,
    /// `-o master=<id>`: the master id (0–15, 0 by default); `None` is
    /// no-mirror mode (`master=-1` or `nomirror`).
    pub master_id: Option<u8>,
    /// Warnings to print before mounting (DragonFly's `test_master_id`).
    pub warnings: Vec<String>,
    /// `-o threads=N`: threads serving FUSE requests (each with its own
    /// cloned `/dev/fuse` descriptor). The engine is one lock; what runs
    /// in parallel is the copying of requests and replies to and from the
    /// kernel, and one thread's wait for the next request while another
    /// works.
    pub threads: Option<usize>,
    /// `-o cache=<size>[k|m|g]`: the cache budget in bytes (metadata buffers take up to half, file data waiting for the flush up to half, clean file data records the rest).
    pub cache_bytes: Option<usize>,
    /// `-o readahead=<size>[k|m]`: the kernel's readahead window for this
    /// mount (the FUSE bdi's `read_ahead_kb`), 0 to leave the kernel's
    /// default (128 KiB). Default 1 MiB: sequential reads then arrive as
    /// 1 MiB requests, sixteen 64 KiB records each, instead of two.
    pub readahead_kib: u64,
    /// Generic kernel flags passed through.
    pub flags: Vec<MountOption>,
    pub volumes: Vec<String>,
    pub mountpoint: PathBuf,
}

fn parse_tid(s: &str) -> CliResult<u64> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|_| CliError(format!("-T {s}: not a transaction id")))
}

/// Parses the arguments after the program name, getopt style. `root` says
/// whether the caller is root (then `allow_other` and
/// `default_permissions` are on by default). `Ok(None)` asks for the usage.
pub fn parse_args(args: &[String], root: bool) -> CliResult<Option<MountArgs>> {
    let mut m = MountArgs {
        update: false,
        options: Vec::new(),
        foreground: false,
        read_only: false,
        nohistory: false,
        allow_other: root,
        default_permissions: root,
        asof: HAMMER_MAX_TID,
        flush_interval: Duration::from_secs(5),
        writeback: false,
        atime: AtimeMode::Relative,
        master_id: Some(0),
        warnings: Vec::new(),
        cache_bytes: None,
        threads: None,
        readahead_kib: DEFAULT_READAHEAD_KIB,
        flags: Vec::new(),
        volumes: Vec::new(),
        mountpoint: PathBuf::new(),
    };
    let mut opts = Vec::new();
    let mut rest = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            rest.extend(args[i..].iter().cloned());
            break;
        }
        if !a.starts_with('-') || a == "-" {
            rest.push(a.clone());
            continue;
        }
        for (k, c) in a[1..].char_indices() {
            match c {
                'f' => m.foreground = true,
                'u' => m.update = true,
                'o' | 'T' => {
                    let inline = &a[1 + k + 1..];
                    let val = if !inline.is_empty() {
                        inline.to_string()
                    } else if i < args.len() {
                        i += 1;
                        args[i - 1].clone()
                    } else {
                        return Ok(None);
                    };
                    if c == 'o' {
                        opts.push(val);
                    } else {
                        m.asof = parse_tid(&val)?;
                    }
                    break;
                }
                _ => return Ok(None),
            }
        }
    }
    for o in opts.iter().flat_map(|o| o.split(',')) {
        if !o.is_empty() && o != "update" {
            m.options.push(o.to_string());
        }
        match o {
            "" | "rw" => {}
            "update" => m.update = true,
            "ro" => m.read_only = true,
            "nohistory" => m.nohistory = true,
            "writeback" => m.writeback = true,
            "allow_other" => m.allow_other = true,
            "default_permissions" => m.default_permissions = true,
            "atime" | "strictatime" => {
                m.atime = AtimeMode::Always;
                m.flags.push(MountOption::Atime);
            }
            "relatime" => m.atime = AtimeMode::Relative,
            "noatime" => {
                m.atime = AtimeMode::Never;
                m.flags.push(MountOption::NoAtime);
            }
            "nomirror" => m.master_id = None,
            "mirror" => m.master_id = Some(0),
            "dev" => m.flags.push(MountOption::Dev),
            "nodev" => m.flags.push(MountOption::NoDev),
            "suid" => m.flags.push(MountOption::Suid),
            "nosuid" => m.flags.push(MountOption::NoSuid),
            "exec" => m.flags.push(MountOption::Exec),
            "noexec" => m.flags.push(MountOption::NoExec),
            _ => {
                if let Some(v) = o.strip_prefix("flush_interval=") {
                    let secs: u64 = v
                        .parse()
                        .map_err(|_| CliError(format!("-o {o}: not a number of seconds")))?;
                    m.flush_interval = Duration::from_secs(secs);
                } else if let Some(v) = o.strip_prefix("master=") {
                    // As DragonFly's mount_hammer says it, then refuses
                    // what its kernel would refuse.
                    m.master_id = match v.parse::<i32>() {
                        Ok(0) => {
                            m.warnings.push(
                                "A master id of 0 is the default, explicit settings should use 1-15"
                                    .into(),
                            );
                            Some(0)
                        }
                        Ok(-1) => {
                            m.warnings.push(
                                "A master id of -1 is nomirror mode, equivalent to -o nomirror option"
                                    .into(),
                            );
                            None
                        }
                        Ok(id @ 1..=15) => Some(id as u8),
                        _ => {
                            return Err(CliError(format!(
                                "-o {o}: A master id of {v} is not supported (use 0-15, or -1 for nomirror)"
                            )))
                        }
                    };
                } else if let Some(v) = o.strip_prefix("threads=") {
                    match v.parse::<usize>() {
                        Ok(n @ 1..=64) => m.threads = Some(n),
                        _ => return Err(CliError(format!("-o {o}: use 1 to 64 threads"))),
                    }
                } else if let Some(v) = o.strip_prefix("readahead=") {
                    let bytes = crate::common::parse_size(v)
                        .filter(|&n| n <= 64 << 20)
                        .ok_or_else(|| CliError(format!("-o {o}: not a size of at most 64M")))?;
                    m.readahead_kib = bytes / 1024;
                } else if let Some(v) = o.strip_prefix("cache=") {
                    let bytes = crate::common::parse_size(v)
                        .filter(|&n| n >= 1 << 20)
                        .ok_or_else(|| CliError(format!("-o {o}: not a size of 1M or more")))?;
                    m.cache_bytes = Some(bytes as usize);
                } else {
                    return Err(CliError(format!("-o {o}: option not supported")));
                }
            }
        }
    }
    if m.asof != HAMMER_MAX_TID {
        m.read_only = true;
    }
    if m.update && rest.len() == 1 {
        m.mountpoint = PathBuf::from(&rest[0]);
        return Ok(Some(m));
    }
    if rest.len() < 2 {
        return Ok(None);
    }
    m.mountpoint = PathBuf::from(rest.pop().expect("two or more"));
    m.volumes = rest
        .iter()
        .flat_map(|s| s.split(':'))
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if m.volumes.is_empty() {
        return Ok(None);
    }
    Ok(Some(m))
}

/// Opens the volumes as the options ask: read-write with recovery, or
/// read-only (a shared lock, recovery in memory only).
fn open_fs(m: &MountArgs) -> CliResult<Fs> {
    let set = VolumeSet::open_paths(
        &m.volumes,
        &OpenOptions {
            writable: !m.read_only,
            recover: true,
            cache_bytes: m.cache_bytes.unwrap_or(OpenOptions::default().cache_bytes),
        },
    )?;
    let mut fs = Fs::from_set(set, 0, m.nohistory)?;
    fs.set_master_id(m.master_id)?;
    if !m.read_only {
        fs.atime = m.atime;
    }
    if m.asof != HAMMER_MAX_TID && fs.getattr(HAMMER_OBJID_ROOT, m.asof).is_err() {
        return Err(CliError(format!(
            "-T 0x{:016x}: the filesystem did not exist yet at that transaction",
            m.asof
        )));
    }
    Ok(fs)
}

fn session_config(m: &MountArgs) -> Config {
    // The source `mount` shows: the volumes by absolute path.
    let source: Vec<String> = m
        .volumes
        .iter()
        .map(|v| {
            std::fs::canonicalize(v)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|_| v.clone())
        })
        .collect();
    let mut opts = vec![
        MountOption::FSName(source.join(":")),
        MountOption::Subtype("hammer".into()),
    ];
    if m.read_only {
        opts.push(MountOption::RO);
    }
    if m.default_permissions {
        opts.push(MountOption::DefaultPermissions);
    }
    opts.extend(m.flags.iter().cloned());
    let mut c = Config::default();
    c.mount_options = opts;
    // Two threads by default: with one, a request waits while the reply
    // to the one before is copied out, and on a machine where the caller
    // and the daemon run on different CPUs that doubled the time of
    // random 4 KiB reads and writes (bench/README.md).
    c.n_threads = Some(m.threads.unwrap_or(DEFAULT_THREADS));
    c.clone_fd = true;
    c.acl = if m.allow_other {
        SessionACL::All
    } else {
        SessionACL::Owner
    };
    c
}

/// Forks; the parent exits 0 at once (the mount is already up), the child
/// leaves the terminal and carries on. What the daemon writes on stderr
/// from then on (flush errors, the start and end of the mount) goes to
/// syslog (facility daemon, `journalctl -t mount_hammer`), and also to the
/// file `$HAMMERFS_DAEMON_LOG` names, if set.
fn daemonize() -> CliResult<()> {
    // SAFETY: the process is single-threaded here (no thread has been
    // started yet), so the child may go on running Rust code.
    match unsafe { libc::fork() } {
        -1 => Err(std::io::Error::last_os_error().into()),
        0 => {
            let mut pipe = [-1i32; 2];
            // SAFETY: plain system calls on valid arguments.
            unsafe {
                libc::setsid();
                let devnull = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
                if devnull >= 0 {
                    for fd in 0..3 {
                        libc::dup2(devnull, fd);
                    }
                    if devnull > 2 {
                        libc::close(devnull);
                    }
                }
                if libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) == 0 {
                    libc::dup2(pipe[1], 2);
                    libc::close(pipe[1]);
                } else {
                    pipe[0] = -1;
                }
            }
            let _ = std::env::set_current_dir("/");
            if pipe[0] >= 0 {
                spawn_logger(pipe[0]);
            }
            Ok(())
        }
        // SAFETY: `_exit` skips destructors, which would unmount.
        _ => unsafe { libc::_exit(0) },
    }
}

/// Forwards the daemon's stderr lines (read from `fd`) to syslog and to
/// `$HAMMERFS_DAEMON_LOG`.
fn spawn_logger(fd: i32) {
    use std::io::{BufRead, Write as _};
    use std::os::fd::FromRawFd;
    // SAFETY: `fd` is the read end of a pipe this process owns.
    let reader = std::io::BufReader::new(unsafe { std::fs::File::from_raw_fd(fd) });
    let mut file = std::env::var_os("HAMMERFS_DAEMON_LOG").and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok()
    });
    // SAFETY: openlog keeps the pointer: a static C string.
    unsafe { libc::openlog(c"mount_hammer".as_ptr(), libc::LOG_PID, libc::LOG_DAEMON) };
    let t = std::thread::Builder::new()
        .name("hammer-log".into())
        .spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                if let Some(f) = file.as_mut() {
                    let _ = writeln!(f, "{line}");
                }
                if let Ok(c) = std::ffi::CString::new(line) {
                    // SAFETY: a constant format and a valid C string.
                    unsafe { libc::syslog(libc::LOG_NOTICE, c"%s".as_ptr(), c.as_ptr()) };
                }
            }
        });
    if let Ok(t) = t {
        let _ = LOGGER.set(std::sync::Mutex::new(Some(t)));
    }
}

/// The thread forwarding a daemon's stderr, joined at exit.
static LOGGER: std::sync::OnceLock<std::sync::Mutex<Option<std::thread::JoinHandle<()>>>> =
    std::sync::OnceLock::new();

/// Lets the logger write out what is pending: stderr is closed (the
/// logger then sees the end of its pipe) and the thread joined.
fn finish_log() {
    let Some(t) = LOGGER.get().and_then(|m| m.lock().ok()?.take()) else {
        return;
    };
    // SAFETY: replaces fd 2 with /dev/null, closing the pipe's write end.
    unsafe {
        let devnull = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
        if devnull >= 0 {
            libc::dup2(devnull, 2);
            libc::close(devnull);
        }
    }
    let _ = t.join();
}

/// Blocks the termination signals in this thread (and so in every thread
/// started later) and returns their set, for a thread that waits on them.
fn block_signals() -> libc::sigset_t {
    // SAFETY: sigset operations on a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Mounts and serves until unmounted.
pub fn run(m: &MountArgs) -> CliResult<()> {
    for w in &m.warnings {
        eprintln!("mount_hammer: WARNING: {w}");
    }
    if !m.mountpoint.is_dir() {
        return Err(CliError(format!(
            "{}: not a directory",
            m.mountpoint.display()
        )));
    }
    // The control channel's socket is named after the canonical path
    // (resolved now: the daemon's working directory becomes `/`).
    let canon_mp = std::fs::canonicalize(&m.mountpoint)?;
    let handle = FsHandle::new(open_fs(m)?);
    // Without the channel the mount still works; `hammer` directives on it
    // then fail as on a non-HAMMER file.
    let control = match crate::control_server::bind(&canon_mp) {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!("mount_hammer: control channel: {e}");
            None
        }
    };
    let view = MountView {
        read_only: m.read_only,
        asof: m.asof,
        writeback: m.writeback,
    };
    let adapter = HammerFuse::new(handle.clone(), view);
    let mut session = Session::new(adapter, &m.mountpoint, &session_config(m))
        .map_err(|e| CliError(format!("{}: {e}", m.mountpoint.display())))?;
    if m.readahead_kib > 0 {
        if let Err(e) = set_readahead(&canon_mp, m.readahead_kib) {
            // Not fatal: the kernel's default window stays.
            eprintln!("mount_hammer: readahead: {e}");
        }
    }
    if !m.foreground {
        daemonize()?;
        eprintln!(
            "mount_hammer: serving {} on {}",
            m.volumes.join(":"),
            canon_mp.display()
        );
    }
    let sigs = block_signals();
    let mut unmounter = session.unmount_callable();
    let sig_handle = handle.clone();
    let mountpoint = m.mountpoint.clone();
    std::thread::Builder::new()
        .name("hammer-signals".into())
        .spawn(move || {
            let mut sig = 0;
            // SAFETY: waits on the set blocked above.
            unsafe { libc::sigwait(&sigs, &mut sig) };
            if let Err(e) = sig_handle.sync() {
                eprintln!("mount_hammer: flush: {e}");
            }
            if let Err(e) = unmounter.unmount() {
                // Busy: detach now, the daemon ends when the last user does.
                eprintln!("mount_hammer: unmount: {e}; detaching");
                if let Ok(c) = std::ffi::CString::new(mountpoint.as_os_str().as_encoded_bytes()) {
                    // SAFETY: a valid C string.
                    unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
                }
            }
        })?;
    // Also on a read-only mount: `mount_hammer -u -o rw` may make it
    // writable later (a sync with nothing changed writes nothing).
    if !m.flush_interval.is_zero() {
        spawn_flusher(handle.clone(), m.flush_interval);
    }
    let control = control.and_then(|(server, listener)| {
        match crate::control_server::serve(listener, handle.clone(), &canon_mp, m.allow_other) {
            Ok(()) => Some(server),
            Err(e) => {
                eprintln!("mount_hammer: control channel: {e}");
                None
            }
        }
    });
    let served = session.run();
    drop(control);
    // `destroy` has normally closed it already; an aborted session has not.
    let closed = handle.close();
    if !m.foreground {
        match (&served, &closed) {
            (Ok(()), Ok(())) => eprintln!("mount_hammer: {} unmounted", canon_mp.display()),
            _ => eprintln!(
                "mount_hammer: {} ended with an error: {:?} {:?}",
                canon_mp.display(),
                served.as_ref().err(),
                closed.as_ref().err()
            ),
        }
    }
    served.map_err(|e| CliError(format!("{}: {e}", m.mountpoint.display())))?;
    closed?;
    Ok(())
}

/// The readahead window `mount_hammer` sets unless told otherwise.
const DEFAULT_READAHEAD_KIB: u64 = 1024;

/// Sets the kernel's readahead window of the FUSE mount at `mountpoint`
/// (just made, so the newest mount there) to `kib`: its backing device
/// info, found by the device number `/proc/self/mountinfo` gives the
/// mount, has a `read_ahead_kb` in sysfs. The kernel sends reads of up to
/// this size (and at most its own request limit, 1 MiB by default).
fn set_readahead(mountpoint: &std::path::Path, kib: u64) -> std::io::Result<()> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    // mountinfo escapes blanks, tabs, newlines and backslashes as octal.
    let want: String = mountpoint
        .to_string_lossy()
        .chars()
        .map(|c| match c {
            ' ' | '\t' | '\n' | '\\' => format!("\\{:03o}", c as u32),
            c => c.to_string(),
        })
        .collect();
    let dev = info
        .lines()
        .rev()
        .find_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let fstype = l.split(" - ").nth(1)?.split(' ').next()?;
            (f.get(4) == Some(&want.as_str()) && fstype.starts_with("fuse"))
                .then(|| f[2].to_string())
        })
        .ok_or_else(|| std::io::Error::other("the mount is not in /proc/self/mountinfo"))?;
    std::fs::write(
        format!("/sys/class/bdi/{dev}/read_ahead_kb"),
        kib.to_string(),
    )
}

/// `mount_hammer -u [-o options] [special] node`: the mount's daemon
/// takes the new options (`ro`, `rw`, `nohistory`, `history`, the atime
/// modes), then the kernel's mount flags follow (`ro`/`rw`), keeping the
/// others (nosuid, nodev, …) as they are.
pub fn update(m: &MountArgs) -> CliResult<()> {
    let canon = std::fs::canonicalize(&m.mountpoint)?;
    let all = crate::control::mounts();
    let entry = all
        .iter()
        .rev()
        .find(|e| e.mount_point == canon && e.fstype.starts_with("fuse"))
        .ok_or_else(|| CliError(format!("{}: not a hammerfs mount point", canon.display())))?;
    let socket = crate::control::socket_path(&canon, entry.user_id.unwrap_or(0));
    let opts: Vec<&str> = m
        .options
        .iter()
        .map(String::as_str)
        .filter(|o| !matches!(*o, "allow_other" | "default_permissions"))
        .collect();
    if !opts.is_empty() {
        crate::control::request(&socket, &format!("update {}", opts.join(" "))).map_err(|e| {
            CliError(format!(
                "{}: {}",
                canon.display(),
                crate::control::errtext(&e)
            ))
        })?;
    }
    let ro = opts.iter().rev().find_map(|o| match *o {
        "ro" => Some(true),
        "rw" => Some(false),
        _ => None,
    });
    let Some(ro) = ro else {
        return Ok(());
    };
    // SAFETY: statvfs into a zeroed struct, with a valid C path.
    let path = std::ffi::CString::new(canon.as_os_str().as_encoded_bytes())
        .map_err(|_| CliError("mount point with a NUL byte".into()))?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    let keep = [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ];
    let mut flags = libc::MS_REMOUNT;
    for (st_bit, ms_bit) in keep {
        if st.f_flag & st_bit != 0 {
            flags |= ms_bit;
        }
    }
    if ro {
        flags |= libc::MS_RDONLY;
    }
    // SAFETY: a remount of an existing mount point; no data argument.
    let r = unsafe {
        libc::mount(
            std::ptr::null(),
            path.as_ptr(),
            std::ptr::null(),
            flags,
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(CliError(format!(
            "{}: remount: {}",
            canon.display(),
            crate::control::errtext(&std::io::Error::last_os_error())
        )));
    }
    Ok(())
}

/// The whole command: parses, mounts, serves; returns the exit status.
pub fn main(args: &[String], err: &mut dyn Write) -> i32 {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let m = match parse_args(args, root) {
        Ok(Some(m)) => m,
        Ok(None) => {
            let _ = err.write_all(USAGE.as_bytes());
            return 1;
        }
        Err(e) => {
            let _ = writeln!(err, "mount_hammer: {e}");
            return 1;
        }
    };
    let r = if m.update { update(&m) } else { run(&m) };
    let code = match r {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(err, "mount_hammer: {e}");
            let _ = err.flush();
            1
        }
    };
    // A daemon's last words reach its log before it exits.
    finish_log();
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: &[&str], root: bool) -> CliResult<Option<MountArgs>> {
        parse_args(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>(), root)
    }

    #[test]
    fn options() {
        let m = p(&["-f", "-o", "ro,nohistory", "a.img:b.img", "/mnt"], false)
            .unwrap()
            .unwrap();
        assert!(m.foreground && m.read_only && m.nohistory);
        assert!(!m.allow_other && !m.default_permissions);
        assert_eq!(m.readahead_kib, 1024);
        let r = p(&["-o", "readahead=4m", "a", "/m"], false)
            .unwrap()
            .unwrap();
        assert_eq!(r.readahead_kib, 4096);
        assert!(p(&["-o", "readahead=65m", "a", "/m"], false).is_err());
        assert_eq!(m.volumes, ["a.img", "b.img"]);
        assert_eq!(m.mountpoint, PathBuf::from("/mnt"));

        let m = p(&["-T0x0000000100000001", "a", "b", "/m"], true)
            .unwrap()
            .unwrap();
        assert_eq!(m.asof, 0x100000001);
        assert!(m.read_only && m.allow_other && m.default_permissions);
        assert_eq!(m.volumes, ["a", "b"]);

        let m = p(&["-fo", "flush_interval=0", "a", "/m"], false)
            .unwrap()
            .unwrap();
        assert!(m.foreground && m.flush_interval.is_zero());

        assert!(p(&["a"], false).unwrap().is_none());
        assert!(p(&["-x", "a", "/m"], false).unwrap().is_none());
        assert!(p(&["-o", "bogus", "a", "/m"], false).is_err());
        assert!(p(&["-T", "xyz", "a", "/m"], false).is_err());
    }
}
