//! `hammer config [<filesystem> [<configfile>]]` and `hammer viconfig
//! [<filesystem>]`: the cleanup configuration kept in the PFS's metadata
//! (a CONFIG record, `Fs::config`/`Fs::set_config` through the control
//! channel), as DragonFly's tool shows and edits it. Without a file,
//! `config` prints the stored text; with one it stores the file (at most
//! 1023 bytes). `viconfig` opens the text (or commented defaults) in
//! `$EDITOR`, `$VISUAL` or `vi` and stores it when the file changed.
//! Messages and exit codes follow the original.

use crate::control::{errtext, hex, resolve, unhex, Target};
use std::io::{Read, Write};

/// The configuration `hammer cleanup` stores when there is none.
pub const DEFAULT_CONFIG: &str = "snapshots 1d 60d\n\
prune     1d 5m\n\
rebalance 1d 5m\n\
#dedup\t   1d 5m\n\
reblock   1d 5m\n\
recopy    30d 10m\n";

/// For the scratch directories DragonFly does not snapshot.
pub const DEFAULT_CONFIG_NOSNAP: &str = "snapshots 0d 0d\n\
prune     1d 5m\n\
rebalance 1d 5m\n\
#dedup\t   1d 5m\n\
reblock   1d 5m\n\
recopy    30d 10m\n";

const VICONFIG_DEFAULT: &str = "# No configuration present, here are some defaults\n\
# you can uncomment.  Also remove these instructions\n\
#\n\
#snapshots 1d 60d\n\
#prune     1d 5m\n\
#rebalance 1d 5m\n\
#dedup     1d 5m\n\
#reblock   1d 5m\n\
#recopy    30d 10m\n";

const LIMIT: usize = 1023;
/// Longest configuration text the metadata holds.
pub const DEFAULT_LIMIT: usize = LIMIT;

/// The stored text; `Ok(None)` when there is none.
pub fn get(t: &Target) -> std::io::Result<Option<Vec<u8>>> {
    let r = t.call("config-get")?;
    Ok(r.get("text").and_then(unhex))
}

pub fn set(t: &Target, text: &[u8]) -> std::io::Result<()> {
    t.call(&format!("config-set {}", hex(text))).map(|_| ())
}

fn open(fs: &str, what: &str, err: &mut dyn Write) -> Result<Target, i32> {
    match resolve(fs) {
        Ok(t) => Ok(t),
        Err((true, e)) => {
            let _ = writeln!(
                err,
                "hammer: hammer {what}: unable to open directory {fs}: {}",
                errtext(&e)
            );
            Err(2)
        }
        Err((false, _)) => {
            let _ = writeln!(err, "hammer: hammer {what}: not a HAMMER filesystem!");
            Err(2)
        }
    }
}

pub fn config(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let fs = args.first().map(String::as_str).unwrap_or(".");
    let t = match open(fs, "config", err) {
        Ok(t) => t,
        Err(c) => return c,
    };
    match args.get(1) {
        None => match get(&t) {
            Ok(Some(text)) => {
                let _ = out.write_all(&text);
                let _ = out.flush();
                0
            }
            Ok(None) => {
                let _ = writeln!(err, "hammer: hammer config: no configuration found");
                2
            }
            Err(_) => {
                let _ = writeln!(err, "hammer: hammer config: config_get");
                2
            }
        },
        Some(file) => {
            let mut text = Vec::new();
            let r = std::fs::File::open(file)
                .and_then(|f| f.take(LIMIT as u64 + 1).read_to_end(&mut text));
            if let Err(e) = r {
                let _ = writeln!(err, "hammer: hammer config: {file}: {}", errtext(&e));
                return 2;
            }
            if text.len() >= LIMIT {
                let _ = writeln!(
                    err,
                    "hammer: hammer config: config file too big, limit {LIMIT} bytes"
                );
                return 2;
            }
            if let Err(e) = set(&t, &text) {
                let _ = writeln!(err, "hammer: hammer config: {}", errtext(&e));
                return 2;
            }
            0
        }
    }
}

pub fn viconfig(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    if args.len() > 1 {
        let _ = writeln!(err, "hammer: hammer viconfig: 0 or 1 argument (<fs>) only");
        return 1;
    }
    let fs = args.first().map(String::as_str).unwrap_or(".");
    let t = match open(fs, "viconfig", err) {
        Ok(t) => t,
        Err(c) => return c,
    };
    let text = match get(&t) {
        Ok(Some(t)) => t,
        Ok(None) => VICONFIG_DEFAULT.as_bytes().to_vec(),
        Err(e) => {
            let _ = writeln!(
                err,
                "hammer: hammer viconfig: read config failed error: {}",
                errtext(&e)
            );
            return 2;
        }
    };
    let tmp = match tempfile_in_tmp(&text) {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(err, "hammer: hammer viconfig: {}", errtext(&e));
            return 2;
        }
    };
    let before = std::fs::metadata(&tmp).and_then(|m| m.modified()).ok();
    let editor = std::env::var("EDITOR")
        .or_else(|_| std::env::var("VISUAL"))
        .unwrap_or_else(|_| "vi".into());
    let status = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(&tmp)
        .status();
    let after = std::fs::metadata(&tmp).and_then(|m| m.modified()).ok();
    let rc = if status.is_err() || before == after {
        let _ = writeln!(out, "hammer viconfig: no changes were made");
        0
    } else {
        match std::fs::read(&tmp) {
            Ok(b) if b.len() >= LIMIT => {
                let _ = writeln!(
                    err,
                    "hammer: hammer viconfig: config file too big, limit {LIMIT} bytes"
                );
                2
            }
            Ok(b) => match set(&t, &b) {
                Ok(()) => 0,
                Err(e) => {
                    let _ = writeln!(err, "hammer: hammer viconfig: {}", errtext(&e));
                    2
                }
            },
            Err(e) => {
                let _ = writeln!(err, "hammer: hammer viconfig: {}", errtext(&e));
                2
            }
        }
    };
    let _ = std::fs::remove_file(&tmp);
    let _ = out.flush();
    rc
}

/// `/tmp/configXXXXXXXXXX` holding `text`, its time set one second back so
/// any edit shows as a change.
fn tempfile_in_tmp(text: &[u8]) -> std::io::Result<std::path::PathBuf> {
    let mut rnd = [0u8; 8];
    let _ = getrandom::fill(&mut rnd);
    let name: String = rnd.iter().map(|b| format!("{:02x}", b)).collect();
    let p = std::path::PathBuf::from(format!("/tmp/config{}", &name[..10]));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&p)?;
    f.write_all(text)?;
    let back = std::time::SystemTime::now() - std::time::Duration::from_secs(1);
    f.set_modified(back)?;
    Ok(p)
}
