//! The hammerfs command-line tools: `newfs_hammer`, `hammer(8)` and
//! `mount_hammer`. Each `hammer` directive is a module writing to injected
//! writers, so tests capture its output byte for byte; the binaries only
//! wire up stdio and exit codes. Output formats follow DragonFly's tools
//! exactly.

pub mod cmd_blockmap;
pub mod cmd_checkmap;
pub mod cmd_cleanup;
pub mod cmd_config;
pub mod cmd_flags;
pub mod cmd_history;
pub mod cmd_info;
pub mod cmd_namekey;
pub mod cmd_pfs;
pub mod cmd_prune;
pub mod cmd_reblock;
pub mod cmd_show;
pub mod cmd_show_undo;
pub mod cmd_snapshot;
pub mod cmd_stats;
pub mod cmd_synctid;
pub mod cmd_version;
pub mod common;
pub mod control;
pub mod control_server;
pub mod hammer;
pub mod mount;
pub mod newfs;
pub mod timefmt;
pub mod undo;

/// An error that ends a command: printed as `<prog>: <message>`, exit 1.
#[derive(Debug)]
pub struct CliError(pub String);

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<hammer_engine::Error> for CliError {
    fn from(e: hammer_engine::Error) -> Self {
        CliError(e.to_string())
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError(e.to_string())
    }
}

pub type CliResult<T> = Result<T, CliError>;

/// C's `strtol(s, NULL, 0)` for a whole argument: `None` unless the whole
/// text is a number (decimal, `0x` hex or leading-0 octal).
pub fn cmd_prune_strtol(s: &str) -> Option<i64> {
    let (neg, t) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()?
    } else if t.len() > 1 && t.starts_with('0') {
        i64::from_str_radix(&t[1..], 8).ok()?
    } else {
        t.parse::<i64>().ok()?
    };
    Some(if neg { -v } else { v })
}
