//! Local-time formatting as DragonFly's tools do it: `strftime(3)` on
//! `localtime(3)`, so `TZ` and the zone abbreviation (`%Z`) behave exactly
//! as in C programs on the same machine.

use std::ffi::CString;

extern "C" {
    // POSIX; the libc crate does not bind it on every target.
    fn tzset();
}

/// `strftime(fmt, localtime(secs))`; an empty string if the format is
/// unusable. The buffer is sized from the format (as DragonFly's tool
/// sizes it, the format's length plus room for the conversions), so long
/// paths in a format are kept whole.
pub fn strftime(fmt: &str, secs: i64) -> String {
    let Ok(cfmt) = CString::new(fmt) else {
        return String::new();
    };
    let t: libc::time_t = secs as libc::time_t;
    // SAFETY: tzset, localtime_r and strftime get valid pointers to local
    // storage that outlives the calls; strftime writes at most buf.len().
    unsafe {
        tzset();
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return String::new();
        }
        let mut buf = vec![0u8; fmt.len() * 4 + 256];
        let n = libc::strftime(
            buf.as_mut_ptr() as *mut libc::c_char,
            buf.len(),
            cfmt.as_ptr(),
            &tm,
        );
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

/// Seconds since the epoch, now.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_in_the_local_zone() {
        std::env::set_var("TZ", "UTC");
        assert_eq!(
            super::strftime("%Y-%m-%d %H:%M:%S %Z", 1_353_582_224),
            "2012-11-22 11:03:44 UTC"
        );
        assert_eq!(
            super::strftime("%d-%b-%Y %H:%M:%S", 0),
            "01-Jan-1970 00:00:00"
        );
    }
}
