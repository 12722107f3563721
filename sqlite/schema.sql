-- Schema of the embedded store. Timestamps the API shows are unix seconds; leases are
-- unix milliseconds. seq columns give a stable order for ID cursors.
CREATE TABLE IF NOT EXISTS files (
	seq            INTEGER PRIMARY KEY AUTOINCREMENT,
	id             TEXT NOT NULL UNIQUE,
	bytes          INTEGER NOT NULL DEFAULT 0,
	created_at     INTEGER NOT NULL,
	expires_at     INTEGER,
	filename       TEXT NOT NULL DEFAULT '',
	purpose        TEXT NOT NULL,
	status         TEXT NOT NULL,
	status_details TEXT NOT NULL DEFAULT '',
	scan           TEXT
);
CREATE INDEX IF NOT EXISTS files_purpose ON files (purpose, seq);
CREATE INDEX IF NOT EXISTS files_expiry ON files (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS batches (
	seq                  INTEGER PRIMARY KEY AUTOINCREMENT,
	id                   TEXT NOT NULL UNIQUE,
	endpoint             TEXT NOT NULL,
	input_file_id        TEXT NOT NULL DEFAULT '',
	completion_window    TEXT NOT NULL,
	status               TEXT NOT NULL,
	deployment           TEXT NOT NULL DEFAULT '',
	output_file_id       TEXT NOT NULL DEFAULT '',
	error_file_id        TEXT NOT NULL DEFAULT '',
	errors               TEXT,
	metadata             TEXT,
	total                INTEGER NOT NULL DEFAULT 0,
	completed            INTEGER NOT NULL DEFAULT 0,
	failed               INTEGER NOT NULL DEFAULT 0,
	output_expires_after INTEGER NOT NULL DEFAULT 0,
	created_at           INTEGER NOT NULL,
	in_progress_at       INTEGER,
	expires_at           INTEGER,
	finalizing_at        INTEGER,
	completed_at         INTEGER,
	failed_at            INTEGER,
	expired_at           INTEGER,
	cancelling_at        INTEGER,
	cancelled_at         INTEGER
);
CREATE INDEX IF NOT EXISTS batches_status ON batches (status);
CREATE INDEX IF NOT EXISTS batches_input ON batches (input_file_id);

-- One row per request line, written once at validation.
CREATE TABLE IF NOT EXISTS requests (
	batch_id  TEXT NOT NULL,
	line      INTEGER NOT NULL,
	chunk     INTEGER NOT NULL,
	custom_id TEXT NOT NULL,
	off       INTEGER NOT NULL,
	len       INTEGER NOT NULL,
	PRIMARY KEY (batch_id, line)
) WITHOUT ROWID;

-- Leases are per chunk of lines. state: 0 pending, 1 leased, 2 done. remaining counts
-- the chunk's lines without a result.
CREATE TABLE IF NOT EXISTS chunks (
	batch_id    TEXT NOT NULL,
	chunk       INTEGER NOT NULL,
	first_line  INTEGER NOT NULL,
	last_line   INTEGER NOT NULL,
	remaining   INTEGER NOT NULL,
	state       INTEGER NOT NULL DEFAULT 0,
	owner       TEXT,
	lease_until INTEGER,
	PRIMARY KEY (batch_id, chunk)
) WITHOUT ROWID;
-- The heartbeat extends, and a start releases, the leased chunks only.
CREATE INDEX IF NOT EXISTS chunks_leased ON chunks (owner) WHERE state = 1;

-- At most one result per line, in line order per batch.
CREATE TABLE IF NOT EXISTS results (
	batch_id  TEXT NOT NULL,
	line      INTEGER NOT NULL,
	succeeded INTEGER NOT NULL,
	output    BLOB NOT NULL,
	PRIMARY KEY (batch_id, line)
);
