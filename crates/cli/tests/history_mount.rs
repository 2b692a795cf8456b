//! History, `undo`, snapshots, prune and the `nohistory` flag on a live
//! mount, replaying the DragonFly walkthrough sessions (seed
//! `seed-hammer-walkthrough.md`, §6 "スナップショット"): each test makes its
//! own volume, mounts it with the built `mount_hammer -f -o
//! flush_interval=0` (so that a version is exactly what a `synctid`
//! flushed), runs the built `hammer` and `undo` binaries from inside the
//! mount as a user would, and checks the structure of their output line by
//! line (TIDs, dates, notes, links) and the file contents behind the
//! history paths. A guard unmounts in every outcome; after unmounting the
//! image is checked offline with `hammer checkmap`. The tests run one at a
//! time (the lock in `support::mount`); without /dev/fuse they are skipped
//! with a message.

mod support;

use support::mount::*;

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

const HAMMER: &str = env!("CARGO_BIN_EXE_hammer");
const UNDO: &str = env!("CARGO_BIN_EXE_undo");

/// The flusher off: only `synctid` (and the snapshot directives, which
/// sync first) make new versions.
const OPTS: &[&str] = &["-o", "flush_interval=0"];

// ---------------------------------------------------------------------
// Running the tools.

struct Run {
    code: i32,
    out: String,
    err: String,
}

/// `bin ARGS` with `cwd` as the working directory.
fn run(cwd: &Path, bin: &str, args: &[&str]) -> Run {
    let o = Command::new(bin)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("{bin}: {e}"));
    Run {
        code: o.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&o.stdout).into_owned(),
        err: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// `bin ARGS` must exit 0 with nothing on stderr; its stdout.
fn ok(cwd: &Path, bin: &str, args: &[&str]) -> String {
    let r = run(cwd, bin, args);
    let name = bin.rsplit('/').next().unwrap();
    assert_eq!(
        (r.code, r.err.as_str()),
        (0, ""),
        "{name} {args:?} in {cwd:?}\nstdout:\n{}",
        r.out
    );
    r.out
}

fn hammer(cwd: &Path, args: &[&str]) -> String {
    ok(cwd, HAMMER, args)
}

fn undo(cwd: &Path, args: &[&str]) -> String {
    ok(cwd, UNDO, args)
}

fn parse_tid0x(s: &str) -> u64 {
    assert!(
        s.len() == 18 && s.starts_with("0x") && is_hex16(&s[2..]),
        "not a 0x<16 hex> TID: {s:?}"
    );
    u64::from_str_radix(&s[2..], 16).unwrap()
}

/// `hammer synctid .` run in `dir`, as in the seed sessions.
fn synctid(dir: &Path) -> u64 {
    let out = hammer(dir, &["synctid", "."]);
    assert!(out.ends_with('\n') && out.lines().count() == 1, "{out:?}");
    parse_tid0x(out.trim_end())
}

/// `hammer synctid <dir>` in-process (for the long loops).
fn synctid_fast(dir: &Path) -> u64 {
    let args = vec!["synctid".to_string(), dir.to_string_lossy().into_owned()];
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = hammer_cli::hammer::main("hammer", &args, &mut out, &mut err);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&err));
    parse_tid0x(String::from_utf8_lossy(&out).trim_end())
}

fn append(p: &Path, data: &str) {
    let mut f = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(p)
        .unwrap();
    f.write_all(data.as_bytes()).unwrap();
}

fn errno_of<T>(r: std::io::Result<T>) -> i32 {
    r.err().and_then(|e| e.raw_os_error()).unwrap_or(0)
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir:?}: {e}"))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `date` formatting (the local time zone of the tools under test).
fn date(args: &[&str]) -> String {
    let o = Command::new("date").args(args).output().unwrap();
    assert!(o.status.success());
    String::from_utf8(o.stdout).unwrap().trim_end().to_string()
}

/// `t` as hammer(8) and undo(1) print a TID's time: `%d-%b-%Y %H:%M:%S`.
fn dmy_of(t: i64) -> String {
    date(&["-d", &format!("@{t}"), "+%d-%b-%Y %H:%M:%S"])
}

// ---------------------------------------------------------------------
// Shapes of output fields.

