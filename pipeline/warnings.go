package pipeline

import (
	"fmt"

	"github.com/rflowrt/rflow/textenc"
)

// StageWarning is the Event stage of a warning: the run goes on, and Event.Message says what it did
// that the request may not intend. Result.Warnings lists the run's warnings again.
const StageWarning = "warning"

// Warning is something a run did that the caller may not expect, without failing: today a prompt
// longer than a text encoder takes, whose end the encoder does not see (diffusers logs the same).
type Warning struct {
	// Item is the index in Request.Items the warning is about; -1 when it is about the whole request.
	Item    int
	Message string
}

// warnTruncated reports the truncations of one encoded prompt: what ("prompt", "negative prompt")
// and the item it belongs to (-1: the request).
func (p *Pipeline) warnTruncated(pl *plan, what string, item int, ts []textenc.Truncation) {
	for _, t := range ts {
		msg := fmt.Sprintf("%s truncated: %s", what, t)
		if item >= 0 {
			msg = fmt.Sprintf("item %d: %s", item, msg)
		}
		pl.warnings = append(pl.warnings, Warning{Item: item, Message: msg})
		p.ms.events.emit(Event{Stage: StageWarning, Message: msg})
	}
}

// itemWarnings are the messages of the warnings about item i of a run, run-wide ones included.
func itemWarnings(ws []Warning, i int) []string {
	var out []string
	for _, w := range ws {
		if w.Item == i || w.Item < 0 {
			out = append(out, w.Message)
		}
	}
	return out
}
