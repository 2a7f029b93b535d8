//! Fitting a key's display name into Graph's 30 characters without losing its serial number.
//!
//! Names like "YubiKey 5 NFC for Alice Smith (12345678)" are longer than the 30 characters
//! Graph accepts (DSInternals validates 1–30; docs/entra-graph-api.md §2.2). The serial is what an operator
//! searches for when a key is lost, so it is kept whole and the rest is shortened in the
//! middle, where it hurts least: the model's start and the owner's surname stay readable.
//!
//! Length is counted in UTF-16 code units, as .NET's `string.Length` (and so Graph) counts.
//! That is never more than the count of Unicode characters, so a name that fits here also
//! fits the emulator's character count; cuts fall between characters, never inside one.

use crate::graph::MAX_DISPLAY_NAME_CHARS;

/// The ellipsis put where text was cut (one UTF-16 unit).
const ELLIPSIS: char = '…';

/// The display name to send: `name` plus ` (serial)` unless it already contains the serial,
/// shortened in the middle to at most 30 UTF-16 units with the serial kept whole.
///
/// When the name must be shortened, the serial moves to the end as ` (serial)` wherever it was.
pub fn fit_display_name(name: &str, serial: Option<&str>) -> String {
    fit_within(name, serial, MAX_DISPLAY_NAME_CHARS)
}

/// [`fit_display_name`] with Keyward's `marker` (see [`super::own`]) appended after a space,
/// all within the 30 units: the name gives way, the serial and the marker stay whole.
pub fn marked_display_name(name: &str, serial: Option<&str>, marker: &str) -> String {
    let room = MAX_DISPLAY_NAME_CHARS.saturating_sub(units(marker) + 1);
    let fitted = fit_within(name, serial, room);
    if fitted.is_empty() { marker.to_owned() } else { format!("{fitted} {marker}") }
}

