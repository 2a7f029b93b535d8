//! The soft key's touch sensor, pressed from outside the CTAP conversation.
//!
//! With [`crate::PresencePolicy::OnRequest`] the key does what a real key does while it blinks:
//! it waits for a touch. Something else — an operator's signal to `keyward softkey serve`, a
//! test choosing which of two keys to touch — presses the button from another thread while the
//! device thread holds the authenticator, so the button is a shared flag rather than a field
//! behind the authenticator's lock. A press only counts while the key is waiting (the flag is
//! cleared when a wait starts), like a finger on a key that is not blinking.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The touch sensor of one soft key; clones press the same sensor.
#[derive(Debug, Clone, Default)]
pub struct TouchButton(Arc<AtomicBool>);

impl TouchButton {
    /// Touches the key: the request waiting for a touch (if any) is approved.
    pub fn press(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Forgets a press made before the current wait started.
    pub(crate) fn clear(&self) {
        self.0.store(false, Ordering::SeqCst);
    }

    /// Whether the key was touched since the last call (or [`TouchButton::clear`]).
    pub(crate) fn take(&self) -> bool {
        self.0.swap(false, Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_press_is_seen_once_and_clones_share_the_sensor() {
        let button = TouchButton::default();
        let finger = button.clone();
        assert!(!button.take(), "nobody touched yet");
        finger.press();
        assert!(button.take());
        assert!(!button.take(), "one press approves one request");
        finger.press();
        button.clear();
        assert!(!button.take(), "a press before the wait started does not count");
    }
}
