//! `undo(1)`: recover or compare earlier versions of a file, as
//! DragonFly's tool does, on a hammerfs mount.
//!
//! Versions are found the way the original finds them: the history of the
//! file's directory (the TIDs of every entry's creation and deletion, via
//! the control channel's `history` at key 0 onward), then for each of
//! those TIDs the data history of `file@@0x<tid>` (so a file removed or
//! replaced is still followed), then the data history of the file itself.
//! Versions are kept by TID (first seen wins), in TID order; identical
//! contents are not merged. A "version" then is read through the mount's
//! history path `file@@0x<tid>`. Modes: dump one version (default: the one
//! before the newest; `-t` picks a TID or an index counted back from the
//! newest), `-a` every version (`>>> file NNNN 0x<tid> <date>` headers),
//! `-i` list them, `-d`/`-D` diffs through `/usr/bin/diff -N -r -u`, `-u`
//! writes `file.undo.NNNN`, `-o` a named output. The exit status is 0 once
//! the paths were processed, as the original's; usage errors exit 1.

use crate::cmd_history::{entries, query_rel};
use crate::common::strtoull0;
use crate::control::{errtext, resolve};
use crate::timefmt::strftime;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

const USAGE: &str = "undo [-adDiuv] [-o outfile] [-t transaction-id] [-t transaction-id] path...\n\
\x20   -a       Iterate all historical segments\n\
\x20   -d       Forward diff\n\
\x20   -D       Reverse diff\n\
\x20   -i       Dump history transaction ids\n\
\x20   -u       Generate .undo files\n\
\x20   -v       Verbose\n\
\x20   -o file  Output to the specified file\n\
\x20   -t TID   Retrieve as of transaction-id, TID\n\
\x20            (a second `-t TID' to diff two)\n\
\x20   transaction ids must be prefixed with 0x, and\n\
\x20   otherwise may specify an index starting at 0\n\
\x20   and iterating backwards through the history.\n";

const MAX_TID: u64 = u64::MAX;
const MAX_KEY: i64 = i64::MAX;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Type {
    File,
    Diff,
    RDiff,
    History,
}

/// A `-t` argument: a TID, or an index back from the newest version.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Pick {
    None,
    Tid(u64),
    Index(u64),
}

fn parse_pick(s: &str) -> Pick {
    let v = strtoull0(s);
    let t = s.strip_prefix('+').unwrap_or(s).as_bytes();
    let is_index = !t.is_empty() && t[0].is_ascii_digit() && t.get(1) != Some(&b'x');
    if is_index {
        Pick::Index(v)
    } else if v == 0 {
        Pick::None
    } else {
        Pick::Tid(v)
    }
}

/// A version: when, and the object it belonged to (an inode change shows
/// as a different object).
#[derive(Clone, Copy, Debug)]
struct Ver {
    time32: u32,
    obj: u64,
}

struct Ctx<'a> {
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    typ: Type,
    undo_files: bool,
    outfile: Option<String>,
    verbose: bool,
    mult: bool,
}

/// Data (or entry) history of one path at every key, into `set`.
fn collect(socket: &std::path::Path, rel: &[u8], set: &mut BTreeMap<u64, Ver>) {
    let (mut key, mut nxt) = (0i64, MAX_KEY);
    loop {
        let Ok(r) = query_rel(socket, rel, Some((key, nxt)), 0, MAX_TID) else {
            return;
        };
        let obj = r.num("obj").unwrap_or(0) as u64;
        for (tid, time32) in entries(&r) {
            set.entry(tid).or_insert(Ver { time32, obj });
        }
        if r.get("eof") == Some("1") || r.get("next_key") != Some("1") {
            return;
        }
        let n = r.num("nxt_key").unwrap_or(MAX_KEY);
        if n <= key {
            return;
        }
        key = n;
        nxt = MAX_KEY;
    }
}

fn date(t: u32) -> String {
    strftime("%d-%b-%Y %H:%M:%S", t as i64)
}

fn ipath(path: &str, tid: u64) -> String {
    if tid == 0 {
        path.to_string()
    } else {
        format!("{path}@@0x{tid:016x}")
    }
}

/// Versions of one file as the daemon streams them (`read-asof`), in the
/// order asked for.
struct Prefetch {
    stream: crate::control::Stream,
}

