//! Pure: the date strings real feeds write, as UTC instants.
//!
//! feed-rs calls [`parse_date`] for every date element (it is the parser's
//! `timestamp_parser` hook, set in `parse`). The strict formats come first; the
//! lenient ones accept what publishers actually write: weekdays that are wrong or
//! missing, zone abbreviations, month names in Russian and other languages,
//! day-first numeric dates, and dates with no zone, which are read in the source's
//! `timezone` (UTC unless `feeds.toml` says otherwise).

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Zone abbreviations that real feeds put in RFC 822 dates, with their UTC offsets in
/// seconds (chrono knows only the North American ones).
const NAMED_ZONES: &[(&str, i32)] = &[
    ("UT", 0),
    ("UTC", 0),
    ("GMT", 0),
    ("Z", 0),
    ("EST", -5 * 3600),
    ("EDT", -4 * 3600),
    ("CST", -6 * 3600),
    ("CDT", -5 * 3600),
    ("MST", -7 * 3600),
    ("MDT", -6 * 3600),
    ("PST", -8 * 3600),
    ("PDT", -7 * 3600),
    ("MSK", 3 * 3600),
    ("MSD", 4 * 3600),
    ("CET", 3600),
    ("CEST", 2 * 3600),
    ("EET", 2 * 3600),
    ("EEST", 3 * 3600),
    ("WET", 0),
    ("WEST", 3600),
    ("BST", 3600),
    ("IST", 5 * 3600 + 1800),
    ("JST", 9 * 3600),
    ("KST", 9 * 3600),
    ("HKT", 8 * 3600),
    ("SGT", 8 * 3600),
    ("AEST", 10 * 3600),
    ("AEDT", 11 * 3600),
];

/// Month names and abbreviations by prefix, in English, Russian, German, French,
/// Spanish, Portuguese and Italian (lower case, checked with `starts_with`).
const MONTHS: &[(&str, u32)] = &[
    ("jan", 1),
    ("ene", 1),
    ("gen", 1),
    ("янв", 1),
    ("feb", 2),
    ("fév", 2),
    ("fev", 2),
    ("фев", 2),
    ("mar", 3),
    ("mär", 3),
    ("mrz", 3),
    ("мар", 3),
    ("apr", 4),
    ("avr", 4),
    ("abr", 4),
    ("апр", 4),
    ("may", 5),
    ("mai", 5),
    ("mag", 5),
    ("май", 5),
    ("мая", 5),
    ("jun", 6),
    ("juin", 6),
    ("giu", 6),
    ("июн", 6),
    ("jul", 7),
    ("juil", 7),
    ("lug", 7),
    ("июл", 7),
    ("aug", 8),
    ("aoû", 8),
    ("aou", 8),
    ("ago", 8),
    ("авг", 8),
    ("sep", 9),
    ("set", 9),
    ("сен", 9),
    ("oct", 10),
    ("okt", 10),
    ("out", 10),
    ("ott", 10),
    ("окт", 10),
    ("nov", 11),
    ("ноя", 11),
    ("dec", 12),
    ("déc", 12),
    ("dez", 12),
    ("dic", 12),
    ("дек", 12),
];

/// Day-first and numeric formats without a zone (read in the source's time zone).
const NUMERIC_FORMATS: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%H:%M %d.%m.%Y",
    "%d.%m.%Y, %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
];
const NUMERIC_DATES: &[&str] = &["%Y-%m-%d", "%Y/%m/%d", "%d.%m.%Y"];

/// Parses one date; `zone` is used when the text names none. `None` when nothing
/// fits; the item then falls back to its first-seen time.
pub fn parse_date(text: &str, zone: Tz) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(date) = DateTime::parse_from_rfc3339(text) {
        return Some(date.with_timezone(&Utc));
    }
    if let Ok(date) = DateTime::parse_from_rfc2822(text) {
        return Some(date.with_timezone(&Utc));
    }
    parse_numeric(text, zone).or_else(|| parse_words(text, zone))
}

fn parse_numeric(text: &str, zone: Tz) -> Option<DateTime<Utc>> {
    let naive = NUMERIC_FORMATS
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .or_else(|| {
            NUMERIC_DATES.iter().find_map(|format| {
                NaiveDate::parse_from_str(text, format)
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
            })
        })?;
    in_zone(naive, zone)
}