fn is_hex16(s: &str) -> bool {
    s.len() == 16
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `HH:MM:SS`.
fn is_hms(s: &str) -> bool {
    let p: Vec<&str> = s.split(':').collect();
    p.len() == 3 && p.iter().all(|x| x.len() == 2 && digits(x))
}

/// `DD-Mon-YYYY HH:MM:SS`, e.g. `16-Nov-2012 21:53:05`.
fn is_dmy(s: &str) -> bool {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let Some((d, t)) = s.split_once(' ') else {
        return false;
    };
    let p: Vec<&str> = d.split('-').collect();
    p.len() == 3
        && p[0].len() == 2
        && digits(p[0])
        && MONTHS.contains(&p[1])
        && p[2].len() == 4
        && digits(p[2])
        && is_hms(t)
}

/// `YYYY-MM-DD HH:MM:SS ZZZ`, e.g. `2012-11-22 20:03:44 JST`.
fn is_ymd_zone(s: &str) -> bool {
    let p: Vec<&str> = s.split(' ').collect();
    let d: Vec<&str> = p[0].split('-').collect();
    p.len() == 3
        && d.len() == 3
        && d[0].len() == 4
        && d[1].len() == 2
        && d[2].len() == 2
        && d.iter().all(|x| digits(x))
        && is_hms(p[1])
        && !p[2].is_empty()
        && p[2]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-')
}

// ---------------------------------------------------------------------
// hammer history.

#[derive(Debug)]
struct History {
    obj: String,
    dirty: bool,
    /// (TID, date, the rest of the line: ` '<bytes>'` with -v and @off).
    versions: Vec<(u64, String, String)>,
}

impl History {
    fn tids(&self) -> Vec<u64> {
        self.versions.iter().map(|v| v.0).collect()
    }
    fn date_of(&self, tid: u64) -> String {
        self.versions
            .iter()
            .find(|v| v.0 == tid)
            .unwrap_or_else(|| panic!("{tid:#x} not in {self:?}"))
            .1
            .clone()
    }
}

/// Parses one `hammer history` block for `name`:
/// `name\t<obj> clean|dirty {`, `    <tid> <date>[ rest]`..., `}`.
fn parse_history(out: &str, name: &str) -> History {
    let lines: Vec<&str> = out.lines().collect();
    assert!(out.ends_with("}\n") && lines.len() >= 2, "{out}");
    let head = lines[0]
        .strip_prefix(&format!("{name}\t"))
        .unwrap_or_else(|| panic!("head of {out}"));
    let (obj, rest) = head.split_once(' ').expect(out);
    assert!(is_hex16(obj), "{out}");
    let dirty = match rest {
        "clean {" => false,
        "dirty {" => true,
        _ => panic!("head of {out}"),
    };
    assert_eq!(*lines.last().unwrap(), "}", "{out}");
    let mut versions = Vec::new();
    for l in &lines[1..lines.len() - 1] {
        let v = l.strip_prefix("    ").unwrap_or_else(|| panic!("{l:?}"));
        assert!(v.len() >= 37, "{l:?}");
        let (tid, date, rest) = (&v[..16], &v[17..37], &v[37..]);
        assert!(is_hex16(tid) && &v[16..17] == " " && is_dmy(date), "{l:?}");
        versions.push((
            u64::from_str_radix(tid, 16).unwrap(),
            date.to_string(),
            rest.to_string(),
        ));
    }
    let tids: Vec<u64> = versions.iter().map(|v| v.0).collect();
    assert!(
        tids.windows(2).all(|w| w[0] < w[1]),
        "not increasing: {out}"
    );
    History {
        obj: obj.to_string(),
        dirty,
        versions,
    }
}

fn history(cwd: &Path, name: &str) -> History {
    parse_history(&hammer(cwd, &["history", name]), name)
}

// ---------------------------------------------------------------------
// Snapshots.

/// `hammer snapls <mnt>`: the rows (TID, timestamp, note) after the two
/// header lines.
fn snapls(mnt: &Path) -> Vec<(u64, String, String)> {
    let ms = mnt.to_string_lossy();
    let out = hammer(mnt, &["snapls", &ms]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.len() >= 2, "{out}");
    assert_eq!(lines[0], format!("Snapshots on {ms}\tPFS#0"), "{out}");
    assert_eq!(lines[1], "Transaction ID\t\tTimestamp\t\tNote", "{out}");
    lines[2..]
        .iter()
        .map(|l| {
            let p: Vec<&str> = l.splitn(3, '\t').collect();
            assert_eq!(p.len(), 3, "{l:?}");
            assert!(is_ymd_zone(p[1]), "{l:?}");
            (parse_tid0x(p[0]), p[1].to_string(), p[2].to_string())
        })
        .collect()
}

/// The `snap-YYYYMMDD-HHMM` softlinks in `dir` and their targets.
fn snap_links(dir: &Path) -> BTreeMap<String, String> {
    names(dir)
        .into_iter()
        .filter(|n| n.starts_with("snap-"))
        .map(|n| {
            let t = fs::read_link(dir.join(&n)).unwrap();
            let b = n.as_bytes();
            assert!(
                n.len() == 18 && b[13] == b'-' && digits(&n[5..13]) && digits(&n[14..18]),
                "link name {n:?}"
            );
            (n, t.to_string_lossy().into_owned())
        })
        .collect()
}

/// `date "+%Y%m%d-%H%M"`, the minute a `snap-…` link is named after.
fn minute() -> String {
    date(&["+%Y%m%d-%H%M"])
}

fn ymdhms() -> String {
    date(&["+%Y-%m-%d %H:%M:%S"])
}

/// Every object under `root` (not following softlinks): relative path ->
/// `dir`, `link <target>` or `file <sha256>`.
fn tree(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, rel: &Path, acc: &mut BTreeMap<String, String>) {
        for n in names(&root.join(rel)) {
            let r = rel.join(&n);
            let p = root.join(&r);
            let md = fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
            let key = r.to_string_lossy().into_owned();
            if md.is_dir() {
                acc.insert(key, "dir".into());
                walk(root, &r, acc);
            } else if md.file_type().is_symlink() {
                let t = fs::read_link(&p).unwrap();
                acc.insert(key, format!("link {}", t.display()));
            } else {
                let sum = Sha256::digest(fs::read(&p).unwrap());
                let hex: String = sum.iter().map(|b| format!("{b:02x}")).collect();
                acc.insert(key, format!("file {hex}"));
            }
        }
    }
    let mut acc = BTreeMap::new();
    walk(root, Path::new(""), &mut acc);
    acc
}

fn sha(s: &str) -> String {
    let sum = Sha256::digest(s.as_bytes());
    let hex: String = sum.iter().map(|b| format!("{b:02x}")).collect();
    format!("file {hex}")
}

// ---------------------------------------------------------------------
// The tests.

