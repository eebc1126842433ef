//! How a training process treats freed memory: [`keep_freed_memory`].
//!
//! A training step frees and reallocates tensors of hundreds of MB; with mimalloc's
//! defaults (the allocator of every experiment binary, `experiments/src/lib.rs`; the
//! build compiles mimalloc v3, whose purge delay is 1 s, v2's 10 ms) their pages are
//! decommitted and faulted back in, and zeroed, at the next step (README, *Training benchmark*: 5.25 million page faults of the batch-10 bench
//! before, 3,300 after).

/// mimalloc's `mi_option_purge_delay` (its `mi_option_e`, v2 and v3 alike); the Rust
/// bindings name no constant for it. A test checks it is the purge delay.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Tells mimalloc never to return freed memory to the kernel (`purge_delay` -1), so that
/// a step reuses the pages the previous one freed. The price is a resident size at the
/// step's peak. No effect unless mimalloc is the global allocator. Call it first in
/// `main` (the `train` binary and the `step` bench do).
pub fn keep_freed_memory() {
    // SAFETY: sets one integer option of the allocator; any value is valid for it.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Option 15 is mimalloc's purge delay: it holds that option's documented default
    /// (1000 ms in mimalloc v3, 10 ms in v2; its neighbours default to 1 and 0) until
    /// [`keep_freed_memory`] sets it to -1.
    #[test]
    fn keep_freed_memory_sets_the_purge_delay() {
        // SAFETY: reads and sets one integer option.
        let before = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert!(before == 1000 || before == 10, "option 15 = {before}");
        keep_freed_memory();
        assert_eq!(
            unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) },
            -1
        );
    }
}
