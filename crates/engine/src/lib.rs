//! The HAMMER storage engine: devices, volume sets, the buffer cache and the
//! translation of zone offsets to bytes on a device. Everything above (the
//! CLI's offline directives, newfs, later the mount) reaches the disk
//! through here.

pub mod alloc;
pub mod btree;
pub mod cache;
pub mod crashdev;
pub mod device;
pub mod error;
pub mod flush;
pub mod fs;
pub mod fsread;
pub mod hash;
pub mod import;
pub mod recover;
pub mod stats;
pub mod store;
pub mod volume;
pub mod write;

pub use device::{Device, FileDevice, MemDevice};
pub use error::{Error, Result};
pub use volume::{OpenOptions, Volume, VolumeSet};