/// `hammer history` of a file written and synced three times, of a missing
/// file, of an unsynced new file, with `@offset,length` and `-v`, as JSON;
/// and reading the old versions back through `file@@0x<tid>`, also after
/// the file is removed (seed: "hammer history ~/.history", "rm miku.txt").
#[test]
fn history_of_a_file() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !fuse_ok("history_of_a_file") {
        return;
    }
    let v = volume();
    let m = mount(&v, OPTS);
    let d = v.mnt.as_path();
    let start = now();

    fs::write(d.join("f"), "luka\n").unwrap();
    let t1 = synctid(d);
    append(&d.join("f"), "lukaluka\n");
    let t2 = synctid(d);
    append(&d.join("f"), "lukalukaluka\n");
    let t3 = synctid(d);
    assert!(t1 < t2 && t2 < t3);

    // One line per synced version, the synctid TIDs exactly.
    let h = history(d, "f");
    assert!(!h.dirty);
    assert_eq!(h.tids(), [t1, t2, t3], "{h:?}");
    assert!(h.versions.iter().all(|v| v.2.is_empty()), "{h:?}");
    let end = now();
    // The dates are the TIDs' commit times, in local time.
    let dates: Vec<String> = h.versions.iter().map(|v| v.1.clone()).collect();
    for dt in &dates {
        assert!(
            (start - 1..=end + 1).any(|t| dmy_of(t) == *dt),
            "{dt} not within the test's run"
        );
    }
    // The object id is the file's, as the kernel's history ioctl gives it;
    // the same from an absolute path, but printed as given.
    let abs = d.join("f").to_string_lossy().into_owned();
    let ha = history(d, &abs);
    assert_eq!((ha.obj.as_str(), ha.tids()), (h.obj.as_str(), h.tids()));

    // A missing file: its message in the block's place, exit 0.
    let r = run(d, HAMMER, &["history", "nope"]);
    assert_eq!(
        (r.code, r.out.as_str(), r.err.as_str()),
        (0, "nope\tNo such file or directory\n", "")
    );
    // Several paths: one block each, in order.
    let r = ok(d, HAMMER, &["history", "nope", "f"]);
    let (first, rest) = r.split_once('\n').unwrap();
    assert_eq!(first, "nope\tNo such file or directory");
    assert_eq!(parse_history(rest, "f").tids(), [t1, t2, t3]);

    // A new file not yet synced: dirty, no versions (seed: "touch
    // miku.txt; hammer history miku.txt").
    fs::write(d.join("new"), "").unwrap();
    let hn = history(d, "new");
    assert!(hn.dirty && hn.versions.is_empty(), "{hn:?}");
    assert_ne!(hn.obj, h.obj);
    assert_eq!(
        hammer(d, &["history", "new"]),
        format!("new\t{} dirty {{\n}}\n", hn.obj)
    );

    // At an offset, with -v: the first bytes of each version, quoted,
    // non-printable bytes as '.'.
    let hv = parse_history(&hammer(d, &["-v", "history@0,8", "f"]), "f");
    assert_eq!(hv.obj, h.obj);
    let got: Vec<(u64, &str)> = hv.versions.iter().map(|v| (v.0, v.2.as_str())).collect();
    assert_eq!(
        got,
        [(t1, " 'luka.'"), (t2, " 'luka.luk'"), (t3, " 'luka.luk'")],
        "{hv:?}"
    );
    // Without -v the same versions, no bytes.
    let hk = parse_history(&hammer(d, &["history@0,8", "f"]), "f");
    assert_eq!(hk.tids(), [t1, t2, t3]);
    assert!(hk.versions.iter().all(|v| v.2.is_empty()));
    // The -v after the directive, as the brief's session typed it.
    let hv2 = parse_history(&hammer(d, &["history@0,8", "-v", "f"]), "f");
    assert_eq!(hv2.versions, hv.versions);

    // --json: the same versions, with the times behind the dates.
    let j: serde_json::Value =
        serde_json::from_str(&hammer(d, &["--json", "history", "f"])).expect("JSON");
    let arr = j.as_array().expect("a list of paths");
    assert_eq!(arr.len(), 1, "{j}");
    let o = &arr[0];
    assert_eq!(o["path"], "f", "{j}");
    assert_eq!(o["obj_id"], h.obj.as_str(), "{j}");
    assert_eq!(o["dirty"], false, "{j}");
    let vs = o["versions"].as_array().expect("versions");
    assert_eq!(vs.len(), 3, "{j}");
    for (jv, (tid, dt, _)) in vs.iter().zip(&h.versions) {
        assert_eq!(jv["tid"], format!("0x{tid:016x}").as_str(), "{j}");
        assert_eq!(jv["date"], dt.as_str(), "{j}");
        let t = jv["time"].as_i64().expect("time");
        assert!((start - 1..=end + 1).contains(&t), "{j}");
        assert_eq!(dmy_of(t), *dt, "{j}");
    }

    // The old versions, through history paths (seed: "cat
    // miku.txt@@0x000000010b4100a0").
    let cat = |name: &str| ok(d, "cat", &[name]);
    assert_eq!(cat(&format!("f@@0x{t1:016x}")), "luka\n");
    assert_eq!(cat(&format!("f@@0x{t2:016x}")), "luka\nlukaluka\n");
    assert_eq!(
        cat(&format!("f@@0x{t3:016x}")),
        "luka\nlukaluka\nlukalukaluka\n"
    );
    assert_eq!(cat("f"), "luka\nlukaluka\nlukalukaluka\n");

    // Removed: history no longer follows the name, the history paths
    // still read.
    fs::remove_file(d.join("f")).unwrap();
    let t4 = synctid(d);
    assert!(t4 > t3);
    assert!(!d.join("f").exists());
    assert_eq!(
        hammer(d, &["history", "f"]),
        "f\tNo such file or directory\n"
    );
    assert_eq!(cat(&format!("f@@0x{t1:016x}")), "luka\n");
    assert_eq!(
        cat(&format!("f@@0x{t3:016x}")),
        "luka\nlukaluka\nlukalukaluka\n"
    );
    assert_eq!(
        errno_of(fs::read(d.join(format!("f@@0x{t4:016x}")))),
        libc::ENOENT
    );
    // Through an old version the object's history goes on to the removal
    // (the kernel reports each record's delete TID too).
    let old = format!("f@@0x{t3:016x}");
    let hold = history(d, &old);
    assert_eq!(hold.obj, h.obj);
    assert_eq!(hold.tids(), [t1, t2, t3, t4], "{hold:?}");
    // The directory as of t3 lists it, now it does not.
    assert_eq!(names(&d.join(format!("@@0x{t3:016x}"))), ["f"]);
    assert_eq!(names(d), ["new"]);

    m.unmount();
    checkmap(&v.img);
}

