//! `hammer synctid <filesystem> [quick]`: flushes the mounted filesystem
//! holding the path and prints the flush's TID as `0x%016x`, which names
//! exactly the state just made durable (`file@@0x<tid>`). Before asking the
//! daemon (control channel, [`crate::control`]) it pushes the kernel's
//! dirty pages with syncfs(2), so what was written through the page cache
//! is in the flush. DragonFly's default makes two flushes and `quick` one;
//! ours make one flush either way because it is final when it returns (see
//! `control_server`). Off hammerfs it fails as DragonFly's does on a file
//! that is not on HAMMER: `Synctid <path> failed: Inappropriate ioctl for
//! device`, exit 1.

use crate::control::{errtext, resolve, syncfs};
use std::io::Write;

const USAGE: &str = "hammer synctid <filesystem> [quick]\n";

pub fn main(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let quick = match args {
        [_] => false,
        [_, q] if q == "quick" => true,
        _ => {
            let _ = err.write_all(USAGE.as_bytes());
            return 1;
        }
    };
    let fs = &args[0];
    let fail = |err: &mut dyn Write, msg: String| {
        let _ = writeln!(err, "hammer: {msg}");
        1
    };
    let t = match resolve(fs) {
        Ok(t) => t,
        Err((true, e)) => return fail(err, format!("Unable to open {fs}: {}", errtext(&e))),
        Err((false, e)) => return fail(err, format!("Synctid {fs} failed: {}", errtext(&e))),
    };
    let r = syncfs(&t.file).and_then(|_| t.call(if quick { "synctid quick" } else { "synctid" }));
    let tid = match r.map(|r| r.num("tid")) {
        Ok(Ok(tid)) => tid as u64,
        Ok(Err(e)) => return fail(err, format!("Synctid {fs} failed: {e}")),
        Err(e) => return fail(err, format!("Synctid {fs} failed: {}", errtext(&e))),
    };
    let _ = writeln!(out, "0x{tid:016x}");
    let _ = out.flush();
    0
}
