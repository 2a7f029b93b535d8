//! Link settings for the `keyward` binary: its debug sections are compressed.
//!
//! The binary keeps line tables (`debug = "line-tables-only"` for the workspace's crates in the
//! root manifest) so that a panic's backtrace names Keyward's files and lines. That DWARF is
//! most of the binary's size, and it compresses well: the linker writes the debug sections
//! zlib-compressed (ELF `SHF_COMPRESSED`), which Rust's own backtrace symbolizer reads, as do
//! gdb, addr2line and objdump. `bench/binary.sh` checks the size and a real backtrace;
//! `tests/debug_cli.rs` checks a backtrace of the test build on every run.
//!
//! It is a link argument of this crate's binaries rather than `rustflags` in
//! `.cargo/config.toml`: rustflags are part of every crate's fingerprint, so setting them would
//! rebuild the whole dependency tree, and they would apply to every binary of every crate.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // GNU ld, gold and lld (rustc's default linker on x86_64 Linux) all take this flag; Apple's
    // and Microsoft's linkers do not, and those platforms keep debug information apart anyway.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-Wl,--compress-debug-sections=zlib");
    }
}
