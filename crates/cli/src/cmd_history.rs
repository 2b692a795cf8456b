//! `hammer history[@offset[,length]] path…`: the TIDs at which a file or
//! directory changed, as DragonFly's tool prints them — per path
//! `path<TAB><obj id> clean|dirty {`, one `    <tid> <DD-Mon-YYYY
//! HH:MM:SS>` line per change (local time), `}`. Without an offset the
//! changes are the inode's versions; with `@offset` they are the data
//! records covering that byte, and with `-v` each line also shows
//! `length` bytes (default 32) of that version at the offset. "dirty"
//! means the object has changes not flushed yet (not in the list). The
//! history comes from the mount's daemon (`history` over the control
//! channel, the counterpart of HAMMERIOC_GETHISTORY). Parsing keeps the
//! original's quirks: `history@off,len` applies to every path; a path
//! that does not exist but has `@` after its first character is split
//! there; a path used as is keeps the previous one's offset. Errors are
//! printed on stdout after the path (`path<TAB>No such file or
//! directory`) and the exit status stays 0. `--json` prints one JSON
//! array instead: per path `{"path", "obj_id", "dirty", "versions":
//! [{"tid", "time", "date"}]}` or `{"path", "error"}`.

use crate::common::Opts;
use crate::control::{errtext, hex, request, resolve, Reply};
use crate::timefmt::strftime;
use std::io::{Read, Seek, SeekFrom, Write};

/// C's `strtoll(s, &end, 0)`: the value (None on overflow) and the bytes
/// consumed.
fn strtoll0(s: &str) -> (Option<i64>, usize) {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && (b[i] as char).is_ascii_whitespace() {
        i += 1;
    }
    let neg = i < b.len() && b[i] == b'-';
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let (radix, start) = if b[i..].starts_with(b"0x") || b[i..].starts_with(b"0X") {
        if b.len() > i + 2 && (b[i + 2] as char).is_ascii_hexdigit() {
            (16, i + 2)
        } else {
            (10, i)
        }
    } else if b[i..].starts_with(b"0") {
        (8, i)
    } else {
        (10, i)
    };
    let mut j = start;
    let mut v: i128 = 0;
    let mut overflow = false;
    while j < b.len() && (b[j] as char).is_digit(radix) {
        v = v * radix as i128 + (b[j] as char).to_digit(radix).unwrap_or(0) as i128;
        if v > i64::MAX as i128 + 1 {
            overflow = true;
            v = i64::MAX as i128 + 1;
        }
        j += 1;
    }
    if j == start && radix != 8 {
        return (Some(0), 0);
    }
    let v = if neg { -v } else { v };
    if overflow || v > i64::MAX as i128 || v < i64::MIN as i128 {
        return (None, j);
    }
    (Some(v as i64), j)
}

/// `@offset[,length]` into (offset, length); -1 offset means the inode's
/// history. `Err` is the message of the original's err(1).
fn parse_attr(s: &str) -> Result<(i64, i64), String> {
    let (mut off, mut len) = (-1i64, 32i64);
    let Some(rest) = s.strip_prefix('@') else {
        return Ok((off, len));
    };
    let (v, used) = strtoll0(rest);
    match v {
        Some(v) => off = v,
        None => return Err(format!("@{}: Numerical result out of range", &rest[..used])),
    }
    if let Some(lrest) = rest[used..].strip_prefix(',') {
        let (l, _) = strtoll0(lrest);
        match l {
            Some(l) if l >= 0 => len = l,
            Some(_) => {}
            None => return Err(format!(",{lrest}: Numerical result out of range")),
        }
    }
    Ok((off, len))
}

/// Up to `len` bytes of `path` as of `tid` at `off`, printable ASCII kept.
fn dump(path: &str, tid: u64, off: i64, len: i64) -> String {
    let p = format!("{path}@@0x{tid:016x}");
    let Ok(mut f) = std::fs::File::open(p) else {
        return String::new();
    };
    if f.seek(SeekFrom::Start(off as u64)).is_err() {
        return String::new();
    }
    let mut buf = Vec::new();
    let _ = f.take(len as u64).read_to_end(&mut buf);
    buf.iter()
        .map(|&c| {
            if (0x20..0x7f).contains(&c) {
                c as char
            } else {
                '.'
            }
        })
        .collect()
}

/// One history request (the first page, which holds everything).
pub fn query(path: &str, atkey: Option<(i64, i64)>, beg: u64, end: u64) -> std::io::Result<Reply> {
    let t = resolve(path).map_err(|(_, e)| e)?;
    query_rel(&t.socket, &t.rel, atkey, beg, end)
}

