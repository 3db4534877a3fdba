//! `cert.pem`, `key.pem` and `ca.pem` on disk, replaced so that a reader never sees a torn file
//! nor a certificate and a key that do not match (Kubernetes' AtomicWriter layout):
//!
//! ```text
//! DIR/..2026_11_30_04_47_05.123456789/{cert.pem,key.pem,ca.pem}   one generation, fsynced
//! DIR/..data -> ..2026_11_30_04_47_05.123456789                   swapped with rename(2)
//! DIR/cert.pem -> ..data/cert.pem                                  stable names for readers
//! ```
//!
//! A generation is written whole and fsynced before the `..data` link is renamed over the old
//! one, so a crash (even `kill -9`) leaves either the old generation or the new one. A reader
//! that needs the pair while the agent runs resolves `DIR/..data` once and reads both files
//! from that generation (or reads after the `--exec`/`--signal` hook, which follows the swap).
//! The generation before the current one is kept, so such a reader never finds its second file
//! gone; older and half-written ones are removed after the swap and at the next start. The
//! generation's name is the time it was received, which the renewal schedule reads back.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{symlink, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use zeroize::Zeroizing;

const DATA: &str = "..data";
const DATA_TMP: &str = "..data_tmp";
/// The files of a generation.
pub const NAMES: [&str; 3] = ["cert.pem", "key.pem", "ca.pem"];

/// Why the output directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// The directory cannot be created or written.
    #[error("output directory {dir}: {what}: {source}")]
    Io {
        /// The directory.
        dir: PathBuf,
        /// What we were doing.
        what: String,
        /// The error.
        source: io::Error,
    },
}

/// The PEM texts of one generation.
#[derive(Clone)]
pub struct Pems {
    /// Leaf then issuing chain.
    pub cert: String,
    /// PKCS#8 private key.
    pub key: Zeroizing<String>,
    /// The trust bundle (roots).
    pub ca: String,
}

impl std::fmt::Debug for Pems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pems").finish_non_exhaustive()
    }
}

/// An output directory in the layout above.
#[derive(Debug, Clone)]
pub struct OutDir {
    dir: PathBuf,
}

