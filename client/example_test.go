package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/sluice-batch/sluice/client"
)

// Example uploads a file of requests, runs it as a batch and prints the output.
func Example() {
	url, stop := exampleServer() // a Sluice server, e.g. http://127.0.0.1:8080
	defer stop()
	ctx := context.Background()

	c, err := client.New(url+"/v1", testKey, nil)
	if err != nil {
		log.Fatal(err)
	}
	input := `{"custom_id":"task-0","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}}` + "\n"
	f, err := c.UploadFile(ctx, client.FileUpload{Filename: "input.jsonl", Content: strings.NewReader(input), Size: int64(len(input))})
	if err != nil {
		log.Fatal(err)
	}
	b, err := c.CreateBatch(ctx, client.BatchCreate{InputFileID: f.ID, Endpoint: "/v1/chat/completions"})
	if err != nil {
		log.Fatal(err)
	}
	for !b.Status.Terminal() {
		time.Sleep(20 * time.Millisecond)
		if b, err = c.GetBatch(ctx, b.ID); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(b.Status, b.RequestCounts.Completed, "of", b.RequestCounts.Total)
	var out strings.Builder
	if _, err := c.DownloadFile(ctx, b.OutputFileID, &out); err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.Contains(out.String(), `"custom_id":"task-0"`))
	// Output:
	// completed 1 of 1
	// true
}

// ExampleError shows how a refusal of the API reads.
func ExampleError() {
	url, stop := exampleServer()
	defer stop()
	c, err := client.NewAzure(url, testKey, "", nil)
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.GetBatch(context.Background(), "batch_missing")
	var e *client.Error
	if errors.As(err, &e) {
		fmt.Println(e.StatusCode, e.Code, e.Param)
	}
	// Output:
	// 404 notFound batch_id
}
