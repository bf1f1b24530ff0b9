-- One run per build across processes: the process running a build holds its lease, taken in
-- the same transaction that starts or resumes the run, renewed by heartbeats and with every
-- commit of the run, released when the run ends. A lease whose holder stopped heartbeating
-- (or whose process is gone) is taken over.
CREATE TABLE build_leases (
    build_id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    -- Unique to one process: host, pid and the process's start time.
    holder TEXT NOT NULL,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    taken_at TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL
);
