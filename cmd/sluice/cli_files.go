package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sluice-batch/sluice/client"
)

const filesUploadHelp = `Uploads files of requests, one JSON object a line, for batches. The content is
streamed, never held in memory. A file over 64 MB goes through the Uploads API in
parts of 64 MB, each checked, the whole checked with its MD5. FILE "-" reads
standard input.

Example:
  sluice files upload --url http://127.0.0.1:8080/v1 input.jsonl
  ID                      FILENAME     SIZE   STATUS     CREATED
  file-9f6c2a1e...        input.jsonl  816 B  processed  2026-01-02 15:04:05
`

func cmdFilesUpload(ctx context.Context, e *cliEnv, args []string) error {
	f := e.flags("files upload", "sluice files upload [flags] FILE...", filesUploadHelp, true)
	f.jsonFlag()
	expires := f.Duration("expires-after", 0, "delete the file this long after its upload, e.g. 336h; default: the server's")
	parts := f.Bool("parts", false, "upload in parts through the Uploads API even when the file is small")
	paths, err := f.parse(args, 1, -1)
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	var files []*client.File
	for _, path := range paths {
		file, err := e.uploadPath(ctx, c, path, *expires, *parts)
		if err != nil {
			return err
		}
		files = append(files, file)
	}
	return e.printFiles(files)
}

// uploadPath uploads the file at path ("-" for standard input), in parts when it is
// over client.PartSize or inParts is set.
func (e *cliEnv) uploadPath(ctx context.Context, c *client.Client, path string, expires time.Duration, inParts bool) (*client.File, error) {
	u := client.FileUpload{Filename: filepath.Base(path), Size: -1, ExpiresAfter: expires}
	if path == "-" {
		u.Filename, u.Content = "stdin.jsonl", os.Stdin
		return c.UploadFile(ctx, u)
	}
	in, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%s is a folder; give a .jsonl file", path)
	}
	u.Content, u.Size = in, st.Size()
	if inParts || u.Size > client.PartSize {
		f, err := c.UploadFileInParts(ctx, u)
		if err != nil {
			return nil, fmt.Errorf("upload %s in parts: %w", path, err)
		}
		return f, nil
	}
	f, err := c.UploadFile(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("upload %s: %w", path, err)
	}
	return f, nil
}

// printFiles prints files as a table, or as JSON, one object a line.
func (e *cliEnv) printFiles(files []*client.File) error {
	if e.json {
		for _, f := range files {
			if err := e.printRaw(f.RawJSON()); err != nil {
				return err
			}
		}
		return nil
	}
	tw := e.table()
	fmt.Fprintln(tw, "ID\tFILENAME\tSIZE\tSTATUS\tCREATED\tEXPIRES")
	for _, f := range files {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", f.ID, f.Filename, cliBytes(f.Bytes), f.Status, cliTime(f.CreatedAt), cliTime(f.ExpiresAt))
	}
	return tw.Flush()
}

const filesListHelp = `Lists files, newest first: one page of --limit, or every file with --all.

Example:
  sluice files list --limit 5
  sluice files list --all --json | jq -r '.data[].id'
`

func cmdFilesList(ctx context.Context, e *cliEnv, args []string) error {
	f := e.flags("files list", "sluice files list [flags]", filesListHelp, true)
	f.jsonFlag()
	limit := f.Int("limit", 20, "files in a page")
	after := f.String("after", "", "list the files after this file ID (the next page)")
	all := f.Bool("all", false, "list every file, page after page")
	asc := f.Bool("asc", false, "oldest first")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	if *limit < 1 {
		return cliUsageError(f.name, "--limit must be at least 1")
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	p := &client.FileListParams{Limit: *limit, After: *after, Asc: *asc}
	return listObjects(e, "files", *all, c.AllFiles(ctx, p), func() (*client.List[client.File], error) { return c.ListFiles(ctx, p) },
		func(f *client.File) string { return f.ID }, e.printFiles)
}

const filesGetHelp = `Shows files.

Example:
  sluice files get file-9f6c2a1e...
  sluice files get --json file-9f6c2a1e...
`

func cmdFilesGet(ctx context.Context, e *cliEnv, args []string) error {
	f := e.flags("files get", "sluice files get [flags] FILE_ID...", filesGetHelp, true)
	f.jsonFlag()
	ids, err := f.parse(args, 1, -1)
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	var files []*client.File
	for _, id := range ids {
		file, err := c.GetFile(ctx, id)
		if err != nil {
			return err
		}
		files = append(files, file)
	}
	return e.printFiles(files)
}

const filesDownloadHelp = `Downloads a file's content, streamed, to standard output or to --output. A file
is written under a temporary name and renamed when complete, so a download cut
short leaves nothing under the name.

Example:
  sluice files download file-9f6c2a1e... -o output.jsonl
  sluice files download file-9f6c2a1e... | jq .custom_id
`

func cmdFilesDownload(ctx context.Context, e *cliEnv, args []string) error {
	f := e.flags("files download", "sluice files download [flags] FILE_ID", filesDownloadHelp, true)
	out := f.String("o", "", "write to this file instead of standard output")
	f.StringVar(out, "output", "", "the same as -o")
	ids, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	n, err := e.download(ctx, c, ids[0], *out)
	if err != nil {
		return err
	}
	if *out != "" && *out != "-" {
		fmt.Fprintf(e.stderr, "wrote %s to %s\n", cliBytes(n), *out)
	}
	return nil
}

const filesDeleteHelp = `Deletes files. A batch's input file cannot be deleted while the batch runs.

Example:
  sluice files delete file-9f6c2a1e... file-0b7d3c4f...
`

func cmdFilesDelete(ctx context.Context, e *cliEnv, args []string) error {
	f := e.flags("files delete", "sluice files delete [flags] FILE_ID...", filesDeleteHelp, true)
	ids, err := f.parse(args, 1, -1)
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		if err := c.DeleteFile(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", id, err))
			continue
		}
		fmt.Fprintf(e.stdout, "deleted %s\n", id)
	}
	return errors.Join(errs...)
}

// looksLikeFileID reports whether s is a file ID rather than a path.
func looksLikeFileID(s string) bool {
	return strings.HasPrefix(s, "file-") && !strings.ContainsAny(s, `/\.`)
}