/// undo(1), the seed's luka.txt session, and more of its modes; then the
/// file removed and made again.
#[test]
fn undo_sessions() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !fuse_ok("undo_sessions") {
        return;
    }
    let v = volume();
    let m = mount(&v, OPTS);
    let d = v.mnt.as_path();
    let c1 = "luka\n";
    let c2 = "luka\nlukaluka\n";
    let c3 = "luka\nlukaluka\nlukalukaluka\n";

    fs::write(d.join("luka.txt"), c1).unwrap();
    let t1 = synctid(d);
    append(&d.join("luka.txt"), "lukaluka\n");
    let t2 = synctid(d);
    append(&d.join("luka.txt"), "lukalukaluka\n");
    let t3 = synctid(d);
    let h = history(d, "luka.txt");
    assert_eq!(h.tids(), [t1, t2, t3]);
    let (d1, d2, d3) = (h.date_of(t1), h.date_of(t2), h.date_of(t3));

    // undo -a: every version, oldest first, numbered from 0001.
    assert_eq!(
        undo(d, &["-a", "luka.txt"]),
        format!(
            "luka.txt: ITERATE ENTIRE HISTORY\n\
             \n>>> luka.txt 0001 0x{t1:016x} {d1}\n\n{c1}\
             \n>>> luka.txt 0002 0x{t2:016x} {d2}\n\n{c2}\
             \n>>> luka.txt 0003 0x{t3:016x} {d3}\n\n{c3}"
        )
    );

    // undo -t <tid> -u: luka.txt.undo.0000 holds that version; nothing on
    // stdout.
    assert_eq!(
        undo(d, &["-t", &format!("0x{t1:016x}"), "-u", "luka.txt"]),
        ""
    );
    assert_eq!(
        fs::read_to_string(d.join("luka.txt.undo.0000")).unwrap(),
        c1
    );
    // A second run overwrites it.
    assert_eq!(
        undo(d, &["-t", &format!("0x{t2:016x}"), "-u", "luka.txt"]),
        ""
    );
    assert_eq!(
        fs::read_to_string(d.join("luka.txt.undo.0000")).unwrap(),
        c2
    );
    // -o names the output.
    assert_eq!(
        undo(
            d,
            &["-o", "out.txt", "-t", &format!("0x{t1:016x}"), "luka.txt"]
        ),
        ""
    );
    assert_eq!(fs::read_to_string(d.join("out.txt")).unwrap(), c1);

    // Without -t: the version before the newest, with a 0000 header.
    assert_eq!(
        undo(d, &["luka.txt"]),
        format!("\n>>> luka.txt 0000 0x{t2:016x} {d2}\n\n{c2}")
    );
    // -t with a plain number: an index back from the newest version.
    assert_eq!(
        undo(d, &["-t", "2", "luka.txt"]),
        format!("\n>>> luka.txt 0000 0x{t1:016x} {d1}\n\n{c1}")
    );
    assert_eq!(
        undo(d, &["-t", "0", "luka.txt"]),
        format!("\n>>> luka.txt 0000 0x{t3:016x} {d3}\n\n{c3}")
    );

    // undo -i: the TIDs, tab first.
    assert_eq!(
        undo(d, &["-i", "luka.txt"]),
        format!(
            "luka.txt: ITERATE ENTIRE HISTORY\n\
             \t0x{t1:016x} {d1}\n\t0x{t2:016x} {d2}\n\t0x{t3:016x} {d3}\n"
        )
    );

    // undo -d: the last change as a unified diff of the history paths.
    let p = |t: u64| format!("luka.txt@@0x{t:016x}");
    let diff = undo(d, &["-d", "luka.txt"]);
    let l: Vec<&str> = diff.lines().collect();
    assert_eq!(l.len(), 7, "{diff}");
    assert_eq!(l[0], format!("diff -N -r -u {} {} (to {d3})", p(t2), p(t3)));
    assert!(l[1].starts_with(&format!("--- {}\t", p(t2))), "{diff}");
    assert!(l[2].starts_with(&format!("+++ {}\t", p(t3))), "{diff}");
    assert_eq!(
        l[3..],
        ["@@ -1,2 +1,3 @@", " luka", " lukaluka", "+lukalukaluka"],
        "{diff}"
    );
    // undo -D: the reverse.
    let diff = undo(d, &["-D", "luka.txt"]);
    let l: Vec<&str> = diff.lines().collect();
    assert_eq!(l.len(), 7, "{diff}");
    assert_eq!(l[0], format!("diff -N -r -u {} {}", p(t3), p(t2)));
    assert!(l[1].starts_with(&format!("--- {}\t", p(t3))), "{diff}");
    assert!(l[2].starts_with(&format!("+++ {}\t", p(t2))), "{diff}");
    assert_eq!(
        l[3..],
        ["@@ -1,3 +1,2 @@", " luka", " lukaluka", "-lukalukaluka"],
        "{diff}"
    );
    // Two -t: the diff between them.
    let diff = undo(
        d,
        &[
            "-t",
            &format!("0x{t1:016x}"),
            "-t",
            &format!("0x{t3:016x}"),
            "luka.txt",
        ],
    );
    let l: Vec<&str> = diff.lines().collect();
    // A TID given with -t carries no time: the date is the epoch's, as
    // DragonFly's undo prints it.
    let epoch = dmy_of(0);
    assert_eq!(
        l[0],
        format!("diff -N -r -u {} {} (to {epoch})", p(t1), p(t3))
    );
    assert_eq!(
        l[3..],
        ["@@ -1 +1,3 @@", " luka", "+lukaluka", "+lukalukaluka"],
        "{diff}"
    );

    // The files undo made above are committed first (the case with them
    // unsynced is `uncommitted_tids_in_history_and_paths`).
    synctid(d);
    // Removed and synced: the versions are still found through the
    // directory's history. (The removal's TID is not listed: neither the
    // file as of it nor the file now exists, and undo(1) skips such a
    // pair silently.)
    fs::remove_file(d.join("luka.txt")).unwrap();
    let t4 = synctid(d);
    let listing = format!(
        "luka.txt: ITERATE ENTIRE HISTORY\n\
         \t0x{t1:016x} {d1}\n\t0x{t2:016x} {d2}\n\t0x{t3:016x} {d3}\n"
    );
    assert_eq!(undo(d, &["-i", "luka.txt"]), listing);
    assert_eq!(
        undo(d, &["-t", &format!("0x{t2:016x}"), "luka.txt"]),
        format!("\n>>> luka.txt 0000 0x{t2:016x} {epoch}\n\n{c2}")
    );
    // Made again (a new inode at the name): the removal shows as
    // `file-deleted`, the new file's first version as `inode-change`.
    fs::write(d.join("luka.txt"), "miku\n").unwrap();
    let t5 = synctid(d);
    let d4 = history(d, &format!("luka.txt@@0x{t3:016x}")).date_of(t4);
    let hn = history(d, "luka.txt");
    assert_ne!(hn.obj, h.obj);
    assert_eq!(hn.tids(), [t5]);
    let d5 = hn.date_of(t5);
    assert_eq!(
        undo(d, &["-i", "luka.txt"]),
        format!("{listing}\t0x{t4:016x} {d4} file-deleted\n\t0x{t5:016x} {d5} inode-change\n")
    );
    assert_eq!(
        undo(d, &["-a", "luka.txt"]),
        format!(
            "luka.txt: ITERATE ENTIRE HISTORY\n\
             \n>>> luka.txt 0001 0x{t1:016x} {d1}\n\n{c1}\
             \n>>> luka.txt 0002 0x{t2:016x} {d2}\n\n{c2}\
             \n>>> luka.txt 0003 0x{t3:016x} {d3}\n\n{c3}\
             \n>>> luka.txt 0004 0x{t4:016x} {d4}\n\n\
             \n>>> luka.txt 0005 0x{t5:016x} {d5}\n\nmiku\n"
        )
    );

    // A path with no history at all.
    let r = run(d, UNDO, &["-i", "never"]);
    assert_eq!(
        (r.code, r.out.as_str()),
        (0, "never: No UNDO history found\n"),
        "{}",
        r.err
    );

    m.unmount();
    checkmap(&v.img);
}

