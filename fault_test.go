package sluice

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"
)

func TestStorageFault(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err    error
		want   string
		wantOK bool
	}{
		{&fs.PathError{Op: "write", Path: "/data/files/x", Err: syscall.ENOSPC}, "the disk is full", true},
		{fmt.Errorf("put files/x: %w", &fs.PathError{Op: "open", Path: "/data", Err: syscall.EROFS}), "the data folder is read-only", true},
		{syscall.EDQUOT, "the disk is full", true},
		{syscall.EIO, "the disk reported an I/O error", true},
		{errors.New("no space left on device"), "", false}, // words alone prove nothing
		{syscall.ENOENT, "", false},
		{nil, "", false},
	} {
		got, ok := StorageFault(tc.err)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("%v: got %q, %t; want %q, %t", tc.err, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestFaultsAsksEach(t *testing.T) {
	t.Parallel()
	db := errors.New("db gone")
	f := Faults(nil, StorageFault, func(err error) (string, bool) { return "the database does not answer", errors.Is(err, db) })
	if r, ok := f(fmt.Errorf("x: %w", db)); !ok || r != "the database does not answer" {
		t.Errorf("got %q, %t", r, ok)
	}
	if r, ok := f(syscall.ENOSPC); !ok || r != "the disk is full" {
		t.Errorf("got %q, %t", r, ok)
	}
	if _, ok := f(errors.New("other")); ok {
		t.Error("an unknown error is a fault")
	}
}