/// [`query`] for a path already made relative to its mount's root.
pub fn query_rel(
    socket: &std::path::Path,
    rel: &[u8],
    atkey: Option<(i64, i64)>,
    beg: u64,
    end: u64,
) -> std::io::Result<Reply> {
    let (a, k, n) = match atkey {
        Some((k, n)) => (1, k, n),
        None => (0, 0, 0),
    };
    // Rooted, so the mount's root is a non-empty word too.
    let mut rooted = b"/".to_vec();
    rooted.extend_from_slice(rel);
    let rel = &rooted[..];
    request(
        socket,
        &format!(
            "history {} {a} 0x{:x} 0x{:x} 0x{beg:x} 0x{end:x}",
            hex(rel),
            k as u64,
            n as u64
        ),
    )
}

/// The `(tid, seconds)` entries of a reply.
pub fn entries(r: &Reply) -> Vec<(u64, u32)> {
    r.all("h")
        .filter_map(|h| {
            let (t, ts) = h.split_once(' ')?;
            Some((
                u64::from_str_radix(t.trim_start_matches("0x"), 16).ok()?,
                ts.parse().ok()?,
            ))
        })
        .collect()
}

pub fn run(
    opts: &Opts,
    json: bool,
    offset_str: &str,
    args: &[String],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let mut state = (-1i64, 32i64);
    let global = !offset_str.is_empty();
    if global {
        match parse_attr(offset_str) {
            Ok(s) => state = s,
            Err(m) => {
                let _ = writeln!(err, "hammer: {m}");
                return 1;
            }
        }
    }
    let mut docs = Vec::new();
    for word in args {
        let mut path = word.clone();
        if !global && std::fs::metadata(word).is_err() {
            // `@` after the first byte (a byte search: names need not be
            // ASCII, and `@` is never inside a UTF-8 sequence).
            let at = word.bytes().skip(1).position(|c| c == b'@').map(|i| i + 1);
            if let Some(i) = at {
                path = word[..i].to_string();
                match parse_attr(&word[i..]) {
                    Ok(s) => state = s,
                    Err(m) => {
                        let _ = writeln!(err, "hammer: {m}");
                        return 1;
                    }
                }
            }
        }
        let (off, len) = state;
        let atkey = (off >= 0).then_some((off, off.saturating_add(1)));
        let r = std::fs::File::open(&path).and_then(|_| query(&path, atkey, 0, u64::MAX));
        if json {
            docs.push(match &r {
                Ok(r) => serde_json::json!({
                    "path": path,
                    "obj_id": format!("{:016x}", r.num("obj").unwrap_or(0) as u64),
                    "dirty": r.get("dirty") == Some("1"),
                    "versions": entries(r).iter().map(|(t, ts)| serde_json::json!({
                        "tid": format!("0x{t:016x}"),
                        "time": ts,
                        "date": strftime("%d-%b-%Y %H:%M:%S", *ts as i64),
                    })).collect::<Vec<_>>(),
                }),
                Err(e) => serde_json::json!({"path": path, "error": errtext(e)}),
            });
            continue;
        }
        let _ = write!(out, "{path}\t");
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                let _ = writeln!(out, "{}", errtext(&e));
                continue;
            }
        };
        let state = if r.get("dirty") == Some("1") {
            "dirty"
        } else {
            "clean"
        };
        let _ = writeln!(out, "{:016x} {state} {{", r.num("obj").unwrap_or(0) as u64);
        for (tid, ts) in entries(&r) {
            let _ = write!(
                out,
                "    {tid:016x} {}",
                strftime("%d-%b-%Y %H:%M:%S", ts as i64)
            );
            if off >= 0 && opts.verbose > 0 {
                let _ = write!(out, " '{}'", dump(&path, tid, off, len));
            }
            let _ = writeln!(out);
        }
        let _ = writeln!(out, "}}");
    }
    if json {
        let _ = writeln!(out, "{}", serde_json::Value::Array(docs));
    }
    let _ = out.flush();
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attrs() {
        assert_eq!(parse_attr(""), Ok((-1, 32)));
        assert_eq!(parse_attr("@10"), Ok((10, 32)));
        assert_eq!(parse_attr("@0x10,8"), Ok((16, 8)));
        assert_eq!(parse_attr("@010,-3"), Ok((8, 32)));
        assert_eq!(parse_attr("@-1"), Ok((-1, 32)));
        assert!(parse_attr("@99999999999999999999").is_err());
        assert_eq!(parse_attr("@@0x10"), Ok((0, 32)));
    }
}
