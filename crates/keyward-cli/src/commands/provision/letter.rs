//! The PIN letter: a one-page PDF with the person's name, UPN, key and PIN, encrypted to an
//! age X25519 recipient (`age1…`) before it touches the disk.
//!
//! The PDF is built in memory (in a zeroizing buffer) with `pdf-writer`, typst's small,
//! dependency-light PDF writer; `printpdf` 0.12 was rejected because it pulls in a whole
//! HTML/text layout engine for what is a dozen lines of Helvetica. The standard Type 1 font
//! needs no embedding; text is WinAnsi (Latin-1), other characters print as `?`. Encryption is
//! the `age` crate; the encrypted file is written next to its destination and renamed into
//! place, so a reader never sees half a file and no clear copy ever exists on disk.

use std::io::Write;
use std::path::Path;
use std::str::FromStr;

use pdf_writer::{Content, Name, Pdf, Rect, Ref, Str};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

/// What goes into a letter.
pub struct Letter<'a> {
    /// The person's display name.
    pub name: &'a str,
    /// Their UPN.
    pub upn: &'a str,
    /// The key's serial, if known.
    pub serial: Option<&'a str>,
    /// The key's model, if known.
    pub model: Option<&'a str>,
    /// The PIN.
    pub pin: &'a SecretString,
}

/// Why a letter could not be written.
#[derive(Debug, thiserror::Error)]
pub enum LetterError {
    /// The recipient is not an age X25519 public key.
    #[error("--recipient {0:?} is not an age X25519 public key (age1…); generate one with `age-keygen`")]
    Recipient(String),
    /// Encryption failed.
    #[error("cannot encrypt the PIN letter: {0}")]
    Encrypt(String),
    /// Writing the file failed.
    #[error("cannot write the PIN letter {path}: {reason}; check the directory and run again")]
    Write {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Parses an age X25519 recipient (to check `--recipient` before provisioning).
pub fn parse_recipient(text: &str) -> Result<age::x25519::Recipient, LetterError> {
    age::x25519::Recipient::from_str(text.trim()).map_err(|_| LetterError::Recipient(text.to_owned()))
}

/// Latin-1 bytes of a string for the WinAnsi-encoded standard font.
fn latin1(text: &str) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(text.chars().map(|c| if (c as u32) < 256 { c as u8 } else { b'?' }).collect())
}

/// The letter as an unencrypted one-page PDF, in a zeroizing buffer.
pub fn render(letter: &Letter<'_>) -> Zeroizing<Vec<u8>> {
    render_pages(std::slice::from_ref(letter))
}

/// One page per letter in one PDF (for bulk runs), in a zeroizing buffer.
pub fn render_pages(letters: &[Letter<'_>]) -> Zeroizing<Vec<u8>> {
    let (catalog, tree, font) = (Ref::new(1), Ref::new(2), Ref::new(3));
    // Page i is object 4 + 2i, its content stream 5 + 2i.
    let page_ref = |i: usize| Ref::new(4 + 2 * i as i32);
    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids((0..letters.len()).map(page_ref)).count(letters.len() as i32);
    pdf.type1_font(font).base_font(Name(b"Helvetica")).encoding_predefined(Name(b"WinAnsiEncoding"));
    for (i, letter) in letters.iter().enumerate() {
        let contents = Ref::new(5 + 2 * i as i32);
        {
            let mut p = pdf.page(page_ref(i));
            p.media_box(Rect::new(0.0, 0.0, 595.0, 842.0)).parent(tree).contents(contents);
            p.resources().fonts().pair(Name(b"F1"), font);
        }
        let stream = page_content(letter);
        pdf.stream(contents, &stream);
    }
    Zeroizing::new(pdf.finish())
}

/// The text of one letter as a PDF content stream.
fn page_content(letter: &Letter<'_>) -> Zeroizing<Vec<u8>> {
    let key = match (letter.model, letter.serial) {
        (Some(m), Some(s)) => format!("{m}, serial {s}"),
        (Some(m), None) => m.to_owned(),
        (None, Some(s)) => format!("serial {s}"),
        (None, None) => "security key".to_owned(),
    };
    let pin_line = Zeroizing::new(format!("PIN: {}", letter.pin.expose_secret()));
    let lines: [(f32, &str); 9] = [
        (20.0, "Your security key"),
        (12.0, ""),
        (12.0, &format!("For: {}", letter.name)),
        (12.0, &format!("Account: {}", letter.upn)),
        (12.0, &format!("Key: {key}")),
        (12.0, ""),
        (18.0, pin_line.as_str()),
        (12.0, ""),
        (11.0, "Keep this PIN secret. You may be asked to change it the first time you use the key."),
    ];
    let mut content = Content::new();
    let mut y = 760.0;
    for (size, text) in lines {
        content.begin_text();
        content.set_font(Name(b"F1"), size);
        content.next_line(72.0, y);
        content.show(Str(&latin1(text)));
        content.end_text();
        y -= size * 1.8;
    }
    Zeroizing::new(content.finish().to_vec())
}

/// Encrypts a rendered PDF to `recipient` and writes it to `path` (via a temporary file in
/// the same directory, renamed into place).
pub fn write_pdf_encrypted(path: &Path, recipient: &str, pdf: &[u8]) -> Result<(), LetterError> {
    let recipient = parse_recipient(recipient)?;
    let recipients: [&dyn age::Recipient; 1] = [&recipient];
    let encryptor = age::Encryptor::with_recipients(recipients.into_iter())
        .map_err(|e| LetterError::Encrypt(e.to_string()))?;
    let mut encrypted = Vec::new();
    let mut writer =
        encryptor.wrap_output(&mut encrypted).map_err(|e| LetterError::Encrypt(e.to_string()))?;
    writer
        .write_all(pdf)
        .and_then(|()| writer.finish().map(|_| ()))
        .map_err(|e| LetterError::Encrypt(e.to_string()))?;
    let write_err =
        |e: std::io::Error| LetterError::Write { path: path.display().to_string(), reason: e.to_string() };
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    std::fs::write(&tmp, &encrypted).map_err(write_err)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        write_err(e)
    })
}

