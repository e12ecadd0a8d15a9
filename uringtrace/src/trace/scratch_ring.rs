//! Rings uringtrace makes for itself (to read what this kernel's fdinfo shows, and
//! `doctor`'s trial io_uring_setup), always on a thread of their own.
//!
//! Why a thread (seen on 6.18; the mechanism is the same since 5.11): creating a ring
//! adds the calling task to the ring's task list, and closing the ring queues the
//! ring-exit work (`io_ring_exit_work`), which, up to ~50 ms later, sends task_work
//! with `TWA_SIGNAL` to every task on that list. That sets TIF_NOTIFY_SIGNAL, so
//! `signal_pending()` is true for the task until it returns to user mode, and a
//! `BPF_PROG_LOAD` running in that moment fails with EAGAIN (the verifier gives up
//! when a signal is pending). When the first load of a process is aya's one-time
//! feature probe, aya concludes that the kernel has no global data and loading our
//! object fails with "section not found, referenced by symbol CONFIG"; a later one
//! fails one of our programs. Measured here: 200 close-then-load rounds on the
//! loading thread gave 107 EAGAIN loads; with the ring on a thread that has ended,
//! none. A thread that ends takes its io_uring task context with it, so the loading
//! thread never gets the notification.

/// Runs `f` with a new ring of `entries` entries (or the error io_uring_setup gave)
/// on a short-lived thread, and closes the ring there. None if the thread could not
/// be started or panicked.
pub fn with_scratch_ring<T: Send>(
    entries: u32,
    f: impl FnOnce(Result<&io_uring::IoUring, &std::io::Error>) -> T + Send,
) -> Option<T> {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("uringtrace-ring".into())
            .spawn_scoped(s, move || f(io_uring::IoUring::new(entries).as_ref()))
            .ok()?
            .join()
            .ok()
    })
}
