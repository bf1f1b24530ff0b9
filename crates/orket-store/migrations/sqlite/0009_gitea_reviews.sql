-- The Gitea pull-request review loop. Every accepted webhook delivery is recorded once: a
-- delivery id already seen, or a body byte-identical to one already accepted (Gitea's
-- "redeliver" resends the same bytes under a new id), is a duplicate.
CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id TEXT NOT NULL UNIQUE,
    event TEXT NOT NULL,
    event_type TEXT,
    repository TEXT,
    pr_number INTEGER,
    body_sha256 TEXT NOT NULL UNIQUE,
    outcome TEXT NOT NULL,
    detail TEXT,
    received_at TEXT NOT NULL
);
-- A pull request Orket knows of: its card, its state, the epoch of its review cycles (a new
-- epoch starts after a merge or a reopen) and its last review.
CREATE TABLE pull_requests (
    repository TEXT NOT NULL,
    number INTEGER NOT NULL,
    title TEXT NOT NULL,
    card_id TEXT,
    build_id TEXT,
    state TEXT NOT NULL,
    head_sha TEXT,
    epoch INTEGER NOT NULL DEFAULT 1,
    last_review TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (repository, number)
);
-- Changes requested on a pull request, one row per cycle of its epoch.
CREATE TABLE pr_review_cycles (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    repository TEXT NOT NULL,
    number INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    cycle INTEGER NOT NULL,
    reason TEXT NOT NULL,
    head_sha TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (repository, number, epoch, cycle)
);
