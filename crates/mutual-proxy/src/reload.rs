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

/// Starts the reload triggers: SIGHUP ([`on_sighup`]) and a change to a watched file.
pub fn watch(proxy: Arc<Proxy>) {
    let p = Arc::clone(&proxy);
    let reloading = on_sighup(move || {
        tracing::info!("SIGHUP: reloading");
        let _ = p.reload();
    });
    if reloading.is_err() {
        tracing::warn!("cannot listen for SIGHUP; reload on file change only");
    }
    tokio::spawn(async move {
        let mut seen = stamp(&proxy.watched_files());
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let now = stamp(&proxy.watched_files());
            if now != seen {
                tracing::info!("a watched file changed: reloading");
                let _ = proxy.reload();
                // Remember what failed too, so that a bad file is reported once, not each second.
                seen = stamp(&proxy.watched_files());
            }
        }
    });
}
