// Package sluice is the domain of the Sluice batch server: files, batches, their
// request lines and results, the Store and Bucket seams every adapter implements, and
// the Error type whose Kind each adapter maps to its own technology.
//
// It imports only the standard library. Adapters live in sub-packages named for the
// technology they wrap (sqlite, blob, upstream, sim); only cmd/sluice knows them all.
package sluice
