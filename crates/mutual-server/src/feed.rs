//! `GET <mount>/revocations`: the revocation feed. Every revocation has a store-wide sequence
//! number; a subscriber asks for what came after the last one it saw (`since`, or SSE's
//! `Last-Event-ID`) and gets it at once, or waits for the next revocation (long-poll with
//! `wait`, or an event stream). Waiting holds a `watch` receiver and a timer in the request's
//! own future — no task, no polling — so ten thousand idle subscribers cost little more than
//! their sockets.

use std::{
    collections::{HashMap, VecDeque},
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    http::HeaderMap,
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse,
    },
};
use mutual_pki::cert;
use mutual_store::{FeedEntry, Store};
use serde_json::{json, Value};
use tokio::sync::OnceCell;

use crate::{
    error::ApiError,
    params::Params,
    reply::Reply,
    state::{App, Mount},
};

/// The longest a long-poll waits.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// Most entries in one answer (the rest come with the next `since`).
const PAGE: u32 = 1000;
/// The comment line an event stream sends when nothing happened, so that proxies and
/// subscribers see it alive.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// What one revocation's subscribers read: a revocation wakes every waiting subscriber at once,
/// and those that asked from the same point (all the caught-up ones, in a fleet) get the answer
/// of one store query, made by the first of them to run, instead of one query each.
#[derive(Debug, Default)]
pub(crate) struct Woken {
    /// The revocation count the answers are for, and the answers by (mount, since).
    answers: Mutex<(u64, ByPoint)>,
}

/// One answer per (mount, since), filled by the first subscriber that asks.
type ByPoint = HashMap<(String, u64), Shared>;
type Shared = Arc<OnceCell<(Vec<FeedEntry>, u64)>>;

/// Distinct starting points shared at most per revocation (a subscriber beyond them queries
/// alone).
const SHARED_POINTS: usize = 1024;

impl Woken {
    /// The entries after `since` on `mount`. For a subscriber `woken` by the revocation that
    /// made the count `generation`: the answer of a query made after that revocation, shared
    /// with the others woken by it (a failed query is not shared: the next subscriber tries
    /// again). A new request, or one at its deadline, asks the store itself, and so sees a
    /// revocation another process wrote before this server's catch-up counts it.
    async fn read(
        &self,
        store: &Store,
        mount: &str,
        since: u64,
        generation: u64,
        woken: bool,
    ) -> Result<(Vec<FeedEntry>, u64), ApiError> {
        let query = || store.revocations_since(mount, since, PAGE);
        if !woken {
            return Ok(query().await?);
        }
        let cell = {
            let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
            if answers.0 != generation {
                *answers = (generation, HashMap::new());
            }
            let key = (mount.to_string(), since);
            match answers.1.get(&key) {
                Some(cell) => Some(Arc::clone(cell)),
                None if answers.1.len() < SHARED_POINTS => {
                    let cell = Shared::default();
                    answers.1.insert(key, Arc::clone(&cell));
                    Some(cell)
                }
                None => None,
            }
        };
        match cell {
            Some(cell) => Ok(cell.get_or_try_init(query).await?.clone()),
            None => Ok(query().await?),
        }
    }
}

fn entry_json(e: &FeedEntry, issuer: &str) -> Value {
    json!({
        "seq": e.seq,
        "serial": e.serial.to_string(),
        "issuer": issuer,
        "revoked_at": e.revoked_at.unix_timestamp(),
        "reason": e.reason.to_string(),
    })
}

fn number(p: &Params, key: &str) -> Result<Option<u64>, ApiError> {
    match p.string(key).filter(|s| !s.trim().is_empty()) {
        None => Ok(None),
        Some(s) => s.trim().parse().map(Some).map_err(|_| {
            ApiError::bad(format!(
                "invalid value for \"{key}\": expected a non-negative integer, got \"{s}\""
            ))
        }),
    }
}

