//! Timestamps as MIM CM writes them: UTC, `YYYY-MM-DDTHH:MM:SS[.fffffff]Z`, trailing zeros of the
//! fraction removed, and `0001-01-01T00:00:00` (no `Z`) for "not set".

use std::fmt;

/// Microseconds since the Unix epoch, UTC. `Timestamp::UNSET` is MIM's `DateTime.MinValue`, the
/// wire's spelling of "not set" (`api/src/wire`); everywhere else an absent time is `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const UNSET: Timestamp = Timestamp(i64::MIN);

    pub fn from_micros(us: i64) -> Self {
        Timestamp(us)
    }

    pub fn micros(self) -> i64 {
        self.0
    }

    /// As a `time` value (the Unix epoch for an unset or out-of-range timestamp).
    pub fn to_offset_date_time(self) -> time::OffsetDateTime {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Self::UNSET {
            return f.write_str("0001-01-01T00:00:00");
        }
        let secs = self.0.div_euclid(1_000_000);
        let micros = self.0.rem_euclid(1_000_000);
        let dt = match time::OffsetDateTime::from_unix_timestamp(secs) {
            Ok(dt) => dt,
            Err(_) => return f.write_str("0001-01-01T00:00:00"),
        };
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second()
        )?;
        if micros != 0 {
            // .NET writes 7 fractional digits (100 ns ticks); we keep microseconds, so the 7th is 0
            // and is removed with the other trailing zeros.
            let frac = format!("{micros:06}");
            write!(f, ".{}", frac.trim_end_matches('0'))?;
        }
        f.write_str("Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_mim() {
        // 2015-07-07T23:36:21.93Z from the MIM reference example.
        let t = Timestamp::from_micros(1_436_312_181_930_000);
        assert_eq!(t.to_string(), "2015-07-07T23:36:21.93Z");
        let t = Timestamp::from_micros(1_436_312_257_767_000);
        assert_eq!(t.to_string(), "2015-07-07T23:37:37.767Z");
        let t = Timestamp::from_micros(1_436_312_181_000_000);
        assert_eq!(t.to_string(), "2015-07-07T23:36:21Z");
        assert_eq!(Timestamp::UNSET.to_string(), "0001-01-01T00:00:00");
    }
}
