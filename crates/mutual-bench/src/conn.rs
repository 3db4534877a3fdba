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

fn connect(host: &str) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(host)?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

impl Conn {
    /// Connects to `host:port`.
    pub fn open(host: &str) -> io::Result<Conn> {
        Ok(Conn {
            host: host.to_string(),
            stream: BufReader::new(Box::new(connect(host)?)),
        })
    }

    /// Connects to `host:port` over TLS with `config` (its client certificate, its roots),
    /// expecting the server to hold `name`. The handshake completes with the first request, so
    /// a refusal is that request's error.
    pub fn open_tls(
        host: &str,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> io::Result<Conn> {
        let tcp = connect(host)?;
        let tls = ClientConnection::new(config, name).map_err(io::Error::other)?;
        Ok(Conn {
            host: host.to_string(),
            stream: BufReader::new(Box::new(StreamOwned::new(tls, tcp))),
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