/// A file with 200 versions: `undo -i`, `undo -a` and `hammer history`
/// list every one, in order.
#[test]
fn two_hundred_versions() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !fuse_ok("two_hundred_versions") {
        return;
    }
    let v = volume();
    let m = mount(&v, OPTS);
    let d = v.mnt.as_path();
    fs::create_dir(d.join("many")).unwrap();
    let dir = d.join("many");
    let f = dir.join("m");
    let mut tids = Vec::new();
    for i in 1..=200 {
        append(&f, &format!("line {i}\n"));
        tids.push(synctid_fast(d));
    }
    assert!(tids.windows(2).all(|w| w[0] < w[1]));

    let h = history(&dir, "m");
    assert_eq!(h.tids(), tids);
    let mut listing = String::from("m: ITERATE ENTIRE HISTORY\n");
    let mut all = listing.clone();
    let mut content = String::new();
    for (i, (tid, dt, _)) in h.versions.iter().enumerate() {
        listing += &format!("\t0x{tid:016x} {dt}\n");
        content += &format!("line {}\n", i + 1);
        all += &format!("\n>>> m {:04} 0x{tid:016x} {dt}\n\n{content}", i + 1);
    }
    assert_eq!(undo(&dir, &["-i", "m"]), listing);
    assert_eq!(undo(&dir, &["-a", "m"]), all);
    // From the mount's root, with a relative path.
    let r = undo(d, &["-i", "many/m"]);
    assert_eq!(r, listing.replacen("m:", "many/m:", 1));
    // Index 199 back from the newest is the first version.
    assert_eq!(
        undo(&dir, &["-t", "199", "m"]),
        format!(
            "\n>>> m 0000 0x{:016x} {}\n\nline 1\n",
            tids[0], h.versions[0].1
        )
    );

    // Renamed: `hammer history` follows the object, so every version made
    // under the old name is still listed; undo(1) works by path (as on
    // DragonFly), so it finds the versions reachable under the new name —
    // the current one and every later change.
    fs::rename(&f, dir.join("renamed")).unwrap();
    let tr = synctid_fast(d);
    append(&dir.join("renamed"), "line 201\n");
    let t201 = synctid_fast(d);
    let h2 = history(&dir, "renamed");
    assert_eq!(h2.obj, h.obj, "the same object");
    assert!(
        tids.iter().all(|t| h2.tids().contains(t)),
        "old versions listed"
    );
    assert!(h2.tids().contains(&t201));
    let _ = tr;
    let list = undo(&dir, &["-i", "renamed"]);
    assert!(
        list.starts_with("renamed: ITERATE ENTIRE HISTORY\n"),
        "{list}"
    );
    assert!(list.contains(&format!("\t0x{t201:016x} ")), "{list}");
    let last = undo(&dir, &["-t", "0", "renamed"]);
    assert!(last.ends_with("line 200\nline 201\n"), "{last}");
    // The old name, as of a TID before the rename, still reads.
    let old = fs::read_to_string(dir.join(format!("m@@0x{:016x}", tids[9]))).unwrap();
    assert_eq!(old.lines().count(), 10);

    // Removed: its history stays reachable through the directory.
    fs::remove_file(dir.join("renamed")).unwrap();
    synctid_fast(d);
    let gone = undo(&dir, &["-i", "renamed"]);
    assert!(gone.contains(&format!("\t0x{t201:016x} ")), "{gone}");
    assert_eq!(
        run(&dir, HAMMER, &["history", "renamed"]).out,
        "renamed\tNo such file or directory\n"
    );

    m.unmount();
    checkmap(&v.img);
}

/// snap, snaplo, snapq, snapls and snaprm, the seed's §6.1/6.2 session.
#[test]
fn snapshot_directives() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !fuse_ok("snapshot_directives") {
        return;
    }
    let v = volume();
    let m = mount(&v, OPTS);
    let d = v.mnt.as_path();
    let ms = d.to_string_lossy().into_owned();
    fs::write(d.join("mikumiku"), "miku\n").unwrap();
    fs::write(d.join("rinrin"), "rin\n").unwrap();
    let t0 = synctid(d);
    assert_eq!(snapls(d), []);

    // hammer snap <mnt>: a snapshot, no output, a softlink in the root.
    let (m0, w0) = (minute(), ymdhms());
    assert_eq!(hammer(d, &["snap", &ms]), "");
    let (m1, w1) = (minute(), ymdhms());
    let rows = snapls(d);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let (s1, ts1, note1) = rows[0].clone();
    assert!(s1 >= t0);
    assert_eq!(note1, "-");
    let zone = date(&["+%Z"]);
    assert!(ts1.ends_with(&format!(" {zone}")), "{ts1}");
    assert!(
        w0.as_str() <= &ts1[..19] && &ts1[..19] <= w1.as_str(),
        "{ts1} not in {w0}..{w1}"
    );
    let links = snap_links(d);
    assert_eq!(links.len(), 1, "{links:?}");
    let (l1, target1) = links.iter().next().unwrap();
    assert!(
        *l1 == format!("snap-{m0}") || *l1 == format!("snap-{m1}"),
        "{l1}"
    );
    assert_eq!(*target1, format!("{ms}/@@0x{s1:016x}"));
    // Through the link: the tree as of the snapshot (the link itself was
    // made after it).
    assert_eq!(names(&d.join(l1)), ["mikumiku", "rinrin"]);

    // With a note.
    fs::write(d.join("neginegi"), "").unwrap();
    let m0 = minute();
    assert_eq!(hammer(d, &["snap", &ms, "add neginegi"]), "");
    let m1 = minute();
    let rows = snapls(d);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0], (s1, ts1.clone(), note1.clone()));
    let (s2, _, note2) = rows[1].clone();
    assert!(s2 > s1);
    assert_eq!(note2, "add neginegi");
    // A link made in the same minute replaces the first.
    let links = snap_links(d);
    let l2 = links
        .iter()
        .find(|(_, t)| **t == format!("{ms}/@@0x{s2:016x}"))
        .map(|(n, _)| n.clone())
        .unwrap_or_else(|| panic!("no link to s2: {links:?}"));
    assert!(
        l2 == format!("snap-{m0}") || l2 == format!("snap-{m1}"),
        "{l2}"
    );
    assert!(links.len() == 1 || (links.len() == 2 && links[l1] == *target1));
    let mut at_s2 = vec![
        "mikumiku".to_string(),
        "neginegi".into(),
        "rinrin".into(),
        l1.clone(),
    ];
    at_s2.sort();
    assert_eq!(names(&d.join(&l2)), at_s2);
    assert_eq!(
        fs::read_link(d.join(&l2).join(l1)).unwrap(),
        PathBuf::from(target1.as_str())
    );
    assert_eq!(
        names(&d.join(format!("@@0x{s1:016x}"))),
        ["mikumiku", "rinrin"]
    );

    // snaplo: the link in the directory, pointing at it.
    fs::create_dir_all(d.join("hachune/negi")).unwrap();
    let hs = format!("{ms}/hachune");
    assert_eq!(hammer(d, &["snaplo", &hs, "hachune directory"]), "");
    let rows = snapls(d);
    assert_eq!(rows.len(), 3);
    let (s3, _, note3) = rows[2].clone();
    assert!(s3 > s2);
    assert_eq!(note3, "hachune directory");
    let hl = snap_links(&d.join("hachune"));
    assert_eq!(hl.len(), 1, "{hl:?}");
    let (hl3, ht3) = hl.iter().next().unwrap();
    assert_eq!(*ht3, format!("{hs}@@0x{s3:016x}"));
    assert_eq!(names(&d.join("hachune").join(hl3)), ["negi"]);
    // snapls | tail -n 1, as the seed shows it.
    assert!(hammer(d, &["snapls", &ms])
        .ends_with(&format!("0x{s3:016x}\t{}\thachune directory\n", rows[2].1)));

    // snapq: the path on stdout, no link.
    let out = hammer(d, &["snapq", &hs, "neginegi"]);
    let s4 = parse_tid0x(
        out.strip_prefix(&format!("{hs}@@"))
            .and_then(|s| s.strip_suffix('\n'))
            .unwrap_or_else(|| panic!("snapq printed {out:?}")),
    );
    assert!(s4 > s3);
    assert_eq!(names(&d.join("hachune")), ["negi".to_string(), hl3.clone()]);
    let rows = snapls(d);
    assert_eq!(
        (rows.len(), rows[3].0, rows[3].2.as_str()),
        (4, s4, "neginegi")
    );

    // The seed's "ln -s `hammer snapq ...` /snaps/...": a snapshot
    // directory of one's own.
    fs::create_dir(d.join("snaps")).unwrap();
    let out = hammer(d, &["snapq", &hs, "neginegi"]);
    let target5 = out.trim_end().to_string();
    let s5 = parse_tid0x(&target5[hs.len() + 2..]);
    assert!(s5 > s4);
    let l5 = d.join("snaps/miku.hachune-121126_2000");
    std::os::unix::fs::symlink(&target5, &l5).unwrap();
    assert_eq!(names(&l5), ["negi".to_string(), hl3.clone()]);
    assert_eq!(
        fs::read_link(l5.join(hl3)).unwrap(),
        PathBuf::from(ht3.as_str())
    );
    assert_eq!(snapls(d).len(), 5);

    // snaprm <softlink>: the snapshot and the link.
    let hl3p = d.join("hachune").join(hl3);
    assert_eq!(hammer(d, &["snaprm", &hl3p.to_string_lossy()]), "");
    assert!(fs::symlink_metadata(&hl3p).is_err(), "link left behind");
    assert_eq!(names(&d.join("hachune")), ["negi"]);
    let tids: Vec<u64> = snapls(d).iter().map(|r| r.0).collect();
    assert_eq!(tids, [s1, s2, s4, s5]);
    // snaprm <filesystem> <tid>.
    assert_eq!(hammer(d, &["snaprm", &ms, &format!("0x{s4:016x}")]), "");
    let tids: Vec<u64> = snapls(d).iter().map(|r| r.0).collect();
    assert_eq!(tids, [s1, s2, s5]);
    // snaprm <tid>: the filesystem is the working directory's.
    assert_eq!(hammer(d, &["snaprm", &format!("0x{s5:016x}")]), "");
    let tids: Vec<u64> = snapls(d).iter().map(|r| r.0).collect();
    assert_eq!(tids, [s1, s2]);
    // The softlink made by hand is not the tool's to remove.
    assert!(fs::symlink_metadata(&l5).is_ok());
    // An unknown TID: a warning, exit 0.
    let bogus = s5 + 0x1000;
    let r = run(d, HAMMER, &["snaprm", &ms, &format!("0x{bogus:016x}")]);
    assert_eq!(
        (r.code, r.out.as_str(), r.err.as_str()),
        (
            0,
            "",
            format!("Warning: hammer snaprm 0x{bogus:016x}: meta-data not found\n").as_str()
        )
    );
    let rows = snapls(d);
    assert_eq!(
        rows.iter().map(|r| (r.0, r.2.as_str())).collect::<Vec<_>>(),
        [(s1, "-"), (s2, "add neginegi")]
    );
    // Still readable after the records went.
    assert_eq!(
        names(&d.join(format!("@@0x{s1:016x}"))),
        ["mikumiku", "rinrin"]
    );

    m.unmount();
    checkmap(&v.img);
}

