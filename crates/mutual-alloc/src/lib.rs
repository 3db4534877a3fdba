//! `mutual-alloc`: the allocator of each mutual process, and giving the memory it keeps free back
//! to the kernel.
//!
//! Two kinds of process want different allocators. A proxy or server holding thousands of idle
//! connections is a heap of small long-lived objects (each connection's TLS keys and state) laid
//! down among the transients of their handshakes. glibc's malloc packs those badly: with 10,000
//! callers held, 148 MiB stayed resident after `malloc_trim(0)`, against 90 MiB with jemalloc
//! (`bench/proxy.sh`), because glibc returns only whole free pages and its bins mix sizes, while
//! jemalloc keeps each size class in runs of its own, so freed objects leave whole pages behind.
//! An idle `mutual agent` is the opposite: a few hundred KiB of live heap, where jemalloc's
//! runs per size class cost 170 KiB more than glibc's heap for the same objects, and the agent
//! has a budget of 8 MiB.
//!
//! So on Linux with glibc, [`Allocator`] is jemalloc for every command but `mutual agent`, which
//! runs on the system allocator. The choice is made once, before the first allocation, from the
//! command line that glibc hands to the functions of `.init_array` (as Rust's standard library
//! gets its `std::env::args`); an allocation made before that (none is, in a Rust program) would
//! fix the choice to the system allocator. Either way one allocator serves the whole process:
//! memory is never freed by the other one. Code in C (aws-lc, glibc itself) keeps glibc's malloc.
//!
//! Neither allocator gives memory back on its own while the process is quiet: jemalloc returns
//! pages only while the process allocates (it has no background thread here), glibc only from
//! the top of its heaps. [`release_free_memory`] asks for them.
//!
//! A process that sleeps for long (the agent, between renewals) also holds the pages of the
//! binary it ran: code and read-only data, mapped from the page cache 64 KiB at a time around
//! each page touched. [`release_program_pages`] unmaps those that are still the file's bytes;
//! what runs next maps again what it touches.
//!
//! Elsewhere the system allocator is used and [`release_free_memory`] and
//! [`release_program_pages`] do nothing.
//!
//! This is the one crate of mutual with `unsafe` code: it is denied but for the allocator, the
//! start-up hook and the calls into C below, each with its reason.
#![deny(unsafe_code)]
#![warn(missing_docs)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU8, Ordering};

/// Global options of the `mutual` command line that take a value (`--data DIR`): the word after
/// one is not the command. `crates/mutual` checks this list against its parser.
pub const GLOBAL_OPTIONS_WITH_VALUES: &[&str] =
    &["--addr", "--cacert", "--data", "--database", "--token"];

/// The allocator a process runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The platform's `malloc` (glibc's on Linux).
    System,
    /// jemalloc, linked into the binary.
    Jemalloc,
}

impl Kind {
    /// Its name in metrics: `system` or `jemalloc`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::System => "system",
            Kind::Jemalloc => "jemalloc",
        }
    }
}

/// Which allocator a process with these arguments (without the program's name) runs on:
/// jemalloc, but the system allocator for `mutual agent`. The command is the first word that is
/// neither an option nor the value of a global option that takes one.
pub fn kind_for<'a>(args: impl IntoIterator<Item = &'a [u8]>) -> Kind {
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == b"--" {
            break;
        }
        if arg.starts_with(b"-") {
            if GLOBAL_OPTIONS_WITH_VALUES
                .iter()
                .any(|o| o.as_bytes() == arg)
            {
                args.next();
            }
            continue;
        }
        return if arg == b"agent" {
            Kind::System
        } else {
            Kind::Jemalloc
        };
    }
    Kind::Jemalloc
}

const UNDECIDED: u8 = 0;
const SYSTEM: u8 = 1;
const JEMALLOC: u8 = 2;

/// The choice, made once: by [`choose_at_start`], or fixed to the system allocator by an
/// allocation that came first.
static CHOICE: AtomicU8 = AtomicU8::new(UNDECIDED);

/// The allocator this process runs on.
pub fn kind() -> Kind {
    match decided() {
        JEMALLOC => Kind::Jemalloc,
        _ => Kind::System,
    }
}

