//! Helpers shared by the experiment binaries (progress bars, results paths). The
//! binaries themselves are thin: they parse flags, call the library crates and write
//! files.

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar for `n` steps with a message slot, on stderr.
pub fn progress(n: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(n);
    pb.set_style(
        ProgressStyle::with_template("{prefix} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    pb.set_prefix(what.to_string());
    pb
}
