//! `newfs_hammer(8)`.

use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let argv0 = args
        .first()
        .cloned()
        .unwrap_or_else(|| "newfs_hammer".into());
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut err = std::io::stderr();
    let code = hammer_cli::newfs::main(&argv0, &args[1..], &mut out, &mut err);
    let _ = out.flush();
    std::process::exit(code);
}
