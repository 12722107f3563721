// Package storetest is the conformance suite of sluice.Store: every Store adapter
// passes the same Run, so the engine can rely on one contract whichever database holds
// its state.
//
// The suite cannot inject a clock into an arbitrary store, so lease expiry uses real
// near times: a claim whose until lies in the past makes a lease that has already run
// out. It never sleeps.
package storetest
