// Command sluice is the Sluice batch server: one binary that serves the OpenAI and Azure
// OpenAI Batch APIs, runs every line against OpenAI-compatible upstreams, and includes
// a simulated upstream for trying it with nothing else installed.
//
//	sluice serve [--addr 127.0.0.1:8080] [--data ./sluice-data] [--config sluice.yaml]
//	sluice serve --upstream http://127.0.0.1:8000/v1 --deployment NAME [--upstream-model M]
//	sluice sim --addr 127.0.0.1:9000 [--latency 150ms] [--max-concurrency 8] ...
//	sluice sim load --url http://127.0.0.1:9000/v1 --rate 50 --duration 30s
//	sluice files|batches|deployments <command> [--url URL] [--api-key KEY] ...
//	sluice run input.jsonl -o output.jsonl [--errors errors.jsonl]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	// After the first signal starts a graceful stop, a second one ends the process at once.
	go func() { <-ctx.Done(); stop() }()
	err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "sluice:", err)
		}
		code := 2
		var ec interface{ ExitCode() int } // the client commands' exit codes (cli.go)
		if errors.As(err, &ec) {
			code = ec.ExitCode()
		}
		os.Exit(code)
	}
}

const usage = `usage: sluice <command> [flags]

commands:
  serve        run the API and the engine (default: SQLite and files under ./sluice-data)
  sim          run the simulated OpenAI-compatible model server alone
  sim load     send an online load of chat completions to a server; print latencies
  version      print the version

  files        upload, list, get, download and delete files on a server
  batches      create, list, get, wait for, cancel, download, retry batches
  deployments  list a server's deployments and their quota
  run          run a .jsonl file as a batch: upload, create, wait, download

The client commands find the server with --url or SLUICE_URL (or
AZURE_OPENAI_ENDPOINT) and the key with --api-key or SLUICE_API_KEY.

Run 'sluice <command> -h' for a command's flags.
`

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

// run is the whole program, with its environment passed in so tests can call it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[1] {
	case "serve":
		return runServe(ctx, args[2:], getenv, stdout, stderr)
	case "sim":
		if len(args) > 2 && args[2] == "load" {
			return runSimLoad(ctx, args[3:], stdout, stderr)
		}
		return runSim(ctx, args[2:], stdout, stderr)
	case "files", "batches", "deployments", "run":
		return runCLI(ctx, args[1:], getenv, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "sluice", Version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[1])
}
