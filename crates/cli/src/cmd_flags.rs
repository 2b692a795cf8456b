//! `hammer chflags [no]nohistory path…` and `hammer lsflags path…`: the
//! per-file no-history flag. DragonFly sets it with `chflags nohistory`
//! (the inode's `UF_NOHISTORY` bit): changes to such a file or directory
//! replace its old versions instead of keeping them, and new objects made
//! in a no-history directory inherit the flag. Linux's chattr has no such
//! flag and FUSE passes no inode-flag ioctls, so these directives set,
//! clear and show it through the mount's control channel (`setflags`,
//! `getflags` on the object the path names). `history` is accepted as a
//! synonym of `nonohistory`. lsflags prints `nohistory<TAB>path` or
//! `-<TAB>path` per path.

use crate::control::{errtext, resolve, Target};
use hammer_ondisk::UF_NOHISTORY;
use std::io::Write;

const USAGE_CH: &str = "hammer chflags nohistory|nonohistory path ...\n";
const USAGE_LS: &str = "hammer lsflags path ...\n";

fn flags_of(path: &str) -> Result<(u32, Target), String> {
    let t = resolve(path).map_err(|(_, e)| format!("{path}: {}", errtext(&e)))?;
    let r = t
        .call("getflags")
        .map_err(|e| format!("{path}: {}", errtext(&e)))?;
    let f = r.num("flags").map_err(|e| format!("{path}: {e}"))? as u32;
    Ok((f, t))
}

pub fn chflags(args: &[String], err: &mut dyn Write) -> i32 {
    let set = match args.first().map(String::as_str) {
        Some("nohistory") => true,
        Some("nonohistory") | Some("history") => false,
        _ => {
            let _ = err.write_all(USAGE_CH.as_bytes());
            return 1;
        }
    };
    if args.len() < 2 {
        let _ = err.write_all(USAGE_CH.as_bytes());
        return 1;
    }
    let mut rc = 0;
    for path in &args[1..] {
        let r = flags_of(path).and_then(|(f, t)| {
            let nf = if set {
                f | UF_NOHISTORY
            } else {
                f & !UF_NOHISTORY
            };
            t.call(&format!("setflags {nf}"))
                .map(|_| ())
                .map_err(|e| format!("{path}: {}", errtext(&e)))
        });
        if let Err(m) = r {
            let _ = writeln!(err, "hammer: {m}");
            rc = 1;
        }
    }
    rc
}

pub fn lsflags(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    if args.is_empty() {
        let _ = err.write_all(USAGE_LS.as_bytes());
        return 1;
    }
    let mut rc = 0;
    for path in args {
        match flags_of(path) {
            Ok((f, _)) => {
                let what = if f & UF_NOHISTORY != 0 {
                    "nohistory"
                } else {
                    "-"
                };
                let _ = writeln!(out, "{what}\t{path}");
            }
            Err(m) => {
                let _ = writeln!(err, "hammer: {m}");
                rc = 1;
            }
        }
    }
    rc
}
