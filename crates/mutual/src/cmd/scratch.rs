//! Temporary directories that hold keys (`server --dev`'s store, `demo`'s CA) and that must not
//! outlive the process that made them. The process removes its own when it stops; one that is
//! killed (`kill -9`, the OOM killer) cannot, so each holds a lock on `lock` inside its
//! directory while it runs, and the next process of the same kind removes every directory of
//! its prefix whose lock nobody holds. A lock, unlike a PID file, is released by the kernel
//! however the process ends and is not fooled by a PID used again.

use std::path::Path;

use anyhow::{Context, Result};

/// A temporary directory and the lock that says its process runs; removed when dropped.
pub struct Scratch {
    dir: tempfile::TempDir,
    _lock: std::fs::File,
}

impl Scratch {
    /// A new directory named `prefix…` in memory (`/dev/shm`) when `in_memory` and the system
    /// has it, else in the system's temporary directory; those of the same prefix, user and
    /// location that a killed process left are removed.
    pub fn create(prefix: &str, in_memory: bool) -> Result<Scratch> {
        let shm = Path::new("/dev/shm");
        let mut builder = tempfile::Builder::new();
        builder.prefix(prefix);
        let dir = if in_memory && shm.is_dir() {
            builder.tempdir_in(shm).or_else(|_| builder.tempdir())
        } else {
            builder.tempdir()
        }
        .context("creating a temporary directory")?;
        // Locked before it is named `lock`, so that no other process ever finds it free.
        let staged = dir.path().join("lock.new");
        let lock = std::fs::File::create(&staged)
            .with_context(|| format!("creating {}", staged.display()))?;
        try_lock(&lock).with_context(|| format!("locking {}", staged.display()))?;
        std::fs::rename(&staged, dir.path().join("lock"))
            .with_context(|| format!("placing the lock in {}", dir.path().display()))?;
        if let Some(base) = dir.path().parent() {
            sweep(base, prefix, dir.path());
        }
        Ok(Scratch { dir, _lock: lock })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

fn try_lock(file: &std::fs::File) -> std::io::Result<()> {
    rustix::fs::flock(file, rustix::fs::FlockOperation::NonBlockingLockExclusive)
        .map_err(std::io::Error::from)
}

/// Removes the directories `prefix…` under `base` that are this user's and whose process is
/// gone.
fn sweep(base: &Path, prefix: &str, ours: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(me) = std::fs::metadata(ours).map(|m| m.uid()) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path == ours || !entry.file_name().to_string_lossy().starts_with(prefix) {
            continue;
        }
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() && m.uid() == me => {}
            _ => continue,
        }
        // Without `lock` it is an older release's, or a process's between creating and
        // locking it; with the lock held, its process runs.
        let Ok(lock) = std::fs::File::open(path.join("lock")) else {
            continue;
        };
        if try_lock(&lock).is_err() {
            continue;
        }
        match std::fs::remove_dir_all(&path) {
            Ok(()) => {
                tracing::info!(dir = %path.display(), decision = "removed", "a temporary directory left by a process that was killed")
            }
            Err(e) => {
                tracing::warn!(dir = %path.display(), error = %e, "could not remove a temporary directory left by a process that was killed")
            }
        }
    }
}
