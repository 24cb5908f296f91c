package pipeline

import (
	"context"
	"time"
)

// timed runs f and adds its duration to *d.
func timed(d *time.Duration, f func() error) error {
	start := time.Now()
	err := f()
	*d += time.Since(start)
	return err
}

// emitter calls the caller's event function, if any.
type emitter func(Event)

func (e emitter) emit(ev Event) {
	if e != nil {
		e(ev)
	}
}

// ctxErr returns ctx's error when it is done: Generate reports a cancellation as ctx.Err() itself,
// not wrapped in whatever stage noticed it.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}
