package analyzer

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/snagtrace/snag/internal/model"
)

// BaselineSchema versions the baseline file. A reader refuses other
// versions rather than guessing at their meaning.
const BaselineSchema = "snag-baseline/v1"

// Baseline is the set of outbound peers of a known-good run. Peers absent
// from it are reported as unexpected connections in a later run.
type Baseline struct {
	Schema string         `json:"schema"`
	Peers  []BaselinePeer `json:"peers"`
}

// BaselinePeer is one peer of the known-good run.
type BaselinePeer struct {
	Peer    string `json:"peer"` // model.Addr.String form: "127.0.0.1:3306", "unix:/run/x.sock"
	Service string `json:"service,omitempty"`
}

// NewBaseline records the outbound peers of an analysis. Accepted clients
// are left out: they change from run to run and are never unexpected.
func NewBaseline(a *model.Analysis) *Baseline {
	b := &Baseline{Schema: BaselineSchema, Peers: []BaselinePeer{}}
	if a == nil {
		return b
	}
	seen := map[string]bool{}
	for _, c := range a.Connections {
		if isInbound(c) {
			continue
		}
		p := c.Peer.String()
		if p == "" || seen[p] {
			continue
		}
		seen[p] = true
		b.Peers = append(b.Peers, BaselinePeer{Peer: p, Service: c.Service})
	}
	slices.SortFunc(b.Peers, func(x, y BaselinePeer) int { return cmp.Compare(x.Peer, y.Peer) })
	return b
}

// Write encodes the baseline as indented JSON.
func (b *Baseline) Write(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(b); err != nil {
		return fmt.Errorf("write baseline: %w", err)
	}
	return nil
}

// ReadBaseline decodes a baseline written by Write.
func ReadBaseline(r io.Reader) (*Baseline, error) {
	var b Baseline
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("read baseline: %w", err)
	}
	if b.Schema != BaselineSchema {
		return nil, fmt.Errorf("read baseline: schema %q, want %q", b.Schema, BaselineSchema)
	}
	for i, p := range b.Peers {
		if p.Peer == "" {
			return nil, fmt.Errorf("read baseline: peer %d is empty", i)
		}
	}
	return &b, nil
}

func (b *Baseline) contains(peer model.Addr) bool {
	s := peer.String()
	for _, p := range b.Peers {
		if p.Peer == s {
			return true
		}
	}
	return false
}
