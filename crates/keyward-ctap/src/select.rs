//! Picking one of several plugged-in keys by touch (authenticatorSelection, CTAP 2.1 §6.9).
//!
//! With two keys on the desk the operator should not have to read serial numbers: every key
//! is asked to blink at once, the first one touched wins, and the others get a CTAPHID CANCEL
//! so they stop blinking. Each key is driven from its own scoped thread because a selection
//! request blocks until touch, cancel or time-out.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use crate::client::Client;
use crate::error::CtapError;
use crate::transport::Transport;

/// How often the losers' cancel flags are raised again while they are still running: a key
/// whose request only starts after the winner answered would otherwise clear its flag and
/// blink until its own time-out.
const RECANCEL_EVERY: Duration = Duration::from_millis(50);

/// Asks every key to blink and returns the index of the first one touched; the others are
/// cancelled. If no key is touched, the error of the last key to give up is returned
/// ([`CtapError::NoKey`] for an empty list).
pub fn select<T: Transport>(clients: &mut [Client<T>]) -> Result<usize, CtapError> {
    let flags: Vec<_> = clients.iter_mut().map(|c| c.hid().cancel_flag()).collect();
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        for (i, c) in clients.iter_mut().enumerate() {
            let tx = tx.clone();
            s.spawn(move || {
                let _ = tx.send((i, c.selection()));
            });
        }
        drop(tx);
        let mut winner = None;
        let mut last_err = None;
        loop {
            let next = rx.recv_timeout(RECANCEL_EVERY);
            if let Some(w) = winner {
                flags
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != w)
                    .for_each(|(_, f)| f.store(true, Ordering::SeqCst));
            }
            match next {
                Ok((i, Ok(()))) if winner.is_none() => {
                    winner = Some(i);
                    flags
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .for_each(|(_, f)| f.store(true, Ordering::SeqCst));
                }
                Ok((_, Ok(()))) | Err(RecvTimeoutError::Timeout) => {}
                Ok((_, Err(e))) => last_err = Some(e),
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        winner.ok_or_else(|| last_err.unwrap_or(CtapError::NoKey))
    })
}
