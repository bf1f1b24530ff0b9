//! The names of the tools agents may call (SPEC §8), known to the asset validator and the gate.

/// Every tool the engine knows.
pub const KNOWN_TOOLS: [&str; 17] = [
    "read_file",
    "write_file",
    "list_directory",
    "delete_file",
    "create_issue",
    "update_issue_status",
    "add_issue_comment",
    "get_issue_context",
    "request_excuse",
    "report_credits",
    "reset_issue",
    "nominate_card",
    "refinement_proposal",
    "archive_eval",
    "promote_prompt",
    "image_analyze",
    "image_generate",
];

/// True when `name` is a tool the engine knows.
pub fn is_known_tool(name: &str) -> bool {
    KNOWN_TOOLS.contains(&name)
}
