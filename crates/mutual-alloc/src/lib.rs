//! `mutual-alloc`: gives memory that glibc's allocator keeps free back to the kernel.
//!
//! glibc returns freed memory to the kernel only from the top of its heaps; what is freed below
//! a live allocation stays resident. A server whose thousands of idle connections each freed
//! their buffers (and their handshake's transients) keeps all those pages until
//! [`release_free_memory`] asks glibc to give back the free pages anywhere in its heaps.
//!
//! On other platforms (musl, macOS, Windows) it does nothing: the allocator there manages its
//! own returns, and no call into libc is made.
//!
//! This is the one crate of mutual that calls into libc: `unsafe` is denied but for the one
//! call below, with its reason. (glibc's `mallinfo2` would say how much is free, but it walks
//! the same free lists as the trim: 10 ms on a proxy holding 10,000 connections, too dear to
//! poll.)
#![deny(unsafe_code)]
#![warn(missing_docs)]

/// Asks the allocator to give back to the kernel the whole free pages it holds, in every
/// arena: glibc's `malloc_trim(0)`. Returns whether any memory was released (always false on
/// platforms other than Linux with glibc).
///
/// It locks each arena in turn and walks its free chunks, so it takes time in proportion to
/// the heap (18 ms for the 320 MiB heap of a proxy holding 10,000 connections): call it
/// rarely, when much was freed.
pub fn release_free_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim takes no pointer and touches only the allocator's own state,
        // under the lock of each arena, so it is sound from any thread at any time.
        #[allow(unsafe_code)]
        let released = unsafe { libc::malloc_trim(0) };
        released != 0
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The resident set of this process, in bytes.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn rss() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
        let line = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .expect("VmRSS");
        let kib: u64 = line
            .split_whitespace()
            .nth(1)
            .expect("a number")
            .parse()
            .expect("kB");
        kib * 1024
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn freed_holes_are_given_back() {
        const MIB: u64 = 1 << 20;
        // 64 MiB in blocks of 16 KiB, written so that they are resident; every other one freed
        // leaves 32 MiB of holes below live blocks, which glibc keeps resident by itself.
        let mut blocks: Vec<Vec<u8>> = (0..4096).map(|_| vec![1u8; 16 * 1024]).collect();
        let mut i = 0;
        blocks.retain(|_| {
            i += 1;
            i % 2 == 0
        });
        let before = rss();
        assert!(release_free_memory(), "the freed holes are given back");
        let after = rss();
        assert!(
            after + 16 * MIB <= before,
            "32 MiB freed, yet the RSS went only from {before} to {after}"
        );
        // The live blocks are intact, and what was given back can be used again.
        assert!(blocks.iter().all(|b| b.iter().all(|&x| x == 1)));
        blocks.push(vec![2; 16 * 1024]);
        assert_eq!(blocks.len(), 2049);
    }

    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    #[test]
    fn does_nothing_elsewhere() {
        assert!(!release_free_memory());
    }
}
