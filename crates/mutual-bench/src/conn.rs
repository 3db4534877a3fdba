//! A minimal keep-alive HTTP/1.1 client over a blocking socket, for `ca-load` and the store's
//! durability test: one connection per client thread, so the figures measure the server, not a
//! client runtime. It sends requests (JSON unless told otherwise), over plain TCP or over TLS
//! with a client certificate (`ca-load --renew`), and reads `Content-Length` or chunked answers.

use std::{
    fmt,
    io::{self, BufRead, BufReader, Read, Write},
    net::TcpStream,
    sync::Arc,
};

use rustls::{pki_types::ServerName, ClientConfig, ClientConnection, StreamOwned};

/// What a connection reads and writes: a TCP socket, or TLS over one.
trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// One keep-alive HTTP/1.1 connection.
pub struct Conn {
    host: String,
    /// Reads are buffered; writes go to the stream underneath (`get_mut`), which the buffer
    /// never holds back.
    stream: BufReader<Box<dyn Stream>>,
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn").field("host", &self.host).finish()
    }
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// How a connection's thread waits for the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Wait {
    /// Blocking reads and writes: the thread sleeps until the answer comes.
    #[default]
    Sleep,
    /// Non-blocking ones, retried with the core yielded in between: the thread never sleeps.
    /// On loopback, the kernel delivers an answer to its reader from the server's `send`, on
    /// the server's core, and waking a sleeping reader there (an interrupt to the load's core)
    /// is work the server would not do for a client across a network: 13% of `mutual server`'s
    /// profile at 30,000 OCSP answers a second. A client that never sleeps needs no waking.
    /// The load's core is then always busy, so this is for a core of its own only.
    Spin,
}

/// A TCP connection that, with [`Wait::Spin`], is non-blocking underneath and retries until
/// it can go on, so that whoever reads and writes it (rustls included) sees blocking calls.
struct Tcp {
    socket: TcpStream,
    spin: bool,
}

impl Tcp {
    fn connect(host: &str, wait: Wait) -> io::Result<Tcp> {
        let socket = TcpStream::connect(host)?;
        socket.set_nodelay(true)?;
        let spin = wait == Wait::Spin;
        socket.set_nonblocking(spin)?;
        Ok(Tcp { socket, spin })
    }

    fn retry<T>(&mut self, mut op: impl FnMut(&mut TcpStream) -> io::Result<T>) -> io::Result<T> {
        loop {
            match op(&mut self.socket) {
                Err(e) if self.spin && e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::yield_now()
                }
                done => return done,
            }
        }
    }
}

impl Read for Tcp {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.retry(|s| s.read(buf))
    }
}

impl Write for Tcp {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.retry(|s| s.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.socket.flush()
    }
}

impl Conn {
    /// Connects to `host:port`.
    pub fn open(host: &str) -> io::Result<Conn> {
        Conn::connect(host, None, Wait::Sleep)
    }

    /// Connects to `host:port` over TLS with `config` (its client certificate, its roots),
    /// expecting the server to hold `name`. The handshake completes with the first request, so
    /// a refusal is that request's error.
    pub fn open_tls(
        host: &str,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> io::Result<Conn> {
        Conn::connect(host, Some((config, name)), Wait::Sleep)
    }

    /// Connects to `host:port`, over TLS when `tls` is given (as [`Conn::open_tls`]), its
    /// thread waiting for the server as `wait` says.
    pub fn connect(
        host: &str,
        tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
        wait: Wait,
    ) -> io::Result<Conn> {
        let tcp = Tcp::connect(host, wait)?;
        let stream: Box<dyn Stream> = match tls {
            Some((config, name)) => {
                let tls = ClientConnection::new(config, name).map_err(io::Error::other)?;
                Box::new(StreamOwned::new(tls, tcp))
            }
            None => Box::new(tcp),
        };
        Ok(Conn {
            host: host.to_string(),
            stream: BufReader::new(stream),
        })
    }

    /// Sends one JSON request and reads its answer: (status, body).
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &[u8],
    ) -> io::Result<(u16, Vec<u8>)> {
        self.request_as(method, path, token, "application/json", body)
    }

