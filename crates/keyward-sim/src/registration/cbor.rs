//! A minimal, bounds-checked CBOR reader for the few items registration needs.
//!
//! The emulator must name the exact rule a bad attestation object breaks (wrong fmt,
//! missing authData, a COSE key whose algorithm is refused) before the attestation
//! statement itself is verified, so it reads the top-level map, the `attStmt` x5c array
//! and the COSE key header itself. Only definite-length items are needed (CTAP2
//! canonical CBOR forbids indefinite lengths); anything else is reported as malformed.

/// A decoded CBOR item, restricted to what attestation objects contain.
#[derive(Debug, Clone, PartialEq)]
pub enum Item<'a> {
    /// An integer (major types 0 and 1).
    Int(i128),
    /// A byte string.
    Bytes(&'a [u8]),
    /// A text string.
    Text(&'a str),
    /// An array.
    Array(Vec<Item<'a>>),
    /// A map, in encoded order.
    Map(Vec<(Item<'a>, Item<'a>)>),
    /// `true`/`false`.
    Bool(bool),
    /// `null`/`undefined`, floats and tags' contents are not needed and are kept opaque.
    Other,
}

/// The input is not CBOR this reader accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CborError;

const MAX_DEPTH: usize = 16;

/// Reads one item from the front of `data`; returns it and the number of bytes it used.
pub fn read(data: &[u8]) -> Result<(Item<'_>, usize), CborError> {
    let mut pos = 0;
    let item = read_at(data, &mut pos, 0)?;
    Ok((item, pos))
}

/// Reads exactly one item spanning all of `data`.
pub fn read_exact(data: &[u8]) -> Result<Item<'_>, CborError> {
    let (item, used) = read(data)?;
    if used == data.len() { Ok(item) } else { Err(CborError) }
}

fn take<'a>(data: &'a [u8], pos: &mut usize, n: usize) -> Result<&'a [u8], CborError> {
    let end = pos.checked_add(n).ok_or(CborError)?;
    let out = data.get(*pos..end).ok_or(CborError)?;
    *pos = end;
    Ok(out)
}

fn header(data: &[u8], pos: &mut usize) -> Result<(u8, u64), CborError> {
    let first = *take(data, pos, 1)?.first().ok_or(CborError)?;
    let major = first >> 5;
    let info = first & 0x1f;
    let arg = match info {
        0..=23 => u64::from(info),
        24 => u64::from(take(data, pos, 1)?[0]),
        25 => u64::from(u16::from_be_bytes(take(data, pos, 2)?.try_into().map_err(|_| CborError)?)),
        26 => u64::from(u32::from_be_bytes(take(data, pos, 4)?.try_into().map_err(|_| CborError)?)),
        27 => u64::from_be_bytes(take(data, pos, 8)?.try_into().map_err(|_| CborError)?),
        _ => return Err(CborError),
    };
    Ok((major, arg))
}

fn read_at<'a>(data: &'a [u8], pos: &mut usize, depth: usize) -> Result<Item<'a>, CborError> {
    if depth > MAX_DEPTH {
        return Err(CborError);
    }
    let (major, arg) = header(data, pos)?;
    let len = usize::try_from(arg).map_err(|_| CborError)?;
    Ok(match major {
        0 => Item::Int(i128::from(arg)),
        1 => Item::Int(-1 - i128::from(arg)),
        2 => Item::Bytes(take(data, pos, len)?),
        3 => Item::Text(std::str::from_utf8(take(data, pos, len)?).map_err(|_| CborError)?),
        4 => {
            // Each element takes at least one byte: refuse lengths the input cannot hold.
            if len > data.len() {
                return Err(CborError);
            }
            let mut out = Vec::with_capacity(len);
            for _ in 0..len {
                out.push(read_at(data, pos, depth + 1)?);
            }
            Item::Array(out)
        }
        5 => {
            if len > data.len() {
                return Err(CborError);
            }
            let mut out = Vec::with_capacity(len);
            for _ in 0..len {
                let k = read_at(data, pos, depth + 1)?;
                let v = read_at(data, pos, depth + 1)?;
                out.push((k, v));
            }
            Item::Map(out)
        }
        6 => {
            read_at(data, pos, depth + 1)?;
            Item::Other
        }
        _ => match arg {
            20 => Item::Bool(false),
            21 => Item::Bool(true),
            // Simple values and floats: their bytes were consumed by `header`.
            _ => Item::Other,
        },
    })
}

impl<'a> Item<'a> {
    /// The value under a text key of a map.
    pub fn get_text_key(&self, key: &str) -> Option<&Item<'a>> {
        match self {
            Item::Map(entries) => {
                entries.iter().find(|(k, _)| matches!(k, Item::Text(t) if *t == key)).map(|(_, v)| v)
            }
            _ => None,
        }
    }

    /// The value under an integer key of a map (COSE keys).
    pub fn get_int_key(&self, key: i128) -> Option<&Item<'a>> {
        match self {
            Item::Map(entries) => {
                entries.iter().find(|(k, _)| matches!(k, Item::Int(i) if *i == key)).map(|(_, v)| v)
            }
            _ => None,
        }
    }
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
        assert_eq!(item.get_text_key("fmt"), Some(&Item::Text("none")));
        assert_eq!(item.get_int_key(3), Some(&Item::Int(-7)));
        assert_eq!(item.get_text_key("x"), Some(&Item::Array(vec![Item::Bytes(&[1, 2])])));
    }

    #[test]
    fn truncated_or_hostile_input_is_an_error() {
        for bad in
            [&[0x62, b'a'][..], &[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..], &[0x1f][..]]
        {
            assert_eq!(read(bad), Err(CborError), "{bad:?}");
        }
        let deep = [0x81u8; 64];
        assert_eq!(read(&deep), Err(CborError));
    }
}
