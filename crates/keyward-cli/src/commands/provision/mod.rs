//! `keyward provision`: put a passkey for one person on one security key at the operator's
//! desk, set its PIN and hand the PIN over — on the terminal once, or in an encrypted letter.
//!
//! [`flow`] is the provisioning itself, shared with bulk provisioning and the demo; [`command`]
//! is the command line around it (opening the key, reading or showing the PIN, the letter);
//! [`pin`] makes and checks PINs; [`letter`] writes the encrypted PIN letter; [`selftest`]
//! signs in once with the new passkey; [`error`] says what failed and what was undone.

pub mod command;
pub mod error;
pub mod flow;
pub mod letter;
pub mod pin;
pub mod selftest;
