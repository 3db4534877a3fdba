//! `mutual agent`: enroll, keep the certificate on disk renewed, run a hook after each renewal,
//! and say what it decided, one structured log line per decision. The logic is in
//! `mutual-agent`; this is the loop, the hooks and the admin listener.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use mutual_agent::{
    obtain, CaClient, CertState, ClientError, Material, OutDir, Plan, Request, Via,
};
use mutual_pki::key::KeyType;
use time::OffsetDateTime;

use super::backend::Target;
use super::UsageError;
use crate::cli::AgentArgs;

/// What the admin listener reports; the loop updates it.
#[derive(Debug, Default)]
struct Metrics {
    not_before: Option<OffsetDateTime>,
    not_after: Option<OffsetDateTime>,
    last_success: Option<bool>,
    next_attempt: Option<OffsetDateTime>,
    /// (result, count): `success` or the failure's code.
    renewals: Vec<(&'static str, u64)>,
    /// (result, count) of the hooks run after new certificates: [`HookResult::code`].
    hooks: Vec<(&'static str, u64)>,
    /// Resident pages of the binary unmapped when it last went to sleep.
    released_program_bytes: usize,
}

/// One more of `result` in a counter by result.
fn bump(counts: &mut Vec<(&'static str, u64)>, result: &'static str) {
    match counts.iter_mut().find(|(r, _)| *r == result) {
        Some((_, n)) => *n += 1,
        None => counts.push((result, 1)),
    }
}

impl Metrics {
    fn count(&mut self, result: &'static str) {
        bump(&mut self.renewals, result);
    }

    fn ready(&self, now: OffsetDateTime) -> bool {
        matches!((self.not_before, self.not_after), (Some(nb), Some(na)) if nb <= now && now < na)
    }

    fn render(&self, now: OffsetDateTime) -> String {
        let secs = |t: OffsetDateTime| (t - now).as_seconds_f64();
        let mut s = String::with_capacity(1024);
        s.push_str("# HELP mutual_agent_cert_expiry_seconds Seconds until the certificate on disk expires (negative: expired).\n# TYPE mutual_agent_cert_expiry_seconds gauge\n");
        if let Some(na) = self.not_after {
            s.push_str(&format!(
                "mutual_agent_cert_expiry_seconds {:.3}\n",
                secs(na)
            ));
        }
        s.push_str("# HELP mutual_agent_last_renewal_success 1 when the last attempt succeeded, 0 when it failed.\n# TYPE mutual_agent_last_renewal_success gauge\n");
        if let Some(ok) = self.last_success {
            s.push_str(&format!(
                "mutual_agent_last_renewal_success {}\n",
                u8::from(ok)
            ));
        }
        s.push_str("# HELP mutual_agent_next_attempt_seconds Seconds until the next renewal attempt.\n# TYPE mutual_agent_next_attempt_seconds gauge\n");
        if let Some(t) = self.next_attempt {
            s.push_str(&format!(
                "mutual_agent_next_attempt_seconds {:.3}\n",
                secs(t).max(0.0)
            ));
        }
        s.push_str("# HELP mutual_agent_allocator_info The allocator the agent runs on (glibc's: its few objects cost less there than in jemalloc's runs).\n# TYPE mutual_agent_allocator_info gauge\n");
        s.push_str(&format!(
            "mutual_agent_allocator_info{{allocator=\"{}\"}} 1\n",
            mutual_alloc::kind().name()
        ));
        s.push_str("# HELP mutual_agent_program_pages_released_bytes Resident pages of the mutual binary (code, read-only data) the agent unmapped when it last went to sleep; they stay in the page cache.\n# TYPE mutual_agent_program_pages_released_bytes gauge\n");
        s.push_str(&format!(
            "mutual_agent_program_pages_released_bytes {}\n",
            self.released_program_bytes
        ));
        s.push_str("# HELP mutual_agent_renewals_total Renewal attempts by result (success, or why they failed).\n# TYPE mutual_agent_renewals_total counter\n");
        for (result, n) in &self.renewals {
            s.push_str(&format!(
                "mutual_agent_renewals_total{{result=\"{result}\"}} {n}\n"
            ));
        }
        s.push_str("# HELP mutual_agent_hook_runs_total Hooks (--exec, --signal) run after new certificates, by result (ok, failed, timeout, not_started).\n# TYPE mutual_agent_hook_runs_total counter\n");
        for (result, n) in &self.hooks {
            s.push_str(&format!(
                "mutual_agent_hook_runs_total{{result=\"{result}\"}} {n}\n"
            ));
        }
        s
    }
}

/// A hook run after each new certificate.
#[derive(Debug, Clone)]
enum Hook {
    Exec(String),
    Signal { pid: u32, sig: String },
}

fn parse_signal(spec: &str) -> Result<Hook, UsageError> {
    let bad = || {
        UsageError(format!(
            "--signal \"{spec}\": expected PID:SIG, e.g. 1234:HUP (SIG one of HUP, INT, QUIT, TERM, USR1, USR2 or a number)"
        ))
    };
    let (pid, sig) = spec.split_once(':').ok_or_else(bad)?;
    let pid: u32 = pid.parse().map_err(|_| bad())?;
    let sig = sig.trim_start_matches("SIG").to_ascii_uppercase();
    let known = ["HUP", "INT", "QUIT", "TERM", "USR1", "USR2", "KILL"];
    if pid == 0 || !(known.contains(&sig.as_str()) || sig.parse::<u8>().is_ok()) {
        return Err(bad());
    }
    Ok(Hook::Signal { pid, sig })
}

/// How a hook run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HookResult {
    Ok,
    Failed,
    /// Still running at `--hook-timeout`: killed, with everything it started.
    TimedOut,
    NotStarted,
}

impl HookResult {
    fn code(self) -> &'static str {
        match self {
            HookResult::Ok => "ok",
            HookResult::Failed => "failed",
            HookResult::TimedOut => "timeout",
            HookResult::NotStarted => "not_started",
        }
    }
}

/// Runs a hook for at most `timeout`. A reload command that hangs (a service manager waiting
/// on a stuck unit, say) must not hold up the next renewal, as consul-template's and Vault
/// Agent's exec timeouts see to: the hook runs in a process group of its own, and the whole
/// group is killed when the time is up, so that `sh -c` does not leave its children behind.
async fn run_hook(hook: &Hook, timeout: Duration) -> HookResult {
    use std::os::unix::process::CommandExt;
    let hook = hook.clone();
    let shown = format!("{hook:?}");
    let run = tokio::task::spawn_blocking(
        move || -> std::io::Result<Option<std::process::ExitStatus>> {
            let mut cmd = match &hook {
                Hook::Exec(c) => {
                    let mut cmd = std::process::Command::new("sh");
                    cmd.arg("-c").arg(c);
                    cmd
                }
                Hook::Signal { pid, sig } => {
                    let mut cmd = std::process::Command::new("kill");
                    cmd.arg("-s").arg(sig).arg(pid.to_string());
                    cmd
                }
            };
            let mut child = cmd.process_group(0).spawn()?;
            let deadline = std::time::Instant::now() + timeout;
            loop {
                if let Some(status) = child.try_wait()? {
                    return Ok(Some(status));
                }
                if std::time::Instant::now() >= deadline {
                    // The group's ID is the hook's PID (process_group(0)).
                    let _ = std::process::Command::new("kill")
                        .args(["-KILL", "--", &format!("-{}", child.id())])
                        .status();
                    let _ = child.kill();
                    let _ = child.wait();
                    return Ok(None);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        },
    )
    .await;
    let result = match run {
        Ok(Ok(Some(st))) if st.success() => HookResult::Ok,
        Ok(Ok(Some(st))) => {
            tracing::warn!(hook = %shown, status = %st, decision = "hook", "hook failed");
            HookResult::Failed
        }
        Ok(Ok(None)) => {
            tracing::warn!(hook = %shown, timeout_s = timeout.as_secs_f64(), decision = "hook", "hook timed out; killed it and what it started");
            HookResult::TimedOut
        }
        Ok(Err(e)) => {
            tracing::warn!(hook = %shown, error = %e, decision = "hook", "hook did not start");
            HookResult::NotStarted
        }
        Err(e) => {
            tracing::warn!(hook = %shown, error = %e, decision = "hook", "hook task failed");
            HookResult::NotStarted
        }
    };
    if result == HookResult::Ok {
        tracing::info!(hook = %shown, decision = "hook", "hook ran");
    }
    result
}

struct Agent {
    client: CaClient,
    request: Request,
    token: Option<String>,
    out: OutDir,
    plan: Plan,
    hooks: Vec<Hook>,
    hook_timeout: Duration,
    metrics: Arc<Mutex<Metrics>>,
}

pub async fn run(target: &Target, json: bool, a: AgentArgs) -> Result<()> {
    super::logging::init(json);
    let addr = target.addr.as_deref().ok_or_else(|| {
        UsageError("mutual agent needs the CA: --addr URL[,URL…] (or MUTUAL_ADDR)".into())
    })?;
    let client = CaClient::new(addr, target.cacert.as_deref()).map_err(|e| match e {
        ClientError::Local(m) => anyhow::Error::new(UsageError(m)),
        other => anyhow::Error::new(other),
    })?;
    let key_type = KeyType::from_parts(a.key_type.name(), 0)?;
    let mut hooks = Vec::new();
    if let Some(c) = &a.exec {
        hooks.push(Hook::Exec(c.clone()));
    }
    if let Some(s) = &a.signal {
        hooks.push(parse_signal(s)?);
    }
    let out = OutDir::open(&a.out)?;
    let plan = Plan {
        max_retry: a.max_retry.max(Duration::from_secs(1)),
        ..Plan::default()
    };
    let agent = Agent {
        client,
        request: Request {
            mount: a.mount.trim_matches('/').to_string(),
            role: a.role.clone(),
            common_name: a.cn.clone(),
            dns: a.san.clone(),
            ips: a.ip.clone(),
            uris: a.uri.clone(),
            ttl: a.ttl,
            key_type,
        },
        token: target.token.clone().filter(|t| !t.is_empty()),
        out,
        plan,
        hooks,
        hook_timeout: a.hook_timeout,
        metrics: Arc::new(Mutex::new(Metrics::default())),
    };
    if a.once {
        return agent.once(json).await;
    }
    // Installed before the agent says anything, so that no signal meets its default action.
    let signals = Signals {
        hup: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok(),
        stop: Box::pin(super::proxy::wait_for_shutdown()),
    };
    if let Some(admin) = &a.admin {
        let listener = tokio::net::TcpListener::bind(admin)
            .await
            .with_context(|| format!("--admin {admin}"))?;
        let local = listener.local_addr()?;
        tracing::info!(admin = %local, "admin listening (/metrics, /ready)");
        tokio::spawn(serve_admin(listener, agent.metrics.clone()));
    }
    agent.run(signals).await
}

/// What ends the agent's wait for its next attempt, besides the time coming.
struct Signals {
    /// SIGHUP: renew (or retry) now.
    hup: Option<tokio::signal::unix::Signal>,
    /// SIGTERM or SIGINT: stop. Only waits look at it, so a signal that comes during an attempt
    /// lets the attempt finish, files and hooks included: a service manager's stop never leaves
    /// a new certificate on disk whose `--exec` did not run (the service would keep serving the
    /// old one until the next renewal, since a restarted agent finds the files fresh).
    stop: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
}

/// Why a wait ended.
enum Wake {
    Time,
    Hangup,
    Stop,
}

impl Signals {
    async fn wait(&mut self, delay: Duration) -> Wake {
        tokio::select! {
            _ = tokio::time::sleep(delay) => Wake::Time,
            _ = super::proxy::next_signal(&mut self.hup) => Wake::Hangup,
            _ = &mut self.stop => Wake::Stop,
        }
    }
}

impl Agent {
    fn seed(&self, m: &Material) -> u64 {
        m.seed(&self.request.common_name)
    }

    /// The material on disk, checked; `None` when there is none or it is unusable (logged).
    fn held(&self) -> Option<Material> {
        let (pems, received) = self.out.read()?;
        match Material::from_pems(pems, received) {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::error!(dir = %self.out.path().display(), error = %e, decision = "replace", "the files on disk are unusable; enrolling again");
                None
            }
        }
    }

    fn note_held(&self, m: Option<&Material>) {
        let mut metrics = self.metrics.lock().unwrap_or_else(|p| p.into_inner());
        metrics.not_before = m.map(|m| m.validity.not_before);
        metrics.not_after = m.map(|m| m.validity.not_after);
    }

    fn set_next(&self, at: Option<OffsetDateTime>) {
        self.metrics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .next_attempt = at;
    }

    /// One attempt: obtain, check, write, run the hooks.
    async fn attempt(
        &self,
        held: Option<&Material>,
        usable: bool,
    ) -> Result<(Material, Via), ClientError> {
        let current = held.filter(|_| usable).map(|m| &m.identity);
        let (pems, via) =
            obtain(&self.client, &self.request, self.token.as_deref(), current).await?;
        let now = OffsetDateTime::now_utc();
        let material = Material::from_pems(pems, Some(now)).map_err(|e| ClientError::Invalid {
            node: "CA".into(),
            message: e,
        })?;
        if let s @ CertState::NotYetValid { .. } = self.plan.state(&material.validity, now, 0) {
            return Err(ClientError::Invalid {
                node: "CA".into(),
                message: format!("the new certificate is {s}"),
            });
        }
        self.out
            .write(&material.pems, now)
            .map_err(|e| ClientError::Local(e.to_string()))?;
        Ok((material, via))
    }

    fn record(&self, result: &Result<(Material, Via), ClientError>) {
        let mut metrics = self.metrics.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok((m, _)) => {
                metrics.last_success = Some(true);
                metrics.count("success");
                metrics.not_before = Some(m.validity.not_before);
                metrics.not_after = Some(m.validity.not_after);
            }
            Err(e) => {
                metrics.last_success = Some(false);
                metrics.count(e.code());
            }
        }
    }

    async fn renewed(&self, m: &Material, via: Via, previous: Option<&Material>) {
        tracing::info!(
            serial = %m.serial,
            previous = previous.map(|p| p.serial.as_str()).unwrap_or(""),
            not_after = %rfc3339(m.validity.not_after),
            via = via.as_str(),
            dir = %self.out.path().display(),
            decision = "renewed",
            "new certificate written"
        );
        for hook in &self.hooks {
            let result = run_hook(hook, self.hook_timeout).await;
            let mut metrics = self.metrics.lock().unwrap_or_else(|p| p.into_inner());
            bump(&mut metrics.hooks, result.code());
        }
    }

    async fn once(self, json: bool) -> Result<()> {
        let held = self.held();
        let now = OffsetDateTime::now_utc();
        let state = held
            .as_ref()
            .map(|m| self.plan.state(&m.validity, now, self.seed(m)));
        if let (Some(m), Some(s @ CertState::Fresh { .. })) = (&held, &state) {
            tracing::info!(serial = %m.serial, state = s.code(), decision = "keep", "{s}");
            return report(json, "ok", m);
        }
        if let (Some(m), Some(s)) = (&held, &state) {
            log_state(m, s);
        }
        let usable = state.is_some_and(|s| s.usable());
        let result = self.attempt(held.as_ref(), usable).await;
        self.record(&result);
        match result {
            Ok((m, via)) => {
                self.renewed(&m, via, held.as_ref()).await;
                report(json, "renewed", &m)
            }
            Err(e) => {
                tracing::error!(error = %e, code = e.code(), decision = "failed", "renewal failed");
                let what = if held.is_some() {
                    "renewing"
                } else {
                    "enrolling"
                };
                bail!("{what} {}: {e}", self.out.path().display())
            }
        }
    }

    /// Renews at each renewal point, for ever. A SIGHUP renews at once (as `step ca renew
    /// --daemon` does): after a CA rotation, or to see a role's new rules without waiting.
    /// SIGTERM or SIGINT ends it at the next wait (see [`Signals`]).
    async fn run(self, mut signals: Signals) -> Result<()> {
        let mut failures = 0u32;
        let mut announced: Option<&'static str> = None;
        loop {
            let held = self.held();
            self.note_held(held.as_ref());
            let now = OffsetDateTime::now_utc();
            let state = held
                .as_ref()
                .map(|m| (m, self.plan.state(&m.validity, now, self.seed(m))));
            if let Some((m, s)) = &state {
                if announced != Some(s.code()) {
                    announced = Some(s.code());
                    log_state(m, s);
                }
                if let CertState::Fresh { renew_in } = s {
                    self.set_next(Some(now + *renew_in));
                    tracing::info!(serial = %m.serial, renew_in_s = renew_in.as_secs(), renew_at = %rfc3339(now + *renew_in), decision = "wait", "certificate valid; next renewal scheduled");
                    // Asleep until then: what the enrolment freed goes back to the kernel now,
                    // not at the allocator's next activity, hours away; and the binary's pages
                    // it ran are unmapped (the renewal maps what it needs from the page cache).
                    let released = mutual_alloc::release_program_pages();
                    self.metrics
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .released_program_bytes = released;
                    mutual_alloc::release_free_memory();
                    match signals.wait(*renew_in).await {
                        Wake::Time => continue,
                        Wake::Hangup => {
                            tracing::info!(serial = %m.serial, decision = "renew", "SIGHUP: renewing now");
                        }
                        Wake::Stop => {
                            stopped(Some(m));
                            return Ok(());
                        }
                    }
                }
            }
            self.set_next(Some(now));
            let usable = state.as_ref().is_some_and(|(_, s)| s.usable());
            let held_m = state.as_ref().map(|(m, _)| *m);
            let result = self.attempt(held_m, usable).await;
            self.record(&result);
            match result {
                Ok((m, via)) => {
                    failures = 0;
                    announced = None;
                    self.renewed(&m, via, held_m).await;
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let now = OffsetDateTime::now_utc();
                    let seed = held_m.map(|m| self.seed(m)).unwrap_or(0);
                    let delay = self.plan.retry_after(
                        failures,
                        e.permanent(),
                        now,
                        held_m.map(|m| &m.validity),
                        seed,
                    );
                    self.set_next(Some(now + delay));
                    let keeping = held_m.map(|m| m.serial.as_str()).unwrap_or("");
                    let critical = state
                        .as_ref()
                        .is_some_and(|(_, s)| !matches!(s, CertState::Due { .. }));
                    if critical || held_m.is_none() {
                        tracing::error!(error = %e, code = e.code(), permanent = e.permanent(), failures, retry_in_s = delay.as_secs_f64(), keeping, decision = "retry", "renewal failed");
                    } else {
                        tracing::warn!(error = %e, code = e.code(), permanent = e.permanent(), failures, retry_in_s = delay.as_secs_f64(), keeping, decision = "retry", "renewal failed; keeping the current certificate");
                    }
                    match signals.wait(delay).await {
                        Wake::Time => {}
                        Wake::Hangup => {
                            tracing::info!(failures, decision = "retry", "SIGHUP: retrying now");
                        }
                        Wake::Stop => {
                            stopped(held_m);
                            return Ok(());
                        }
                    }
                }
            }
        }
    }
}

/// The line an agent stopped by SIGTERM or SIGINT ends with.
fn stopped(held: Option<&Material>) {
    match held {
        Some(m) => {
            tracing::info!(serial = %m.serial, not_after = %rfc3339(m.validity.not_after), decision = "stop", "stopping: the certificate on disk stays as it is")
        }
        None => tracing::info!(decision = "stop", "stopping: no usable certificate on disk"),
    }
}

fn log_state(m: &Material, s: &CertState) {
    match s {
        CertState::Fresh { .. } => {}
        CertState::Due { .. } => {
            tracing::warn!(serial = %m.serial, state = s.code(), decision = "renew", "certificate {s}")
        }
        _ => {
            tracing::error!(serial = %m.serial, state = s.code(), decision = "renew", "certificate {s}")
        }
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn report(json: bool, result: &str, m: &Material) -> Result<()> {
    if json {
        println!(
            "{}",
            serde_json::json!({
                "result": result,
                "serial": m.serial,
                "subject": m.subject,
                "not_before": rfc3339(m.validity.not_before),
                "not_after": rfc3339(m.validity.not_after),
            })
        );
    } else {
        println!(
            "{result}: {} serial {} valid until {}",
            m.subject,
            m.serial,
            rfc3339(m.validity.not_after)
        );
    }
    Ok(())
}

async fn serve_admin(listener: tokio::net::TcpListener, metrics: Arc<Mutex<Metrics>>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let metrics = metrics.clone();
        let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
            let now = OffsetDateTime::now_utc();
            let m = metrics.lock().unwrap_or_else(|p| p.into_inner());
            let (status, body) = match req.uri().path() {
                "/metrics" => (200, m.render(now)),
                "/ready" if m.ready(now) => (200, "ready\n".to_string()),
                "/ready" => (503, "no valid certificate on disk\n".to_string()),
                _ => (404, "not found\n".to_string()),
            };
            let resp = http::Response::builder()
                .status(status)
                .header("content-type", "text/plain; version=0.0.4")
                .body(Full::new(Bytes::from(body)));
            std::future::ready(resp)
        });
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert!(
            matches!(parse_signal("12:HUP"), Ok(Hook::Signal { pid: 12, ref sig }) if sig == "HUP")
        );
        assert!(
            matches!(parse_signal("12:SIGusr1"), Ok(Hook::Signal { ref sig, .. }) if sig == "USR1")
        );
        for bad in ["12", "x:HUP", "0:HUP", "12:BOGUS"] {
            assert!(parse_signal(bad).is_err(), "{bad}");
        }
    }
}
