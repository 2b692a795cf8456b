//! PFSs on a live mount, replaying the seed's sessions (§3.2 "マスタPFSの
//! 作成と削除", §5.1 "スレーブPFSの作成"): `pfs-master`, `pfs-slave` with a
//! master's shared-uuid, `pfs-status`, `pfs-update`, `pfs-upgrade`,
//! `pfs-downgrade`, `pfs-destroy` with its questions, the `/pfs/<name>`
//! links as the kernel shows them, files kept apart per PFS, a slave
//! read-only at its `sync_end_tid`, bind mounts standing in for
//! DragonFly's null mounts (`hammer info`'s "Mounted on", `snap`,
//! `snapls`), and snapshots and cleanup on a slave (its
//! `/var/hammer/<path>` directory, redirected with
//! `HAMMERFS_CLEANUP_BASE`). Every test ends with a remount or an
//! unmount and a clean checkmap.

mod support;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use support::mount::*;

const HAMMER: &str = env!("CARGO_BIN_EXE_hammer");
const OPTS: &[&str] = &["-o", "flush_interval=0"];

struct Run {
    code: i32,
    out: String,
    err: String,
}

fn run_in(cwd: &Path, env: &[(&str, &str)], input: &str, args: &[&str]) -> Run {
    let mut c = Command::new(HAMMER)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let o = c.wait_with_output().unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&o.stdout).into_owned(),
        err: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn run(cwd: &Path, args: &[&str]) -> Run {
    run_in(cwd, &[], "", args)
}

fn hammer(cwd: &Path, args: &[&str]) -> String {
    let r = run(cwd, args);
    assert_eq!(
        (r.code, r.err.as_str()),
        (0, ""),
        "hammer {args:?}\nstdout:\n{}",
        r.out
    );
    r.out
}

/// A child process, killed in every outcome.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A bind mount, undone in every outcome.
struct Bind(PathBuf);

impl Bind {
    fn new(from: &Path, to: &Path) -> Bind {
        fs::create_dir_all(to).unwrap();
        let st = Command::new("mount")
            .arg("--bind")
            .arg(from)
            .arg(to)
            .status()
            .unwrap();
        assert!(st.success(), "mount --bind {from:?} {to:?}");
        Bind(to.to_path_buf())
    }
}

impl Drop for Bind {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn uuid_of(line: &str) -> String {
    let u = line.split('=').nth(1).unwrap().to_string();
    assert_eq!(u.len(), 36, "{line}");
    assert_eq!(&u[14..15], "4", "a version-4 UUID as printed: {u}");
    u
}

/// The dump after a create, checked line by line; returns the shared and
/// unique UUIDs.
fn check_created(out: &str, id: u32, path: &str, slave: bool) -> (String, String) {
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l.len(), 10, "{out}");
    assert_eq!(l[0], format!("Creating PFS#{id}\tsucceeded!"));
    assert_eq!(l[1], path);
    assert_eq!(l[2], "    sync-beg-tid=0x0000000000000001");
    let end = u64::from_str_radix(l[3].strip_prefix("    sync-end-tid=0x").unwrap(), 16).unwrap();
    if slave {
        assert_eq!(end, 1, "a fresh slave has synced nothing");
    } else {
        assert!(end > 1, "a master reports the newest committed TID");
    }
    assert!(l[4].starts_with("    shared-uuid="));
    assert!(l[5].starts_with("    unique-uuid="));
    let (shared, unique) = (uuid_of(l[4]), uuid_of(l[5]));
    assert_ne!(shared, unique);
    assert_eq!(l[6], "    label=\"\"");
    assert_eq!(l[7], "    prune-min=00:00:00");
    let mode = if slave { "SLAVE" } else { "MASTER" };
    assert_eq!(l[8], format!("    operating as a {mode}"));
    assert_eq!(
        l[9],
        "    snapshots directory defaults to /var/hammer/<pfs>"
    );
    (shared, unique)
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn master_create_use_destroy() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !fuse_ok("master_create_use_destroy") {
        return;
    }
    let v = volume();
    let m = mount(&v, OPTS);
    let d = v.mnt.as_path();
    fs::create_dir(d.join("pfs")).unwrap();
    fs::write(d.join("root.txt"), "PFS #0\n").unwrap();

