-- Initial schema: workflows, instances, their steps and events.
CREATE TABLE workflows (
    name            TEXT PRIMARY KEY,
    class_path      TEXT NOT NULL,
    binding         TEXT NOT NULL,
    version         TEXT NOT NULL,
    max_concurrency INTEGER,
    created_at      REAL NOT NULL,
    modified_at     REAL NOT NULL
);

CREATE TABLE instances (
    iid              INTEGER PRIMARY KEY,
    workflow         TEXT NOT NULL,
    id               TEXT NOT NULL,
    status           TEXT NOT NULL,
    params           TEXT NOT NULL,
    version          TEXT NOT NULL,
    created_at       REAL NOT NULL,
    started_at       REAL,
    ended_at         REAL,
    modified_at      REAL NOT NULL,
    output           TEXT,
    error            TEXT,
    wake_at          REAL,
    paused_at        REAL,
    lease_owner      TEXT,
    lease_expires_at REAL,
    epoch            INTEGER NOT NULL DEFAULT 0,
    wait_types       TEXT,
    UNIQUE (workflow, id)
);
-- The timer index: runnable and sleeping instances by wake-up time.
CREATE INDEX instances_due ON instances (wake_at) WHERE status IN ('queued', 'waiting');
-- Leases to take over when their owner dies.
CREATE INDEX instances_leased ON instances (lease_expires_at) WHERE status IN ('running', 'waitingForPause');
CREATE INDEX instances_newest ON instances (workflow, created_at DESC, iid DESC);
CREATE INDEX instances_by_status ON instances (workflow, status, created_at DESC, iid DESC);

CREATE TABLE steps (
    iid        INTEGER NOT NULL,
    key        TEXT NOT NULL,
    name       TEXT NOT NULL,
    occurrence INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    status     TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    config     TEXT,
    attempts   TEXT NOT NULL,
    output     TEXT,
    error      TEXT,
    started_at REAL,
    ended_at   REAL,
    wake_at    REAL,
    PRIMARY KEY (iid, key)
);

CREATE TABLE events (
    seq         INTEGER PRIMARY KEY,
    iid         INTEGER NOT NULL,
    type        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    received_at REAL NOT NULL,
    consumed_by TEXT
);
CREATE INDEX events_pending ON events (iid, type, seq) WHERE consumed_by IS NULL;
CREATE INDEX events_by_instance ON events (iid, seq);
