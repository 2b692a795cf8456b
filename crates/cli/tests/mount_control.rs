//! The control channel end to end: `hammer synctid`, `info`, `version` and
//! the statistics directives on a live mount (made with the built
//! `mount_hammer -f`, unmounted by a guard in every outcome), and the
//! DragonFly messages for paths that are not on a mounted hammerfs. The
//! tests run one at a time (a lock here, the nextest `fuse-mount` group);
//! without /dev/fuse they are skipped with a message. The mount helpers are
//! copies of those in `mount.rs`.

use hammer_engine::{OpenOptions, VolumeSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

const MOUNT: &str = env!("CARGO_BIN_EXE_mount_hammer");
const HAMMER: &str = env!("CARGO_BIN_EXE_hammer");

fn fuse_ok(test: &str) -> bool {
    if Path::new("/dev/fuse").exists() {
        return true;
    }
    eprintln!("SKIPPED {test}: /dev/fuse is absent, FUSE mounts cannot be tested here");
    false
}

struct Volume {
    tmp: tempfile::TempDir,
    img: String,
    mnt: PathBuf,
}

fn volume() -> Volume {
    let tmp = tempfile::Builder::new()
        .prefix("hammerfs-ctl-")
        .tempdir()
        .unwrap();
    let img = tmp.path().join("vol.img");
    fs::File::create(&img).unwrap().set_len(2 << 30).unwrap();
    let img = img.to_string_lossy().into_owned();
    let args: Vec<String> = ["-f", "-L", "TEST", &img]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    assert_eq!(
        hammer_cli::newfs::main("newfs_hammer", &args, &mut out, &mut err),
        0,
        "newfs: {}",
        String::from_utf8_lossy(&err)
    );
    let mnt = tmp.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let mnt = mnt.canonicalize().unwrap();
    Volume { tmp, img, mnt }
}

fn is_mounted(mnt: &Path) -> bool {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let want = mnt.to_string_lossy();
    info.lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_ref()))
}

fn unmount_cmd(mnt: &Path, lazy: bool) -> bool {
    let flag = if lazy { "-uz" } else { "-u" };
    Command::new("fusermount3")
        .arg(flag)
        .arg(mnt)
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
        || Command::new("umount")
            .args(if lazy { vec!["-l"] } else { vec![] })
            .arg(mnt)
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
}