impl OutDir {
    /// Creates the directory if needed and proves it writable (one line naming the directory
    /// when it is not), removing what a crash may have left behind.
    pub fn open(dir: &Path) -> Result<OutDir, FilesError> {
        let out = OutDir {
            dir: dir.to_path_buf(),
        };
        fs::create_dir_all(dir).map_err(|e| out.err("cannot create it", e))?;
        let probe = dir.join(format!("..probe.{}", std::process::id()));
        File::create(&probe)
            .and_then(|f| f.sync_all())
            .map_err(|e| out.err("not writable", e))?;
        let _ = fs::remove_file(&probe);
        out.clean();
        Ok(out)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The stable path of one of [`NAMES`].
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn err(&self, what: impl Into<String>, source: io::Error) -> FilesError {
        FilesError::Io {
            dir: self.dir.clone(),
            what: what.into(),
            source,
        }
    }

    /// The current generation's PEMs and when they were received, if there is one.
    pub fn read(&self) -> Option<(Pems, Option<OffsetDateTime>)> {
        let target = fs::read_link(self.dir.join(DATA)).ok();
        let received = target
            .as_ref()
            .and_then(|t| t.file_name())
            .and_then(|n| n.to_str())
            .and_then(parse_generation);
        // Through the generation `..data` names now, not the stable links: a writer swapping
        // between two reads would otherwise hand out a certificate and a key of two generations.
        // Without `..data` the files were put there by hand: read them as they are.
        let gen = match &target {
            Some(t) => self.dir.join(t),
            None => self.dir.clone(),
        };
        let read = |n: &str| fs::read_to_string(gen.join(n)).ok();
        let pems = Pems {
            cert: read("cert.pem")?,
            key: Zeroizing::new(read("key.pem")?),
            ca: read("ca.pem")?,
        };
        Some((pems, received))
    }

    /// Writes a new generation and makes it current; returns its directory name.
    pub fn write(&self, pems: &Pems, now: OffsetDateTime) -> Result<String, FilesError> {
        let name = self.fresh_name(now);
        let gen = self.dir.join(&name);
        fs::create_dir(&gen).map_err(|e| self.err(format!("creating {name}"), e))?;
        let _ = fs::set_permissions(&gen, fs::Permissions::from_mode(0o755));
        for (file, text, mode) in [
            ("cert.pem", pems.cert.as_str(), 0o644),
            ("key.pem", pems.key.as_str(), 0o600),
            ("ca.pem", pems.ca.as_str(), 0o644),
        ] {
            write_synced(&gen.join(file), text.as_bytes(), mode)
                .map_err(|e| self.err(format!("writing {name}/{file}"), e))?;
        }
        sync_dir(&gen).map_err(|e| self.err(format!("syncing {name}"), e))?;
        // The swap: a new link beside the old one, renamed over it (atomic on POSIX).
        let tmp = self.dir.join(DATA_TMP);
        let _ = fs::remove_file(&tmp);
        symlink(&name, &tmp).map_err(|e| self.err("linking ..data_tmp", e))?;
        fs::rename(&tmp, self.dir.join(DATA)).map_err(|e| self.err("swapping ..data", e))?;
        for file in NAMES {
            self.link(file)?;
        }
        sync_dir(&self.dir).map_err(|e| self.err("syncing", e))?;
        self.clean();
        Ok(name)
    }

    /// Makes `DIR/file -> ..data/file`, replacing a regular file or a wrong link atomically.
    fn link(&self, file: &str) -> Result<(), FilesError> {
        let path = self.dir.join(file);
        let want = Path::new(DATA).join(file);
        if fs::read_link(&path).ok().as_deref() == Some(want.as_path()) {
            return Ok(());
        }
        let tmp = self.dir.join(format!("..{file}.tmp"));
        let _ = fs::remove_file(&tmp);
        symlink(&want, &tmp).map_err(|e| self.err(format!("linking {file}"), e))?;
        fs::rename(&tmp, &path).map_err(|e| self.err(format!("linking {file}"), e))
    }

    /// Removes every generation but the current one and the one before it, and leftovers of a
    /// crash. The one before stays so that a reader who resolved `..data` just before a swap
    /// can still read the rest of its pair.
    fn clean(&self) {
        let current = fs::read_link(self.dir.join(DATA)).ok();
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let mut older = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name == DATA || !name.starts_with("..") {
                continue;
            }
            if current.as_deref() == Some(Path::new(name)) {
                continue;
            }
            if let Some(t) = parse_generation(name) {
                older.push((t, entry.path()));
            } else if name == DATA_TMP || name.ends_with(".tmp") {
                let _ = fs::remove_file(entry.path());
            }
        }
        // The previous generation is the newest one older than the current; one newer than
        // the current, or any without a current, was never published (a crash mid-write).
        let current_t = current
            .as_deref()
            .and_then(|c| c.to_str())
            .and_then(parse_generation);
        older.sort();
        if let Some(i) = older.iter().rposition(|(t, _)| Some(*t) < current_t) {
            older.remove(i);
        }
        for (_, path) in older {
            let _ = fs::remove_dir_all(path);
        }
    }

    fn fresh_name(&self, now: OffsetDateTime) -> String {
        let mut t = now;
        loop {
            let name = generation_name(t);
            if !self.dir.join(&name).exists() {
                return name;
            }
            t += time::Duration::nanoseconds(1);
        }
    }
}

fn write_synced(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// `..YYYY_MM_DD_HH_MM_SS.NNNNNNNNN` in UTC, as Kubernetes names generations.
pub fn generation_name(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "..{:04}_{:02}_{:02}_{:02}_{:02}_{:02}.{:09}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond()
    )
}

