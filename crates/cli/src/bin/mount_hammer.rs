//! `mount_hammer(8)`: wires the process's arguments and stderr to
//! `hammer_cli::mount`, which mounts the volumes through FUSE and serves
//! them (in a daemon unless `-f`).

fn main() {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let code = hammer_cli::mount::main(&args, &mut std::io::stderr());
    std::process::exit(code);
}
