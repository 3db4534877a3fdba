//! `mutual`: the command line. Wiring only: flags are parsed in [`cli`], work is done by the
//! `mutual-*` crates, and every failure becomes one line on stderr with exit code 1
//! (2 for bad usage, as clap reports it).
#![forbid(unsafe_code)]

// The global allocator: mutual-alloc picks it for each command (jemalloc but for the agent).
use mutual_alloc as _;

mod cli;
mod cmd;
mod files;
mod output;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::Parser;

/// Set by `mutual demo` (to its PID) on the services it starts: they stop when the demo ends,
/// however it ends (`kill -9` included), instead of serving on as orphans. Read once and taken
/// out of the environment: a process that a service starts (an enrolled service's hook, say)
/// has another parent, and would otherwise exit at once, or with the service.
pub(crate) const EXIT_WITH_PARENT: &str = "MUTUAL_EXIT_WITH_PARENT";

fn exit_with_parent() {
    let value = std::env::var_os(EXIT_WITH_PARENT);
    // Still one thread here: nothing else reads the environment meanwhile.
    std::env::remove_var(EXIT_WITH_PARENT);
    let Some(parent) = value
        .and_then(|v| v.into_string().ok())
        .and_then(|v| v.parse::<i32>().ok())
    else {
        return;
    };
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM));
    // The parent may have ended before the line above took effect.
    if rustix::process::getppid().map(|p| p.as_raw_nonzero().get()) != Some(parent) {
        std::process::exit(1);
    }
}

fn main() {
    let cli = cli::Cli::try_parse().unwrap_or_else(|e| usage(e));
    exit_with_parent();
    // One worker per core this process may run on (taskset/cgroups are honoured), or
    // TOKIO_WORKER_THREADS when set. On one core, everything runs on the main thread: no
    // hand-over between threads and one malloc arena (bench/proxy.sh: less memory, as fast).
    // The agent sleeps between renewals: one thread keeps its idle footprint small.
    let agent = matches!(cli.command, cli::Command::Agent(_));
    let workers = std::env::var("TOKIO_WORKER_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1);
    let mut builder = if workers <= 1 || agent {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mutual: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let result = runtime.block_on(cmd::run(cli));
    if let Err(err) = result {
        eprintln!("mutual: {}", one_line(&err));
        std::process::exit(err.downcast_ref::<cmd::UsageError>().map_or(1, |_| 2));
    }
}

/// Exits on a command line that clap refused. A value that its flag's parser refused is one
/// line naming the flag as the user wrote it (`mutual: --allow: invalid matcher "cn~["…`);
/// anything else (help, version, a missing or unknown flag) is clap's own report.
fn usage(e: clap::Error) -> ! {
    if e.kind() == ErrorKind::ValueValidation {
        let flag = match e.get(ContextKind::InvalidArg) {
            // `--allow <ALLOW>`: the flag without its value name.
            Some(ContextValue::String(arg)) => arg.split(' ').next().map(str::to_string),
            _ => None,
        };
        if let (Some(flag), Some(why)) = (flag, std::error::Error::source(&e)) {
            eprintln!("mutual: {flag}: {}", why.to_string().replace('\n', " "));
            std::process::exit(2);
        }
    }
    e.exit()
}

/// The error and its context chain on one line: `reading --cert a.crt: no such file`.
fn one_line(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let s = cause.to_string();
        if parts.last().is_none_or(|last| !last.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ").replace('\n', " ")
}
