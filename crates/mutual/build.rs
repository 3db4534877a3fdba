//! Link arguments of the `mutual` binary on Linux with glibc; see `layout/README.md`.
//!
//! An idle `mutual agent` is mostly the pages of this one binary that start-up and a renewal
//! touched: the kernel maps 64 KiB around each page a process faults on, so a few thousand
//! functions scattered over 17 MiB of code kept 8 MiB of it resident. `layout/agent.ld` puts
//! the functions that the agent runs next to each other (the rest of the binary keeps the
//! linker's own order), and packed relative relocations (`DT_RELR`) spare the dynamic loader
//! reading the 0.7–1.1 MiB of `.rela.dyn` a position-independent binary otherwise carries.

use std::env;

fn main() {
    println!("cargo::rerun-if-changed=layout/agent.ld");
    println!("cargo::rerun-if-env-changed=MUTUAL_NO_LAYOUT");
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    // Escape hatch for a linker that refuses either argument (lld and GNU ld take both).
    if os != "linux" || target_env != "gnu" || env::var_os("MUTUAL_NO_LAYOUT").is_some() {
        return;
    }
    // Linked from OUT_DIR, not from the source: cargo keeps a build script's output while the
    // sources move (a checkout renamed with its target/, worktrees sharing one), and a path
    // into the old place then breaks every later link.
    let (Ok(dir), Ok(out)) = (env::var("CARGO_MANIFEST_DIR"), env::var("OUT_DIR")) else {
        return;
    };
    let script = format!("{out}/agent.ld");
    if let Err(e) = std::fs::copy(format!("{dir}/layout/agent.ld"), &script) {
        panic!("copying layout/agent.ld to {script}: {e}");
    }
    println!("cargo::rustc-link-arg-bin=mutual=-Wl,-T,{script}");
    println!("cargo::rustc-link-arg-bin=mutual=-Wl,-z,pack-relative-relocs");
}
