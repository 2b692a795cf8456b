//! `mount_hammer(8)`: wires the process's arguments and stderr to
//! `hammer_cli::mount`, which mounts the volumes through FUSE and serves
//! them (in a daemon unless `-f`).
//!
//! Installed (or linked) as `/sbin/mount.hammer` it is also the helper
//! `mount(8)` runs for `mount -t hammer vol dir` and for `hammer` lines in
//! /etc/fstab: mount(8) calls it as `mount.hammer SPEC DIR [-sfnv] [-o
//! OPTIONS] [-t TYPE]`; the options go to the mount unchanged, less the
//! ones that only concern fstab (`defaults`, `noauto`, `x-*`, …). `-f`
//! (fake) only checks the arguments.

fn main() {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let name = std::path::Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name == "mount.hammer" {
        helper_main(args);
    }
    let code = hammer_cli::mount::main(&args, &mut std::io::stderr());
    std::process::exit(code);
}

/// `mount.hammer SPEC DIR [-sfnv] [-o OPTIONS] [-t TYPE]`, as mount(8) calls a
/// helper: translated to `mount_hammer [-o OPTIONS] SPEC DIR`.
fn helper_main(args: Vec<String>) -> ! {
    let mut positional = Vec::new();
    let mut opts: Vec<String> = Vec::new();
    let mut fake = false;
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        match a.as_str() {
            "-o" => {
                if let Some(o) = args.get(i + 1) {
                    opts.push(o.clone());
                }
                i += 1;
            }
            "-t" => i += 1,
            "-f" => fake = true,
            "-n" | "-s" | "-v" => {}
            s if s.starts_with("-o") => opts.push(s[2..].to_string()),
            s if s.starts_with('-') && s.len() > 1 => {
                fake |= s.contains('f');
            }
            _ => positional.push(a.clone()),
        }
        i += 1;
    }
    if positional.len() != 2 {
        eprintln!("mount.hammer: usage: mount.hammer vol[:vol...] dir [-o options]");
        std::process::exit(1);
    }
    // Options mount(8) passes that are about mtab/fstab, not the filesystem.
    let keep: Vec<String> = opts
        .iter()
        .flat_map(|o| o.split(','))
        .filter(|o| {
            !o.is_empty()
                && !matches!(
                    *o,
                    "defaults"
                        | "auto"
                        | "noauto"
                        | "user"
                        | "nouser"
                        | "users"
                        | "_netdev"
                        | "nofail"
                )
                && !o.starts_with("x-")
        })
        .map(str::to_string)
        .collect();
    let mut argv = Vec::new();
    if !keep.is_empty() {
        argv.push("-o".to_string());
        argv.push(keep.join(","));
    }
    argv.push(positional[0].clone());
    argv.push(positional[1].clone());
    if fake {
        std::process::exit(0);
    }
    let code = hammer_cli::mount::main(&argv, &mut std::io::stderr());
    std::process::exit(code);
}