    let out = hammer(d, &["pfs-master", "pfs/miku"]);
    check_created(&out, 1, "pfs/miku", false);
    // The link as the kernel shows it.
    assert_eq!(
        fs::read_link(d.join("pfs/miku")).unwrap(),
        Path::new("@@-1:00001")
    );
    assert_eq!(fs::symlink_metadata(d.join("pfs/miku")).unwrap().len(), 10);

    // A filesystem of its own: its files, its inode numbers, no rename or
    // link across.
    let miku = d.join("pfs/miku");
    assert!(names(&miku).is_empty());
    fs::write(miku.join("miku.txt"), "miku\n").unwrap();
    fs::write(miku.join("root.txt"), "PFS #1\n").unwrap();
    fs::create_dir(miku.join("negi")).unwrap();
    assert_eq!(names(&miku), ["miku.txt", "negi", "root.txt"]);
    assert_eq!(fs::read_to_string(d.join("root.txt")).unwrap(), "PFS #0\n");
    assert_eq!(
        fs::read_to_string(miku.join("root.txt")).unwrap(),
        "PFS #1\n"
    );
    assert_eq!(names(d), ["pfs", "root.txt"]);
    use std::os::unix::fs::MetadataExt;
    assert_ne!(
        fs::metadata(&miku).unwrap().ino(),
        fs::metadata(d).unwrap().ino()
    );
    let e = fs::rename(miku.join("miku.txt"), d.join("moved")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EXDEV));
    let e = fs::hard_link(miku.join("miku.txt"), d.join("linked")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EXDEV));

    // Status and update.
    let out = hammer(d, &["pfs-status", "pfs/miku"]);
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "pfs/miku\tPFS#1 {");
    assert_eq!(l.last(), Some(&"}"));
    let out = hammer(
        d,
        &["pfs-update", "pfs/miku", "label=miku", "prune-min=1d/2"],
    );
    assert!(out.starts_with("pfs/miku\n"), "{out}");
    assert!(out.contains("\n    label=\"miku\"\n"), "{out}");
    assert!(out.contains("\n    prune-min=1d/02:00:00\n"), "{out}");
    let r = run(d, &["pfs-update", "pfs/miku", "bogus=1"]);
    assert_eq!(
        (r.code, r.err.as_str()),
        (1, "hammer: invalid option: bogus\n")
    );
    let r = run(d, &["pfs-update", "pfs/miku", "label"]);
    assert_eq!(
        (r.code, r.err.as_str()),
        (1, "hammer: option label requires an assignment\n")
    );
    // PFS #0 is found from any path of it.
    let out = hammer(d, &["pfs-status", "."]);
    assert!(out.starts_with(".\tPFS#0 {\n"), "{out}");

    // A bind mount stands in for DragonFly's null mount of the link.
    let bind_dir = v.tmp.path().join("miku");
    let bind = Bind::new(&miku, &bind_dir);
    let b = bind_dir.to_string_lossy().into_owned();
    let out = hammer(d, &["info", d.to_str().unwrap()]);
    let tail: Vec<&str> = out.lines().rev().take(2).collect();
    assert_eq!(tail[0], format!("\t     1  MASTER      0  {b}"), "{out}");
    assert_eq!(tail[1], format!("\t     0  MASTER      0  {}", d.display()));
    // `snap` links to the base of the PFS mount.
    hammer(&bind_dir, &["snap", &b, "add neginegi"]);
    let link = fs::read_dir(&bind_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("snap-")
        })
        .expect("a snapshot link");
    let target = fs::read_link(&link).unwrap().to_string_lossy().into_owned();
    assert!(target.starts_with(&format!("{b}/@@0x")), "{target}");
    fs::write(bind_dir.join("miku.txt"), "changed\n").unwrap();
    assert_eq!(fs::read_to_string(link.join("miku.txt")).unwrap(), "miku\n");
    let out = hammer(d, &["snapls", &b]);
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], format!("Snapshots on {b}\tPFS#1"));
    assert!(l[2].ends_with("\tadd neginegi"), "{out}");
    assert_eq!(&l[2][..18], &target[b.len() + 3..]);
    // PFS #0 has no snapshot.
    let out = hammer(d, &["snapls", "."]);
    assert_eq!(out.lines().count(), 2, "{out}");
    let out = hammer(d, &["info", d.to_str().unwrap()]);
    assert!(
        out.ends_with(&format!("\t     1  MASTER      1  {b}\n")),
        "{out}"
    );
    // Bind-mounted, the PFS is in use: refused as DragonFly refuses a
    // null-mounted one, and nothing changes.
    let r = run_in(d, &[], "y\ny\n", &["-d", "pfs-destroy", "pfs/miku"]);
    assert_eq!((r.code, r.err.as_str()), (0, ""));
    assert!(
        r.out
            .ends_with("pfs-destroy of PFS#1 failed: Directory not empty\n"),
        "{}",
        r.out
    );
    let r = run(d, &["pfs-downgrade", "pfs/miku"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.err,
        "hammer: pfs-downgrade of PFS#1 (miku) failed: Directory not empty\n"
    );
    assert!(bind_dir.join("miku.txt").exists());
    drop(bind);

    // An open file (or directory) of the PFS keeps it in use too; closed,
    // it does not.
    let open = fs::File::open(miku.join("root.txt")).unwrap();
    let r = run_in(d, &[], "y\ny\n", &["-d", "pfs-destroy", "pfs/miku"]);
    assert!(
        r.out
            .ends_with("pfs-destroy of PFS#1 failed: Directory not empty\n"),
        "{}",
        r.out
    );
    drop(open);
    let dir = fs::File::open(&miku).unwrap();
    let r = run(d, &["pfs-downgrade", "pfs/miku"]);
    assert_eq!(
        r.err,
        "hammer: pfs-downgrade of PFS#1 (miku) failed: Directory not empty\n"
    );
    drop(dir);
    // So does a process whose current directory is in it (a shell that
    // went there), though it holds no handle the daemon sees.
    fs::create_dir(miku.join("sub")).unwrap();
    let mut shell = Child(
        std::process::Command::new("sleep")
            .arg("60")
            .current_dir(miku.join("sub"))
            .spawn()
            .unwrap(),
    );
    let r = run(d, &["pfs-downgrade", "pfs/miku"]);
    assert_eq!(
        r.err,
        "hammer: pfs-downgrade of PFS#1 (miku) failed: Directory not empty\n"
    );
    shell.0.kill().unwrap();
    shell.0.wait().unwrap();
    drop(shell);

    // Destroy: "no" changes nothing; two yeses destroy (no countdown
    // with -d), and the link goes.
    let r = run_in(d, &[], "n\n", &["pfs-destroy", "pfs/miku"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.err, "hammer: No action taken on PFS#1\n");
    assert_eq!(
        fs::read_to_string(miku.join("root.txt")).unwrap(),
        "PFS #1\n"
    );
    let r = run_in(d, &[], "y\ny\n", &["-d", "pfs-destroy", "pfs/miku"]);
    assert_eq!((r.code, r.err.as_str()), (0, ""));
    assert_eq!(
        r.out,
        "You have requested that PFS#1 (miku) be destroyed\n\
         This will irrevocably destroy all data on this PFS!!!!!\n\
         Do you really want to do this? [y/n] \
         This PFS is currently setup as a MASTER!\n\
         Are you absolutely sure you want to destroy it? [y/n] \
         Destroying PFS#1 (miku)\n\
         pfs-destroy of PFS#1 succeeded!\n"
    );
    assert!(fs::symlink_metadata(&miku).is_err(), "the link is removed");
    assert_eq!(names(d.join("pfs").as_path()), Vec::<String>::new());
    let out = hammer(d, &["info", d.to_str().unwrap()]);
    assert!(
        out.ends_with(&format!("\t     0  MASTER      0  {}\n", d.display())),
        "{out}"
    );

    // The id is free again; the seed's countdown form.
    let out = hammer(d, &["pfs-master", "pfs/rin"]);
    check_created(&out, 1, "pfs/rin", false);
    let r = run_in(d, &[], "y\ny\n", &["pfs-destroy", "pfs/rin"]);
    assert!(
        r.out.contains(
            "Destroying PFS#1 () in 5 4 3 2 1.. starting destruction pass\npfs-destroy of PFS#1 succeeded!\n"
        ),
        "{}",
        r.out
    );

    // Refusals.
    let r = run(d, &["pfs-master", "pfs"]);
    assert_eq!(
        (r.code, r.err.as_str()),
        (1, "hammer: Cannot create pfs, file exists!\n")
    );
    hammer(d, &["pfs-master", "pfs/len"]);
    let r = run(d, &["pfs-master", "pfs/len/inner"]);
    assert_eq!(r.code, 1);
    assert!(r
        .err
        .starts_with("You are attempting to access a PFS softlink from a PFS."));
    let r = run(d, &["pfs-destroy", "."]);
    assert_eq!(
        (r.code, r.err.as_str()),
        (1, "hammer: You cannot destroy PFS#0\n")
    );
    let r = run(d, &["pfs-status", "pfs/nothing"]);
    assert_eq!(
        (r.code, r.err.as_str()),
        (
            1,
            "hammer: Failed to open pfs/nothing: No such file or directory\n"
        )
    );
    let r = run(d, &["pfs-upgrade", "pfs/len"]);
    assert_eq!(
        (r.code, r.err.as_str()),
        (1, "hammer: It is already a master\n")
    );

    m.unmount();
    checkmap(&v.img);
}

#[test]
fn slave_seed_session_snapshots_and_cleanup() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !fuse_ok("slave_seed_session_snapshots_and_cleanup") {
        return;
    }
    let v = volume();
    let m = mount(&v, OPTS);
    let d = v.mnt.as_path();
    fs::create_dir(d.join("pfs")).unwrap();
    let (shared, _) = check_created(
        &hammer(d, &["pfs-master", "pfs/miku"]),
        1,
        "pfs/miku",
        false,
    );
    let arg = format!("shared-uuid={shared}");
    let out = hammer(d, &["pfs-slave", "pfs/negi", &arg]);
    let (s2, _) = check_created(&out, 2, "pfs/negi", true);
    assert_eq!(s2, shared, "the slave takes the master's shared-uuid");
    // A fresh slave: seen as of TID 1, where it has no root yet.
    assert_eq!(
        fs::read_link(d.join("pfs/negi")).unwrap(),
        Path::new("@@0x0000000000000001:00002")
    );
    let e = fs::read_dir(d.join("pfs/negi")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
    let out = hammer(d, &["pfs-status", "pfs/negi"]);
    assert!(out.starts_with("pfs/negi\tPFS#2 {\n"), "{out}");
    assert!(out.contains("\n    operating as a SLAVE\n"), "{out}");

    // Upgraded, it is a master whose root the next update makes.
    assert_eq!(
        hammer(d, &["pfs-upgrade", "pfs/negi"]),
        "pfs-upgrade of PFS#2 () succeeded\n"
    );
    assert_eq!(
        fs::read_link(d.join("pfs/negi")).unwrap(),
        Path::new("@@-1:00002")
    );
    hammer(d, &["pfs-update", "pfs/negi", "label=negi"]);
    let negi = d.join("pfs/negi");
    fs::write(negi.join("rin.txt"), "rin\n").unwrap();
    // Downgraded: read-only as of its sync_end_tid, as the seed shows.
    assert_eq!(
        hammer(d, &["pfs-downgrade", "pfs/negi"]),
        "pfs-downgrade of PFS#2 (negi) succeeded\n"
    );
    let t = fs::read_link(&negi).unwrap().to_string_lossy().into_owned();
    assert!(
        t.starts_with("@@0x") && t.ends_with(":00002") && t.len() == 26,
        "{t}"
    );
    assert_eq!(fs::read_to_string(negi.join("rin.txt")).unwrap(), "rin\n");
    let e = fs::write(negi.join("x"), "x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EROFS));
    let r = run(d, &["pfs-downgrade", "pfs/negi"]);
    assert_eq!(
        (r.code, r.err.as_str()),
        (1, "hammer: It is already a slave\n")
    );

    // Snapshots of a slave: the record goes to the slave, the link cannot
    // be made inside it, `snapshot` puts it elsewhere.
    let r = run(d, &["snap", "pfs/negi"]);
    assert_eq!(r.code, 2, "{}", r.err);
    assert!(r.err.contains("Unable to create symlink"), "{}", r.err);
    let snaps = v.tmp.path().join("snaps");
    fs::create_dir(&snaps).unwrap();
    // (The link's target is the filesystem argument as given, so it is
    // given absolute.)
    let abs = negi.to_string_lossy().into_owned();
    let out = hammer(d, &["snapshot", &abs, snaps.to_str().unwrap()]);
    let link = PathBuf::from(out.trim_end());
    assert_eq!(fs::read_to_string(link.join("rin.txt")).unwrap(), "rin\n");
    let out = hammer(d, &["snapls", "pfs/negi"]);
    assert!(out.starts_with("Snapshots on pfs/negi\tPFS#2\n"), "{out}");
    assert_eq!(
        out.lines().count(),
        4,
        "failed snap's record and snapshot's: {out}"
    );

    // Cleanup of a bind-mounted slave: /var/hammer/<mount point>, made
    // without an upgrade message; a second path to the same PFS is
    // handled once.
    let bind_dir = v.tmp.path().join("negi");
    let bind = Bind::new(&negi, &bind_dir);
    let b = bind_dir.to_string_lossy().into_owned();
    let base = v.tmp.path().join("varhammer");
    let env = [("HAMMERFS_CLEANUP_BASE", base.to_str().unwrap())];
    let r = run_in(d, &env, "", &["cleanup", &b, &b]);
    assert_eq!((r.code, r.err.as_str()), (0, ""), "{}", r.out);
    let dir = base.join(b.trim_start_matches('/'));
    let l: Vec<&str> = r.out.lines().collect();
    assert_eq!(
        l[0],
        format!("cleanup {b:<20} - handle PFS#2 using {}", dir.display())
    );
    assert_eq!(l[1], "           snapshots - run");
    assert_eq!(
        l.last().unwrap(),
        &format!("cleanup {b:<20} - PFS#2 already handled")
    );
    let made: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("snap-")
        })
        .collect();
    assert_eq!(made.len(), 1, "{:?}", names(&dir));
    let t = fs::read_link(&made[0])
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(t.starts_with(&format!("{b}/@@0x")), "{t}");
    assert_eq!(
        fs::read_to_string(made[0].join("rin.txt")).unwrap(),
        "rin\n"
    );
    // With no argument, cleanup takes every hammerfs mount and every bind
    // mount of a PFS root (DragonFly: hammer mounts and null mounts of
    // PFS links).
    let r = run_in(d, &env, "", &["cleanup"]);
    assert_eq!((r.code, r.err.as_str()), (0, ""), "{}", r.out);
    let heads: Vec<&str> = r
        .out
        .lines()
        .filter(|l| l.starts_with("cleanup "))
        .collect();
    let mnt = d.to_string_lossy().into_owned();
    assert!(
        heads
            .iter()
            .any(|l| l.starts_with(&format!("cleanup {mnt:<20} -"))),
        "{}",
        r.out
    );
    assert!(
        heads
            .iter()
            .any(|l| l.starts_with(&format!("cleanup {b:<20} -"))),
        "{}",
        r.out
    );
    let out = hammer(d, &["info", d.to_str().unwrap()]);
    let tail: Vec<&str> = out.lines().rev().take(3).collect();
    // Three records: the failed `snap` (the record comes before its
    // link, as in DragonFly's tool), `snapshot`, cleanup's snapshot.
    assert_eq!(tail[0], format!("\t     2  SLAVE       3  {b}"), "{out}");
    assert_eq!(tail[1], "\t     1  MASTER      0  not mounted", "{out}");
    drop(bind);

    // Everything survives a remount.
    m.unmount();
    checkmap(&v.img);
    let m = mount(&v, OPTS);
    assert_eq!(fs::read_to_string(negi.join("rin.txt")).unwrap(), "rin\n");
    let out = hammer(d, &["pfs-status", "pfs/negi", "pfs/miku"]);
    assert!(out.contains("pfs/negi\tPFS#2 {\n"), "{out}");
    assert!(out.contains("\n    label=\"negi\"\n"), "{out}");
    assert!(out.contains("pfs/miku\tPFS#1 {\n"), "{out}");
    m.unmount();
    checkmap(&v.img);
}