/// Dates written with a month name, in any order the pieces come in: "Fri, 06 Feb
/// 2026 22:20:00 MSK", "Seg, 24 Set 2018 19:22:00 -0300", "6 февраля 2026, 22:20",
/// "Tue 11 Jan 2011 01:30 GMT". Words that are neither a month nor a zone (weekdays)
/// are ignored.
fn parse_words(text: &str, zone: Tz) -> Option<DateTime<Utc>> {
    let mut month = None;
    let mut numbers = Vec::new();
    let mut time = None;
    let mut offset = None;
    for token in text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
    {
        if token.contains(':') {
            time = Some(parse_time(token)?);
        } else if token.starts_with(['+', '-']) && token.len() == 5 {
            let sign = if token.starts_with('-') { -1 } else { 1 };
            let hours: i32 = token[1..3].parse().ok()?;
            let minutes: i32 = token[3..5].parse().ok()?;
            offset = Some(sign * (hours * 3600 + minutes * 60));
        } else if let Ok(number) = token.trim_end_matches('.').parse::<u32>() {
            numbers.push((number, token.len()));
        } else if let Some(seconds) = named_zone(token) {
            offset = Some(seconds);
        } else if month.is_none() {
            month = month_number(token);
        }
    }
    let month = month?;
    let (day, year) = match numbers.as_slice() {
        [(day, _), (year, 4)] | [(year, 4), (day, _)] => (*day, *year as i32),
        [(day, _), (year, 2)] => (*day, two_digit_year(*year)),
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    let (time, next_day) = time.unwrap_or((NaiveTime::MIN, false));
    let date = if next_day { date.succ_opt()? } else { date };
    let naive = date.and_time(time);
    match offset {
        Some(seconds) => FixedOffset::east_opt(seconds)?
            .from_local_datetime(&naive)
            .single()
            .map(|d| d.with_timezone(&Utc)),
        None => in_zone(naive, zone),
    }
}

/// A time of day, and whether it is `24:00`: midnight at the end of the day, which
/// chrono rejects and feed-rs reads as the start of the same day.
fn parse_time(token: &str) -> Option<(NaiveTime, bool)> {
    if matches!(token, "24:00" | "24:00:00") {
        return Some((NaiveTime::MIN, true));
    }
    NaiveTime::parse_from_str(token, "%H:%M:%S")
        .or_else(|_| NaiveTime::parse_from_str(token, "%H:%M"))
        .ok()
        .map(|time| (time, false))
}

fn named_zone(token: &str) -> Option<i32> {
    let upper = token.to_ascii_uppercase();
    NAMED_ZONES
        .iter()
        .find(|(name, _)| *name == upper)
        .map(|(_, seconds)| *seconds)
}

fn month_number(token: &str) -> Option<u32> {
    let lower = token.trim_end_matches('.').to_lowercase();
    if lower.chars().count() < 3 {
        return None;
    }
    MONTHS
        .iter()
        .find(|(prefix, _)| lower.starts_with(prefix))
        .map(|(_, month)| *month)
}

fn two_digit_year(year: u32) -> i32 {
    if year < 70 {
        2000 + year as i32
    } else {
        1900 + year as i32
    }
}

/// A wall-clock time in `zone`; in a DST gap or overlap, the earlier reading.
fn in_zone(naive: NaiveDateTime, zone: Tz) -> Option<DateTime<Utc>> {
    zone.from_local_datetime(&naive)
        .earliest()
        .map(|d| d.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn dates_real_feeds_write() {
        let cases = [
            ("2026-02-06T22:20:00+03:00", "2026-02-06T19:20:00Z"),
            ("Fri, 06 Feb 2026 22:20:00 +0300", "2026-02-06T19:20:00Z"),
            ("Fri, 06 Feb 2026 22:20:00 GMT", "2026-02-06T22:20:00Z"),
            ("Mon, 06 Feb 2026 22:20:00 GMT", "2026-02-06T22:20:00Z"),
            ("Fri, 06 Feb 2026 22:20:00 MSK", "2026-02-06T19:20:00Z"),
            ("Fri, 06 Feb 2026 22:20:00 EST", "2026-02-07T03:20:00Z"),
            ("06 Feb 2026 22:20 CET", "2026-02-06T21:20:00Z"),
            ("Fri, 06 Feb 26 22:20:00 +0000", "2026-02-06T22:20:00Z"),
            ("Fri, 06 Feb 2026 22:20:00", "2026-02-06T22:20:00Z"),
            ("Fri 06 Feb 2026 22:20:00 GMT", "2026-02-06T22:20:00Z"),
            ("Fri, 06 Feb 2026 24:00:00 GMT", "2026-02-07T00:00:00Z"),
            ("2026-02-06T22:20:00", "2026-02-06T22:20:00Z"),
            ("2026-02-06 22:20", "2026-02-06T22:20:00Z"),
            ("2026-02-06", "2026-02-06T00:00:00Z"),
            ("2026/2/6 22:20:00", "2026-02-06T22:20:00Z"),
            ("07.12.2020 11:36", "2020-12-07T11:36:00Z"),
            ("22:20 06.02.2026", "2026-02-06T22:20:00Z"),
            ("6 февраля 2026, 22:20", "2026-02-06T22:20:00Z"),
            ("Пт, 06 фев 2026 22:20:00 +0300", "2026-02-06T19:20:00Z"),
            ("Seg, 24 Set 2018 19:22:00 -0300", "2018-09-24T22:22:00Z"),
            ("6. März 2026 10:00", "2026-03-06T10:00:00Z"),
            ("6 févr. 2026 10:00", "2026-02-06T10:00:00Z"),
            ("February 6, 2026 10:00", "2026-02-06T10:00:00Z"),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_date(text, Tz::UTC), Some(utc(expected)), "{text}");
        }
        for text in ["yesterday", "", "32 Jan 2026", "Jan 2026", "12:00"] {
            assert_eq!(parse_date(text, Tz::UTC), None, "{text}");
        }
    }

    #[test]
    fn dates_without_a_zone_are_read_in_the_source_zone() {
        let moscow: Tz = "Europe/Moscow".parse().unwrap();
        assert_eq!(
            parse_date("22:20 06.02.2026", moscow),
            Some(utc("2026-02-06T19:20:00Z"))
        );
        assert_eq!(
            parse_date("6 февраля 2026, 22:20", moscow),
            Some(utc("2026-02-06T19:20:00Z"))
        );
        // A date that names its zone keeps it.
        assert_eq!(
            parse_date("Fri, 06 Feb 2026 22:20:00 GMT", moscow),
            Some(utc("2026-02-06T22:20:00Z"))
        );
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(
            parse_date("2026-07-01 12:00", berlin),
            Some(utc("2026-07-01T10:00:00Z"))
        );
    }
}
