//! `newfs_hammer` (being written).

use std::io::Write;

pub fn main(_argv0: &str, _args: &[String], _out: &mut dyn Write, _err: &mut dyn Write) -> i32 {
    1
}
