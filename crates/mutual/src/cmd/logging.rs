//! One logging set-up for every long-running command (`server`, `proxy`, `tunnel`, `serve`,
//! `agent`): one line per decision on stderr, as text (coloured only at a terminal) or JSON.
//! `MUTUAL_LOG` sets the filter: a level (`info`, `debug`) and `target=level` pairs
//! (`info,mutual_proxy=debug`). The filter is a plain list of targets, not a regex-based one,
//! so that starting a command does not compile regular expressions (the agent's idle memory
//! is mostly the code it touched once at start).

use std::io::IsTerminal;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the subscriber (once; a second call changes nothing).
pub fn init(json: bool) {
    let filter = filter(std::env::var("MUTUAL_LOG").ok().as_deref());
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false);
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if json {
        registry.with(layer.json().flatten_event(true)).try_init()
    } else {
        registry
            .with(layer.with_ansi(std::io::stderr().is_terminal()))
            .try_init()
    };
}

/// The filter `MUTUAL_LOG` asks for; `info` when it is unset, and when it does not parse
/// (with a warning naming it, since a service that will not start over its log level helps
/// nobody).
fn filter(spec: Option<&str>) -> Targets {
    let default = Targets::new().with_default(LevelFilter::INFO);
    match spec.map(str::trim).filter(|s| !s.is_empty()) {
        None => default,
        Some(s) => s.parse().unwrap_or_else(|e| {
            eprintln!("MUTUAL_LOG={s:?} is not a log filter ({e}); logging at info");
            default
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn the_filter_reads_levels_and_targets() {
        // (MUTUAL_LOG, target, level, enabled)
        let cases = [
            (None, "mutual_proxy", Level::INFO, true),
            (None, "mutual_proxy", Level::DEBUG, false),
            (Some(""), "mutual_server", Level::INFO, true),
            (Some("debug"), "mutual_server", Level::DEBUG, true),
            (Some("warn"), "mutual_server", Level::INFO, false),
            (
                Some("info,mutual_proxy=debug"),
                "mutual_proxy",
                Level::DEBUG,
                true,
            ),
            (
                Some("info,mutual_proxy=debug"),
                "mutual_server",
                Level::DEBUG,
                false,
            ),
            (Some("not a filter==="), "mutual_server", Level::INFO, true),
            (
                Some("not a filter==="),
                "mutual_server",
                Level::DEBUG,
                false,
            ),
        ];
        for (spec, target, level, want) in cases {
            let got = filter(spec).would_enable(target, &level);
            assert_eq!(got, want, "MUTUAL_LOG={spec:?} {target} {level}");
        }
    }
}
