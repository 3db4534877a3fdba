//! Risky switches, kept apart so that they are easy to find in a review: the way into them,
//! [`ClientTlsBuilder::dangerous`], is defined here too, so this module depends on the client
//! and not the other way round.

use crate::client::ClientTlsBuilder;

impl ClientTlsBuilder {
    /// Risky switches.
    pub fn dangerous(self) -> DangerousClientTlsBuilder {
        DangerousClientTlsBuilder(self)
    }
}

/// A [`ClientTlsBuilder`] on its way to doing something risky.
#[derive(Debug)]
pub struct DangerousClientTlsBuilder(ClientTlsBuilder);

impl DangerousClientTlsBuilder {
    /// Accept any server certificate: only to look at what a server presents (`inspect`,
    /// `doctor`), never to send data that matters.
    pub fn accept_any_server_certificate(self) -> ClientTlsBuilder {
        self.0.set_accept_any_server()
    }
}
