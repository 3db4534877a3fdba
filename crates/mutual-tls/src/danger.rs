//! Risky switches, kept apart so that they are easy to find in a review.

use crate::client::ClientTlsBuilder;

/// A [`ClientTlsBuilder`] on its way to doing something risky.
#[derive(Debug)]
pub struct DangerousClientTlsBuilder(pub(crate) ClientTlsBuilder);

impl DangerousClientTlsBuilder {
    /// Accept any server certificate: only to look at what a server presents (`inspect`,
    /// `doctor`), never to send data that matters.
    pub fn accept_any_server_certificate(self) -> ClientTlsBuilder {
        self.0.set_accept_any_server()
    }
}
