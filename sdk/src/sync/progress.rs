//! Progress of the snapshot: an indicatif bar (rows, rows/s, ETA) on a
//! terminal, a plain log line every 2 s otherwise.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A running progress display; [`Progress::finish`] stops it.
pub struct Progress {
    stop: Arc<AtomicBool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// Shows `counter` against `total` rows until finished. `enabled =
    /// false` shows nothing.
    pub fn start(what: &str, total: u64, counter: Arc<AtomicU64>, enabled: bool) -> Progress {
        let stop = Arc::new(AtomicBool::new(false));
        if !enabled {
            return Progress { stop, task: None };
        }
        let what = what.to_string();
        let s = stop.clone();
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let first = counter.load(Ordering::Relaxed);
            if std::io::stderr().is_terminal() {
                let bar = indicatif::ProgressBar::new(total);
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{msg} [{bar:40}] {human_pos}/{human_len} rows, {rate}, ETA {eta}",
                    )
                    .map(|st| {
                        st.with_key(
                            "rate",
                            |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                                let _ = write!(w, "{:.0} rows/s", s.per_sec());
                            },
                        )
                    })
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                bar.set_message(what);
                // The total is an estimate (planner statistics): a copy
                // that finds more rows grows it rather than overshoot.
                let show = |bar: &indicatif::ProgressBar| {
                    let n = counter.load(Ordering::Relaxed);
                    if n > bar.length().unwrap_or(0) {
                        bar.set_length(n);
                    }
                    bar.set_position(n);
                };
                while !s.load(Ordering::Relaxed) {
                    show(&bar);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                show(&bar);
                bar.finish();
            } else {
                let mut last = Instant::now();
                loop {
                    let done = s.load(Ordering::Relaxed);
                    if done || last.elapsed() >= Duration::from_secs(2) {
                        last = Instant::now();
                        let n = counter.load(Ordering::Relaxed);
                        let secs = started.elapsed().as_secs_f64().max(1e-3);
                        let rate = (n - first) as f64 / secs;
                        let eta = if rate > 0.0 {
                            total.saturating_sub(n) as f64 / rate
                        } else {
                            0.0
                        };
                        let total = total.max(n);
                        eprintln!("strata sync: {what}: {n}/{total} rows, {rate:.0} rows/s, ETA {eta:.0}s");
                    }
                    if done {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        Progress {
            stop,
            task: Some(task),
        }
    }

    /// Stops the display after a last update.
    pub fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // The task prints its last line and ends by itself.
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.take();
    }
}
