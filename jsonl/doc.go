// Package jsonl reads and writes the JSON Lines files of the Batch API.
//
// A Scanner validates an uploaded input file in one streaming pass: it sits behind an
// io.TeeReader while the upload goes to disk, hands an Entry for each good request
// line to its EntryFunc as it goes and, when closed, returns a Summary with the
// request count, the batch's url and model and the problems the Batch API reports
// (invalid_json_line, invalid_request, duplicate_custom_id, url_mismatch,
// model_mismatch, too_many_tasks, empty_batch). A file's entries count only when the
// Summary has no problem. WriteIndex and ReadIndex store those entries compactly so
// the engine can read any line back by its byte offset without scanning again.
//
// On the dispatch hot path ParseRequest parses one stored line, SetModel rewrites the
// body's model for an upstream, and AppendResponse and AppendError build the lines of
// the output and error files.
//
// Member names are matched exactly, as JSON defines them, never case-insensitively as
// encoding/json's Unmarshal does: {"Model": "x"} has no model. When a name repeats in
// one object the last member wins, as in encoding/json and Python's json module.
package jsonl