fn wait_timeout(c: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(st) = c.try_wait().unwrap() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// A live mount; unmounts (lazily) and reaps the daemon when dropped.
struct Mounted {
    mnt: PathBuf,
    child: Option<Child>,
    log: PathBuf,
}

impl Mounted {
    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn unmount(mut self) {
        assert!(unmount_cmd(&self.mnt, false), "unmount {:?}", self.mnt);
        if let Some(mut c) = self.child.take() {
            let st = wait_timeout(&mut c, Duration::from_secs(60)).expect("daemon exits");
            assert!(st.success(), "mount_hammer exit {st:?}: {}", self.log());
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if is_mounted(&self.mnt) {
            unmount_cmd(&self.mnt, true);
        }
        if let Some(mut c) = self.child.take() {
            if wait_timeout(&mut c, Duration::from_secs(20)).is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

fn socket_of(mnt: &Path) -> PathBuf {
    // SAFETY: geteuid has no preconditions.
    hammer_cli::control::socket_path(mnt, unsafe { libc::geteuid() })
}

/// Mounts in the foreground as a child process and waits until the mount
/// is live and its control socket exists.
fn mount(v: &Volume, opts: &[&str]) -> Mounted {
    let log = v.tmp.path().join("mount.log");
    let child = Command::new(MOUNT)
        .arg("-f")
        .args(opts)
        .arg(&v.img)
        .arg(&v.mnt)
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut m = Mounted {
        mnt: v.mnt.clone(),
        child: Some(child),
        log,
    };
    let start = Instant::now();
    while !is_mounted(&v.mnt) || !socket_of(&v.mnt).exists() {
        if let Some(st) = m.child.as_mut().unwrap().try_wait().unwrap() {
            panic!("mount_hammer exited {st:?}: {}", m.log());
        }
        assert!(start.elapsed() < Duration::from_secs(30), "mount timed out");
        std::thread::sleep(Duration::from_millis(20));
    }
    m
}

fn checkmap(img: &str) {
    let args: Vec<String> = ["-v", "-f", img, "checkmap"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = hammer_cli::hammer::main("hammer", &args, &mut out, &mut err);
    let text = String::from_utf8_lossy(&out);
    assert_eq!(code, 0, "checkmap: {}", String::from_utf8_lossy(&err));
    assert!(text.contains("\n0 bad nodes\n"), "checkmap:\n{text}");
    assert!(text.contains("\n0 errors\n"), "checkmap:\n{text}");
}

fn last_tid(img: &str) -> u64 {
    let set = VolumeSet::open_paths(&[img.to_string()], &OpenOptions::default()).unwrap();
    set.header().vol0_next_tid
}

/// `hammer ARGS` in-process: (exit status, stdout, stderr).
fn hammer(args: &[&str]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = hammer_cli::hammer::main("hammer", &args, &mut out, &mut err);
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

fn parse_tid(out: &str) -> u64 {
    let t = out.trim_end();
    assert!(
        t.len() == 18 && t.starts_with("0x") && out.ends_with('\n'),
        "synctid printed {out:?}"
    );
    u64::from_str_radix(&t[2..], 16).unwrap()
}

#[test]
fn synctid_info_version_on_a_mount() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !fuse_ok("synctid_info_version_on_a_mount") {
        return;
    }
    let v = volume();
    let before = last_tid(&v.img);
    let bigblocks = VolumeSet::open_paths(std::slice::from_ref(&v.img), &OpenOptions::default())
        .unwrap()
        .header()
        .vol0_stat_bigblocks;
    let m = mount(&v, &[]);
    let d = &v.mnt;
    let ds = d.to_string_lossy().into_owned();

    fs::create_dir(d.join("somedir")).unwrap();
    fs::write(d.join("somedir/f"), b"first version").unwrap();
    let (code, out, err) = hammer(&["synctid", &format!("{ds}/somedir/f")]);
    assert_eq!((code, err.as_str()), (0, ""));
    let t1 = parse_tid(&out);
    assert!(t1 > before, "{t1:#x} <= {before:#x}");
    let past = |tid: u64| fs::read(d.join(format!("somedir/f@@0x{tid:016x}")));
    assert_eq!(past(t1).unwrap(), b"first version");

    fs::write(d.join("somedir/f"), b"second").unwrap();
    let (code, out, err) = hammer(&["synctid", &ds, "quick"]);
    assert_eq!((code, err.as_str()), (0, ""));
    let t2 = parse_tid(&out);
    assert!(t2 > t1);
    assert_eq!(past(t1).unwrap(), b"first version");
    assert_eq!(past(t2).unwrap(), b"second");
    // Nothing changed: the same durable state, no new TID beyond it.
    let (_, out, _) = hammer(&["synctid", &ds]);
    assert!(parse_tid(&out) >= t2);

    // info, from a directory inside the mount.
    let (code, out, err) = hammer(&["info", &format!("{ds}/somedir")]);
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    let heads: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| !l.starts_with('\t'))
        .collect();
    assert_eq!(
        heads,
        [
            "Volume identification",
            "Big block information",
            "Space information",
            "PFS information"
        ],
        "{out}"
    );
    assert_eq!(lines[1], "\tLabel               TEST");
    assert_eq!(lines[2], "\tNo. Volumes         1");
    assert!(lines[3].starts_with("\tFSID                ") && lines[3].len() == 21 + 36);
    assert_eq!(lines[4], "\tHAMMER Version      7");
    assert_eq!(lines[6], format!("\tTotal      {bigblocks:10}"));
    assert!(lines[7].starts_with("\tUsed       ") && lines[7].ends_with("%)"));
    assert!(lines[11].starts_with("\tNo. Inodes "));
    let inodes: u64 = lines[11][12..].trim().parse().unwrap();
    assert!(inodes >= 3, "{out}"); // root, somedir, f
    assert_eq!(
        lines[12],
        format!(
            "\tTotal size     {:>6} ({} bytes)",
            hammer_cli::cmd_info::humanize(bigblocks << 23, 5),
            bigblocks << 23
        )
    );
    assert_eq!(lines[17], "\tPFS ID  Mode    Snaps  Mounted on");
    assert_eq!(lines[18], format!("\t     0  MASTER      0  {ds}"));
    assert_eq!(lines.len(), 19, "{out}");
    // With no path: every hammerfs mount, this one among them.
    let (code, out, _) = hammer(&["info"]);
    assert_eq!(code, 0);
    assert!(out.contains(&format!("\t     0  MASTER      0  {ds}\n")));

    let (code, out, err) = hammer(&["version", &format!("{ds}/somedir/f")]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(
        out,
        "min=1 wip=8 max=7 current=7 description=\"Use ISCSI CRC (faster than original crc32)\"\n"
    );

    // The binary, as a user runs it.
    let o = Command::new(HAMMER).arg("synctid").arg(d).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(parse_tid(&String::from_utf8_lossy(&o.stdout)) >= t2);

    let sock = socket_of(d);
    m.unmount();
    assert!(!sock.exists(), "socket {sock:?} left behind");
    checkmap(&v.img);
    assert!(last_tid(&v.img) >= t2);
}

/// Off a mounted hammerfs, DragonFly's messages for a file that is not on
/// HAMMER (cli-cases `hammer-synctid`, `hammer-version`).
#[test]
fn not_a_mount_fails_like_dragonfly() {
    let v = volume();
    let img = v.img.as_str();
    assert_eq!(
        hammer(&["synctid", img]),
        (
            1,
            String::new(),
            format!("hammer: Synctid {img} failed: Inappropriate ioctl for device\n")
        )
    );
    assert_eq!(
        hammer(&["version", img]),
        (
            1,
            String::new(),
            "hammer: hammer version ioctl: Inappropriate ioctl for device\n".into()
        )
    );
    assert_eq!(
        hammer(&["-f", img, "version", img]).2,
        "hammer: hammer version ioctl: Inappropriate ioctl for device\n"
    );
    assert_eq!(
        hammer(&["info", img]),
        (
            1,
            String::new(),
            "libhammer_get_fsinfo: Inappropriate ioctl for device\n".into()
        )
    );
    let gone = format!("{}/nonexistent", v.tmp.path().display());
    assert_eq!(
        hammer(&["synctid", &gone]).2,
        format!("hammer: Unable to open {gone}: No such file or directory\n")
    );
    assert_eq!(
        hammer(&["synctid"]),
        (
            1,
            String::new(),
            "hammer synctid <filesystem> [quick]\n".into()
        )
    );
    assert_eq!(
        hammer(&["synctid", img, "slow"]).2,
        "hammer synctid <filesystem> [quick]\n"
    );
    assert_eq!(
        hammer(&["version"]).2,
        "hammer: hammer version - expected a single <fs> path arg\n"
    );
}

/// Runs `hammer <directive> 1` for a bit over `secs` seconds, then kills it.
fn stats_for(directive: &str, secs: f64, during: impl FnOnce()) -> String {
    let mut c = Command::new(HAMMER)
        .args([directive, "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    during();
    let left = Duration::from_secs_f64(secs).saturating_sub(start.elapsed());
    std::thread::sleep(left);
    c.kill().unwrap();
    c.wait().unwrap();
    let mut s = String::new();
    c.stdout.take().unwrap().read_to_string(&mut s).unwrap();
    s
}

#[test]
fn statistics_on_a_mount() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !fuse_ok("statistics_on_a_mount") {
        return;
    }
    let v = volume();
    let m = mount(&v, &[]);
    let d = v.mnt.clone();
    let out = stats_for("stats", 2.5, || {
        for i in 0..20 {
            fs::write(d.join(format!("f{i}")), vec![7u8; 70000]).unwrap();
        }
        let (code, _, err) = hammer(&["synctid", &d.to_string_lossy()]);
        assert_eq!(code, 0, "{err}");
    });
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.len() >= 2, "{out:?}");
    assert_eq!(
        lines[0],
        format!(
            "{}\t{}",
            hammer_cli::cmd_stats::BSTATS_TITLE,
            hammer_cli::cmd_stats::IOSTATS_TITLE
        )
    );
    let mut sums = [0i64; 17];
    for l in &lines[1..] {
        let (b, io) = l.split_once('\t').expect("two groups");
        let nums: Vec<i64> = b
            .split_whitespace()
            .chain(io.split_whitespace())
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!(nums.len(), 17, "{l:?}");
        for (s, n) in sums.iter_mut().zip(nums) {
            *s += n;
        }
    }
    // The writes and the flush were counted: inserts, file writes,
    // device writes, commits.
    assert!(
        sums[2] > 0 && sums[10] > 0 && sums[12] > 0 && sums[14] > 0,
        "{out}"
    );

    let out = stats_for("iostats", 1.5, || {});
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some(hammer_cli::cmd_stats::IOSTATS_TITLE),
        "{out:?}"
    );
    assert_eq!(lines[1].split_whitespace().count(), 8);
    m.unmount();
    checkmap(&v.img);
}