/// prune against a directory of snapshot softlinks keeps every snapshot's
/// view and drops the history between them; prune-everything drops all
/// history and the snapshot records.
#[test]
fn prune_keeps_snapshots() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !fuse_ok("prune_keeps_snapshots") {
        return;
    }
    let v = volume();
    let m = mount(&v, OPTS);
    let d = v.mnt.as_path();
    let ms = d.to_string_lossy().into_owned();
    fs::create_dir(d.join("snaps")).unwrap();
    let w = |name: &str, data: &str| fs::write(d.join(name), data).unwrap();
    let rm = |name: &str| fs::remove_file(d.join(name)).unwrap();
    // `hammer snapshot <fs> <link>` (the older form): the link exactly
    // where asked, its path on stdout, a snapshot record too.
    let snapshot = |n: u32| -> u64 {
        let link = format!("{ms}/snaps/s{n}");
        assert_eq!(hammer(d, &["snapshot", &ms, &link]), format!("{link}\n"));
        let t = fs::read_link(&link).unwrap().to_string_lossy().into_owned();
        parse_tid0x(
            t.strip_prefix(&format!("{ms}/@@"))
                .unwrap_or_else(|| panic!("{link} -> {t}")),
        )
    };

    w("a", "a1\n");
    w("b", "b1\n");
    w("c", "c1\n");
    synctid(d);
    w("a", "a2\n");
    synctid(d);
    w("a", "a3 longer\n");
    rm("b");
    synctid(d);
    let s1 = snapshot(1);
    w("a", "a4\n");
    synctid(d);
    w("tmp1", "short-lived\n");
    synctid(d);
    rm("tmp1");
    synctid(d);
    w("c", "c2\n");
    synctid(d);
    let s2 = snapshot(2);
    w("a", "a5\n");
    synctid(d);
    w("a", &"a6 ".repeat(5000));
    fs::create_dir(d.join("dir")).unwrap();
    w("dir/x", "x1\n");
    synctid(d);
    w("dir/x", "x2\n");
    synctid(d);
    let s3 = snapshot(3);
    w("a", "a7\n");
    synctid(d);
    rm("c");
    w("dir/y", "y\n");
    synctid(d);
    assert!(s1 < s2 && s2 < s3);
    assert_eq!(
        snapls(d).iter().map(|r| r.0).collect::<Vec<_>>(),
        [s1, s2, s3]
    );

    let view = |n: u32| tree(&d.join(format!("snaps/s{n}")));
    let views = [view(1), view(2), view(3)];
    let current = tree(d);
    // The views are what was there at each snapshot.
    assert_eq!(views[0]["a"], sha("a3 longer\n"));
    assert_eq!(views[0]["c"], sha("c1\n"));
    assert!(!views[0].contains_key("b") && !views[0].contains_key("snaps/s1"));
    assert_eq!(views[1]["a"], sha("a4\n"));
    assert_eq!(views[1]["c"], sha("c2\n"));
    assert_eq!(views[1]["snaps/s1"], format!("link {ms}/@@0x{s1:016x}"));
    assert!(!views[1].contains_key("tmp1"));
    assert_eq!(views[2]["a"], sha(&"a6 ".repeat(5000)));
    assert_eq!(views[2]["dir/x"], sha("x2\n"));
    assert_eq!(current["a"], sha("a7\n"));
    assert!(!current.contains_key("c"));
    let before = history(d, "a").versions.len();
    assert_eq!(before, 7, "a was written seven times");
    assert_eq!(history(d, "dir/x").versions.len(), 2);

    // hammer prune <softlink dir>.
    let out = hammer(d, &["prune", &format!("{ms}/snaps")]);
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l.len(), 8, "{out}");
    let fsn = format!("{ms}/");
    assert_eq!(
        l[..7],
        [
            format!("TID {s2:016x} - {s3:016x}"),
            format!("TID {s1:016x} - {s2:016x}"),
            format!("TID 0000000000000001 - {s1:016x}"),
            format!("Prune {fsn}: 3 snapshots"),
            format!("Prune {fsn}: objspace 8000000000000000:0000 7fffffffffffffff:ffff pfs_id 0"),
            format!("Prune {fsn}: prune_min is 0d/00:00:00"),
            format!("Prune {fsn} succeeded"),
        ],
        "{out}"
    );
    let (n, mm, k, b) = parse_pruned(l[7]);
    assert!(n > 0 && n <= mm, "{out}");
    assert!(k >= 1, "tmp1's entry lived between two snapshots: {out}");
    assert!(b > 0, "{out}");

    // x1 lived only between s2 and s3.
    assert_eq!(history(d, "dir/x").versions.len(), 1);
    // Every snapshot's view and the current tree are unchanged.
    assert_eq!([view(1), view(2), view(3)], views);
    assert_eq!(tree(d), current);
    // The history between the snapshots is gone.
    let after = history(d, "a").versions.len();
    assert!(after < before, "a: {before} versions, {after} after prune");
    assert_eq!(
        snapls(d).iter().map(|r| r.0).collect::<Vec<_>>(),
        [s1, s2, s3]
    );
    // Pruning again finds nothing more between the snapshots.
    let out = hammer(d, &["prune", &format!("{ms}/snaps")]);
    let (n2, _, _, _) = parse_pruned(out.lines().last().unwrap());
    assert_eq!(n2, 0, "{out}");
    assert_eq!([view(1), view(2), view(3)], views);

    // prune-everything.
    let out = hammer(d, &["prune-everything", &ms]);
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l.len(), 5, "{out}");
    assert_eq!(
        l[..4],
        [
            format!("Prune {fsn}: EVERYTHING"),
            format!("Prune {fsn}: objspace 8000000000000000:0000 7fffffffffffffff:ffff pfs_id 0"),
            format!("Prune {fsn}: prune_min is 0d/00:00:00"),
            format!("Prune {fsn} succeeded"),
        ],
        "{out}"
    );
    let (n, _, _, _) = parse_pruned(l[4]);
    assert!(n > 0, "{out}");
    assert_eq!(snapls(d), []);
    assert_eq!(tree(d), current);
    assert_eq!(fs::read_to_string(d.join("a")).unwrap(), "a7\n");
    assert_eq!(history(d, "a").versions.len(), 1);

    m.unmount();
    checkmap(&v.img);
}

