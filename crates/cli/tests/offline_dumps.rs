//! `hammer -f … show|blockmap|checkmap|show-undo` on every golden fixture
//! must print exactly what DragonFly's own tool printed for it.

mod support;

use support::*;

fn run_hammer(args: &[String]) -> (i32, Vec<u8>, Vec<u8>) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = hammer_cli::hammer::main("hammer", args, &mut out, &mut err);
    (code, out, err)
}

/// Runs the stored command `key` of every fixture that has both an image
/// and that output, and compares byte for byte.
fn check_directive(key: &str) {
    let mut checked = 0;
    let mut failures = Vec::new();
    for name in all_fixtures() {
        let m = meta(&name);
        let Some(argv) = m["outputs"][key]["argv"].as_array() else {
            continue;
        };
        let Some(expected) = expected_output(&name, key) else {
            continue;
        };
        let Some(img) = materialize(&name) else {
            continue;
        };
        let args: Vec<String> = argv[1..]
            .iter()
            .map(|a| {
                let a = a.as_str().unwrap();
                // Volume lists name files in the fixture folder.
                if a.split(':').all(|p| p.ends_with(".img")) {
                    a.split(':')
                        .map(|p| img.path(p).to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join(":")
                } else {
                    a.to_string()
                }
            })
            .collect();
        let (code, out, err) = run_hammer(&args);
        let want_exit = m["outputs"][key]["exit"].as_i64().unwrap_or(0) as i32;
        checked += 1;
        if code != want_exit || out != expected {
            let diff_line = out
                .split(|&b| b == b'\n')
                .zip(expected.split(|&b| b == b'\n'))
                .position(|(a, b)| a != b)
                .map(|i| {
                    let ours = out
                        .split(|&b| b == b'\n')
                        .nth(i)
                        .map(String::from_utf8_lossy)
                        .unwrap_or_default()
                        .into_owned();
                    let theirs = expected
                        .split(|&b| b == b'\n')
                        .nth(i)
                        .map(String::from_utf8_lossy)
                        .unwrap_or_default()
                        .into_owned();
                    format!("line {}:\n  ours:   {ours:?}\n  theirs: {theirs:?}", i + 1)
                })
                .unwrap_or_else(|| format!("lengths {} vs {}", out.len(), expected.len()));
            failures.push(format!(
                "{name} {key}: exit {code} (want {want_exit}), stderr {:?}\n{diff_line}",
                String::from_utf8_lossy(&err)
            ));
        }
    }
    assert!(checked > 0, "no fixture had {key}");
    assert!(
        failures.is_empty(),
        "{} of {checked} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn show() {
    check_directive("show");
}

#[test]
fn show_v() {
    check_directive("show-v");
}

#[test]
fn blockmap() {
    check_directive("blockmap");
}

#[test]
fn blockmap_v() {
    check_directive("blockmap-v");
}

#[test]
fn checkmap() {
    check_directive("checkmap");
}

#[test]
fn checkmap_v() {
    check_directive("checkmap-v");
}

#[test]
fn show_undo() {
    check_directive("show-undo");
}

/// Masks what VARIANCE.md says varies between two newfs runs: UUIDs other
/// than the fstype, inode times and record data CRCs.
fn mask(text: &[u8]) -> String {
    let s = String::from_utf8_lossy(text);
    let mut out = String::with_capacity(s.len());
    for line in s.split_inclusive('\n') {
        let mut l = line.to_string();
        for key in ["ctime=", "mtime=", "atime="] {
            if let Some(i) = l.find(key) {
                let start = i + key.len();
                if l.len() >= start + 16 {
                    l.replace_range(start..start + 16, "<TIME>");
                }
            }
        }
        for key in ["icrc=", "ocrc="] {
            if let Some(i) = l.find(key) {
                let start = i + key.len();
                if l.len() >= start + 8 {
                    l.replace_range(start..start + 8, "<CRC>");
                }
            }
        }
        // UUIDs: 8-4-4-4-12 hex, except the fstype.
        let b = l.as_bytes();
        let mut masked = String::new();
        let mut i = 0;
        while i < b.len() {
            let is_uuid = i + 36 <= b.len()
                && b[i..i + 36].iter().enumerate().all(|(k, c)| {
                    if [8, 13, 18, 23].contains(&k) {
                        *c == b'-'
                    } else {
                        c.is_ascii_hexdigit()
                    }
                });
            if is_uuid && &l[i..i + 36] != "61dc63ac-6e38-11dc-8513-01301bb8a9f5" {
                masked.push_str("<FSID>");
                i += 36;
            } else {
                masked.push(b[i] as char);
                i += 1;
            }
        }
        out.push_str(&masked);
    }
    out
}

/// The TEXT ONLY fixtures (60 GiB, 600 GiB, 2 TiB) keep no image: make it
/// with our newfs from the same command, then every stored dump must match
/// after masking the fields that vary between newfs runs.
#[test]
fn text_only_fixtures_through_our_newfs() {
    let mut checked = 0;
    for name in all_fixtures() {
        let m = meta(&name);
        if m["image_stored"].as_bool().unwrap_or(true) {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        for v in m["volumes"].as_array().unwrap() {
            let f = std::fs::File::create(dir.path().join(v["file"].as_str().unwrap())).unwrap();
            f.set_len(v["size"].as_u64().unwrap()).unwrap();
        }
        let argv: Vec<String> = m["argv"].as_array().unwrap()[1..]
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        let st = std::process::Command::new(env!("CARGO_BIN_EXE_newfs_hammer"))
            .args(&argv)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "{name}: newfs failed: {}",
            String::from_utf8_lossy(&st.stderr)
        );
        let spec: Vec<String> = m["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                dir.path()
                    .join(v["file"].as_str().unwrap())
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        for key in [
            "show",
            "show-v",
            "blockmap",
            "blockmap-v",
            "checkmap",
            "checkmap-v",
            "show-undo",
        ] {
            let Some(expected) = expected_output(&name, key) else {
                continue;
            };
            let argv = m["outputs"][key]["argv"].as_array().unwrap();
            let args: Vec<String> = argv[1..]
                .iter()
                .map(|a| {
                    let a = a.as_str().unwrap();
                    if a.ends_with(".img") {
                        spec.join(":")
                    } else {
                        a.to_string()
                    }
                })
                .collect();
            let (code, out, err) = run_hammer(&args);
            assert_eq!(code, 0, "{name} {key}: {}", String::from_utf8_lossy(&err));
            let (ours, theirs) = (mask(&out), mask(&expected));
            if ours != theirs {
                let line = ours.lines().zip(theirs.lines()).position(|(a, b)| a != b);
                panic!(
                    "{name} {key} differs at line {line:?}: ours {:?} theirs {:?}",
                    line.and_then(|i| ours.lines().nth(i)),
                    line.and_then(|i| theirs.lines().nth(i))
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 15, "checked {checked} dumps");
}
