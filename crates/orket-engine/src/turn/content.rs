//! A file's content asked for apart. With a model profile's `file_content: "block"`, a
//! developer's `write_file` step names its path only; the content then comes from one more
//! model call of its own — the words, no tools, the step's seed and sampling — whose
//! reply the file is made from: its first fenced block, or, for a list file
//! (`FileShape::List`), its items, asked for as JSON held to their number and written one
//! `- ` line each. The turn's conversation keeps the step's reply as the model wrote it.

use crate::prompt::content_messages;
use orket_core::assets::FileShape;
use orket_core::tools::Tool;
use orket_core::ToolCall;
use orket_llm::{fenced_block, list_content, list_schema, ModelRequest};

/// The content call for one file.
pub(crate) struct ContentAsk {
    /// What is sent: the step's request with the content call's messages and schema.
    pub request: ModelRequest,
    shape: Option<FileShape>,
}

impl ContentAsk {
    /// The call for the file at `path`, whose issue gives it `shape`, made from the step's
    /// `request`; `brief` is the issue's own words.
    pub fn new(request: &ModelRequest, brief: &str, path: &str, shape: Option<FileShape>) -> Self {
        let request = ModelRequest {
            messages: content_messages(brief, path, shape),
            tool_schema: shape.map(|FileShape::List { items }| list_schema(items)),
            ..request.clone()
        };
        Self { request, shape }
    }

    /// The file's content from the call's reply.
    pub fn content(&self, reply: &str) -> String {
        match self.shape {
            // A reply that holds no items (a provider that does not constrain replies) is
            // taken as written: the fixture judges it.
            Some(FileShape::List { .. }) => {
                list_content(reply).unwrap_or_else(|| fenced_block(reply))
            }
            None => fenced_block(reply),
        }
    }
}

/// The path of `call` when it is a `write_file` that came without its content.
pub(crate) fn path_without_content(call: &ToolCall) -> Option<String> {
    if call.name != Tool::WriteFile.name() || call.args.contains_key("content") {
        return None;
    }
    call.args.get("path")?.as_str().map(str::to_string)
}