/// The choice, fixing it to the system allocator if none was made yet.
#[inline]
fn decided() -> u8 {
    let c = CHOICE.load(Ordering::Relaxed);
    if c != UNDECIDED {
        return c;
    }
    match CHOICE.compare_exchange(UNDECIDED, SYSTEM, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => SYSTEM,
        Err(c) => c,
    }
}

/// The global allocator of every binary and test that links this crate: jemalloc or the system
/// allocator, as [`kind_for`] chose for this process.
pub struct Allocator;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[global_allocator]
static ALLOCATOR: Allocator = Allocator;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
const JE: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

// SAFETY: each method forwards to one allocator, the same for the whole life of the process
// (`decided` never changes once it has answered), so memory is always freed or resized by the
// allocator that gave it; both forwarded-to allocators uphold GlobalAlloc's contract.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        if decided() == JEMALLOC {
            return JE.alloc(layout);
        }
        System.alloc(layout)
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        if decided() == JEMALLOC {
            return JE.alloc_zeroed(layout);
        }
        System.alloc_zeroed(layout)
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        if decided() == JEMALLOC {
            return JE.dealloc(ptr, layout);
        }
        System.dealloc(ptr, layout)
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        if decided() == JEMALLOC {
            return JE.realloc(ptr, layout, new_size);
        }
        System.realloc(ptr, layout, new_size)
    }
}

/// Runs before `main`: glibc calls the functions of `.init_array` with `main`'s arguments.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
#[used]
#[link_section = ".init_array"]
static CHOOSE_AT_START: extern "C" fn(
    std::ffi::c_int,
    *const *const std::ffi::c_char,
    *const *const std::ffi::c_char,
) = choose_at_start;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" fn choose_at_start(
    argc: std::ffi::c_int,
    argv: *const *const std::ffi::c_char,
    _envp: *const *const std::ffi::c_char,
) {
    let argc = usize::try_from(argc).unwrap_or(0);
    if argv.is_null() {
        return;
    }
    // SAFETY: glibc passes `main`'s argc and argv: argv holds argc pointers to NUL-terminated
    // strings that live as long as the process, none of them null. Nothing here allocates.
    #[allow(unsafe_code)]
    let args = (1..argc).map(|i| unsafe { std::ffi::CStr::from_ptr(*argv.add(i)) }.to_bytes());
    let choice = match kind_for(args) {
        Kind::System => SYSTEM,
        Kind::Jemalloc => JEMALLOC,
    };
    // An allocation before this (none in a Rust program) already fixed the system allocator.
    let _ = CHOICE.compare_exchange(UNDECIDED, choice, Ordering::Relaxed, Ordering::Relaxed);
}

/// Gives back to the kernel the free pages the allocator holds, in every arena. jemalloc: the
/// calling thread's cache of freed objects goes back to its arena, then every arena's unused
/// pages are purged. glibc: `malloc_trim(0)`. Returns whether that was done (always false on
/// platforms other than Linux with glibc).
///
/// It walks the free memory of every arena, in proportion to what was freed since the last
/// call (22 ms after 10,000 handshakes' transients with jemalloc): call it rarely, when much was
/// freed.
pub fn release_free_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        match kind() {
            Kind::Jemalloc => mallctl(c"thread.tcache.flush") && mallctl(c"arena.4096.purge"),
            Kind::System => {
                // SAFETY: malloc_trim takes no pointer and touches only the allocator's own
                // state, under the lock of each arena, so it is sound from any thread.
                #[allow(unsafe_code)]
                unsafe {
                    libc::malloc_trim(0);
                }
                true
            }
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// A mapping of the program's own file that holds nothing but the file's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unchanged {
    /// Its first address.
    pub start: usize,
    /// The address after its last.
    pub end: usize,
    /// How much of it is resident, in bytes.
    pub rss: usize,
}

