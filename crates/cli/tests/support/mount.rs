//! Helpers of the tests that mount FUSE: a fresh volume and mount point,
//! the built `mount_hammer -f` as a child process (waiting until the mount
//! and its control socket are live), a guard that unmounts and reaps the
//! daemon in every outcome, and the offline checks after unmounting. Tests
//! hold `SERIAL` while they mount: they run one at a time.

use hammer_engine::{OpenOptions, VolumeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub static SERIAL: Mutex<()> = Mutex::new(());

pub const MOUNT: &str = env!("CARGO_BIN_EXE_mount_hammer");

pub fn fuse_ok(test: &str) -> bool {
    if Path::new("/dev/fuse").exists() {
        return true;
    }
    eprintln!("SKIPPED {test}: /dev/fuse is absent, FUSE mounts cannot be tested here");
    false
}

pub struct Volume {
    pub tmp: tempfile::TempDir,
    pub img: String,
    pub mnt: PathBuf,
}

pub fn volume() -> Volume {
    let tmp = tempfile::Builder::new()
        .prefix("hammerfs-mount-")
        .tempdir()
        .unwrap();
    let img = super::newfs(&tmp.path().join("vol.img"), 2 << 30, &["-f", "-L", "TEST"]);
    let mnt = tmp.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let mnt = mnt.canonicalize().unwrap();
    Volume { tmp, img, mnt }
}

pub fn is_mounted(mnt: &Path) -> bool {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let want = mnt.to_string_lossy();
    info.lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_ref()))
}

pub fn unmount_cmd(mnt: &Path, lazy: bool) -> bool {
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

pub fn wait_timeout(c: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
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
pub struct Mounted {
    pub mnt: PathBuf,
    pub child: Option<Child>,
    pub log: PathBuf,
}

impl Mounted {
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn unmount(mut self) {
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

pub fn socket_of(mnt: &Path) -> PathBuf {
    // SAFETY: geteuid has no preconditions.
    hammer_cli::control::socket_path(mnt, unsafe { libc::geteuid() })
}

/// Mounts in the foreground as a child process and waits until the mount
/// is live and its control socket exists.
pub fn mount(v: &Volume, opts: &[&str]) -> Mounted {
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

pub fn checkmap(img: &str) {
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

pub fn last_tid(img: &str) -> u64 {
    let set = VolumeSet::open_paths(&[img.to_string()], &OpenOptions::default()).unwrap();
    set.header().vol0_next_tid
}
