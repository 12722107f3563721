package sluice_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/sluice-batch/sluice"

// allowed lists, per package, the packages of this module its non-test files may
// import. Adapters never import each other; only cmd/sluice knows them all.
var allowed = map[string][]string{
	".":                    nil,
	"blob":                 {"."},
	"blob/blobtest":        {"."},
	"blob/azure":           {"."},
	"blob/azure/azuretest": nil,
	"client":               nil,
	"console":              nil,
	"engine":               {".", "jsonl", "tokens", "upstream"},
	"httpapi":              {".", "console"},
	"jsonl":                {"."},
	"postgres":             {"."},
	"postgres/pgtest":      nil,
	"sim":                  {"."},
	"sqlite":               {"."},
	"storetest":            {"."},
	"tokens":               nil,
	"upstream":             {"."},

	// The benchmarks drive the binary from outside; they share only their harness.
	"bench/harness":       nil,
	"bench/blob1g":        {"bench/harness"},
	"bench/faults":        {"bench/harness"},
	"bench/interference":  {"bench/harness"},
	"test/chaos":          {"bench/harness"},
	"test/gguf":           nil,
	"bench/upstreambound": {"bench/harness"},
	"bench/reads":         {"bench/harness"},
	"bench/replicas":      {"bench/harness"},
	"bench/throughput":    {"bench/harness"},
	"bench/upload":        {"bench/harness"},
}

// outside lists module-external imports each package may have beyond the standard library.
var outside = map[string][]string{
	"blob/azure": {
		"github.com/Azure/azure-sdk-for-go/sdk/azcore",
		"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy",
		"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming",
		"github.com/Azure/azure-sdk-for-go/sdk/azcore/to",
		"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob",
		"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/appendblob",
		"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob",
		"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror",
		"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob",
		"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container",
		"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas",
	},
	"bench/blob1g":         {"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"},
	"bench/replicas":       {"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob", "github.com/jackc/pgx/v5"},
	"blob/azure/azuretest": {"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob", "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"},
	"postgres":             {"github.com/jackc/pgx/v5", "github.com/jackc/pgx/v5/pgconn", "github.com/jackc/pgx/v5/pgxpool"},
	"postgres/pgtest":      {"github.com/jackc/pgx/v5"},
	"sqlite":               {"modernc.org/sqlite", "modernc.org/sqlite/lib"},
	"tokens":               {"github.com/tiktoken-go/tokenizer", "golang.org/x/sys/cpu"},
	"storetest":            {"github.com/google/go-cmp/cmp", "github.com/google/go-cmp/cmp/cmpopts"},
}

func TestDeps(t *testing.T) {
	t.Parallel()
	for dir, ok := range allowed {
		imports := importsOf(t, dir)
		for _, imp := range imports {
			switch {
			case imp == module:
				if !slices.Contains(ok, ".") {
					t.Errorf("%s imports the root package", dir)
				}
			case strings.HasPrefix(imp, module+"/"):
				if p := strings.TrimPrefix(imp, module+"/"); !slices.Contains(ok, p) {
					t.Errorf("%s imports %s; it may import only %v", dir, p, ok)
				}
			case strings.Contains(strings.Split(imp, "/")[0], "."):
				if !slices.Contains(outside[dir], imp) {
					t.Errorf("%s imports %s, outside the standard library", dir, imp)
				}
			}
		}
	}
}

// TestPackageDocs checks that every package has exactly one package comment.
func TestPackageDocs(t *testing.T) {
	t.Parallel()
	dirs := []string{"cmd/sluice"}
	for d := range allowed {
		dirs = append(dirs, d)
	}
	for _, dir := range dirs {
		n := 0
		for _, f := range goFiles(t, dir) {
			af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			if af.Doc != nil {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s: got %d package comments, want 1", dir, n)
		}
	}
}

func goFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".go") && !strings.HasSuffix(e.Name(), "_test.go") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

func importsOf(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, f := range goFiles(t, dir) {
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			out = append(out, strings.Trim(imp.Path.Value, `"`))
		}
	}
	return out
}
