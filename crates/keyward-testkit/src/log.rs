//! A log sink for the tests that search a whole run's `tracing` output for secrets: hand clones
//! of one [`CapturedLog`] to `tracing_subscriber::fmt().with_writer(...)`, then read it all back.

use std::io::Write;
use std::sync::{Arc, Mutex};

/// An in-memory writer; clones share one buffer.
#[derive(Clone, Default)]
pub struct CapturedLog(Arc<Mutex<Vec<u8>>>);

impl CapturedLog {
    /// Everything written so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("the log buffer")).into_owned()
    }
}

impl Write for CapturedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("the log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
