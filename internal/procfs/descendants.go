package procfs

import "slices"

// maxDescendants bounds the walk: a prefork server has tens of workers, a
// runaway fork bomb should not make the attach walk forever.
const maxDescendants = 4096

// Descendants returns every process below pid in the process tree
// (children, their children, …), sorted, without pid itself. Processes
// that exit during the walk are skipped.
func (fs FS) Descendants(pid int) ([]int, error) {
	kids, err := fs.Children(pid)
	if err != nil {
		return nil, err
	}
	seen := map[int]bool{pid: true}
	var out []int
	for len(kids) > 0 && len(out) < maxDescendants {
		next := kids[0]
		kids = kids[1:]
		if seen[next] {
			continue
		}
		seen[next] = true
		out = append(out, next)
		more, err := fs.Children(next)
		if err != nil {
			continue // exited meanwhile
		}
		kids = append(kids, more...)
	}
	slices.Sort(out)
	return out, nil
}
