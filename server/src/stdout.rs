//! Printing for the command line. `println!` panics when standard output is a pipe whose
//! reader has gone (`qingting editors status | head -n 1`); a command-line tool should end
//! quietly instead, as Unix filters do. Everything the CLI prints goes through here.

use std::io::{ErrorKind, Write};

/// Writes `args` to standard output. A closed pipe ends the process quietly with success
/// (the reader took what it wanted); any other write error ends it with a message.
pub fn write(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    match out.write_fmt(args).and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "qingting: cannot write to standard output: {e}"
            );
            std::process::exit(1)
        }
    }
}

/// A progress line of a command that changes something (an install): it carries on when
/// nobody reads its output any more, rather than stopping half way.
pub fn progress(line: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// `println!` for the CLI, without the panic on a closed pipe.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::stdout::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use outln;
