// Package elfx finds and caches the ELF objects mapped into a process: it
// resolves an address to its mapping, opens the file the way the process
// sees it (through /proc/PID/root, or /proc/PID/map_files when the path is
// gone), identifies it by build ID, and keeps what a consumer parsed from it
// in a bounded LRU. The symbolizer and the unwinder each keep their own
// Resolver with their own parsed data.
package elfx