impl Prefetch {
    /// Asks for `name` in the directory `t` names, as of each TID.
    fn start(t: &crate::control::Target, name: &str, tids: &[u64]) -> Option<Prefetch> {
        let mut line = format!("read-asof {}", crate::control::hex(name.as_bytes()));
        for t in tids {
            line.push_str(&format!(" 0x{t:x}"));
        }
        // A request line holds at most 1 MiB; very long histories are
        // read through the mount instead.
        if line.len() >= crate::control::MAX_REQUEST {
            return None;
        }
        t.stream(&line).ok().map(|stream| Prefetch { stream })
    }

    /// The next version's contents: `Some(None)` when it cannot be read
    /// (no such file then, not a regular file, too big), `None` when the
    /// stream broke (the caller reads through the mount instead).
    fn next(&mut self) -> Option<Option<Vec<u8>>> {
        let head = self.stream.next_frame().ok()??;
        head.get("v")?;
        if head.get("errno").is_some() {
            return Some(None);
        }
        let size: usize = head.get("size")?.parse().ok()?;
        let mut data = Vec::with_capacity(size);
        while data.len() < size {
            let f = self.stream.next_frame().ok()??;
            data.extend_from_slice(&crate::control::unhex(f.get("d")?)?);
        }
        Some(Some(data))
    }
}

/// Output for `path` as of `ts1` (through `ts2` for diffs). `pre`: the
/// contents of `path` as of `ts1`, already read (`Some(None)`: it could
/// not be).
fn generate(
    c: &mut Ctx,
    path: &str,
    ts1: (u64, u32),
    ts2: (u64, u32),
    idx: usize,
    inochg: bool,
    pre: Option<Option<Vec<u8>>>,
) {
    let p1 = ipath(path, ts1.0);
    let p2 = ipath(path, ts2.0);
    let exists = |p: &str| std::fs::symlink_metadata(p).is_ok();
    // Reading the version first answers "does it exist" for the common
    // case in one lookup instead of two (each is a FUSE round trip).
    let content = match pre {
        Some(c) => c,
        None if c.typ == Type::File => std::fs::read(&p1).ok(),
        None => None,
    };
    if content.is_none() && !exists(&p1) && !exists(&p2) {
        if idx == 0 || c.verbose {
            let _ = writeln!(c.err, "Unable to access either {p1} or {p2}");
        }
        return;
    }
    // Where the output goes.
    let mut file: Option<std::fs::File> = None;
    if let Some(o) = &c.outfile {
        let name = if c.mult {
            let base = path.rsplit('/').next().unwrap_or(path);
            o.replace("%%", "\u{0}")
                .replace("%s", base)
                .replace('\u{0}', "%")
        } else {
            o.clone()
        };
        match std::fs::File::create(&name) {
            Ok(f) => file = Some(f),
            Err(e) => {
                let _ = writeln!(c.err, "undo: {name}: {}", errtext(&e));
                std::process::exit(1);
            }
        }
    } else if c.undo_files {
        let name = format!("{path}.undo.{idx:04}");
        match std::fs::File::create(&name) {
            Ok(f) => file = Some(f),
            Err(e) => {
                let _ = writeln!(c.err, "undo: {name}: {}", errtext(&e));
                std::process::exit(1);
            }
        }
    } else if c.typ == Type::File {
        let _ = write!(
            c.out,
            "\n>>> {path} {idx:04} 0x{:016x} {}\n\n",
            ts1.0,
            date(ts1.1)
        );
    }
    let mut sink: Vec<u8> = Vec::new();
    match c.typ {
        Type::File => {
            if let Some(b) = content {
                sink = b;
            }
        }
        Type::Diff | Type::RDiff => {
            let (a, b) = if c.typ == Type::Diff {
                let _ = writeln!(c.out, "diff -N -r -u {p1} {p2} (to {})", date(ts2.1));
                (&p1, &p2)
            } else {
                let _ = writeln!(c.out, "diff -N -r -u {p2} {p1}");
                (&p2, &p1)
            };
            let _ = c.out.flush();
            if let Ok(o) = std::process::Command::new("/usr/bin/diff")
                .args(["-N", "-r", "-u", a, b])
                .stderr(std::process::Stdio::inherit())
                .output()
            {
                sink = o.stdout;
            }
        }
        Type::History => {
            let mut line = format!("\t0x{:016x} {}", ts1.0, date(ts1.1));
            if inochg {
                line.push_str(" inode-change");
            }
            if !exists(&p1) {
                line.push_str(" file-deleted");
            }
            let _ = writeln!(c.out, "{line}");
        }
    }
    match file.as_mut() {
        Some(f) => {
            let _ = f.write_all(&sink);
        }
        None => {
            let _ = c.out.write_all(&sink);
        }
    }
}

