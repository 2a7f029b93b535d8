//! The binary's own commands: the server and its host-side administration, the emulator, the
//! demo that runs them all, shell completions and man pages. The operator's commands (which talk
//! to a server only through its API) are `keyward-cli`'s.

pub mod admin;
pub mod completions;
pub mod demo;
pub mod inspect;
pub mod serve;
pub mod sim;
