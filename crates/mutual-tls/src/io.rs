//! The TCP side of a server's TLS stream, able to hold back the TLS 1.3 session ticket so that
//! it leaves with the first response instead of in a segment of its own.
//!
//! In TLS 1.3 the server's last handshake message, the NewSessionTicket, is written after the
//! client's Finished, when nothing else is ready to send. On its own it costs a write and a
//! segment per connection (a tenth of a full handshake on loopback). When the client's request
//! has already arrived, the response follows at once and can carry the ticket; when it has
//! not (a client without TCP_NODELAY holds its request until its Finished is acknowledged),
//! the ticket must leave at once, because it carries that acknowledgement. [`crate::accept`]
//! decides which, after the handshake; this type only holds and releases.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A server connection's TCP stream. Writes made while the hold is armed are kept and go out
/// in front of the next write (or at shutdown, or when the connection says to send them). A flush
/// does not send them: HTTP servers flush before they have read the request, which would send
/// the ticket alone after all.
#[derive(Debug)]
pub struct ServerIo {
    tcp: TcpStream,
    /// Set by the client-certificate verifier once the client's TLS 1.3 CertificateVerify
    /// passed: the only server write left in that handshake is the ticket. `None` once the
    /// handshake is over.
    arm: Option<Arc<AtomicBool>>,
    held: Vec<u8>,
}

impl ServerIo {
    pub(crate) fn new(tcp: TcpStream, arm: Arc<AtomicBool>) -> ServerIo {
        ServerIo {
            tcp,
            arm: Some(arm),
            held: Vec::new(),
        }
    }

    /// The TCP stream.
    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// The TCP stream, giving up anything held.
    pub fn into_tcp(self) -> TcpStream {
        self.tcp
    }

    /// Ends holding; what is held goes out with the next write (or flush).
    pub(crate) fn stop_holding(&mut self) {
        self.arm = None;
    }

    /// True when writes are held back now.
    fn holding(&self) -> bool {
        self.arm.as_ref().is_some_and(|a| a.load(Ordering::Acquire))
    }

    /// Bytes held back.
    pub(crate) fn held(&self) -> usize {
        self.held.len()
    }

    /// Sends what is held now.
    pub(crate) async fn send_held(&mut self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_write_held(cx, &[]).map_ok(|_| ())).await
    }

    /// True when the peer has sent bytes not read yet (a non-blocking peek).
    pub(crate) fn peer_sent_more(&self) -> bool {
        let mut one = [std::mem::MaybeUninit::<u8>::uninit()];
        matches!(socket2::SockRef::from(&self.tcp).peek(&mut one), Ok(n) if n > 0)
    }

    /// Writes what is held, `more` after it if given; the count is of `more`'s bytes.
    fn poll_write_held(
        &mut self,
        cx: &mut Context<'_>,
        more: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        while !self.held.is_empty() {
            let mut slices = Vec::with_capacity(1 + more.len());
            slices.push(IoSlice::new(&self.held));
            slices.extend(more.iter().map(|s| IoSlice::new(s)));
            let n = ready!(Pin::new(&mut self.tcp).poll_write_vectored(cx, &slices))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            if n < self.held.len() {
                self.held.drain(..n);
                continue;
            }
            let of_more = n - self.held.len();
            self.held = Vec::new();
            if of_more > 0 || more.iter().all(|s| s.is_empty()) {
                return Poll::Ready(Ok(of_more));
            }
        }
        Pin::new(&mut self.tcp).poll_write_vectored(cx, more)
    }
}

impl AsyncRead for ServerIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for ServerIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.holding() {
            let n = bufs.iter().map(|b| b.len()).sum();
            for b in bufs {
                this.held.extend_from_slice(b);
            }
            return Poll::Ready(Ok(n));
        }
        if this.held.is_empty() {
            return Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs);
        }
        this.poll_write_held(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.arm = None;
        if !this.held.is_empty() {
            ready!(this.poll_write_held(cx, &[]))?;
        }
        Pin::new(&mut this.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    async fn pair() -> (ServerIo, TcpStream, Arc<AtomicBool>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (server, _) = l.accept().await.unwrap();
        let arm = Arc::new(AtomicBool::new(false));
        (ServerIo::new(server, arm.clone()), client, arm)
    }

    #[tokio::test]
    async fn held_bytes_go_out_first_with_the_next_write_and_nothing_before() {
        let (mut io, mut client, arm) = pair().await;
        io.write_all(b"flight;").await.unwrap();
        arm.store(true, Ordering::Release);
        io.write_all(b"ticket;").await.unwrap();
        // A flush while armed sends nothing: the ticket waits for the response.
        io.flush().await.unwrap();
        let mut got = vec![0u8; 64];
        let n = client.read(&mut got).await.unwrap();
        assert_eq!(&got[..n], b"flight;");
        let early =
            tokio::time::timeout(std::time::Duration::from_millis(100), client.read(&mut got))
                .await;
        assert!(early.is_err(), "held bytes left before the next write");
        io.stop_holding();
        assert_eq!(io.held(), 7);
        io.write_all(b"response").await.unwrap();
        let mut rest = vec![0u8; 15];
        client.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"ticket;response");
    }

    #[tokio::test]
    async fn held_bytes_go_out_when_sent_or_at_shutdown_never_on_a_flush() {
        let (mut io, mut client, arm) = pair().await;
        arm.store(true, Ordering::Release);
        io.write_all(b"ticket").await.unwrap();
        io.stop_holding();
        io.flush().await.unwrap();
        assert_eq!(io.held(), 6, "a flush sent the held bytes");
        io.send_held().await.unwrap();
        assert_eq!(io.held(), 0);
        let mut got = [0u8; 6];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ticket");

        let (mut io, mut client, arm) = pair().await;
        arm.store(true, Ordering::Release);
        io.write_all(b"ticket").await.unwrap();
        io.shutdown().await.unwrap();
        let mut all = Vec::new();
        client.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, b"ticket");
    }

    #[tokio::test]
    async fn peeking_sees_unread_bytes_without_taking_them() {
        let (io, mut client, _) = pair().await;
        assert!(!io.peer_sent_more());
        client.write_all(b"GET /").await.unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while !io.peer_sent_more() && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(io.peer_sent_more());
        let mut io = io;
        let mut got = [0u8; 5];
        io.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"GET /");
    }
}
