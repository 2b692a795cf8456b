//! `hammer version <filesystem>`: the on-disk version of the mounted
//! filesystem holding the path, with the range this implementation
//! supports, as DragonFly prints it:
//! `min=1 wip=8 max=7 current=N description="…"` (`wip` is the first
//! version still in development, shown because it is above `max`). Asked
//! of the mount's daemon over the control channel; off hammerfs it fails
//! like DragonFly: `hammer version ioctl: Inappropriate ioctl for device`.

use crate::control::{errtext, resolve};
use std::io::Write;

pub fn main(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let fail = |err: &mut dyn Write, msg: String| {
        let _ = writeln!(err, "hammer: {msg}");
        1
    };
    let [fs] = args else {
        return fail(
            err,
            "hammer version - expected a single <fs> path arg".into(),
        );
    };
    let t = match resolve(fs) {
        Ok(t) => t,
        Err((true, e)) => {
            return fail(
                err,
                format!("hammer version: unable to access {fs}: {}", errtext(&e)),
            )
        }
        Err((false, e)) => return fail(err, format!("hammer version ioctl: {}", errtext(&e))),
    };
    let r = match t.call("version") {
        Ok(r) => r,
        Err(e) => return fail(err, format!("hammer version ioctl: {}", errtext(&e))),
    };
    let n = |k: &str| r.num(k).unwrap_or(0);
    let (min, wip, max, cur) = (n("min"), n("wip"), n("max"), n("current"));
    let wip = if wip > max {
        wip.to_string()
    } else {
        "none".into()
    };
    let _ = writeln!(
        out,
        "min={min} wip={wip} max={max} current={cur} description=\"{}\"",
        r.get("description").unwrap_or("")
    );
    let _ = out.flush();
    0
}
