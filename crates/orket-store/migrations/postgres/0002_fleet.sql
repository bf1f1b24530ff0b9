-- The worker fleet. Turns are jobs on pgmq queues (one queue per model, installed by the pgmq
-- crate's own SQL in schema pgmq); these tables hold what Orket knows of them.

-- A worker (`orket worker`): who it is, what it serves, when it was last heard of.
CREATE TABLE workers (
    name        TEXT PRIMARY KEY,
    host        TEXT NOT NULL,
    models      TEXT NOT NULL,              -- JSON array of model names
    started_at  TEXT NOT NULL,
    last_seen   TEXT NOT NULL,
    stopped_at  TEXT,
    turns_done  BIGINT NOT NULL DEFAULT 0
);

-- A turn job: the queue message that carries it, and where it stands (queued, running, done,
-- failed). `outcome` is what the turn gave the run that planned it (JSON).
CREATE TABLE turn_jobs (
    job          TEXT PRIMARY KEY,
    run_id       TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    issue_id     TEXT NOT NULL,
    model        TEXT NOT NULL,
    queue        TEXT NOT NULL,
    msg_id       BIGINT NOT NULL,
    state        TEXT NOT NULL,
    worker       TEXT,
    attempts     BIGINT NOT NULL DEFAULT 0,
    outcome      TEXT,
    -- The ids of the first and last event the turn's commit recorded (for the run's live view).
    first_event  BIGINT,
    last_event   BIGINT,
    enqueued_at  TEXT NOT NULL,
    started_at   TEXT,
    finished_at  TEXT
);
CREATE INDEX turn_jobs_run ON turn_jobs (run_id, seq);
CREATE INDEX turn_jobs_worker ON turn_jobs (worker, state);

-- The workspace lives in the store: file contents by SHA-256, and each run's files as of the
-- turn that last wrote them (a NULL hash: the turn removed the file). Seq 0 is the project as
-- the run found it. `rev` numbers the writes in commit order (they are made under the batch
-- lock), so "what changed since rev N" misses nothing when turns commit out of seq order.
CREATE TABLE blobs (
    sha256   TEXT PRIMARY KEY,
    size     BIGINT NOT NULL,
    content  BYTEA NOT NULL
);
CREATE SEQUENCE run_files_rev;
CREATE TABLE run_files (
    run_id  TEXT NOT NULL,
    path    TEXT NOT NULL,
    sha256  TEXT,
    seq     BIGINT NOT NULL,
    rev     BIGINT NOT NULL,
    PRIMARY KEY (run_id, path)
);
CREATE INDEX run_files_rev_idx ON run_files (run_id, rev);

-- Which worker ran a turn (NULL: the process that ran the run).
ALTER TABLE turns ADD COLUMN worker TEXT;
