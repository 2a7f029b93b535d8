//! Picking one of several plugged-in keys by touch (authenticatorSelection, CTAP 2.1 §6.9).
//!
//! With two keys on the desk the operator should not have to read serial numbers: every key
//! is asked to blink at once, the first one touched wins, and the others get a CTAPHID CANCEL
//! so they stop blinking. Each key is driven from its own scoped thread because a selection
//! request blocks until touch, cancel or time-out.

use std::sync::atomic::Ordering;
use std::sync::mpsc;

use crate::client::Client;
use crate::error::CtapError;
use crate::transport::Transport;

/// Asks every key to blink and returns the index of the first one touched; the others are
/// cancelled. If no key is touched, the error of the last key to give up is returned.
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
        for (i, result) in rx {
            match result {
                Ok(()) if winner.is_none() => {
                    winner = Some(i);
                    for (j, f) in flags.iter().enumerate() {
                        if j != i {
                            f.store(true, Ordering::SeqCst);
                        }
                    }
                }
                Ok(()) => {}
                Err(e) => last_err = Some(e),
            }
        }
        winner
            .ok_or_else(|| last_err.unwrap_or(CtapError::Malformed("no security key to select from".into())))
    })
}
