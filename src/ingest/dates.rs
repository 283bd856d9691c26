//! Pure: the date strings real feeds write, as UTC instants.
//!
//! feed-rs calls [`parse_date`] for every date element (it is the parser's
//! `timestamp_parser` hook, set in `parse`). The strict formats come first; the
//! lenient ones accept what publishers actually write: weekdays that are wrong or
//! missing, zone abbreviations, month names in Russian and other languages,
//! day-first numeric dates, and dates with no zone, which are read in the source's
//! `timezone` (UTC unless `feeds.toml` says otherwise).

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use std::sync::LazyLock;

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
    // What feedparser also reads: zones without their S/D (Disney), Atlantic, and
    // middle-European ones.
    ("AT", -4 * 3600),
    ("AST", -4 * 3600),
    ("ADT", -3 * 3600),
    ("ET", -5 * 3600),
    ("CT", -6 * 3600),
    ("MT", -7 * 3600),
    ("PT", -8 * 3600),
    ("MET", 3600),
    ("MEST", 2 * 3600),
    // Military zones as feedparser reads them (RFC 822 got their signs backwards).
    ("A", -3600),
    ("N", 3600),
    ("M", -12 * 3600),
    ("Y", 12 * 3600),
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
    // Hungarian (január … december, where not already above).
    ("már", 3),
    ("ápr", 4),
    ("máj", 5),
    ("jún", 6),
    ("júl", 7),
    ("sze", 9),
    // Greek, as feedparser reads them, accented or not.
    ("ιαν", 1),
    ("φεβ", 2),
    ("μάρ", 3),
    ("μαρ", 3),
    ("απρ", 4),
    ("μάι", 5),
    ("μαϊ", 5),
    ("μαι", 5),
    ("ιούν", 6),
    ("ιουν", 6),
    ("ιον", 6),
    ("ιούλ", 7),
    ("ιουλ", 7),
    ("ιολ", 7),
    ("αύγ", 8),
    ("αυγ", 8),
    ("σεπ", 9),
    ("οκτ", 10),
    ("νοέ", 11),
    ("νοε", 11),
    ("δεκ", 12),
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
    parse_iso(text, zone)
        .or_else(|| parse_numeric(text, zone))
        .or_else(|| parse_korean(text))
        .or_else(|| parse_words(text, zone))
}

/// W3C-DTF and the ISO 8601 variants feeds write: a space for the `T`, a zone with
/// or without its colon or after a space (`2006-01-11 16:42:55 -0800`), lower-case
/// `t`/`z`, no seconds, a bare year or year-month, a month name in place of the
/// number (Hungarian `2004-július-13T9:15-05:00`), and the extra zero some
/// publishers put in the month (`2003-012-31`). No zone: read in `zone`.
fn parse_iso(text: &str, zone: Tz) -> Option<DateTime<Utc>> {
    static ISO: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(
            r"^(\d{4})(?:-(0?\d{2}|\p{L}+\.?)(?:-(\d{1,2}))?)?(?:[Tt ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?)? ?(Z|z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?$",
        )
        .expect("the ISO 8601 pattern is valid")
    });
    let caps = ISO.captures(text)?;
    let number = |i: usize| caps.get(i).map(|m| m.as_str().parse::<u32>().ok());
    let year = caps[1].parse::<i32>().ok()?;
    let month = match caps.get(2) {
        None => 1,
        Some(m) if m.as_str().starts_with(|c: char| c.is_ascii_digit()) => {
            m.as_str().parse().ok()?
        }
        Some(m) => month_number(m.as_str())?,
    };
    let day = number(3).unwrap_or(Some(1))?;
    let hour = number(4).unwrap_or(Some(0))?;
    let minute = number(5).unwrap_or(Some(0))?;
    let second = number(6).unwrap_or(Some(0))?;
    let naive = NaiveDate::from_ymd_opt(year, month, day)?.and_hms_opt(hour, minute, second)?;
    match caps.get(7) {
        Some(offset) => at_offset(naive, offset_seconds(offset.as_str())?),
        None => in_zone(naive, zone),
    }
}

/// The Korean formats feedparser reads, in Korea's time (UTC+9): OnBlog's
/// `2004년 05월 28일 01:31:15` and Nate's `2004-05-25 오후 11:23:17` (오전 is AM, 오후 PM).
fn parse_korean(text: &str) -> Option<DateTime<Utc>> {
    static KOREAN: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(
            r"^(\d{4})(?:년|-)\s*(\d{1,2})(?:월|-)\s*(\d{1,2})일?\s+(오전|오후)?\s*(\d{1,2}):(\d{2}):(\d{2})$",
        )
        .expect("the Korean date pattern is valid")
    });
    let caps = KOREAN.captures(text)?;
    let number = |i: usize| caps[i].parse::<u32>().ok();
    let mut hour = number(5)?;
    match caps.get(4).map(|m| m.as_str()) {
        Some("오후") if hour < 12 => hour += 12,
        Some("오전") if hour == 12 => hour = 0,
        _ => {}
    }
    let naive = NaiveDate::from_ymd_opt(caps[1].parse().ok()?, number(2)?, number(3)?)?
        .and_hms_opt(hour, number(6)?, number(7)?)?;
    at_offset(naive, 9 * 3600)
}

