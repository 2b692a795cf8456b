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
    /// A filesystem operation refused for a reason a POSIX caller knows.
    #[error("{0}")]
    Fs(FsError),
    /// An address outside every volume or zone.
    #[error("bad address {offset:#018x}: {what}")]
    BadAddress { what: &'static str, offset: u64 },
}

pub type Result<T> = std::result::Result<T, Error>;

/// Refusals of filesystem operations, each with its errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FsError {
    #[error("no such file or directory")]
    NotFound,
    #[error("file exists")]
    Exists,
    #[error("not a directory")]
    NotDir,
    #[error("is a directory")]
    IsDir,
    #[error("directory not empty")]
    NotEmpty,
    #[error("file name too long")]
    NameTooLong,
    #[error("invalid argument")]
    Invalid,
    #[error("read-only: a past state cannot be changed")]
    ReadOnly,
    #[error("no space left on device")]
    NoSpace,
    #[error("file too large")]
    TooBig,
    #[error("permission denied")]
    Access,
}

impl FsError {
    pub fn errno(self) -> i32 {
        match self {
            FsError::NotFound => libc::ENOENT,
            FsError::Exists => libc::EEXIST,
            FsError::NotDir => libc::ENOTDIR,
            FsError::IsDir => libc::EISDIR,
            FsError::NotEmpty => libc::ENOTEMPTY,
            FsError::NameTooLong => libc::ENAMETOOLONG,
            FsError::Invalid => libc::EINVAL,
            FsError::ReadOnly => libc::EROFS,
            FsError::NoSpace => libc::ENOSPC,
            FsError::TooBig => libc::EFBIG,
            FsError::Access => libc::EACCES,
        }
    }
}

impl From<FsError> for Error {
    fn from(e: FsError) -> Error {
        Error::Fs(e)
    }
}

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
