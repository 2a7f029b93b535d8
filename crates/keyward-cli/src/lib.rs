//! Keyward's operator tools: the typed client of the Core API and the commands built on it
//! (provision, bulk, people, keys, passkeys, policy, TAP, reports, audit, connector, doctor,
//! inspect),
//! and the commands for the security key on the desk (`device`, `softkey`), which open the key
//! and read its PIN through [`desk_key`].
//!
//! This crate is what an operator's workstation runs. It reaches a Keyward server only through
//! the Core API, with the wire types of `keyward-proto`, and does not depend on the server's
//! code (an architecture test keeps it so); the `keyward` binary puts these commands beside the
//! server, the emulator and the demo.

pub mod api_client;
pub mod commands;
pub mod desk_key;
