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
	scan           TEXT,
	source_url     TEXT NOT NULL DEFAULT '',
	source_etag    TEXT NOT NULL DEFAULT '',
	project        TEXT NOT NULL DEFAULT 'default'
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
	model                TEXT NOT NULL DEFAULT '',
	input_tokens         INTEGER NOT NULL DEFAULT 0,
	usage_input          INTEGER NOT NULL DEFAULT 0,
	usage_cached         INTEGER NOT NULL DEFAULT 0,
	usage_output         INTEGER NOT NULL DEFAULT 0,
	usage_reasoning      INTEGER NOT NULL DEFAULT 0,
	usage_estimated      INTEGER NOT NULL DEFAULT 0,
	output_file_id       TEXT NOT NULL DEFAULT '',
	error_file_id        TEXT NOT NULL DEFAULT '',
	errors               TEXT,
	metadata             TEXT,
	total                INTEGER NOT NULL DEFAULT 0,
	completed            INTEGER NOT NULL DEFAULT 0,
	failed               INTEGER NOT NULL DEFAULT 0,
	output_expires_after INTEGER NOT NULL DEFAULT 0,
	window_policy        TEXT NOT NULL DEFAULT '',
	input_blob           TEXT NOT NULL DEFAULT '',
	output_folder        TEXT NOT NULL DEFAULT '',
	output_delimiter     TEXT NOT NULL DEFAULT '',
	output_blob          TEXT NOT NULL DEFAULT '',
	error_blob           TEXT NOT NULL DEFAULT '',
	project              TEXT NOT NULL DEFAULT 'default',
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
-- Admission sums the tokens of a deployment's batches that are not terminal.
CREATE INDEX IF NOT EXISTS batches_enqueued ON batches (deployment)
	WHERE status IN ('validating', 'in_progress', 'finalizing', 'cancelling');

-- One row per chunk of up to 256 request lines: the lease unit. done is a 32-byte bitmap
-- of the lines that have a result; remaining counts those that have none. state: 0
-- pending, 1 leased, 2 done. index_off and index_len locate the chunk's block in the
-- input file's line index, where its lines' offsets and custom_ids are.
CREATE TABLE IF NOT EXISTS chunks (
	batch_id    TEXT NOT NULL,
	chunk       INTEGER NOT NULL,
	lines       INTEGER NOT NULL,
	done        BLOB NOT NULL,
	remaining   INTEGER NOT NULL,
	state       INTEGER NOT NULL DEFAULT 0,
	owner       TEXT,
	lease_until INTEGER,
	index_off   INTEGER NOT NULL,
	index_len   INTEGER NOT NULL,
	PRIMARY KEY (batch_id, chunk)
) WITHOUT ROWID;
-- Claims scan only the chunks not done; the heartbeat extends, and a start releases,
-- the leased ones.
CREATE INDEX IF NOT EXISTS chunks_open ON chunks (batch_id, chunk) WHERE state < 2;
CREATE INDEX IF NOT EXISTS chunks_leased ON chunks (owner) WHERE state = 1;

-- Result segments: objects in the bucket that result lines are appended to, recorded
-- before the first byte so that they go with the batch's work whatever happens.
CREATE TABLE IF NOT EXISTS segments (
	batch_id TEXT NOT NULL,
	key      TEXT NOT NULL,
	PRIMARY KEY (batch_id, key)
) WITHOUT ROWID;

-- Where the committed result lines are: runs of bytes in segments, in commit order.
CREATE TABLE IF NOT EXISTS extents (
	seq       INTEGER PRIMARY KEY,
	batch_id  TEXT NOT NULL,
	succeeded INTEGER NOT NULL,
	segment   TEXT NOT NULL,
	off       INTEGER NOT NULL,
	len       INTEGER NOT NULL,
	lines     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS extents_batch ON extents (batch_id, succeeded, seq);

-- The first answer to each request with an Idempotency-Key, for 24 hours.
CREATE TABLE IF NOT EXISTS idempotency (
	key         TEXT PRIMARY KEY,
	fingerprint TEXT NOT NULL,
	status      INTEGER NOT NULL,
	header      TEXT,
	body        BLOB,
	created_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_created ON idempotency (created_at);

-- Files sent in parts (the Uploads API), until their expires_at; then the sweep
-- deletes them with their parts.
CREATE TABLE IF NOT EXISTS uploads (
	id                 TEXT PRIMARY KEY,
	created_at         INTEGER NOT NULL,
	expires_at         INTEGER NOT NULL,
	filename           TEXT NOT NULL,
	purpose            TEXT NOT NULL,
	bytes              INTEGER NOT NULL,
	mime_type          TEXT NOT NULL,
	status             TEXT NOT NULL,
	file_expires_after INTEGER NOT NULL,
	file_id            TEXT NOT NULL,
	project            TEXT NOT NULL DEFAULT 'default'
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS uploads_expires ON uploads (expires_at);

-- The parts of uploads, in the order they were added; bytes is -1 while a part's
-- bytes arrive.
CREATE TABLE IF NOT EXISTS upload_parts (
	seq        INTEGER PRIMARY KEY,
	upload_id  TEXT NOT NULL,
	id         TEXT NOT NULL UNIQUE,
	created_at INTEGER NOT NULL,
	bytes      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS upload_parts_upload ON upload_parts (upload_id, seq);

-- Named leases: which process runs a sweep, or a batch's validation, expiry or
-- finalization, until when.
CREATE TABLE IF NOT EXISTS leases (
	name  TEXT PRIMARY KEY,
	owner TEXT NOT NULL,
	until INTEGER NOT NULL
) WITHOUT ROWID;
