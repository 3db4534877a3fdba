//! `ca-load`: sends one request (method, path, JSON body) over and over from C client threads,
//! each with its own keep-alive connection, for a fixed time or count, and prints one JSON line:
//! requests, errors, seconds, requests/s, p50/p99 latency in ms.
//!
//! `--body-lines FILE` sends each line of FILE once as a body (e.g. one revoke per serial).
//!
//! `ca-load --addr 127.0.0.1:8200 --token root --path /v1/pki/issue/ec --body '{"common_name":"a.example.com"}' -c 8 --secs 10`

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use mutual_bench::Conn;

struct Args {
    addr: String,
    token: Option<String>,
    method: String,
    path: String,
    body: Vec<u8>,
    /// With --body-lines: one body per request, each used once.
    lines: Vec<Vec<u8>>,
    concurrency: usize,
    secs: f64,
    requests: u64,
    print_serials: bool,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        addr: "127.0.0.1:8200".into(),
        token: None,
        method: "POST".into(),
        path: String::new(),
        body: vec![],
        lines: vec![],
        concurrency: 1,
        secs: 10.0,
        requests: 0,
        print_serials: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => a.addr = val()?.trim_start_matches("http://").to_string(),
            "--token" => a.token = Some(val()?),
            "--method" | "-X" => a.method = val()?,
            "--path" => a.path = val()?,
            "--body" => a.body = val()?.into_bytes(),
            "--body-file" => {
                let f = val()?;
                a.body = std::fs::read(&f).map_err(|e| format!("{f}: {e}"))?
            }
            "--body-lines" => {
                let f = val()?;
                let text = std::fs::read_to_string(&f).map_err(|e| format!("{f}: {e}"))?;
                a.lines = text
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| l.as_bytes().to_vec())
                    .collect();
                a.requests = a.lines.len() as u64;
            }
            "-c" | "--concurrency" => a.concurrency = val()?.parse().map_err(|e| format!("{e}"))?,
            "--secs" => a.secs = val()?.parse().map_err(|e| format!("{e}"))?,
            "-n" | "--requests" => a.requests = val()?.parse().map_err(|e| format!("{e}"))?,
            "--print-serials" => a.print_serials = true,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.path.is_empty() {
        return Err("--path is required".into());
    }
    Ok(a)
}

fn main() {
    let args = match parse() {
        Ok(a) => Arc::new(a),
        Err(e) => {
            eprintln!("ca-load: {e}");
            std::process::exit(2);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let threads: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (args, stop, sent) = (args.clone(), stop.clone(), sent.clone());
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                let mut errors = 0u64;
                let mut serials = Vec::new();
                let mut conn = Conn::open(&args.addr).ok();
                while !stop.load(Ordering::Relaxed) {
                    let n = sent.fetch_add(1, Ordering::Relaxed);
                    if args.requests > 0 && n >= args.requests {
                        break;
                    }
                    let body = args.lines.get(n as usize).unwrap_or(&args.body);
                    let Some(c) = conn.as_mut() else {
                        errors += 1;
                        conn = Conn::open(&args.addr).ok();
                        continue;
                    };
                    let t = Instant::now();
                    match c.request(&args.method, &args.path, args.token.as_deref(), body) {
                        Ok((code, body)) if code / 100 == 2 => {
                            lat.push(t.elapsed());
                            if args.print_serials {
                                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
                                    if let Some(s) = v["data"]["serial_number"].as_str() {
                                        serials.push(s.to_string());
                                    }
                                }
                            }
                        }
                        Ok((code, body)) => {
                            errors += 1;
                            if errors <= 3 {
                                eprintln!("ca-load: {code} {}", String::from_utf8_lossy(&body));
                            }
                        }
                        Err(_) => {
                            errors += 1;
                            conn = Conn::open(&args.addr).ok();
                        }
                    }
                }
                (lat, errors, serials)
            })
        })
        .collect();
    if args.requests == 0 {
        std::thread::sleep(Duration::from_secs_f64(args.secs));
        stop.store(true, Ordering::Relaxed);
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    for t in threads {
        let (l, e, serials) = t.join().expect("client thread");
        lat.extend(l);
        errors += e;
        for s in serials {
            println!("{s}");
        }
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let out = serde_json::json!({
        "requests": lat.len(),
        "errors": errors,
        "secs": secs,
        "rps": lat.len() as f64 / secs,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
    });
    if args.print_serials {
        eprintln!("{out}");
    } else {
        println!("{out}");
    }
}
