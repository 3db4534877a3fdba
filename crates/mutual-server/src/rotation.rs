//! `<mount>/rotation`: a CA rotation as one operation (`mutual_store`'s `stage_rotation` and
//! `advance_rotation`, timed by `mutual_pki::rotation`). `POST` stages the next issuer and says
//! when issuance switches (`switch_at` RFC 3339, or `switch_after` a duration, default now);
//! `GET` brings it up to date and answers its state. A switch that falls due is also made at
//! the next request to the mount, so that issuance moves at the chosen time.

use mutual_pki::rotation::Rotation;
use serde_json::{json, Value};
use time::{format_description::well_known::Rfc3339, OffsetDateTime};

use crate::{
    error::ApiError,
    params::Params,
    pki::rfc3339,
    reply::Reply,
    state::{App, Mount},
    Op,
};

/// The mount's rotation when one is under way.
pub(crate) async fn in_progress(app: &App, path: &str) -> Result<Option<Rotation>, ApiError> {
    Ok(app
        .store
        .rotation(path)
        .await?
        .filter(|r| r.next_step_at().is_some()))
}

fn at(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .map(rfc3339)
        .unwrap_or_default()
}

/// A rotation as the API and `mutual ca list --json` show it.
pub fn to_json(r: &Rotation) -> Value {
    json!({
        "phase": r.phase.to_string(),
        "old_issuer": r.old,
        "new_issuer": r.new,
        "cross_signed_issuer": r.cross,
        "staged_at": at(r.staged_at),
        "switch_at": at(r.switch_at),
        "switched_at": r.switched_at.map(at),
        "retire_after": r.retire_after.map(at),
        "retired_at": r.retired_at.map(at),
    })
}

/// Makes the switch or retirement that has fallen due (checked against the mount's copy, so
/// a request costs no store read unless one has).
pub(crate) async fn catch_up(
    app: &App,
    mount: std::sync::Arc<Mount>,
) -> Result<std::sync::Arc<Mount>, ApiError> {
    let due = mount
        .rotation
        .as_ref()
        .and_then(Rotation::next_step_at)
        .is_some_and(|t| OffsetDateTime::now_utc().unix_timestamp() >= t);
    if due {
        let _guard = app.admin.lock().await;
        app.store
            .advance_rotation(&mount.record.path, OffsetDateTime::now_utc())
            .await?;
        return app.reload_mount(&mount.record.path).await;
    }
    Ok(mount)
}

/// Answers `<mount>/rotation`, or None for another path.
pub(crate) async fn handle(
    app: &App,
    mount: &Mount,
    op: Op,
    rest: &str,
    p: &Params,
) -> Option<Result<Reply, ApiError>> {
    if rest != "rotation" {
        return None;
    }
    Some(match op {
        Op::Read => read(app, mount).await,
        Op::Write => stage(app, mount, p).await,
        _ => Err(ApiError::MethodNotAllowed),
    })
}

async fn read(app: &App, mount: &Mount) -> Result<Reply, ApiError> {
    let _guard = app.admin.lock().await;
    let r = app
        .store
        .advance_rotation(&mount.record.path, OffsetDateTime::now_utc())
        .await?;
    if r.as_ref().map(|r| r.phase) != mount.rotation.as_ref().map(|r| r.phase) {
        app.reload_mount(&mount.record.path).await?;
    }
    match r {
        Some(r) => Ok(Reply::data(to_json(&r))),
        None => Err(ApiError::bad(format!(
            "mount \"{}\" has had no rotation; start one with a write to {}/rotation",
            mount.record.path, mount.record.path
        ))),
    }
}

async fn stage(app: &App, mount: &Mount, p: &Params) -> Result<Reply, ApiError> {
    let now = OffsetDateTime::now_utc();
    let switch_at = match (p.string("switch_at"), p.duration("switch_after")?) {
        (Some(t), _) if !t.is_empty() => OffsetDateTime::parse(&t, &Rfc3339).map_err(|e| {
            ApiError::bad(format!("switch_at \"{t}\" is not an RFC 3339 time: {e}"))
        })?,
        (_, Some(d)) => now + d,
        _ => now,
    };
    let cn = p.string("common_name").filter(|c| !c.is_empty());
    let _guard = app.admin.lock().await;
    let r = app
        .store
        .stage_rotation(&mount.record.path, switch_at, cn.as_deref(), now)
        .await?;
    app.reload_mount(&mount.record.path).await?;
    Ok(Reply::data(to_json(&r)))
}
