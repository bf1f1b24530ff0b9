-- Orket schema, version 1.
-- Portable on purpose (PostgreSQL gets the same tables): timestamps are TEXT in RFC 3339 UTC
-- with milliseconds and `Z`, JSON is TEXT, booleans are INTEGER 0/1.

CREATE TABLE builds (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,              -- 'epic' | 'rock'
    card        TEXT NOT NULL,              -- the epic's or rock's file stem
    department  TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE issues (
    build_id          TEXT NOT NULL,
    id                TEXT NOT NULL,
    session_id        TEXT,
    name              TEXT NOT NULL,
    description       TEXT NOT NULL,
    issue_type        TEXT NOT NULL,
    status            TEXT NOT NULL,
    priority          REAL NOT NULL,
    seat              TEXT NOT NULL,
    assignee          TEXT,
    sprint            TEXT,
    note              TEXT,
    requirements      TEXT,
    wait_reason       TEXT,
    depends_on        TEXT NOT NULL,        -- JSON array of issue ids
    retry_count       INTEGER NOT NULL,
    max_retries       INTEGER NOT NULL,
    verification      TEXT NOT NULL,        -- JSON object or 'null'
    metrics           TEXT NOT NULL,        -- JSON object
    credits_spent     REAL NOT NULL,
    parent_id         TEXT,
    owner_department  TEXT NOT NULL,
    labels            TEXT NOT NULL,        -- JSON array
    params            TEXT NOT NULL,        -- JSON object
    refs              TEXT NOT NULL,        -- JSON array: the card's "references"
    position          INTEGER NOT NULL,     -- order of insertion in the build
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    PRIMARY KEY (build_id, id)
);
CREATE INDEX issues_status ON issues (status);

CREATE TABLE comments (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    build_id    TEXT NOT NULL,
    issue_id    TEXT NOT NULL,
    author      TEXT NOT NULL,
    content     TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    FOREIGN KEY (build_id, issue_id) REFERENCES issues (build_id, id) ON DELETE CASCADE
);
CREATE INDEX comments_issue ON comments (build_id, issue_id, id);

CREATE TABLE card_transactions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    build_id     TEXT NOT NULL,
    card_id      TEXT NOT NULL,
    role         TEXT NOT NULL,
    action       TEXT NOT NULL,
    from_status  TEXT,
    to_status    TEXT,
    detail       TEXT NOT NULL,             -- JSON
    timestamp    TEXT NOT NULL
);
CREATE INDEX card_transactions_card ON card_transactions (build_id, card_id);

CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,           -- run id, 8 hex characters
    kind        TEXT NOT NULL,
    target      TEXT NOT NULL,
    build_id    TEXT NOT NULL,
    department  TEXT NOT NULL,
    workspace   TEXT NOT NULL,
    status      TEXT NOT NULL,
    reason      TEXT,
    params      TEXT NOT NULL,              -- JSON
    started_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    ended_at    TEXT
);

CREATE TABLE turns (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id        TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    build_id      TEXT NOT NULL,
    issue_id      TEXT NOT NULL,
    seat          TEXT NOT NULL,
    role          TEXT NOT NULL,
    model         TEXT NOT NULL,
    review        INTEGER NOT NULL,         -- 0 | 1
    messages      TEXT NOT NULL,            -- JSON
    content       TEXT NOT NULL,
    tool_calls    TEXT NOT NULL,            -- JSON
    tool_results  TEXT NOT NULL,            -- JSON
    tokens_in     INTEGER NOT NULL,
    tokens_out    INTEGER NOT NULL,
    status        TEXT NOT NULL,
    error         TEXT,
    started_at    TEXT NOT NULL,
    ended_at      TEXT NOT NULL,
    UNIQUE (run_id, seq)
);

CREATE TABLE events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id     TEXT,
    timestamp  TEXT NOT NULL,
    role       TEXT,
    event      TEXT NOT NULL,
    issue_id   TEXT,
    data       TEXT NOT NULL                -- JSON
);
CREATE INDEX events_run ON events (run_id, id);

CREATE TABLE session_snapshots (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    data        TEXT NOT NULL               -- JSON
);
CREATE INDEX session_snapshots_run ON session_snapshots (run_id, id);

CREATE TABLE success_ledger (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id       TEXT NOT NULL,
    build_id     TEXT NOT NULL,
    card         TEXT NOT NULL,
    recorded_at  TEXT NOT NULL,
    data         TEXT NOT NULL              -- JSON
);

CREATE TABLE memory (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    content     TEXT NOT NULL,
    role        TEXT,
    issue_id    TEXT,
    run_id      TEXT,
    created_at  TEXT NOT NULL
);

CREATE TABLE memory_words (
    memory_id  INTEGER NOT NULL REFERENCES memory (id) ON DELETE CASCADE,
    word       TEXT NOT NULL,
    PRIMARY KEY (memory_id, word)
);
CREATE INDEX memory_words_word ON memory_words (word);
