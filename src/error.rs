//! The error classes shared by every layer.
//!
//! Each layer has its own `thiserror` enum (`store::StoreError`, `cmaf::ScanError`,
//! `vod::VodError`, ...) and says which [`ErrorKind`] each variant is. Only
//! `server::http::status_for` turns an [`ErrorKind`] into an HTTP status, so the mapping
//! lives in one place.

/// What kind of failure an error is, independent of the protocol that reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request is malformed (bad query, bad range, unparsable path).
    BadRequest,
    /// The request carries no credentials where they are required (answered with a
    /// challenge: RFC 9110 section 15.5.2).
    Unauthenticated,
    /// The request names something it may never touch (path traversal, outside a root).
    Forbidden,
    /// Nothing exists at that name.
    NotFound,
    /// The request body is larger than the configured limit.
    TooLarge,
    /// The input exists but its format or codec is not supported.
    Unsupported,
    /// The input is damaged (truncated, inconsistent tables, hostile sizes).
    Corrupt,
    /// An upstream (remote source) failed or changed under us.
    Upstream,
    /// The waited-for thing did not arrive in time (blocking reloads).
    Unavailable,
    /// The client stopped sending in the middle of a request (a stalled upload:
    /// RFC 9110 section 15.5.9).
    TimedOut,
    /// The request conflicts with the current state (a recording already stopped, a start
    /// older than the archive).
    Conflict,
    /// The request is well-formed but cannot be done (an end before the start).
    Unprocessable,
    /// A precondition of the protocol is not met (tus `Tus-Resumable` version: tus 1.0
    /// section 3.2; RFC 9110 section 15.5.13).
    PreconditionFailed,
    /// Not enough storage to take the request (RFC 4918 section 11.5).
    InsufficientStorage,
    /// A bug or an I/O failure on our side.
    Internal,
}