/// Versions of `path`, in TID order, and the target of its directory.
fn versions(path: &str) -> (BTreeMap<u64, Ver>, Option<crate::control::Target>) {
    let mut set = BTreeMap::new();
    let dir = match path.rfind('/') {
        Some(i) => &path[..i],
        None => ".",
    };
    let base = match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    };
    let Ok(t) = resolve(dir) else {
        return (set, None);
    };
    let dir_rel = t.rel.clone();
    let mut file_rel = dir_rel.clone();
    if !file_rel.is_empty() {
        file_rel.push(b'/');
    }
    file_rel.extend_from_slice(base.as_bytes());
    let mut dir_set = BTreeMap::new();
    collect(&t.socket, &dir_rel, &mut dir_set);
    for tid in dir_set.keys() {
        let p = format!("{path}@@0x{tid:016x}");
        if let Ok(m) = std::fs::metadata(&p) {
            use std::os::unix::fs::MetadataExt;
            if m.mode() & libc::S_IFIFO != 0 {
                eprintln!("Warning: fake transaction id {path}@@0x{tid:016x}");
                continue;
            }
        } else {
            continue;
        }
        let mut rel = file_rel.clone();
        rel.extend_from_slice(format!("@@0x{tid:016x}").as_bytes());
        collect(&t.socket, &rel, &mut set);
    }
    if std::fs::symlink_metadata(path).is_ok() {
        collect(&t.socket, &file_rel, &mut set);
    }
    (set, Some(t))
}

fn pick(set: &BTreeMap<u64, Ver>, p: Pick) -> (u64, u32) {
    match p {
        Pick::None => (0, 0),
        Pick::Tid(t) => (t, 0),
        Pick::Index(n) => set
            .iter()
            .rev()
            .nth(n as usize)
            .map(|(t, v)| (*t, v.time32))
            .unwrap_or((0, 0)),
    }
}