fn fit_within(name: &str, serial: Option<&str>, max: usize) -> String {
    let name = collapse(name);
    let serial = serial.map(str::trim).filter(|s| !s.is_empty());
    let full = match serial {
        Some(s) if name.is_empty() => s.to_owned(),
        Some(s) if !name.contains(s) => format!("{name} ({s})"),
        _ => name.clone(),
    };
    if units(&full) <= max {
        return full;
    }
    let Some(serial) = serial else { return cut_middle(&full, max) };
    // Take the serial (with parentheses around it, if any) out of the name, shorten the rest.
    let rest = match name.rfind(serial) {
        Some(at) => {
            let (mut before, mut after) = (&name[..at], &name[at + serial.len()..]);
            if let (Some(b), Some(a)) = (before.strip_suffix('('), after.strip_prefix(')')) {
                (before, after) = (b, a);
            }
            collapse(&format!("{before} {after}"))
        }
        None => name,
    };
    let suffix = format!(" ({serial})");
    let room = max.saturating_sub(units(&suffix));
    if rest.is_empty() || room < 3 {
        // No room for any of the name: the serial alone, cut at its start if even that is too long.
        return keep_end(serial, max);
    }
    format!("{}{suffix}", cut_middle(&rest, room))
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn units(s: &str) -> usize {
    s.encode_utf16().count()
}

/// `s` shortened to at most `max` UTF-16 units by replacing its middle with an ellipsis.
fn cut_middle(s: &str, max: usize) -> String {
    if units(s) <= max {
        return s.to_owned();
    }
    let budget = max.saturating_sub(1);
    let (mut front, mut back) = (String::new(), Vec::new());
    let (mut front_units, mut back_units) = (0, 0);
    let mut from_front = s.chars();
    let mut from_back = s.chars().rev();
    // Take characters alternately from both ends, the front first, while they fit.
    let (mut front_done, mut back_done) = (false, false);
    while !(front_done && back_done) {
        if !front_done {
            match from_front.next() {
                Some(c) if front_units + back_units + c.len_utf16() <= budget => {
                    front_units += c.len_utf16();
                    front.push(c);
                }
                _ => front_done = true,
            }
        }
        if !back_done {
            match from_back.next() {
                Some(c) if front_units + back_units + c.len_utf16() <= budget => {
                    back_units += c.len_utf16();
                    back.push(c);
                }
                _ => back_done = true,
            }
        }
    }
    let back: String = back.into_iter().rev().collect();
    format!("{}{ELLIPSIS}{}", front.trim_end(), back.trim_start())
}

/// The last characters of `s` that fit in `max` UTF-16 units.
fn keep_end(s: &str, max: usize) -> String {
    let mut used = 0;
    let mut out: Vec<char> = Vec::new();
    for c in s.chars().rev() {
        if used + c.len_utf16() > max {
            break;
        }
        used += c.len_utf16();
        out.push(c);
    }
    out.into_iter().rev().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marked_name_keeps_serial_and_marker_within_thirty_units() {
        let cases = [
            ("YubiKey 5 NFC", Some("12345678"), "YubiKey 5 NFC (12345678) #k7qx"),
            ("YubiKey 5 NFC for Alice Smith", Some("12345678"), "YubiKe…Smith (12345678) #k7qx"),
            ("", None, "#k7qx"),
        ];
        for (name, serial, expected) in cases {
            let marked = marked_display_name(name, serial, "#k7qx");
            assert_eq!(marked, expected);
            assert!(units(&marked) <= MAX_DISPLAY_NAME_CHARS, "{marked}");
        }
    }

    #[test]
    fn names_are_cut_in_the_middle_and_the_serial_survives() {
        // (name, serial, expected)
        let cases: [(&str, Option<&str>, &str); 10] = [
            ("YubiKey 5 NFC", Some("12345678"), "YubiKey 5 NFC (12345678)"),
            ("YubiKey 5 NFC for Alice Smith", Some("12345678"), "YubiKey 5…ice Smith (12345678)"),
            // The serial already in the name is not added twice, and is still kept whole.
            ("YubiKey 5 NFC for Alice Smith (12345678)", Some("12345678"), "YubiKey 5…ice Smith (12345678)"),
            // A serial inside a long name moves to the end.
            ("Key 12345678 of Alice Smith-Johnson", Some("12345678"), "Key of Al…h-Johnson (12345678)"),
            ("Exactly thirty characters long", None, "Exactly thirty characters long"),
            ("A name that is a bit too long for Graph", None, "A name that is…long for Graph"),
            ("  spaced   out  ", Some("9"), "spaced out (9)"),
            ("", Some("12345678"), "12345678"),
            ("Security Key NFC", Some("SERIAL-0123456789-0123456789-0123"), "IAL-0123456789-0123456789-0123"),
            ("Short", None, "Short"),
        ];
        for (name, serial, want) in cases {
            let got = fit_display_name(name, serial);
            assert_eq!(got, want, "{name:?} + {serial:?}");
            assert!(got.encode_utf16().count() <= MAX_DISPLAY_NAME_CHARS, "{got}");
        }
    }

    #[test]
    fn multibyte_names_are_cut_between_characters_and_counted_as_graph_counts() {
        // Each case: the result fits in 30 UTF-16 units (so also 30 characters), keeps the serial,
        // and is valid text (a cut inside a character would panic or garble).
        for (name, serial) in [
            ("Säkerhetsnyckel för Åsa Öberg-Ängström", "12345678"),
            ("鍵 営業部 山田太郎 さんのセキュリティキー", "87654321"),
            ("🔑🔑🔑🔑🔑🔑🔑🔑🔑🔑🔑🔑🔑🔑🔑🔑 key", "555"),
            ("Zoë’s “travel” key — backup one", "42"),
        ] {
            let got = fit_display_name(name, Some(serial));
            assert!(got.encode_utf16().count() <= MAX_DISPLAY_NAME_CHARS, "{got}");
            assert!(got.ends_with(&format!("({serial})")), "{got}");
            assert!(got.contains(ELLIPSIS), "{got}");
        }
        // Emoji take two UTF-16 units: fifteen of them (30 units) do not fit with a serial.
        let got = fit_display_name(&"🔑".repeat(15), Some("7"));
        assert_eq!(got, format!("{}…{} (7)", "🔑".repeat(6), "🔑".repeat(6)));
        assert_eq!(
            fit_display_name("Säkerhetsnyckel för Åsa Öberg-Ängström", Some("12345678")),
            "Säkerhets…-Ängström (12345678)"
        );
    }
}
