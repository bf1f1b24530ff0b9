//! The HTTP API, WebSocket and web board: arrives with the server issue.