/// Answers the feed: JSON (long-poll) or, for `Accept: text/event-stream`, an event stream.
pub(crate) async fn handle(
    app: &Arc<App>,
    mount: Arc<Mount>,
    headers: &HeaderMap,
    p: &Params,
) -> Result<Reply, ApiError> {
    let issuer = cert::facts(&mount.ca()?.cert_der)?.subject;
    let last_event = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let since = number(p, "since")?.or(last_event).unwrap_or(0);
    let sse = headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"));
    if sse {
        return Ok(Reply::Response(stream(app.clone(), mount, issuer, since)));
    }
    let wait = number(p, "wait")?
        .map(Duration::from_secs)
        .unwrap_or(Duration::ZERO)
        .min(MAX_WAIT);
    let deadline = tokio::time::Instant::now() + wait;
    let mut rx = app.revocations.subscribe();
    let mut woken = false;
    loop {
        // Marked seen before the query: a revocation committed after it wakes `changed`.
        let generation = *rx.borrow_and_update();
        let (entries, next) = app
            .woken
            .read(&app.store, &mount.record.path, since, generation, woken)
            .await?;
        let timed_out = tokio::time::Instant::now() >= deadline;
        if !entries.is_empty() || timed_out {
            let revoked: Vec<Value> = entries.iter().map(|e| entry_json(e, &issuer)).collect();
            return Ok(Reply::data(json!({ "next": next, "revoked": revoked })));
        }
        // A revocation elsewhere (another mount) wakes this too; the loop asks again and goes
        // back to waiting until the deadline.
        woken = matches!(
            tokio::time::timeout_at(deadline, rx.changed()).await,
            Ok(Ok(()))
        );
    }
}

struct Subscriber {
    app: Arc<App>,
    mount: Arc<Mount>,
    issuer: String,
    since: u64,
    rx: tokio::sync::watch::Receiver<u64>,
    ready: VecDeque<FeedEntry>,
    /// Woken by a revocation (not just subscribed): reads through [`Woken`].
    woken: bool,
}

fn stream(
    app: Arc<App>,
    mount: Arc<Mount>,
    issuer: String,
    since: u64,
) -> axum::response::Response {
    let rx = app.revocations.subscribe();
    let sub = Subscriber {
        app,
        mount,
        issuer,
        since,
        rx,
        ready: VecDeque::new(),
        woken: false,
    };
    let events = futures_util::stream::unfold(sub, |mut s| async move {
        loop {
            if let Some(e) = s.ready.pop_front() {
                let event = Event::default()
                    .id(e.seq.to_string())
                    .event("revoked")
                    .data(entry_json(&e, &s.issuer).to_string());
                return Some((Ok::<_, Infallible>(event), s));
            }
            let generation = *s.rx.borrow_and_update();
            let read = s.app.woken.read(
                &s.app.store,
                &s.mount.record.path,
                s.since,
                generation,
                s.woken,
            );
            match read.await {
                Ok((entries, next)) => {
                    s.since = next;
                    if !entries.is_empty() {
                        s.ready.extend(entries);
                        continue;
                    }
                }
                Err(e) => {
                    // The subscriber reconnects with Last-Event-ID and misses nothing.
                    tracing::warn!(error = %e, "revocation feed: reading the store failed; closing the stream");
                    return None;
                }
            }
            if s.rx.changed().await.is_err() {
                return None;
            }
            s.woken = true;
        }
    });
    // A comment first, so the headers go out at once: a subscriber knows it is subscribed
    // (EventSource's `open`) without waiting for the first revocation or heartbeat.
    let subscribed = futures_util::stream::once(std::future::ready(Ok::<_, Infallible>(
        Event::default().comment("subscribed"),
    )));
    Sse::new(futures_util::StreamExt::chain(subscribed, events))
        .keep_alive(KeepAlive::new().interval(HEARTBEAT).text("heartbeat"))
        .into_response()
}
