//! The protocol of the gRPC examples, shared by `grpc_server` and `grpc_client`. Written by
//! hand with prost's derive rather than generated from a `.proto`, so that building needs no
//! `protoc`. The same service as a `.proto`:
//!
//! ```proto
//! syntax = "proto3";
//! package mutual.example;
//! service Greeter {
//!   rpc Hello (HelloRequest) returns (HelloReply);
//!   rpc Chat (stream Note) returns (stream Note);
//! }
//! message HelloRequest { string name = 1; uint32 delay_ms = 2; }
//! message HelloReply { string message = 1; string caller = 2; string rule = 3; string deadline = 4; }
//! message Note { string text = 1; }
//! ```

/// The unary method's path.
pub const HELLO: &str = "/mutual.example.Greeter/Hello";
/// The bidirectional streaming method's path.
pub const CHAT: &str = "/mutual.example.Greeter/Chat";

/// Who to greet; `delay_ms` makes the server take that long, to see a deadline pass.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HelloRequest {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(uint32, tag = "2")]
    pub delay_ms: u32,
}

/// The greeting, with what the server knows of the call: the caller's verified identity, the
/// rule that let it in and the deadline it was given.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HelloReply {
    #[prost(string, tag = "1")]
    pub message: String,
    #[prost(string, tag = "2")]
    pub caller: String,
    #[prost(string, tag = "3")]
    pub rule: String,
    #[prost(string, tag = "4")]
    pub deadline: String,
}

/// One message of the chat, either way.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Note {
    #[prost(string, tag = "1")]
    pub text: String,
}
