//! Reading the CBOR of attestation objects, with `ciborium`.
//!
//! The emulator must name the exact rule a bad attestation object breaks (wrong fmt,
//! missing authData, a COSE key whose algorithm is refused) before the attestation
//! statement itself is verified, so it reads the top-level map, the `attStmt` x5c array
//! and the COSE key header itself. This module is a thin layer over `ciborium`: reading
//! one item and counting the bytes it used (where the COSE key ends inside authData),
//! reading exactly one item, and looking up map keys.

pub use ciborium::Value;

/// The input is not CBOR this reader accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CborError;

/// How deeply arrays, maps and tags may nest; attestation objects need far less.
const MAX_DEPTH: usize = 16;

/// Reads one item from the front of `data`; returns it and the number of bytes it used.
pub fn read(data: &[u8]) -> Result<(Value, usize), CborError> {
    let mut rest = data;
    let value =
        ciborium::de::from_reader_with_recursion_limit(&mut rest, MAX_DEPTH).map_err(|_| CborError)?;
    Ok((value, data.len() - rest.len()))
}

/// Reads exactly one item spanning all of `data`.
pub fn read_exact(data: &[u8]) -> Result<Value, CborError> {
    let (value, used) = read(data)?;
    if used == data.len() { Ok(value) } else { Err(CborError) }
}

/// The value under a text key of a map (the first, if the key repeats).
pub fn get_text_key<'v>(map: &'v Value, key: &str) -> Option<&'v Value> {
    map.as_map()?.iter().find(|(k, _)| k.as_text() == Some(key)).map(|(_, v)| v)
}

/// The value under an integer key of a map (COSE keys).
pub fn get_int_key(map: &Value, key: i128) -> Option<&Value> {
    map.as_map()?.iter().find(|(k, _)| as_int(k) == Some(key)).map(|(_, v)| v)
}

/// An integer item's value.
pub fn as_int(value: &Value) -> Option<i128> {
    value.as_integer().map(i128::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_maps_arrays_and_negative_ints() {
        // {"fmt": "none", 3: -7, "x": [h'0102']}
        let data = [
            0xa3, 0x63, b'f', b'm', b't', 0x64, b'n', b'o', b'n', b'e', 0x03, 0x26, 0x61, b'x', 0x81, 0x42,
            1, 2,
        ];
        let item = read_exact(&data).unwrap();
        assert_eq!(get_text_key(&item, "fmt"), Some(&Value::Text("none".into())));
        assert_eq!(get_int_key(&item, 3).and_then(as_int), Some(-7));
        assert_eq!(get_text_key(&item, "x"), Some(&Value::Array(vec![Value::Bytes(vec![1, 2])])));
    }

    #[test]
    fn reports_the_bytes_used_and_refuses_trailing_bytes() {
        // {3: -7} followed by two bytes of something else.
        let data = [0xa1, 0x03, 0x26, 0xff, 0x00];
        let (item, used) = read(&data).unwrap();
        assert_eq!(used, 3);
        assert_eq!(get_int_key(&item, 3).and_then(as_int), Some(-7));
        assert_eq!(read_exact(&data), Err(CborError));
        assert!(read_exact(&data[..3]).is_ok());
    }

    #[test]
    fn truncated_or_hostile_input_is_an_error() {
        for bad in [
            &[][..],
            &[0x62, b'a'][..],
            &[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..],
            &[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..],
            &[0x1f][..],
            &[0x62, 0xff, 0xfe][..],
        ] {
            assert_eq!(read(bad), Err(CborError), "{bad:?}");
        }
        // Nesting is bounded: 16 arrays deep is read, 64 is refused without recursing further.
        let nested = |depth: usize| [vec![0x81u8; depth], vec![0x00]].concat();
        assert!(read_exact(&nested(16)).is_ok());
        assert_eq!(read(&nested(64)), Err(CborError));
    }
}
