//! A progress bar on the terminal for long work, and nothing at all when
//! stdout or stderr is not a terminal (pipes, files, tests, CI).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Progress of one long piece of work.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar on stderr if both stdout and stderr are terminals.
    pub fn for_terminal() -> Progress {
        let interactive = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
        Progress {
            bar: interactive.then(|| {
                ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10))
            }),
        }
    }

    /// No output at all.
    pub fn hidden() -> Progress {
        Progress { bar: None }
    }

    /// Starts counting to `total` units of work.
    pub fn start(&self, total: u64, what: &str) {
        if let Some(bar) = &self.bar {
            bar.reset();
            bar.set_length(total);
            bar.set_position(0);
            bar.set_message(what.to_owned());
            let style = ProgressStyle::with_template(
                "{msg:12} [{bar:40}] {percent:>3}% {elapsed_precise} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
        }
    }

    /// Sets the work done.
    pub fn set(&self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        }
    }

    /// Adds to the work done.
    pub fn inc(&self, delta: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(delta);
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
