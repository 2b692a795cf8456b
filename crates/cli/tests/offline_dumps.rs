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