/// The time in a generation's name.
pub fn parse_generation(name: &str) -> Option<OffsetDateTime> {
    let rest = name.strip_prefix("..")?;
    let (date, nanos) = rest.split_once('.')?;
    let parts: Vec<&str> = date.split('_').collect();
    if parts.len() != 6 || nanos.len() != 9 {
        return None;
    }
    let n: Vec<u32> = parts
        .iter()
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let month = time::Month::try_from(u8::try_from(n[1]).ok()?).ok()?;
    let date = time::Date::from_calendar_date(i32::try_from(n[0]).ok()?, month, n[2] as u8).ok()?;
    let time =
        time::Time::from_hms_nano(n[3] as u8, n[4] as u8, n[5] as u8, nanos.parse().ok()?).ok()?;
    Some(time::PrimitiveDateTime::new(date, time).assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pems(tag: &str) -> Pems {
        Pems {
            cert: format!("cert {tag}"),
            key: Zeroizing::new(format!("key {tag}")),
            ca: format!("ca {tag}"),
        }
    }

    #[test]
    fn generation_names_round_trip() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_800_000_000_123_456_789).unwrap();
        let name = generation_name(t);
        assert_eq!(name, "..2027_01_15_08_00_00.123456789");
        assert_eq!(parse_generation(&name), Some(t));
        for bad in [
            "..data",
            "..data_tmp",
            "cert.pem",
            "..2027_01_15.1",
            "..a_b_c_d_e_f.123456789",
        ] {
            assert_eq!(parse_generation(bad), None, "{bad}");
        }
    }

    #[test]
    fn swaps_generations_and_keeps_the_previous_one() {
        let tmp = tempfile::tempdir().unwrap();
        let out = OutDir::open(&tmp.path().join("certs")).unwrap();
        assert!(out.read().is_none());
        let t0 = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        for i in 0..3 {
            out.write(&pems(&i.to_string()), t0 + time::Duration::seconds(i))
                .unwrap();
            let (read, received) = out.read().unwrap();
            assert_eq!(read.cert, format!("cert {i}"));
            assert_eq!(*read.key, format!("key {i}"));
            assert_eq!(read.ca, format!("ca {i}"));
            assert_eq!(received, Some(t0 + time::Duration::seconds(i)));
        }
        let mode = fs::metadata(out.file("key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let gens: Vec<_> = fs::read_dir(out.path())
            .unwrap()
            .flatten()
            .filter_map(|e| parse_generation(e.file_name().to_str()?))
            .collect();
        assert_eq!(
            gens.len(),
            2,
            "generations older than the previous one are removed"
        );
        assert_eq!(
            fs::read_link(out.file("cert.pem")).unwrap(),
            Path::new("..data/cert.pem")
        );
    }

    #[test]
    fn replaces_plain_files_and_cleans_leftovers() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("cert.pem"), "old").unwrap();
        fs::create_dir(tmp.path().join("..2020_01_01_00_00_00.000000000")).unwrap();
        fs::write(tmp.path().join("..data_tmp"), "").unwrap();
        let out = OutDir::open(tmp.path()).unwrap();
        assert!(!tmp.path().join("..2020_01_01_00_00_00.000000000").exists());
        assert!(!tmp.path().join("..data_tmp").exists());
        out.write(&pems("n"), OffsetDateTime::now_utc()).unwrap();
        assert_eq!(fs::read_to_string(out.file("cert.pem")).unwrap(), "cert n");
    }

    #[test]
    fn unwritable_directory_is_one_line() {
        let err = OutDir::open(Path::new("/proc/mutual-agent-test")).unwrap_err();
        let line = err.to_string();
        assert!(
            line.starts_with("output directory /proc/mutual-agent-test: "),
            "{line}"
        );
        assert!(!line.contains('\n'));
    }
}
