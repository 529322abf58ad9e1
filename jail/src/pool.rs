//! A bounded pool of warm husks, refilled in the background from the [`Zygote`].
//!
//! [`HuskPool::take`] hands out a ready husk at once when one is warm, or asks the zygote for
//! a fresh one when the pool is empty (so a burst is slower, never refused). A refill thread
//! keeps `size` husks ready. A husk is handed out once and never returns to the pool.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::Result;
use crate::jail::Husk;
use crate::zygote::Zygote;

#[derive(Debug)]
struct State {
    ready: VecDeque<Husk>,
    size: usize,
    stopping: bool,
    /// the last refill error, cleared by the next success
    last_error: Option<String>,
}

#[derive(Debug)]
struct Shared {
    zygote: Zygote,
    state: Mutex<State>,
    wake: Condvar,
}

/// Warm husks, ready to start a program.
#[derive(Debug)]
pub struct HuskPool {
    shared: Arc<Shared>,
    refill: Option<JoinHandle<()>>,
}

impl HuskPool {
    /// Start a pool of `size` husks made by `zygote`, filled in the background.
    pub fn new(zygote: Zygote, size: usize) -> Self {
        let shared = Arc::new(Shared {
            zygote,
            state: Mutex::new(State {
                ready: VecDeque::with_capacity(size),
                size,
                stopping: false,
                last_error: None,
            }),
            wake: Condvar::new(),
        });
        let s = Arc::clone(&shared);
        let refill = std::thread::Builder::new()
            .name("husk-refill".into())
            .spawn(move || refill_loop(&s))
            .expect("spawn husk refill thread");
        HuskPool {
            shared,
            refill: Some(refill),
        }
    }

    /// A husk: a warm one if any, else a fresh one from the zygote. Husks that died while
    /// waiting (their zygote was killed, say) are discarded, never handed out.
    pub fn take(&self) -> Result<Husk> {
        loop {
            let warm = {
                let mut st = self.shared.state.lock().expect("pool lock");
                let h = st.ready.pop_front();
                self.shared.wake.notify_all();
                h
            };
            match warm {
                Some(h) if h.is_alive() => return Ok(h),
                Some(dead) => drop(dead),
                None => return self.shared.zygote.make_husk(),
            }
        }
    }

    /// The zygote the pool takes husks from.
    pub fn zygote(&self) -> &Zygote {
        &self.shared.zygote
    }

    /// Number of warm husks right now.
    pub fn warm(&self) -> usize {
        self.shared.state.lock().expect("pool lock").ready.len()
    }

    /// Block until the pool is full (or `timeout` passes); returns the number of warm husks.
    pub fn wait_full(&self, timeout: Duration) -> usize {
        let deadline = std::time::Instant::now() + timeout;
        let mut st = self.shared.state.lock().expect("pool lock");
        while st.ready.len() < st.size && std::time::Instant::now() < deadline {
            let (g, _) = self
                .shared
                .wake
                .wait_timeout(st, Duration::from_millis(10))
                .expect("pool lock");
            st = g;
        }
        st.ready.len()
    }

    /// The last error the refill thread met, if it has not succeeded since.
    pub fn last_error(&self) -> Option<String> {
        self.shared
            .state
            .lock()
            .expect("pool lock")
            .last_error
            .clone()
    }

    /// Pids of the warm husks' inits (for measuring their memory).
    pub fn warm_pids(&self) -> Vec<i32> {
        let st = self.shared.state.lock().expect("pool lock");
        st.ready.iter().map(|h| h.pid()).collect()
    }
}

fn refill_loop(shared: &Shared) {
    loop {
        {
            let mut st = shared.state.lock().expect("pool lock");
            while !st.stopping && st.ready.len() >= st.size {
                st = shared.wake.wait(st).expect("pool lock");
            }
            if st.stopping {
                return;
            }
        }
        match shared.zygote.make_husk() {
            Ok(h) => {
                let mut st = shared.state.lock().expect("pool lock");
                st.last_error = None;
                if st.stopping {
                    return;
                }
                st.ready.push_back(h);
                shared.wake.notify_all();
            }
            Err(e) => {
                shared.state.lock().expect("pool lock").last_error = Some(e.to_string());
                // back off; the error is visible through last_error()
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

impl Drop for HuskPool {
    fn drop(&mut self) {
        self.shared.state.lock().expect("pool lock").stopping = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.refill.take() {
            let _ = t.join();
        }
        self.shared.state.lock().expect("pool lock").ready.clear();
    }
}