/// A numeric UTC offset as dates write it, in seconds: `+03:00`, `-0800`, `+02`,
/// `Z`, and after `GMT`/`UTC`/`UT` (`GMT+2`, `GMT-01:01`). ASCII only: anything
/// else (`+1é1`) is not an offset.
fn offset_seconds(token: &str) -> Option<i32> {
    let upper = token.to_ascii_uppercase();
    let rest = ["GMT", "UTC", "UT"]
        .iter()
        .find_map(|name| upper.strip_prefix(name))
        .unwrap_or(&upper);
    if rest.is_empty() || rest == "Z" {
        return Some(0);
    }
    let (sign, digits) = match rest.split_at_checked(1)? {
        ("+", digits) => (1, digits),
        ("-", digits) => (-1, digits),
        _ => return None,
    };
    let (hours, minutes) = match digits.split_once(':') {
        Some((hours, minutes)) => (hours, minutes),
        None if digits.len() > 2 => digits.split_at_checked(digits.len() - 2)?,
        None => (digits, "0"),
    };
    let all_digits =
        |s: &str| !s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(hours) || !all_digits(minutes) {
        return None;
    }
    let (hours, minutes): (i32, i32) = (hours.parse().ok()?, minutes.parse().ok()?);
    (minutes < 60 && hours < 24).then_some(sign * (hours * 3600 + minutes * 60))
}

/// A wall-clock time at a fixed UTC offset.
fn at_offset(naive: NaiveDateTime, seconds: i32) -> Option<DateTime<Utc>> {
    FixedOffset::east_opt(seconds)?
        .from_local_datetime(&naive)
        .single()
        .map(|d| d.with_timezone(&Utc))
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
    // `%Y` takes "03" for the year 3: a two-digit year is no year here.
    if naive.year() < 1000 {
        return None;
    }
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
    // Perforce writes the date as one numeric token: `Fri, 2006/09/15 08:19:53 EDT`.
    let mut numeric_date = None;
    for token in text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
    {
        if (token.len() > 1 && token.starts_with(['+', '-'])) || is_zone_with_offset(token) {
            offset = Some(offset_seconds(token)?);
        } else if token.contains(':') {
            time = Some(parse_time(token)?);
        } else if let Ok(number) = token.trim_end_matches('.').parse::<u32>() {
            numbers.push((number, token.len()));
        } else if let Ok(date) = NaiveDate::parse_from_str(token, "%Y/%m/%d") {
            numeric_date = Some(date);
        } else if let Some(seconds) = named_zone(token) {
            offset = Some(seconds);
        } else if month.is_none() {
            month = month_number(token);
        }
    }
    let date = match (numeric_date, numbers.as_slice()) {
        (Some(date), []) => date,
        (None, [(day, _), (year, 4)] | [(year, 4), (day, _)]) => {
            NaiveDate::from_ymd_opt(*year as i32, month?, *day)?
        }
        (None, [(day, _), (year, 2)]) => {
            NaiveDate::from_ymd_opt(two_digit_year(*year), month?, *day)?
        }
        _ => return None,
    };
    let (time, next_day) = time.unwrap_or((NaiveTime::MIN, false));
    let date = if next_day { date.succ_opt()? } else { date };
    let naive = date.and_time(time);
    match offset {
        Some(seconds) => at_offset(naive, seconds),
        None => in_zone(naive, zone),
    }
}

/// `GMT+2`, `UTC-01:01`: a zone name followed by an offset.
fn is_zone_with_offset(token: &str) -> bool {
    let upper = token.to_ascii_uppercase();
    ["GMT", "UTC", "UT"].iter().any(|name| {
        upper
            .strip_prefix(name)
            .is_some_and(|rest| rest.starts_with(['+', '-']))
    })
}

/// A time of day, and whether it is `24:00`: midnight at the end of the day, which
/// chrono rejects and feed-rs reads as the start of the same day.
fn parse_time(token: &str) -> Option<(NaiveTime, bool)> {
    if matches!(token, "24:00" | "24:00:00") {
        return Some((NaiveTime::MIN, true));
    }
    NaiveTime::parse_from_str(token, "%H:%M:%S%.f")
        .or_else(|_| NaiveTime::parse_from_str(token, "%H:%M"))
        .ok()
        .map(|time| (time, false))
}