/// The mappings in `smaps` (the text of `/proc/PID/smaps`) of the file `path` that are private,
/// not writable, resident in part, and hold no page of their own (`Anonymous: 0 kB`): code and
/// read-only data exactly as in the file. A page of a private mapping that the process writes
/// becomes an anonymous copy, so a mapping once written (the relocated data that the dynamic
/// loader then makes read-only, a debugger's breakpoint) is never among them, nor is one whose
/// fields are missing or do not parse. (`Private_Dirty` is no guide: it also counts pages of a
/// file written moments ago and not yet on disk, such as a binary just built.)
pub fn unchanged_mappings(smaps: &str, path: &str) -> Vec<Unchanged> {
    let mut out = Vec::new();
    // The mapping being read, when it is a candidate, and the fields seen.
    let mut current: Option<(usize, usize)> = None;
    let (mut rss, mut anonymous) = (None, None);
    let mut finish =
        |current: Option<(usize, usize)>, rss: Option<usize>, anonymous: Option<usize>| {
            if let (Some((start, end)), Some(rss), Some(0)) = (current, rss, anonymous) {
                if rss > 0 {
                    out.push(Unchanged { start, end, rss });
                }
            }
        };
    for line in smaps.lines() {
        if let Some((range, rest)) = header(line) {
            finish(current, rss, anonymous);
            (rss, anonymous) = (None, None);
            let mut words = rest.split_whitespace();
            let perms = words.next().unwrap_or("");
            // offset, device and inode, then the path (which may hold spaces).
            let named = words.nth(3).map(|first| {
                let at = rest.find(first).unwrap_or(rest.len());
                rest[at..].trim_end()
            });
            let read_only_private =
                perms.len() == 4 && perms.as_bytes()[1] == b'-' && perms.as_bytes()[3] == b'p';
            current = (read_only_private && named == Some(path)).then_some(range);
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let bytes = || {
            let v = value.trim().strip_suffix(" kB")?;
            v.trim().parse::<usize>().ok()?.checked_mul(1024)
        };
        match key {
            "Rss" => rss = bytes(),
            "Anonymous" => anonymous = bytes(),
            _ => {}
        }
    }
    finish(current, rss, anonymous);
    out
}

/// `start-end` in hex at the head of a mapping's first line, and the rest of the line.
fn header(line: &str) -> Option<((usize, usize), &str)> {
    let (range, rest) = line.split_once(' ')?;
    let (start, end) = range.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    (start < end).then_some(((start, end), rest))
}

/// Unmaps from this process the pages of its own executable that are the file's bytes (code and
/// read-only data, [`unchanged_mappings`]), for a process about to sleep for long: they stay in
/// the page cache, and whatever runs next maps again what it touches. The pages a process
/// changed (relocated data, the heap) are never touched. Returns the resident bytes unmapped
/// (always 0 on platforms other than Linux with glibc).
pub fn release_program_pages() -> usize {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
            return 0;
        };
        let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
            return 0;
        };
        let mut released = 0;
        for m in unchanged_mappings(&smaps, &exe.to_string_lossy()) {
            // SAFETY: the range is a whole private mapping of the executable that is not
            // writable and holds no page that differs from the file (checked just above; with
            // no write permission none can appear since), so MADV_DONTNEED only drops page-table
            // entries that the next access fills again with the same bytes from the file.
            #[allow(unsafe_code)]
            let done = unsafe {
                libc::madvise(
                    m.start as *mut libc::c_void,
                    m.end - m.start,
                    libc::MADV_DONTNEED,
                )
            };
            if done == 0 {
                released += m.rss;
            }
        }
        released
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        0
    }
}

