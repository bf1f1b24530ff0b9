-- Tool calls parked for a person's decision (process_rules.approval_required, SPEC §7): the
-- call, the issue's status when it was parked (restored on approval), and the decision.
CREATE TABLE pending_approvals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    build_id TEXT NOT NULL,
    issue_id TEXT NOT NULL,
    role TEXT NOT NULL,
    seat TEXT NOT NULL,
    tool TEXT NOT NULL,
    args TEXT NOT NULL,
    resume_status TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    reason TEXT,
    result TEXT,
    created_at TEXT NOT NULL,
    decided_at TEXT
);
CREATE INDEX pending_approvals_run ON pending_approvals (run_id, id);
