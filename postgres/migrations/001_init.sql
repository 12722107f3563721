-- Version 1: the coordination-only data model of the SQLite store, on PostgreSQL. No row
-- is written per request line: one per file, batch, 256-line chunk, extent, segment,
-- idempotency key, upload and upload part. Times the API shows are whole seconds; seq
-- columns give the insertion order that ID cursors page by.
CREATE TABLE files (
	seq            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id             text NOT NULL UNIQUE,
	bytes          bigint NOT NULL DEFAULT 0,
	created_at     timestamptz NOT NULL,
	expires_at     timestamptz,
	filename       text NOT NULL DEFAULT '',
	purpose        text NOT NULL,
	status         text NOT NULL,
	status_details text NOT NULL DEFAULT '',
	scan           json,
	source_url     text NOT NULL DEFAULT '',
	source_etag    text NOT NULL DEFAULT ''
);
CREATE INDEX files_purpose ON files (purpose, seq);
CREATE INDEX files_expiry ON files (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE batches (
	seq                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id                   text NOT NULL UNIQUE,
	endpoint             text NOT NULL,
	input_file_id        text NOT NULL DEFAULT '',
	completion_window    text NOT NULL,
	status               text NOT NULL,
	deployment           text NOT NULL DEFAULT '',
	model                text NOT NULL DEFAULT '',
	input_tokens         bigint NOT NULL DEFAULT 0,
	usage_input          bigint NOT NULL DEFAULT 0,
	usage_cached         bigint NOT NULL DEFAULT 0,
	usage_output         bigint NOT NULL DEFAULT 0,
	usage_reasoning      bigint NOT NULL DEFAULT 0,
	usage_estimated      bigint NOT NULL DEFAULT 0,
	output_file_id       text NOT NULL DEFAULT '',
	error_file_id        text NOT NULL DEFAULT '',
	errors               json,
	metadata             json,
	total                integer NOT NULL DEFAULT 0,
	completed            integer NOT NULL DEFAULT 0,
	failed               integer NOT NULL DEFAULT 0,
	output_expires_after bigint NOT NULL DEFAULT 0,
	window_policy        text NOT NULL DEFAULT '',
	input_blob           text NOT NULL DEFAULT '',
	output_folder        text NOT NULL DEFAULT '',
	output_delimiter     text NOT NULL DEFAULT '',
	output_blob          text NOT NULL DEFAULT '',
	error_blob           text NOT NULL DEFAULT '',
	created_at           timestamptz NOT NULL,
	in_progress_at       timestamptz,
	expires_at           timestamptz,
	finalizing_at        timestamptz,
	completed_at         timestamptz,
	failed_at            timestamptz,
	expired_at           timestamptz,
	cancelling_at        timestamptz,
	cancelled_at         timestamptz
);
CREATE INDEX batches_status ON batches (status);
CREATE INDEX batches_input ON batches (input_file_id);
-- Admission sums the tokens of a deployment's batches that are not terminal.
CREATE INDEX batches_enqueued ON batches (deployment)
	WHERE status IN ('validating', 'in_progress', 'finalizing', 'cancelling');

-- One row per chunk of up to 256 request lines: the lease unit. done is a 32-byte bitmap
-- of the lines that have a result (bit i is byte i/8, bit i%8, as sluice.Bitmap);
-- remaining counts those that have none. state: 0 pending, 1 leased, 2 done. index_off
-- and index_len locate the chunk's block in the input file's line index.
CREATE TABLE chunks (
	batch_id    text NOT NULL,
	chunk       integer NOT NULL,
	lines       integer NOT NULL,
	done        bytea NOT NULL,
	remaining   integer NOT NULL,
	state       smallint NOT NULL DEFAULT 0,
	owner       text,
	lease_until timestamptz,
	index_off   bigint NOT NULL,
	index_len   bigint NOT NULL,
	PRIMARY KEY (batch_id, chunk)
);
-- Claims scan only the chunks not done; the heartbeat extends the leased ones.
CREATE INDEX chunks_open ON chunks (batch_id, chunk) WHERE state < 2;
CREATE INDEX chunks_leased ON chunks (owner) WHERE state = 1;

-- Result segments: objects in the bucket that result lines are appended to, recorded
-- before the first byte so that they go with the batch's work whatever happens.
CREATE TABLE segments (
	batch_id text NOT NULL,
	key      text NOT NULL,
	PRIMARY KEY (batch_id, key)
);

-- Where the committed result lines are: runs of bytes in segments. A commit takes its
-- extents' seq while it holds its batch's row lock, so per batch seq order is commit
-- order.
CREATE TABLE extents (
	seq       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	batch_id  text NOT NULL,
	succeeded boolean NOT NULL,
	segment   text NOT NULL,
	off       bigint NOT NULL,
	len       bigint NOT NULL,
	lines     integer NOT NULL
);
CREATE INDEX extents_batch ON extents (batch_id, succeeded, seq);

-- The first answer to each request with an Idempotency-Key, for 24 hours.
CREATE TABLE idempotency (
	key         text PRIMARY KEY,
	fingerprint text NOT NULL,
	status      integer NOT NULL,
	header      json,
	body        bytea,
	created_at  timestamptz NOT NULL
);
CREATE INDEX idempotency_created ON idempotency (created_at);

-- Files sent in parts (the Uploads API), until their expires_at; then the sweep
-- deletes them with their parts.
CREATE TABLE uploads (
	id                 text PRIMARY KEY,
	created_at         timestamptz NOT NULL,
	expires_at         timestamptz NOT NULL,
	filename           text NOT NULL,
	purpose            text NOT NULL,
	bytes              bigint NOT NULL,
	mime_type          text NOT NULL,
	status             text NOT NULL,
	file_expires_after bigint NOT NULL,
	file_id            text NOT NULL
);
CREATE INDEX uploads_expires ON uploads (expires_at);

-- The parts of uploads, in the order they were added; bytes is -1 while a part's
-- bytes arrive.
CREATE TABLE upload_parts (
	seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	upload_id  text NOT NULL,
	id         text NOT NULL UNIQUE,
	created_at timestamptz NOT NULL,
	bytes      bigint NOT NULL
);
CREATE INDEX upload_parts_upload ON upload_parts (upload_id, seq);
