//! `newfs_hammer(8)`: wires the process's arguments and stdio to
//! `hammer_cli::newfs`. Rust's stdout is line-buffered, so every finished
//! line is out before a later failure ends the run.

use std::io::Write;

fn main() {
    // Arguments that are not UTF-8 are taken lossily rather than aborting.
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let argv0 = args
        .first()
        .cloned()
        .unwrap_or_else(|| "newfs_hammer".into());
    let rest = args.get(1..).unwrap_or(&[]);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut err = std::io::stderr();
    let code = hammer_cli::newfs::main(&argv0, rest, &mut out, &mut err);
    let _ = out.flush();
    std::process::exit(code);
}
