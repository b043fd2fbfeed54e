package bench

import (
	"context"
	"errors"
)

// bystander is a workload measured while the tracer attaches to another
// process: the cost of tracing to everything else on the host.
type bystander struct {
	load   *workerLoad // measured, never traced
	traced *workerLoad // what the tracer attaches to
}

func (b *bystander) name() string  { return b.load.name() }
func (b *bystander) unit() string  { return b.load.unit() }
func (b *bystander) pid() int      { return b.traced.pid() }
func (b *bystander) measured() int { return b.load.pid() }

func (b *bystander) count() (uint64, error) {
	if _, err := b.traced.count(); err != nil {
		return 0, err
	}
	return b.load.count()
}

func (b *bystander) start(ctx context.Context) error {
	if err := b.traced.start(ctx); err != nil {
		return err
	}
	if err := b.load.start(ctx); err != nil {
		b.traced.stop()
		return err
	}
	return nil
}

func (b *bystander) stop() error {
	return errors.Join(b.load.stop(), b.traced.stop())
}
