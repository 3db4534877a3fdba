//! Reload triggers: SIGHUP, and a change of any watched file (the configuration, certificates,
//! keys, CAs, CRLs). Files are polled once a second through their symlinks, so the symlink
//! swap that Kubernetes uses for secrets is seen like an edit.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::Proxy;

type Stamp = Vec<(PathBuf, Option<(u64, SystemTime, u64)>)>;

fn stamp(files: &[PathBuf]) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    files
        .iter()
        .map(|f| {
            let m = std::fs::metadata(f).ok();
            (
                f.clone(),
                m.map(|m| {
                    (
                        m.len(),
                        m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                        m.ino(),
                    )
                }),
            )
        })
        .collect()
}

/// Runs `on_each` on every SIGHUP, in a task. The handler is installed before this returns, not
/// on the task's first poll: SIGHUP's default action ends the process, so one sent the moment
/// the process says it listens would otherwise kill it. Err when no handler can be installed.
pub fn on_sighup(mut on_each: impl FnMut() + Send + 'static) -> std::io::Result<()> {
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            on_each();
        }
    });
    Ok(())
}

/// For a process whose certificate is enrolled (renewed in memory, no file to read again): a
/// SIGHUP, which operators send to reload, is logged instead of ending the process.
pub fn sighup_with_nothing_to_reload() {
    let logged = on_sighup(|| {
        tracing::info!(
            "SIGHUP: nothing to reload; the certificate is enrolled and renewed in memory"
        )
    });
    if let Err(e) = logged {
        tracing::warn!(error = %e, "cannot listen for SIGHUP; one would end the process");
    }
}

/// Starts the proxy's reload triggers ([`watch_files`] of its configuration and everything it
/// names).
pub fn watch(proxy: Arc<Proxy>) {
    let p = Arc::clone(&proxy);
    watch_files(
        move || proxy.watched_files(),
        move || {
            let _ = p.reload();
        },
    );
}

/// Runs `reload` on SIGHUP ([`on_sighup`]) and when a file of `files()` changes (its size,
/// modification time or inode, seen once a second). The handler is installed before this
/// returns.
pub fn watch_files(
    files: impl Fn() -> Vec<PathBuf> + Send + 'static,
    reload: impl Fn() + Send + Sync + 'static,
) {
    let reload = Arc::new(reload);
    let on_hup = Arc::clone(&reload);
    let reloading = on_sighup(move || {
        tracing::info!("SIGHUP: reloading");
        on_hup();
    });
    if reloading.is_err() {
        tracing::warn!("cannot listen for SIGHUP; reload on file change only");
    }
    tokio::spawn(async move {
        let mut seen = stamp(&files());
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let now = stamp(&files());
            if now != seen {
                tracing::info!("a watched file changed: reloading");
                reload();
                // Remember what failed too, so that a bad file is reported once, not each second.
                seen = stamp(&files());
            }
        }
    });
}
