package azure_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/sluice-batch/sluice/blob/azure"
)

// A service that answers 503 or no longer listens is a fault; a 404 is not.
func TestFault(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := ln.Addr().String()
	ln.Close()
	_, refused := http.Get("http://" + gone + "/c/b")
	if refused == nil {
		t.Fatal("got an answer from nothing")
	}
	for _, tc := range []struct {
		name   string
		err    error
		wantOK bool
	}{
		{"refused", refused, true},
		{"503", &azcore.ResponseError{StatusCode: 503, ErrorCode: "ServerBusy"}, true},
		{"500", &azcore.ResponseError{StatusCode: 500}, true},
		{"404", &azcore.ResponseError{StatusCode: 404, ErrorCode: "BlobNotFound"}, false},
		{"403", &azcore.ResponseError{StatusCode: 403, ErrorCode: "AuthorizationFailure"}, false},
		{"plain", errors.New("blob storage is not answering"), false},
		{"canceled", context.Canceled, false},
	} {
		reason, ok := azure.Fault(tc.err)
		if ok != tc.wantOK || (ok && !strings.Contains(reason, "blob storage")) {
			t.Errorf("%s: got %q, %t; want %t", tc.name, reason, ok, tc.wantOK)
		}
	}
}
