-- The sandbox registry (SPEC §10): one row per docker compose deployment of a run's output.
-- Ports are allocated by slot k (api 8000+k, frontend 3000+k, db 5432+k, admin 8080+k); a slot
-- is held by at most one sandbox that is allocated, deploying or running. Passwords are never
-- stored here: they live only in the sandbox's own .env file.
CREATE TABLE sandboxes (
    id TEXT PRIMARY KEY,
    run_id TEXT,
    build_id TEXT,
    epic TEXT NOT NULL,
    stack TEXT NOT NULL,
    slot INTEGER NOT NULL,
    api_port INTEGER NOT NULL,
    frontend_port INTEGER NOT NULL,
    db_port INTEGER NOT NULL,
    admin_port INTEGER NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    project_name TEXT NOT NULL,
    compose_file TEXT NOT NULL,
    workspace TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX sandboxes_held_slot ON sandboxes (slot)
    WHERE status IN ('allocated', 'deploying', 'running');
CREATE INDEX sandboxes_created ON sandboxes (created_at);
