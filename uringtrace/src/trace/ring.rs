//! Reading the BPF ring buffer in batches.
//!
//! aya's reader publishes the consumer position after every sample. The kernel reads
//! that position on every reservation, so at millions of events per second its cache
//! line moved between the consumer's CPU and the producers' for every event. This
//! reader maps the same ring (the kernel's layout, `kernel/bpf/ringbuf.c`: one
//! writable page with the consumer position, one read-only page with the producer
//! position, then the data pages mapped twice so that a sample that wraps is
//! contiguous) and publishes the position once per batch.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

/// Record header bits (`include/uapi/linux/bpf.h`).
const BUSY_BIT: u32 = 1 << 31;
const DISCARD_BIT: u32 = 1 << 30;
const HDR_LEN: usize = 8;
/// Bytes consumed between publications of the consumer position within one batch:
/// the producers see the space come free long before the ring could fill.
const PUBLISH_EVERY: usize = 1 << 20;

pub struct RingReader {
    consumer: *mut u8,
    /// The producer page, followed by the data pages twice.
    producer: *const u8,
    page: usize,
    size: usize,
}

impl RingReader {
    /// Maps the ring buffer map `fd` of `size` bytes (a power of two).
    pub fn new(fd: BorrowedFd<'_>, size: usize) -> io::Result<RingReader> {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        // SAFETY: a fresh shared mapping of the map's consumer page; checked below.
        let consumer = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if consumer == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: as above, the producer page and the data pages (read-only).
        let producer = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                page + 2 * size,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                page as libc::off_t,
            )
        };
        if producer == libc::MAP_FAILED {
            let e = io::Error::last_os_error();
            // SAFETY: unmapping what was mapped above.
            unsafe { libc::munmap(consumer, page) };
            return Err(e);
        }
        Ok(RingReader {
            consumer: consumer.cast(),
            producer: producer.cast(),
            page,
            size,
        })
    }

    fn consumer_pos(&self) -> &AtomicUsize {
        // SAFETY: the first word of the consumer page, page-aligned, mapped for our
        // lifetime; only we write it.
        unsafe { &*self.consumer.cast::<AtomicUsize>() }
    }

    fn producer_pos(&self) -> usize {
        // SAFETY: the first word of the producer page, written by the kernel with
        // release semantics.
        unsafe { &*self.producer.cast::<AtomicUsize>() }.load(Ordering::Acquire)
    }

    /// Hands up to `max` committed samples to `f`, in ring order, then publishes the
    /// consumer position. Returns the samples read (discarded ones not counted).
    pub fn drain(&mut self, max: usize, mut f: impl FnMut(&[u8])) -> usize {
        let mask = self.size - 1;
        // SAFETY: the data pages start one page after the producer page.
        let data = unsafe { self.producer.add(self.page) };
        let mut cons = self.consumer_pos().load(Ordering::Relaxed);
        let mut published = cons;
        let mut prod = self.producer_pos();
        let mut n = 0;
        while n < max {
            if cons == prod {
                prod = self.producer_pos();
                if cons == prod {
                    break;
                }
            }
            let off = cons & mask;
            // SAFETY: off < size and the header is 8-byte aligned in the data pages.
            let hdr = unsafe { &*data.add(off).cast::<AtomicU32>() }.load(Ordering::Acquire);
            if hdr & BUSY_BIT != 0 {
                // Reserved, not yet committed: later samples wait for it.
                break;
            }
            let len = (hdr & !(BUSY_BIT | DISCARD_BIT)) as usize;
            if len > self.size {
                // Cannot come from the kernel; stop rather than read out of bounds.
                break;
            }
            if hdr & DISCARD_BIT == 0 {
                // SAFETY: the sample lies within the doubly mapped data pages
                // (off < size, len <= size), committed (acquire load above).
                let sample = unsafe { std::slice::from_raw_parts(data.add(off + HDR_LEN), len) };
                f(sample);
                n += 1;
            }
            cons += (HDR_LEN + len).next_multiple_of(8);
            if cons.wrapping_sub(published) >= PUBLISH_EVERY {
                self.consumer_pos().store(cons, Ordering::Release);
                published = cons;
            }
        }
        if cons != published {
            // Pairs with the kernel's acquire before it reuses the space.
            self.consumer_pos().store(cons, Ordering::Release);
        }
        n
    }
}

impl Drop for RingReader {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `new` mapped.
        unsafe {
            libc::munmap(self.consumer.cast(), self.page);
            libc::munmap(self.producer.cast_mut().cast(), self.page + 2 * self.size);
        }
    }
}

// SAFETY: the mappings are owned by the reader and only used through &mut self
// (the consumer position) or read atomically.
unsafe impl Send for RingReader {}
