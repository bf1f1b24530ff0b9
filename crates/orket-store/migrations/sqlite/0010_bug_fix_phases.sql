-- A rock's bug-fix phase and the severity of bugs. An issue's severity is NULL unless it was
-- given (a bug created without one is stored `medium`). A rock has at most one phase: it starts
-- when the rock's epics are done; `bugs` holds the bugs found in it (JSON list of {build_id,
-- id, severity}; the counts of bugs and critical bugs are read from it), `baseline` the bugs that existed before it started (JSON list of
-- "build/id"), which are not counted; `revision` is the compare-and-set of its updates.
ALTER TABLE issues ADD COLUMN severity TEXT;
CREATE TABLE bug_fix_phases (
    rock TEXT PRIMARY KEY,
    department TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    planned_end TEXT NOT NULL,
    extensions INTEGER NOT NULL DEFAULT 0,
    last_extension_window INTEGER,
    bugs TEXT NOT NULL,
    baseline TEXT NOT NULL,
    ended_at TEXT,
    next_rock TEXT,
    revision INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
);
CREATE INDEX bug_fix_phases_status ON bug_fix_phases (status);
