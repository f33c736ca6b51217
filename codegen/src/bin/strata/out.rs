//! Standard output and error that a closed reader cannot crash:
//! `strata … | head -2` (or `2>&1 | head`) closes the pipe early, and
//! `print!`/`eprint!` would panic on the `EPIPE` the next write gets. Rust
//! ignores `SIGPIPE`, so the error comes back as a value: here the first
//! broken pipe silences every later write to that stream and the command
//! finishes with its usual exit code.

use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `args` to stdout; after a broken pipe, writes nothing. Any other
/// write error is reported once on stderr and silences stdout the same way.
pub fn write(args: std::fmt::Arguments<'_>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_fmt(args).and_then(|()| o.flush()) {
        CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != ErrorKind::BrokenPipe {
            write_err(format_args!("error: cannot write to stdout: {e}\n"));
        }
    }
}

/// Writes `args` to stderr, ignoring a failure (a closed pipe): there is
/// nowhere left to report it.
pub fn write_err(args: std::fmt::Arguments<'_>) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_fmt(args);
}

/// `eprint!` through [`write_err`].
macro_rules! err {
    ($($t:tt)*) => { $crate::out::write_err(format_args!($($t)*)) };
}

/// `eprintln!` through [`write_err`].
macro_rules! errln {
    ($($t:tt)*) => { $crate::out::write_err(format_args!("{}\n", format_args!($($t)*))) };
}

/// `print!` through [`write`].
macro_rules! out {
    ($($t:tt)*) => { $crate::out::write(format_args!($($t)*)) };
}

/// `println!` through [`write`].
macro_rules! outln {
    ($($t:tt)*) => { $crate::out::write(format_args!("{}\n", format_args!($($t)*))) };
}

pub(crate) use {err, errln, out, outln};
