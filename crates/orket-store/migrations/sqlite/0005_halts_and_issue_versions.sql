-- A person's request to halt a run (`orket halt`, POST /v1/runs/{id}/halt): whichever process
-- executes the run stops it at its next turn boundary.
ALTER TABLE sessions ADD COLUMN halt_requested_at TEXT;
-- Every change to an issue gives it the next version of its build, so a run reads only the
-- issues changed since its last tick instead of the whole build.
ALTER TABLE issues ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
CREATE INDEX issues_build_version ON issues (build_id, version);
-- Issues stored before this migration get version 1, so a run's first read (everything after
-- version 0) sees them.
UPDATE issues SET version = 1;