    /// [`Conn::request`] with the body's content type given (`application/ocsp-request`).
    pub fn request_as(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: &[u8],
    ) -> io::Result<(u16, Vec<u8>)> {
        let extra = token.map(|t| ("X-Vault-Token", t));
        let r = self.exchange(method, path, content_type, extra.as_slice(), body)?;
        Ok((r.status, r.body))
    }

    /// Sends one request with `headers` added and reads its whole answer, headers included
    /// (`acme-load` reads `Replay-Nonce` and `Location`). The answer to `HEAD` has no body.
    pub fn exchange(
        &mut self,
        method: &str,
        path: &str,
        content_type: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Response> {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
            self.host,
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut msg = head.into_bytes();
        msg.extend_from_slice(body);
        let w = self.stream.get_mut();
        w.write_all(&msg)?;
        w.flush()?;
        self.read_response(method == "HEAD")
    }

    fn read_response(&mut self, head_only: bool) -> io::Result<Response> {
        let mut line = String::new();
        if self.stream.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid(format!("bad status line {line:?}")))?;
        let mut length = None;
        let mut chunked = false;
        let mut headers = Vec::new();
        loop {
            line.clear();
            if self.stream.read_line(&mut line)? == 0 {
                return Err(invalid("headers cut short"));
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                let k = k.trim().to_ascii_lowercase();
                if k == "content-length" {
                    length = v.trim().parse::<usize>().ok();
                } else if k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked") {
                    chunked = true;
                }
                headers.push((k, v.trim().to_string()));
            }
        }
        let mut body = Vec::new();
        if head_only {
            // The headers describe the body a GET would have had; none follows.
        } else if chunked {
            loop {
                line.clear();
                self.stream.read_line(&mut line)?;
                let n = usize::from_str_radix(line.trim(), 16)
                    .map_err(|_| invalid("bad chunk size"))?;
                let mut chunk = vec![0; n + 2];
                self.stream.read_exact(&mut chunk)?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        } else if let Some(n) = length {
            body.resize(n, 0);
            self.stream.read_exact(&mut body)?;
        } else if status != 204 && status != 304 {
            return Err(invalid("no Content-Length"));
        }
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

/// A whole answer: status, headers (names in lower case, in the order received) and body.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// `(name, value)`, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::{Conn, Wait};
    use std::io::{Read, Write};
    use std::time::Duration;

    /// A server on loopback that answers each request on one connection late (so that a
    /// spinning reader first finds nothing to read) and in two pieces (so that it finds the
    /// rest missing in the middle of the answer); both waits read the same answers.
    #[test]
    fn spinning_and_sleeping_connections_read_the_same_late_answers() {
        for wait in [Wait::Sleep, Wait::Spin] {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            let server = std::thread::spawn(move || {
                let (mut s, _) = listener.accept().unwrap();
                for i in 0..3 {
                    let mut got = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !got.ends_with(b"\r\n\r\n") {
                        let n = s.read(&mut buf).unwrap();
                        assert!(n > 0, "closed early");
                        got.extend_from_slice(&buf[..n]);
                    }
                    std::thread::sleep(Duration::from_millis(30));
                    let body = format!("answer {i}");
                    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n", body.len());
                    s.write_all(head.as_bytes()).unwrap();
                    s.flush().unwrap();
                    std::thread::sleep(Duration::from_millis(30));
                    s.write_all(format!("\r\n{body}").as_bytes()).unwrap();
                }
            });
            let mut c = Conn::connect(&addr, None, wait).unwrap();
            for i in 0..3 {
                let (status, body) = c.request("GET", "/", None, b"").unwrap();
                assert_eq!(status, 200, "{wait:?}");
                assert_eq!(body, format!("answer {i}").into_bytes(), "{wait:?}");
            }
            server.join().unwrap();
        }
    }
}