/// `Pruned N/M records (K directory entries) and B bytes`.
fn parse_pruned(l: &str) -> (u64, u64, u64, u64) {
    let parse = || -> Option<(&str, &str, &str, &str)> {
        let rest = l.strip_prefix("Pruned ")?;
        let (nm, rest) = rest.split_once(" records (")?;
        let (n, mm) = nm.split_once('/')?;
        let (k, rest) = rest.split_once(" directory entries) and ")?;
        Some((n, mm, k, rest.strip_suffix(" bytes")?))
    };
    let (n, mm, k, b) = parse().unwrap_or_else(|| panic!("{l:?}"));
    let num = |s: &str| -> u64 {
        assert!(digits(s), "{l:?}");
        s.parse().unwrap()
    };
    (num(n), num(mm), num(k), num(b))
}

/// `hammer chflags nohistory`: the file's old versions are not kept.
#[test]
fn nohistory_flag() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !fuse_ok("nohistory_flag") {
        return;
    }
    let v = volume();
    let m = mount(&v, OPTS);
    let d = v.mnt.as_path();

    fs::write(d.join("f"), "one\n").unwrap();
    let t1 = synctid(d);
    assert_eq!(hammer(d, &["lsflags", "f"]), "-\tf\n");
    assert_eq!(hammer(d, &["chflags", "nohistory", "f"]), "");
    assert_eq!(hammer(d, &["lsflags", "f"]), "nohistory\tf\n");
    fs::write(d.join("f"), "two\n").unwrap();
    let t2 = synctid(d);
    append(&d.join("f"), "three\n");
    let t3 = synctid(d);
    let h = history(d, "f");
    // Only the newest version: neither the first (before the flag) nor
    // the second are kept.
    assert_eq!(h.tids(), [t3], "{h:?}");
    for t in [t1, t2] {
        assert_eq!(
            errno_of(fs::read(d.join(format!("f@@0x{t:016x}")))),
            libc::ENOENT,
            "f@@0x{t:016x}"
        );
    }
    assert_eq!(
        fs::read_to_string(d.join(format!("f@@0x{t3:016x}"))).unwrap(),
        "two\nthree\n"
    );

    // A directory's flag is inherited by what is made in it.
    fs::create_dir(d.join("nd")).unwrap();
    assert_eq!(hammer(d, &["chflags", "nohistory", "nd"]), "");
    fs::write(d.join("nd/x"), "x\n").unwrap();
    assert_eq!(
        hammer(d, &["lsflags", "f", "nd", "nd/x"]),
        "nohistory\tf\nnohistory\tnd\nnohistory\tnd/x\n"
    );

    // Cleared: history is kept again from then on.
    assert_eq!(hammer(d, &["chflags", "nonohistory", "f"]), "");
    assert_eq!(hammer(d, &["lsflags", "f"]), "-\tf\n");
    let t4 = synctid(d);
    append(&d.join("f"), "four\n");
    let t5 = synctid(d);
    let h = history(d, "f");
    let tids = h.tids();
    assert!(tids.contains(&t5) && tids.len() >= 2, "{h:?}");
    assert!(tids.iter().all(|&t| t >= t3), "{h:?}");
    let t_before = *tids.iter().rev().nth(1).unwrap();
    assert!(t_before <= t4);
    assert_eq!(
        fs::read_to_string(d.join(format!("f@@0x{t4:016x}"))).unwrap(),
        "two\nthree\n"
    );
    assert_eq!(
        fs::read_to_string(d.join(format!("f@@0x{t5:016x}"))).unwrap(),
        "two\nthree\nfour\n"
    );

    // Usage and a missing path.
    let r = run(d, HAMMER, &["chflags", "nohistory"]);
    assert_eq!(r.code, 1);
    assert!(
        r.err.contains("hammer chflags nohistory|nonohistory path"),
        "{}",
        r.err
    );
    let r = run(d, HAMMER, &["lsflags", "nonexist"]);
    assert_eq!(
        (r.code, r.err.as_str()),
        (1, "hammer: nonexist: No such file or directory\n")
    );

    m.unmount();
    checkmap(&v.img);
}

