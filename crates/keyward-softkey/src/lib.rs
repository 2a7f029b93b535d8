//! Keyward soft authenticator (work in progress).