/// Runs a jemalloc control that takes and gives no value (4096 is `MALLCTL_ARENAS_ALL`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn mallctl(name: &std::ffi::CStr) -> bool {
    // SAFETY: `name` is NUL-terminated, and the controls used here read and write no value,
    // so every pointer passed is null with a length of 0, as mallctl(3) allows for such
    // controls; jemalloc takes its own locks, so any thread may call it at any time.
    #[allow(unsafe_code)]
    let status = unsafe {
        tikv_jemalloc_sys::mallctl(
            name.as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        )
    };
    status == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_runs_on_the_system_allocator() {
        let cases: &[(&[&str], Kind)] = &[
            (&["agent", "--addr", "https://ca:8200"], Kind::System),
            (&["--data", "d", "agent"], Kind::System),
            (&["--json", "agent"], Kind::System),
            (&["--data=d", "agent"], Kind::System),
            (&["proxy", "--listen", "127.0.0.1:8443"], Kind::Jemalloc),
            (&["server"], Kind::Jemalloc),
            (&["serve", "hello"], Kind::Jemalloc),
            // A value that reads like the command is still a value.
            (&["--data", "agent", "proxy"], Kind::Jemalloc),
            (
                &["--addr", "agent", "--token", "agent", "server"],
                Kind::Jemalloc,
            ),
            // The command decides, not a later word.
            (&["proxy", "--cn", "agent"], Kind::Jemalloc),
            (&["token", "create", "agent"], Kind::Jemalloc),
            (&[], Kind::Jemalloc),
            (&["--help"], Kind::Jemalloc),
            (&["--", "agent"], Kind::Jemalloc),
        ];
        for (args, want) in cases {
            assert_eq!(
                kind_for(args.iter().map(|a| a.as_bytes())),
                *want,
                "{args:?}"
            );
        }
    }

    /// A mapping's lines in `/proc/PID/smaps`.
    fn mapping(range: &str, perms: &str, path: &str, rss: u32, anon: u32, dirty: u32) -> String {
        format!(
            "{range} {perms} 00001000 fd:01 42                         {path}\n\
             Size:               1024 kB\nRss:                 {rss} kB\n\
             Pss:                 {rss} kB\nPrivate_Dirty:       {dirty} kB\n\
             Referenced:          {rss} kB\nAnonymous:           {anon} kB\n\
             VmFlags: rd mr mw me\n"
        )
    }

    #[test]
    fn only_the_programs_pages_that_are_the_files_bytes_are_released() {
        let exe = "/opt/mutual/bin/mutual";
        let kib = |n: usize| n * 1024;
        let cases: &[(&str, String, Vec<Unchanged>)] = &[
            (
                "code",
                mapping("1000-5000", "r-xp", exe, 12, 0, 0),
                vec![Unchanged {
                    start: 0x1000,
                    end: 0x5000,
                    rss: kib(12),
                }],
            ),
            (
                "read-only data",
                mapping("5000-9000", "r--p", exe, 4, 0, 0),
                vec![Unchanged {
                    start: 0x5000,
                    end: 0x9000,
                    rss: kib(4),
                }],
            ),
            // Relocated by the dynamic loader, then made read-only (RELRO): its pages are the
            // process's own, and dropping them would bring back the file's unrelocated bytes.
            (
                "relocated data",
                mapping("9000-a000", "r--p", exe, 4, 4, 4),
                vec![],
            ),
            (
                "a breakpoint in code",
                mapping("1000-5000", "r-xp", exe, 12, 4, 0),
                vec![],
            ),
            (
                // Written to the file moments ago and not yet on disk: still the file's bytes.
                "dirty in the page cache",
                mapping("1000-5000", "r-xp", exe, 12, 0, 4),
                vec![Unchanged {
                    start: 0x1000,
                    end: 0x5000,
                    rss: kib(12),
                }],
            ),
            (
                "writable",
                mapping("a000-b000", "rw-p", exe, 4, 0, 0),
                vec![],
            ),
            ("shared", mapping("1000-5000", "r-xs", exe, 4, 0, 0), vec![]),
            (
                "nothing resident",
                mapping("1000-5000", "r-xp", exe, 0, 0, 0),
                vec![],
            ),
            (
                "another file",
                mapping("1000-5000", "r-xp", "/usr/lib/libc.so.6", 8, 0, 0),
                vec![],
            ),
            (
                "a longer name",
                mapping("1000-5000", "r-xp", "/opt/mutual/bin/mutual2", 8, 0, 0),
                vec![],
            ),
            (
                "the heap",
                mapping("1000-5000", "rw-p", "[heap]", 8, 8, 8),
                vec![],
            ),
            (
                "a path with spaces",
                mapping("1000-5000", "r-xp", "/opt/my apps/mutual", 8, 0, 0),
                vec![],
            ),
            (
                "fields missing",
                "1000-5000 r-xp 00000000 fd:01 42 /opt/mutual/bin/mutual\n".into(),
                vec![],
            ),
            (
                "a number that does not parse",
                mapping("1000-5000", "r-xp", exe, 12, 0, 0)
                    .replace("Anonymous:           0 kB", "Anonymous: x kB"),
                vec![],
            ),
            (
                "a backwards range",
                mapping("5000-1000", "r-xp", exe, 12, 0, 0),
                vec![],
            ),
            ("not smaps", "garbage\n: kB\n-\n".into(), vec![]),
        ];
        for (what, smaps, want) in cases {
            assert_eq!(&unchanged_mappings(smaps, exe), want, "{what}");
        }
        // A binary replaced on disk while it runs is named so by the kernel, in both places.
        let deleted = format!("{exe} (deleted)");
        assert_eq!(
            unchanged_mappings(&mapping("1000-5000", "r-xp", &deleted, 4, 0, 0), &deleted).len(),
            1
        );
        assert_eq!(
            unchanged_mappings(
                &mapping("1000-5000", "r-xp", "/opt/my apps/mutual", 8, 0, 0),
                "/opt/my apps/mutual"
            )
            .len(),
            1
        );
        // Several mappings in one text: each is judged on its own fields.
        let all = [
            mapping("1000-5000", "r--p", exe, 8, 0, 0),
            mapping("5000-9000", "r-xp", exe, 16, 0, 0),
            mapping("9000-a000", "r--p", exe, 4, 4, 4),
            mapping("a000-b000", "rw-p", exe, 4, 4, 4),
            mapping("b000-c000", "rw-p", "", 4, 4, 4),
        ]
        .concat();
        let got: Vec<usize> = unchanged_mappings(&all, exe)
            .iter()
            .map(|m| m.start)
            .collect();
        assert_eq!(got, [0x1000, 0x5000]);
    }

    /// The program's own pages of this test binary: released, the process runs on, and what it
    /// changed (a value in its data, its relocations) is intact.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn the_program_runs_on_after_its_pages_are_released() {
        static CHANGED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        CHANGED.store(0x5eed, Ordering::Relaxed);
        let exe = std::fs::read_link("/proc/self/exe").expect("/proc/self/exe");
        let resident = || -> usize {
            let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
            unchanged_mappings(&smaps, &exe.to_string_lossy())
                .iter()
                .map(|m| m.rss)
                .sum()
        };
        let before = resident();
        let released = release_program_pages();
        assert!(
            released > 0 && released <= before,
            "released {released} of {before}"
        );
        // Code, read-only data and relocated data (a formatted string, a trait object) still
        // work, and a written value is still there.
        let text: Box<dyn std::fmt::Display> = Box::new(format!("{:?}", Kind::Jemalloc));
        assert_eq!(text.to_string(), "Jemalloc");
        assert_eq!(CHANGED.load(Ordering::Relaxed), 0x5eed);
        assert_eq!(kind_for([b"agent".as_slice()]), Kind::System);
        let after = resident();
        assert!(after < before, "resident {after} after, {before} before");
        eprintln!(
            "released {} KiB; {} KiB mapped again by the checks",
            released / 1024,
            after / 1024
        );
    }

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
    fn this_test_runs_on_the_allocator_its_command_line_chose() {
        // The hook ran before main: the choice follows this test binary's own arguments (a
        // test filter that reads `agent` would choose the system allocator).
        let args: Vec<String> = std::env::args().skip(1).collect();
        let want = kind_for(args.iter().map(|a| a.as_bytes()));
        assert_eq!(kind(), want, "{args:?}");
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn freed_holes_are_given_back() {
        const MIB: u64 = 1 << 20;
        // 64 MiB in blocks of 16 KiB, written so that they are resident; every other one freed
        // leaves 32 MiB of holes between live blocks, which stay resident until released.
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
            "32 MiB freed, yet the RSS went only from {before} to {after} ({:?})",
            kind()
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
