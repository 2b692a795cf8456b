//! `hammer config`/`viconfig`, `cleanup`, `abort-cleanup`, `reblock` and
//! `rebalance` on a live mount, as the seed's §7 runs them: the output
//! lines DragonFly's tool prints, the cleanup bookkeeping (default config
//! stored, snapshots directory created, `.period` files, `skip` on a second
//! run the same day, `-F`), the migration of an old-style
//! `snapshots/config`, and a clean checkmap after unmounting. The
//! snapshots base directory is redirected with `HAMMERFS_CLEANUP_BASE`.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;
use support::mount::*;

const HAMMER: &str = env!("CARGO_BIN_EXE_hammer");

fn run(cwd: &Path, env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let o = Command::new(HAMMER)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(cwd)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

const DEFAULT: &str = "snapshots 1d 60d\nprune     1d 5m\nrebalance 1d 5m\n#dedup\t   1d 5m\nreblock   1d 5m\nrecopy    30d 10m\n";

#[test]
fn config_cleanup_reblock_rebalance() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !fuse_ok("config_cleanup_reblock_rebalance") {
        return;
    }
    let v = volume();
    let m = mount(&v, &[]);
    let d = v.mnt.as_path();
    let mnt = d.to_string_lossy().into_owned();
    let base = v.tmp.path().join("varhammer");
    let base_s = base.to_string_lossy().into_owned();
    let env = [("HAMMERFS_CLEANUP_BASE", base_s.as_str())];
    for i in 0..50 {
        fs::write(d.join(format!("f{i}")), vec![i as u8; 20_000]).unwrap();
    }

    // No configuration yet.
    let (code, out, err) = run(d, &env, &["config", &mnt]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert_eq!(err, "hammer: hammer config: no configuration found\n");

    // Store one from a file, read it back byte for byte.
    let cfg = v.tmp.path().join("cfg");
    fs::write(&cfg, "snapshots 1d 10d\nprune     1d 5m\n").unwrap();
    assert_eq!(run(d, &env, &["config", &mnt, cfg.to_str().unwrap()]).0, 0);
    assert_eq!(
        run(d, &env, &["config", &mnt]).1,
        "snapshots 1d 10d\nprune     1d 5m\n"
    );
    // Too big.
    fs::write(&cfg, vec![b'#'; 1023]).unwrap();
    let (code, _, err) = run(d, &env, &["config", &mnt, cfg.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("config file too big, limit 1023 bytes"),
        "{err}"
    );

    // viconfig through an "editor" that rewrites the file.
    let editor = v.tmp.path().join("ed.sh");
    fs::write(
        &editor,
        format!(
            "#!/bin/sh\nprintf '{}' > \"$1\"\n",
            DEFAULT.replace('\t', "\\t").replace('\n', "\\n")
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(&editor)
        .status()
        .unwrap();
    let ed = editor.to_string_lossy().into_owned();
    let (code, out, err) = run(d, &[("EDITOR", ed.as_str())], &["viconfig", &mnt]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(run(d, &env, &["config", &mnt]).1, DEFAULT);
    // An editor that changes nothing.
    let (code, out, _) = run(d, &[("EDITOR", "true")], &["viconfig", &mnt]);
    assert_eq!(
        (code, out.as_str()),
        (0, "hammer viconfig: no changes were made\n")
    );

    // An old-style snapshots/config and link, migrated by the first cleanup.
    fs::create_dir(d.join("snapshots")).unwrap();
    fs::write(d.join("snapshots/config"), DEFAULT).unwrap();
    let t = run(d, &env, &["synctid", &mnt]).1;
    let tid = t.trim();
    std::os::unix::fs::symlink(
        format!("{mnt}/@@{tid}"),
        d.join("snapshots/snap-20300101-0000"),
    )
    .unwrap();

    let (code, out, err) = run(d, &env, &["cleanup", &mnt]);
    assert_eq!(code, 0, "{out}{err}");
    let snapdir = base.join(mnt.trim_start_matches('/'));
    let lines: Vec<&str> = out.lines().collect();
    let head = format!("cleanup {mnt:<20} -(migrating)  (1 snapshots)index 1");
    assert_eq!(lines[0], head, "{out}");
    assert_eq!(lines[1], " HAMMER UPGRADE: Moving snapshots", "{out}");
    assert_eq!(
        lines[2],
        format!(
            "\tMoving snapshots from {mnt}/snapshots to {}",
            snapdir.display()
        ),
        "{out}"
    );
    assert_eq!(
        lines[3],
        format!(" handle PFS#0 using {}", snapdir.display())
    );
    assert_eq!(
        &lines[4..],
        [
            "           snapshots - run",
            "               prune - run",
            "           rebalance - run..",
            "             reblock - run....",
            "              recopy - run....",
        ],
        "{out}"
    );
    assert!(!d.join("snapshots").exists(), "the old directory moved");
    // The migrated record (dated 2030, so not expired) and today's snapshot.
    let snapls = run(d, &env, &["snapls", &mnt]).1;
    assert!(
        snapls.contains(&format!("{tid}\t2030-01-01 00:00:00 ")),
        "{snapls}"
    );
    assert!(snapls.contains("\tmigrated\n"), "{snapls}");
    assert!(snapls.lines().count() >= 4, "{snapls}");
    // The same list for scripts.
    let j: serde_json::Value =
        serde_json::from_str(&run(d, &env, &["--json", "snapls", &mnt]).1).unwrap();
    let snaps = j[0]["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), snapls.lines().count() - 2);
    assert!(snaps
        .iter()
        .any(|s| s["tid"] == tid && s["note"] == "migrated" && s["time"].as_u64().is_some()));
    for what in ["snapshots", "prune", "rebalance", "reblock", "recopy"] {
        let p = fs::read_to_string(snapdir.join(format!(".{what}.period"))).unwrap();
        assert!(p.starts_with("0x") && p.ends_with('\n'), "{what}: {p:?}");
    }
    assert!(fs::read_dir(&snapdir)
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with("snap-2")));

    // The same day again: everything is skipped; -F runs everything.
    let (_, out, _) = run(d, &env, &["cleanup", &mnt]);
    assert_eq!(
        out,
        format!(
            "cleanup {mnt:<20} - handle PFS#0 using {}\n           snapshots - skip\n               prune - skip\n           rebalance - skip\n             reblock - skip\n              recopy - skip\n",
            snapdir.display()
        )
    );
    let (_, out, _) = run(d, &env, &["-F", "cleanup", &mnt]);
    assert!(out.contains("           snapshots - run\n"), "{out}");
    assert_eq!(
        run(d, &env, &["abort-cleanup"]),
        (0, String::new(), String::new())
    );

    // reblock and rebalance, DragonFly's lines.
    let (code, out, _) = run(d, &env, &["reblock", &mnt]);
    assert_eq!(code, 0);
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "reblock start 8000000000000000:0000");
    assert_eq!(l[1], "free level 0/8388608");
    assert_eq!(l[2], format!("Reblock {mnt} succeeded"));
    assert_eq!(l[3], "Reblocked:");
    for (i, what) in [
        "B-Tree nodes",
        "B-Tree bytes",
        "data elements",
        "data bytes",
    ]
    .iter()
    .enumerate()
    {
        let (n, rest) = l[4 + i].trim_start().split_once(' ').unwrap();
        let (a, b) = n.split_once('/').unwrap();
        assert_eq!(rest, *what);
        assert_eq!(a, b, "recopy moves everything: {}", l[4 + i]);
    }
    let (_, out, _) = run(d, &env, &["reblock-inodes", &mnt, "90%"]);
    assert!(
        out.starts_with("reblock start 8000000000000000:0001\nfree level 838861/8388608\n"),
        "{out}"
    );
    let (code, _, err) = run(d, &env, &["reblock", &mnt, "101"]);
    assert_eq!(code, 1);
    assert!(err.starts_with("hammer reblock <filesystem> [fill_percentage]\n"));
    let (code, out, _) = run(d, &env, &["rebalance", &mnt]);
    assert_eq!(code, 0);
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "rebalance start 8000000000000000:0000");
    assert_eq!(l[1], format!("Rebalance {mnt} succeeded"));
    assert_eq!(l[2], "Rebalance:");
    assert!(l[3].ends_with(" B-Tree nodes scanned") && l[6].ends_with(" B-Tree nodes rebalanced"));
    let (code, _, err) = run(d, &env, &["rebalance", &mnt, "40"]);
    assert_eq!(code, 1);
    assert!(err.contains("saturation_percentage is 50%-100%, default is 85%."));
    let (code, _, err) = run(d, &env, &["reblock", "/nonexistent-hammerfs"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("hammer: Unable to open /nonexistent-hammerfs: "),
        "{err}"
    );

    // Every file reads back as written.
    for i in 0..50 {
        assert_eq!(
            fs::read(d.join(format!("f{i}"))).unwrap(),
            vec![i as u8; 20_000]
        );
    }
    m.unmount();
    checkmap(&v.img);
}
