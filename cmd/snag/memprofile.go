package main

import (
	"os"
	"runtime"
	"runtime/pprof"
	"time"
)

// memProfileEnv names a file where snag keeps a heap profile of its
// largest live heap so far: a hidden hook for finding where memory goes.
const memProfileEnv = "SNAG_MEMPROFILE"

// watchHeap checks the heap every 10ms. Once it has grown a tenth past the
// largest live heap seen so far, it collects, which costs CPU but makes
// the profile show what is live now rather than at the last collection,
// and writes the profile to path when the live heap is a new high.
func watchHeap(path string) {
	var peak uint64
	var ms runtime.MemStats
	for range time.Tick(10 * time.Millisecond) {
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc <= peak+peak/10 {
			continue
		}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc <= peak {
			continue
		}
		peak = ms.HeapAlloc
		// Renamed into place: snag may exit in the middle of a write.
		f, err := os.Create(path + ".tmp")
		if err != nil {
			return
		}
		err = pprof.Lookup("heap").WriteTo(f, 0)
		if f.Close() == nil && err == nil {
			os.Rename(path+".tmp", path)
		}
	}
}
