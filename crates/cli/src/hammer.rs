//! `hammer(8)`: global option parsing (GNU getopt with permutation, as the
//! Linux build of DragonFly's tool behaves) and dispatch to the directive
//! modules. Directives on a mounted filesystem (`synctid`, `info`,
//! `version`, `bstats`/`iostats`/`stats`) reach its daemon over the
//! control channel (`control`).

use crate::cmd_snapshot::Kind as SnapKind;
use crate::cmd_stats::Kind;
use crate::common::{parse_size, Opts};
use crate::{
    cmd_blockmap, cmd_checkmap, cmd_cleanup, cmd_config, cmd_flags, cmd_history, cmd_info,
    cmd_namekey, cmd_pfs, cmd_prune, cmd_reblock, cmd_show, cmd_show_undo, cmd_snapshot, cmd_stats,
    cmd_synctid, cmd_version, CliError,
};
use std::io::Write;

pub const USAGE: &str = include_str!("hammer_usage.txt");
const OPTSTRING: &str = "b:c:de:hf:i:m:p:qrt:v2yABC:FR:S:T:X";

/// Runs `hammer` with `args` (without argv[0]); returns the exit status.
pub fn main(argv0: &str, args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let mut opts = Opts::default();
    let mut positional: Vec<String> = Vec::new();
    let mut json = false;
    let mut i = 0;
    let usage = |err: &mut dyn Write, code: i32| -> i32 {
        let _ = err.write_all(USAGE.as_bytes());
        code
    };
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--json" {
            json = true;
            continue;
        }
        if a == "--" {
            positional.extend(args[i..].iter().cloned());
            break;
        }
        if !a.starts_with('-') || a.len() == 1 {
            positional.push(a.clone());
            continue;
        }
        let chars: Vec<char> = a[1..].chars().collect();
        let mut j = 0;
        while j < chars.len() {
            let c = chars[j];
            j += 1;
            let takes_arg = match OPTSTRING.find(c) {
                Some(p) if c != ':' => OPTSTRING[p + c.len_utf8()..].starts_with(':'),
                _ => {
                    let _ = writeln!(err, "{argv0}: invalid option -- '{c}'");
                    return usage(err, 1);
                }
            };
            let optarg = if takes_arg {
                let rest: String = chars[j..].iter().collect();
                j = chars.len();
                if !rest.is_empty() {
                    Some(rest)
                } else if i < args.len() {
                    i += 1;
                    Some(args[i - 1].clone())
                } else {
                    let _ = writeln!(err, "{argv0}: option requires an argument -- '{c}'");
                    return usage(err, 1);
                }
            } else {
                None
            };
            match c {
                'v' => {
                    if opts.quiet > 0 {
                        opts.quiet -= 1
                    } else {
                        opts.verbose += 1
                    }
                }
                'q' => {
                    if opts.verbose > 0 {
                        opts.verbose -= 1
                    } else {
                        opts.quiet += 1
                    }
                }
                'f' => opts.blkdevs = optarg,
                'c' => opts.cyclefile = optarg,
                'F' => opts.force = true,
                'd' => opts.debug = true,
                't' => match optarg.as_deref().map(str::parse::<u64>) {
                    // 0 means no limit, as alarm(0) does.
                    Some(Ok(n)) => opts.timeout = (n > 0).then_some(n),
                    _ => return usage(err, 1),
                },
                'y' => opts.yes = true,
                'h' => return usage(err, 0),
                'C' => {
                    let v = optarg.unwrap_or_default();
                    let size = v.split(':').next().unwrap_or("");
                    match parse_size(size) {
                        Some(n) => opts.cache_bytes = Some(n as usize),
                        None => return usage(err, 1),
                    }
                }
                'b' | 'S' | 'm' if parse_size(optarg.as_deref().unwrap_or("")).is_none() => {
                    return usage(err, 1);
                }
                _ => {}
            }
        }
    }
    let Some(cmd) = positional.first().cloned() else {
        return usage(err, 1);
    };
    let rest = &positional[1..];
    let r = match cmd.as_str() {
        "namekey1" | "namekey2" | "namekey32" => match rest.first() {
            Some(name) => cmd_namekey::run(&cmd, name.as_bytes(), out).map_err(CliError::from),
            None => return usage(err, 1),
        },
        "show" => cmd_show::run(&opts, rest, out),
        "show-undo" => cmd_show_undo::run(&opts, rest, out),
        "blockmap" => cmd_blockmap::run(&opts, rest, out),
        "checkmap" => cmd_checkmap::run(&opts, rest, out),
        "synctid" => return cmd_synctid::main(rest, out, err),
        "version" => return cmd_version::main(rest, out, err),
        "info" => return cmd_info::main(rest, out, err),
        h if h.starts_with("history") => {
            return cmd_history::run(&opts, json, &h["history".len()..], rest, out, err)
        }
        "snap" => return cmd_snapshot::snap(SnapKind::Snap, rest, out, err),
        "snaplo" => return cmd_snapshot::snap(SnapKind::SnapLo, rest, out, err),
        "snapq" => return cmd_snapshot::snap(SnapKind::SnapQ, rest, out, err),
        "snaprm" => return cmd_snapshot::snaprm(rest, out, err),
        "snapls" => return cmd_snapshot::snapls(rest, json, out, err),
        "snapshot" => return cmd_snapshot::snapshot(rest, out, err),
        "prune" => return cmd_prune::run(&opts, false, rest, out, err),
        "prune-everything" => return cmd_prune::run(&opts, true, rest, out, err),
        "config" => return cmd_config::config(rest, out, err),
        "viconfig" => return cmd_config::viconfig(rest, out, err),
        r if r.starts_with("reblock") => return cmd_reblock::run(&opts, r, rest, out, err),
        "rebalance" => return cmd_reblock::rebalance(&opts, rest, out, err),
        "cleanup" => return cmd_cleanup::run(&opts, rest, out, err),
        "abort-cleanup" => return cmd_cleanup::abort(out),
        "pfs-master" => return cmd_pfs::create(false, rest, out, err),
        "pfs-slave" => return cmd_pfs::create(true, rest, out, err),
        "pfs-update" => return cmd_pfs::update(rest, out, err),
        "pfs-status" => return cmd_pfs::status(rest, out, err),
        "pfs-upgrade" => return cmd_pfs::change_mode(true, rest, out, err),
        "pfs-downgrade" => return cmd_pfs::change_mode(false, rest, out, err),
        "pfs-destroy" => {
            let stdin = std::io::stdin();
            return cmd_pfs::destroy(&opts, rest, &mut stdin.lock(), out, err);
        }
        "chflags" => return cmd_flags::chflags(rest, err),
        "lsflags" => return cmd_flags::lsflags(rest, out, err),
        "bstats" => return cmd_stats::run(Kind::Btree, rest, out, None),
        "iostats" => return cmd_stats::run(Kind::Io, rest, out, None),
        "stats" => return cmd_stats::run(Kind::Both, rest, out, None),
        _ => return usage(err, 1),
    };
    let _ = out.flush();
    match r {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(err, "hammer: {e}");
            1
        }
    }
}