/// Regression test for two bugs found while writing these tests (both
/// about TIDs no flush has committed yet):
///
/// 1. the directory history that undo(1) walks reported, for an entry not
///    yet flushed, a TID no flush had committed; now history replies hold
///    committed TIDs only, as the kernel's HAMMERIOC_GETHISTORY (which
///    reads the media) does;
/// 2. `name@@0x<T>` looked up before T was committed answered with the
///    in-memory state and the kernel cached it, so after the flush that
///    removed `name` at T, `stat name@@0x<T>` still succeeded; now such a
///    view reads the newest committed state and is never cached (TTL 0)
///    until T is committed.
///
/// Together they made `undo -i` list a removal's TID without
/// `file-deleted` after an earlier undo ran with unsynced entries.
/// `vol0_next_tid` as the image holds it (read while mounted: the
/// header's bytes, no lock needed).
fn header_next_tid(img: &str) -> u64 {
    use std::io::Read;
    use zerocopy::FromBytes;
    let n = std::mem::size_of::<hammer_ondisk::HammerVolumeOndisk>();
    let mut b = vec![0u8; n];
    fs::File::open(img).unwrap().read_exact(&mut b).unwrap();
    hammer_ondisk::HammerVolumeOndisk::read_from_bytes(&b[..n])
        .unwrap()
        .vol0_next_tid
}

#[test]
fn uncommitted_tids_in_history_and_paths() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !fuse_ok("uncommitted_tids_in_history_and_paths") {
        return;
    }
    let v = volume();
    let m = mount(&v, OPTS);
    let d = v.mnt.as_path();
    let mut failures = Vec::new();

    // 1.
    fs::write(d.join("luka.txt"), "luka\n").unwrap();
    let t1 = synctid(d);
    fs::write(d.join("a"), "").unwrap(); // not synced
    let root = d.to_string_lossy().into_owned();
    let mut dir_tids = Vec::new();
    let (mut key, mut nxt) = (0i64, i64::MAX);
    loop {
        let r = hammer_cli::cmd_history::query(&root, Some((key, nxt)), 1, u64::MAX).unwrap();
        dir_tids.extend(
            hammer_cli::cmd_history::entries(&r)
                .into_iter()
                .map(|e| e.0),
        );
        if r.get("eof") == Some("1") || r.get("next_key") != Some("1") {
            break;
        }
        let n = r.num("nxt_key").unwrap_or(i64::MAX);
        if n <= key {
            break;
        }
        (key, nxt) = (n, i64::MAX);
    }
    if dir_tids.iter().any(|&t| t > t1) {
        failures.push(format!(
            "BUG 1: directory history {:?} has TIDs past the last \
             committed {t1:#x}",
            dir_tids
                .iter()
                .map(|t| format!("{t:#x}"))
                .collect::<Vec<_>>()
        ));
    }

    // 2, with the stat the kernel caches.
    let t2 = synctid(d);
    // The next TIDs: above the TID counter the flush wrote (object-id
    // windows take TIDs too), multiples of 16 with the default master id
    // 0, as DragonFly's.
    assert_eq!(t2 % 16, 0, "{t2:#x}");
    let next = header_next_tid(&v.img);
    let probes: Vec<u64> = (1..=4).map(|i| (next + 16 * i) & !15).collect();
    for t in &probes {
        assert!(fs::symlink_metadata(d.join(format!("luka.txt@@0x{t:016x}"))).is_ok());
    }
    fs::remove_file(d.join("luka.txt")).unwrap();
    let t3 = synctid(d);
    assert!(probes.contains(&t3), "{t3:#x} not among {probes:x?}");
    let p = d.join(format!("luka.txt@@0x{t3:016x}"));
    if let Ok(md) = fs::symlink_metadata(&p) {
        failures.push(format!(
            "BUG 2: {p:?} stats as a {}-byte file (read: {:?}), though \
             luka.txt was removed at that TID",
            md.len(),
            fs::read_to_string(&p).map_err(|e| e.to_string())
        ));
    }

    // The symptom in undo(1).
    fs::write(d.join("k"), "luka\n").unwrap();
    let k1 = synctid(d);
    fs::write(d.join("b"), "").unwrap(); // not synced
    let _ = undo(d, &["-i", "k"]);
    fs::remove_file(d.join("k")).unwrap();
    let k2 = synctid(d);
    let out = undo(d, &["-i", "k"]);
    let d1 = history(d, &format!("k@@0x{k1:016x}")).date_of(k1);
    let want = format!("k: ITERATE ENTIRE HISTORY\n\t0x{k1:016x} {d1}\n");
    if out != want {
        failures.push(format!(
            "undo -i after the removal at {k2:#x}:\n{out}expected:\n{want}"
        ));
    }

    m.unmount();
    checkmap(&v.img);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `-o writeback`: the kernel caches writes; flushing directives push them
/// first (syncfs), and pages of a file removed before they were written
/// back land harmlessly (the object lives until the kernel forgets it).
#[test]
fn writeback_mount() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !fuse_ok("writeback_mount") {
        return;
    }
    let v = volume();
    let m = mount(&v, &["-o", "writeback,flush_interval=0"]);
    let d = v.mnt.as_path();
    fs::create_dir(d.join("tmp")).unwrap();
    for i in 0..20 {
        fs::write(d.join(format!("tmp/f{i}")), vec![i as u8; 70_000]).unwrap();
    }
    fs::remove_dir_all(d.join("tmp")).unwrap();
    append(&d.join("kept"), "one\n");
    let t1 = synctid(d);
    append(&d.join("kept"), "two\n");
    let t2 = synctid(d);
    assert_eq!(history(d, "kept").tids(), vec![t1, t2]);
    assert_eq!(
        fs::read_to_string(d.join(format!("kept@@0x{t1:016x}"))).unwrap(),
        "one\n"
    );
    m.unmount();
    checkmap(&v.img);
    let m = mount(&v, OPTS);
    assert_eq!(
        fs::read_to_string(v.mnt.join("kept")).unwrap(),
        "one\ntwo\n"
    );
    assert!(!v.mnt.join("tmp").exists());
    m.unmount();
    checkmap(&v.img);
}

/// `undo -a` gets every version in one stream from the daemon; that path
/// must refuse what the mount refuses: a version that was private when it
/// was made (mode 0600 then) shows to another user as a header without
/// its bytes, as reading `file@@0x<tid>` through the mount would, while
/// the later, readable version shows whole.
#[test]
fn undo_stream_respects_permissions() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !fuse_ok("undo_stream_respects_permissions") {
        return;
    }
    let v = volume();
    let m = mount(&v, OPTS);
    let d = v.mnt.as_path();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
    let f = d.join("secret");
    fs::write(&f, "first secret\n").unwrap();
    fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
    synctid(d);
    fs::write(&f, "now public\n").unwrap();
    fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
    synctid(d);
    let own = undo(d, &["-a", "secret"]);
    assert!(
        own.contains("first secret") && own.contains("now public"),
        "{own}"
    );
    let o = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            UNDO,
            "-a",
            "secret",
        ])
        .current_dir(d)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("ITERATE ENTIRE HISTORY"), "{out}");
    assert!(out.contains("now public"), "{out}");
    assert!(
        !out.contains("first secret"),
        "another user read a private version: {out}"
    );
    m.unmount();
    checkmap(&v.img);
}
