//! Reading input files with a context that names the flag, and writing outputs: keys are
//! created 0600 from the first byte (a temporary file in the same directory, renamed into
//! place), never world-readable even for a moment.

use std::{io::Read, io::Write, path::Path};

use anyhow::{Context, Result};

/// Reads a file (or stdin for `-`), naming what it was for in the error.
pub fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .with_context(|| format!("reading {what} from stdin"))?;
        return Ok(buf);
    }
    std::fs::read(path).with_context(|| format!("reading {what} {}", path.display()))
}

/// Writes a secret (0600), atomically.
pub fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    write_atomic(path, data, true)
}

/// Writes a public file (0644), atomically.
pub fn write_public(path: &Path, data: &[u8]) -> Result<()> {
    write_atomic(path, data, false)
}

fn write_atomic(path: &Path, data: &[u8], private: bool) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // NamedTempFile is created 0600; a public file is widened only after it is complete.
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.write_all(data)
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    if !private {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    #[cfg(not(unix))]
    let _ = private;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