pub fn main(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let mut typ = Type::File;
    let mut iterate = false;
    let mut undo_files = false;
    let mut verbose = false;
    let mut outfile = None;
    let mut picks: Vec<String> = Vec::new();
    let mut paths = Vec::new();
    let usage = |err: &mut dyn Write| {
        let _ = err.write_all(USAGE.as_bytes());
        1
    };
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            paths.extend(args[i..].iter().cloned());
            break;
        }
        if !a.starts_with('-') || a.len() == 1 {
            paths.push(a.clone());
            continue;
        }
        let chars: Vec<char> = a[1..].chars().collect();
        let mut j = 0;
        while j < chars.len() {
            let ch = chars[j];
            j += 1;
            match ch {
                'a' => iterate = true,
                // As the original: -d and -D override (a second -t implies
                // -d); only -i insists on coming first.
                'd' => typ = Type::Diff,
                'D' => typ = Type::RDiff,
                'i' => {
                    if typ != Type::File {
                        return usage(err);
                    }
                    typ = Type::History;
                    iterate = true;
                }
                'u' => undo_files = true,
                'v' => verbose = true,
                'o' | 't' => {
                    let rest: String = chars[j..].iter().collect();
                    j = chars.len();
                    let v = if !rest.is_empty() {
                        rest
                    } else if i < args.len() {
                        i += 1;
                        args[i - 1].clone()
                    } else {
                        let _ = writeln!(err, "undo: option requires an argument -- '{ch}'");
                        return usage(err);
                    };
                    if ch == 'o' {
                        outfile = Some(v);
                    } else {
                        if picks.len() == 2 {
                            return usage(err);
                        }
                        picks.push(v);
                        if picks.len() == 2 && typ == Type::File {
                            typ = Type::Diff;
                        }
                    }
                }
                _ => {
                    let _ = writeln!(err, "undo: invalid option -- '{ch}'");
                    return usage(err);
                }
            }
        }
    }
    if outfile.is_some() && undo_files {
        let _ = err.write_all(b"The -o option may not be combined with -u\n");
        return usage(err);
    }
    if paths.is_empty() {
        return usage(err);
    }
    let mult = paths.len() > 1;
    if mult {
        if let Some(o) = &outfile {
            let mut s = 0;
            let mut it = o.chars().peekable();
            let mut bad = false;
            while let Some(ch) = it.next() {
                if ch == '%' {
                    match it.next() {
                        Some('%') => {}
                        Some('s') => s += 1,
                        _ => bad = true,
                    }
                }
            }
            if bad || s > 1 {
                let _ = err.write_all(b"Malformed output template\n");
                return usage(err);
            }
        }
    }
    let p1 = picks.first().map(|s| parse_pick(s)).unwrap_or(Pick::None);
    let p2 = picks.get(1).map(|s| parse_pick(s)).unwrap_or(Pick::None);
    let mut c = Ctx {
        out,
        err,
        typ,
        undo_files,
        outfile,
        verbose,
        mult,
    };
    for path in &paths {
        let (set, dir) = versions(path);
        if iterate {
            if set.is_empty() {
                let _ = writeln!(c.out, "{path}: No UNDO history found");
                continue;
            }
            let _ = writeln!(c.out, "{path}: ITERATE ENTIRE HISTORY");
            let list: Vec<(u64, Ver)> = set.iter().map(|(t, v)| (*t, *v)).collect();
            // Dumping every version: the daemon streams them all at once
            // (one connection, no round trip per version); anything it
            // cannot give is read through the mount as before.
            let name = path.rsplit('/').next().unwrap_or(path);
            let mut pre = match (&dir, c.typ) {
                (Some(t), Type::File) if !name.is_empty() && name != "." && name != ".." => {
                    let tids: Vec<u64> = list.iter().map(|(t, _)| *t).collect();
                    Prefetch::start(t, name, &tids)
                }
                _ => None,
            };
            let next = |pre: &mut Option<Prefetch>| {
                let v = pre.as_mut().and_then(Prefetch::next);
                if v.is_none() {
                    *pre = None;
                }
                v
            };
            let mut inochg = false;
            for k in 1..list.len() {
                let (a, b) = (list[k - 1], list[k]);
                let content = next(&mut pre);
                generate(
                    &mut c,
                    path,
                    (a.0, a.1.time32),
                    (b.0, b.1.time32),
                    k,
                    inochg,
                    content,
                );
                inochg = b.1.obj != a.1.obj;
            }
            if c.typ != Type::Diff && c.typ != Type::RDiff {
                let last = list[list.len() - 1];
                let content = next(&mut pre);
                generate(
                    &mut c,
                    path,
                    (last.0, last.1.time32),
                    (MAX_TID, 0),
                    list.len(),
                    inochg,
                    content,
                );
            }
        } else {
            let mut ts1 = pick(&set, p1);
            let mut ts2 = pick(&set, p2);
            if ts1.0 == 0 {
                let mut it = set.iter().rev();
                ts2 = it.next().map(|(t, v)| (*t, v.time32)).unwrap_or((0, 0));
                ts1 = it.next().map(|(t, v)| (*t, v.time32)).unwrap_or((0, 0));
            }
            if ts1.0 != 0 {
                let saved = c.mult;
                c.mult = false;
                generate(&mut c, path, ts1, ts2, 0, false, None);
                c.mult = saved;
            } else {
                let _ = writeln!(c.out, "{path}: No UNDO history found");
            }
        }
    }
    let _ = c.out.flush();
    0
}

/// For tests: where an output template would write for `path`.
pub fn template_name(template: &str, path: &str) -> PathBuf {
    let base = path.rsplit('/').next().unwrap_or(path);
    PathBuf::from(
        template
            .replace("%%", "\u{0}")
            .replace("%s", base)
            .replace('\u{0}', "%"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks() {
        assert_eq!(parse_pick("0x000000010b432ee0"), Pick::Tid(0x10b432ee0));
        assert_eq!(parse_pick("5"), Pick::Index(5));
        assert_eq!(parse_pick("+2"), Pick::Index(2));
        assert_eq!(parse_pick("010"), Pick::Index(8));
        assert_eq!(parse_pick("0X1F"), Pick::Index(31));
        assert_eq!(parse_pick("junk"), Pick::None);
        assert_eq!(
            template_name("%s.old%%", "/a/b.txt"),
            PathBuf::from("b.txt.old%")
        );
    }
}