fn named_zone(token: &str) -> Option<i32> {
    let upper = token.to_ascii_uppercase();
    let upper = upper.strip_prefix("ETC/").unwrap_or(&upper);
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

    /// The variants feedparser's own date tests read, with its readings.
    #[test]
    fn dates_feedparser_reads() {
        let cases = [
            ("2006-01-11 16:42:55 -0800", "2006-01-12T00:42:55Z"),
            ("2004-07-08 23:56:58 -00:20", "2004-07-09T00:16:58Z"),
            ("2004-07-08 23:56:58.0", "2004-07-08T23:56:58Z"),
            ("2003-12-31t10:14:55z", "2003-12-31T10:14:55Z"),
            ("2003-12-31T10:14:55.1234Z", "2003-12-31T10:14:55.1234Z"),
            ("2003-012-31T10:14:55+00:00", "2003-12-31T10:14:55Z"),
            ("2003-12-31T10:14+0100", "2003-12-31T09:14:00Z"),
            ("2003-12", "2003-12-01T00:00:00Z"),
            ("2003", "2003-01-01T00:00:00Z"),
            ("2004-július-13T9:15-05:00", "2004-07-13T14:15:00Z"),
            ("Thu, 30 Apr 2015 08:57:00 MET", "2015-04-30T07:57:00Z"),
            ("Thu, 30 Apr 2015 08:57:00 MEST", "2015-04-30T06:57:00Z"),
            ("Mon, 26 January 2004 16:31:00 AT", "2004-01-26T20:31:00Z"),
            ("Mon, 26 January 2004 16:31:00 PT", "2004-01-27T00:31:00Z"),
            ("Wed, 19 Aug 2009 18:28:00 Etc/GMT", "2009-08-19T18:28:00Z"),
            (
                "Wed, 19 Feb 2012 22:40:00 GMT-01:01",
                "2012-02-19T23:41:00Z",
            ),
            ("Wed, 19 Feb 2012 22:40:00 -01:01", "2012-02-19T23:41:00Z"),
            ("Fri, 06 Feb 2026 22:20:00 GMT+2", "2026-02-06T20:20:00Z"),
            ("Mon, 13 Feb, 2012 06:28:00 UTC", "2012-02-13T06:28:00Z"),
            ("Thu, 01 Jan 04 19:48:21 GMT", "2004-01-01T19:48:21Z"),
            ("Thu,  5 Apr 2012 10:00:00 GMT", "2012-04-05T10:00:00Z"),
            ("Thu, 01 Jan 2004", "2004-01-01T00:00:00Z"),
            ("Thu Aug 30 2012 17:26:16 +0200", "2012-08-30T15:26:16Z"),
            ("Sun Jan  4 16:29:06 2004", "2004-01-04T16:29:06Z"),
            ("Sun Jul 15 01:16:00 +0000 2012", "2012-07-15T01:16:00Z"),
            ("Fri, 2006/09/15 08:19:53 EDT", "2006-09-15T12:19:53Z"),
            ("sun, 02 jan 2005 10:00:00 edt", "2005-01-02T14:00:00Z"),
            ("Thu, 01 Jan 2004 19:48:21 Z", "2004-01-01T19:48:21Z"),
            (
                "\u{39a}\u{3c5}\u{3c1}, 11 \u{399}\u{3bf}\u{3cd}\u{3bb} 2004 12:00:00 EST",
                "2004-07-11T17:00:00Z",
            ),
            (
                "2004\u{b144} 05\u{c6d4} 28\u{c77c}  01:31:15",
                "2004-05-27T16:31:15Z",
            ),
            (
                "2004-05-25 \u{c624}\u{d6c4} 11:23:17",
                "2004-05-25T14:23:17Z",
            ),
            ("Пн, 01 июн 2026 10:00:00 +0300", "2026-06-01T07:00:00Z"),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_date(text, Tz::UTC), Some(utc(expected)), "{text}");
        }
        for text in [
            "Sun, 16 Dec 2012 1:2:3:4 GMT",
            "Sun, 16 zzz 2012 11:47:32 GMT",
            "Sun, 16 Dec zz 11:47:32 GMT",
            "Sun, 16 Dec 2012 11:47:32 +zz:00",
            "Sun, 16 Dec 2012 11:47:32 +00:zz",
            "Sun, 99 Jun 2009 12:00:00 GMT",
            "2003-12-31T25:14:55Z",
            "2013-01-28T11:30:00-06:00Textra",
            "03-12-31",
            "31.12.03 10:00",
        ] {
            assert_eq!(parse_date(text, Tz::UTC), None, "{text}");
        }
    }

    /// A zone token with a non-ASCII character where digits belong is not a zone
    /// and costs nothing but this date: the parser used to slice inside the `é`.
    #[test]
    fn a_non_ascii_zone_is_no_date_and_no_panic() {
        for text in [
            "Fri, 06 Feb 2026 22:20:00 +1é1",
            "Fri, 06 Feb 2026 22:20:00 -é",
            "Fri, 06 Feb 2026 22:20:00 GMT+é",
            "2026-02-06 22:20:00 +é1",
            "Fri, 06 Feb 2026 22:20:00 +ééé",
        ] {
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
