//! The control channel end to end: `hammer synctid`, `info`, `version` and
//! the statistics directives on a live mount (made with the built
//! `mount_hammer -f`, unmounted by a guard in every outcome), and the
//! DragonFly messages for paths that are not on a mounted hammerfs. The
//! tests run one at a time (a lock here, the nextest `fuse-mount` group);
//! without /dev/fuse they are skipped with a message.

mod support;

use hammer_engine::{OpenOptions, VolumeSet};
use std::fs;
use support::mount::*;

use std::process::{Command, Stdio};
use std::time::Duration;

const HAMMER: &str = env!("CARGO_BIN_EXE_hammer");

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
/// Runs `hammer <directive> 1` around `during`: the work starts once the
/// tool has printed its first interval (so its baseline was taken before),
/// and the tool runs until it has printed `after` more intervals once the
/// work is done (however slowly a loaded machine runs it). Its output.
fn stats_for(directive: &str, after: usize, during: impl FnOnce()) -> String {
    use std::io::BufRead;
    let mut c = Command::new(HAMMER)
        .args([directive, "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = c.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let limit = Duration::from_secs(60);
    let mut lines: Vec<String> = Vec::new();
    // The title and the first interval.
    while lines.len() < 2 {
        lines.push(rx.recv_timeout(limit).expect("the tool prints intervals"));
    }
    during();
    for _ in 0..after {
        lines.push(rx.recv_timeout(limit).expect("the tool prints intervals"));
    }
    c.kill().unwrap();
    c.wait().unwrap();
    lines.iter().map(|l| format!("{l}\n")).collect()
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
    let out = stats_for("stats", 2, || {
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

    let out = stats_for("iostats", 0, || {});
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
