//! `undo(1)`: see `hammer_cli::undo`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let code = hammer_cli::undo::main(&args, &mut out, &mut std::io::stderr());
    let _ = std::io::Write::flush(&mut out);
    drop(out);
    std::process::exit(code);
}
