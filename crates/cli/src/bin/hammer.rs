//! `hammer(8)`.

use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let argv0 = args.first().cloned().unwrap_or_else(|| "hammer".into());
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut err = std::io::stderr();
    let code = hammer_cli::hammer::main(&argv0, &args[1..], &mut out, &mut err);
    let _ = out.flush();
    drop(out);
    std::process::exit(code);
}