/// Renders the letter, encrypts it to `recipient` and writes it to `path`.
pub fn write_encrypted(path: &Path, recipient: &str, letter: &Letter<'_>) -> Result<(), LetterError> {
    write_pdf_encrypted(path, recipient, &render(letter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_letter_is_a_pdf_with_the_pin_and_only_the_identity_opens_it() {
        let pin = SecretString::from("482910".to_owned());
        let letter = Letter {
            name: "Zoë Novak",
            upn: "zoe@contoso.example",
            serial: Some("SK-1"),
            model: None,
            pin: &pin,
        };
        let pdf = render(&letter);
        assert!(pdf.starts_with(b"%PDF-"));
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("(PIN: 482910)") && text.contains("serial SK-1"), "{text}");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zoe.pdf.age");
        let identity = age::x25519::Identity::generate();
        write_encrypted(&path, &identity.to_public().to_string(), &letter).unwrap();
        let encrypted = std::fs::read(&path).unwrap();
        assert!(!encrypted.windows(6).any(|w| w == b"482910") && !encrypted.starts_with(b"%PDF"));
        assert_eq!(age::decrypt(&identity, &encrypted).unwrap(), pdf.to_vec());
        let other = age::x25519::Identity::generate();
        assert!(age::decrypt(&other, &encrypted).is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "a temporary file was left behind");
        assert!(matches!(write_encrypted(&path, "age1nope", &letter), Err(LetterError::Recipient(_))));

        let pin2 = SecretString::from("739104".to_owned());
        let second =
            Letter { name: "Ben Okafor", upn: "ben@contoso.example", serial: None, model: None, pin: &pin2 };
        let both = render_pages(&[letter, second]);
        let text = String::from_utf8_lossy(&both);
        assert!(
            text.contains("/Count 2") && text.contains("(PIN: 482910)") && text.contains("(PIN: 739104)")
        );
    }
}
