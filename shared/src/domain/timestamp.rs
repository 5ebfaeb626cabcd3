//! RFC 3339 UTC timestamps with microseconds, the only time format on the wire and in the table.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::{OffsetDateTime, UtcOffset};

/// A UTC instant with microsecond precision; its text form sorts like the instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

/// Why a string is not a timestamp.
#[derive(Debug, thiserror::Error)]
#[error("not an RFC 3339 timestamp")]
pub struct InvalidTimestamp;

impl Timestamp {
    /// The current time, truncated to microseconds.
    pub fn now() -> Self {
        Self::from_datetime(OffsetDateTime::now_utc())
    }

    /// Truncates to microseconds and converts to UTC.
    pub fn from_datetime(dt: OffsetDateTime) -> Self {
        let dt = dt.to_offset(UtcOffset::UTC);
        let micros = dt.microsecond();
        Self(dt.replace_nanosecond(micros * 1000).expect("micros fit in nanos"))
    }

    /// Seconds since the Unix epoch.
    pub fn unix(self) -> i64 {
        self.0.unix_timestamp()
    }

    /// Microseconds since the Unix epoch.
    pub fn unix_micros(self) -> i64 {
        (self.0.unix_timestamp_nanos() / 1000) as i64
    }

    /// The wire form, `YYYY-MM-DDTHH:MM:SS.ffffffZ`. Every listed thread and message carries
    /// several of these, and going through a format description, or `write!` with padding into
    /// serde_json's escaping writer, cost a few thousand instructions each; this is a tenth of
    /// that. RFC 3339 allows only the years 0000–9999, and `now()` will not leave them.
    fn wire(self) -> [u8; 27] {
        let (year, month, day) = self.0.to_calendar_date();
        let (hour, minute, second, micros) = self.0.to_hms_micro();
        debug_assert!((0..=9999).contains(&year), "year {year} has no RFC 3339 form");
        let mut out = *b"0000-00-00T00:00:00.000000Z";
        let fields = [
            (0, 4, year.unsigned_abs()),
            (5, 2, u32::from(u8::from(month))),
            (8, 2, u32::from(day)),
            (11, 2, u32::from(hour)),
            (14, 2, u32::from(minute)),
            (17, 2, u32::from(second)),
            (20, 6, micros),
        ];
        for (at, width, mut value) in fields {
            for digit in out[at..at + width].iter_mut().rev() {
                *digit = b'0' + (value % 10) as u8;
                value /= 10;
            }
        }
        out
    }

    /// This instant plus some seconds.
    pub fn plus_seconds(self, secs: i64) -> Self {
        Self(self.0 + time::Duration::seconds(secs))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(std::str::from_utf8(&self.wire()).map_err(|_| fmt::Error)?)
    }
}

impl FromStr for Timestamp {
    type Err = InvalidTimestamp;
    fn from_str(s: &str) -> Result<Self, InvalidTimestamp> {
        let dt = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .map_err(|_| InvalidTimestamp)?;
        Ok(Self::from_datetime(dt))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(std::str::from_utf8(&self.wire()).map_err(serde::ser::Error::custom)?)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_microseconds_in_utc() {
        let t: Timestamp = "2026-11-24T01:25:28.952+01:00".parse().unwrap();
        assert_eq!(t.to_string(), "2026-11-24T00:25:28.952000Z");
        let t: Timestamp = "2026-11-24T00:25:28.123456789Z".parse().unwrap();
        assert_eq!(t.to_string(), "2026-11-24T00:25:28.123456Z");
    }

    #[test]
    fn pads_every_field_and_round_trips() {
        for text in
            ["0999-01-02T03:04:05.000000Z", "2026-12-31T23:59:59.999999Z", "2026-02-03T00:00:00.000007Z"]
        {
            let t: Timestamp = text.parse().unwrap();
            assert_eq!(t.to_string(), text);
            assert_eq!(t.to_string().parse::<Timestamp>().unwrap(), t);
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{text}\""));
        }
    }

    #[test]
    fn text_order_is_time_order() {
        let a: Timestamp = "2026-01-01T00:00:09.5Z".parse().unwrap();
        let b: Timestamp = "2026-01-01T00:00:10Z".parse().unwrap();
        assert!(a < b);
        assert!(a.to_string() < b.to_string());
    }

    #[test]
    fn rejects_garbage() {
        assert!("yesterday".parse::<Timestamp>().is_err());
    }
}
