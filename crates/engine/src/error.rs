//! Engine errors. Disk data is untrusted: anything that does not meet the
//! format's rules comes back as `Corrupt` naming what and where, never a
//! panic.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error on a named volume or file.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    /// On-disk data that breaks a rule of the format.
    #[error("{volume}: {what} at offset {offset:#018x}")]
    Corrupt {
        volume: String,
        what: String,
        offset: u64,
    },
    /// A volume set that does not fit together; the message is the one
    /// DragonFly's tools print for the same case.
    #[error("{0}")]
    Invalid(String),
    /// An address outside every volume or zone.
    #[error("bad address {offset:#018x}: {what}")]
    BadAddress { what: &'static str, offset: u64 },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(path: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
    pub fn corrupt(volume: impl Into<String>, what: impl Into<String>, offset: u64) -> Error {
        Error::Corrupt {
            volume: volume.into(),
            what: what.into(),
            offset,
        }
    }
}
