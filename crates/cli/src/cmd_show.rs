//! `hammer -f vols show` (being written).

use crate::common::Opts;
use crate::CliResult;
use std::io::Write;

pub fn run(opts: &Opts, _args: &[String], out: &mut dyn Write) -> CliResult<()> {
    let set = crate::common::open_volumes(opts)?;
    crate::common::print_preamble(out, &set)?;
    Ok(())
}
