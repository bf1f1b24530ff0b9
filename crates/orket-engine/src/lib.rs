//! The traction loop, gate, tools and policies: arrives with the engine issue.
