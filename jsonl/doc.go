// Package jsonl reads and writes the JSON Lines files of the Batch API.
//
// A Scanner validates an uploaded input file in one streaming pass, fed the bytes as
// the upload goes to disk: it hands an Entry for each good request line to its
// EntryFunc as it goes and, when closed, returns a Summary with the request count, the
// batch's url and model and the problems the Batch API reports (invalid_json_line,
// invalid_request, duplicate_custom_id, url_mismatch, model_mismatch, too_many_tasks,
// empty_batch). A file's entries count only when the Summary has no problem. An
// IndexWriter stores those entries compactly, in blocks of sluice.ChunkLines with a
// directory at the end, so the engine can find the lines of any chunk with one ranged
// read of the index, and read them back by their byte offsets without scanning again.
//
// On the dispatch hot path DispatchBody takes a stored line's body and sets its model
// for an upstream, and AppendResponse and AppendError build the lines of the output
// and error files.
//
// Member names are matched exactly, as JSON defines them, never case-insensitively as
// encoding/json's Unmarshal does: {"Model": "x"} has no model. When a name repeats in
// one object the last member wins, as in encoding/json and Python's json module.
package jsonl
