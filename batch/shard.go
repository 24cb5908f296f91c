package batch

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Shard is one of Count disjoint parts of a batch: item k belongs to shard k mod Count.
type Shard struct {
	Index, Count int
}

// maxShards bounds the shard count (a mistyped count should not silently make empty shards).
const maxShards = 1 << 20

// ErrShard is wrapped by every error about a shard specification.
var ErrShard = errors.New("shard")

// ErrShardCountMissing is wrapped (with ErrShard) when the environment gives a shard index but the
// caller gave no shard count.
var ErrShardCountMissing = errors.New("shard count missing")

// ErrShardIndexMissing is wrapped (with ErrShard) when the caller gives a shard count but neither the
// caller nor the environment gives the index.
var ErrShardIndexMissing = errors.New("shard index missing")

// String is "I/N".
func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// Validate checks 0 ≤ Index < Count ≤ 2^20.
func (s Shard) Validate() error {
	if s.Count < 1 || s.Count > maxShards {
		return fmt.Errorf("%w: count %d is outside [1, %d]", ErrShard, s.Count, maxShards)
	}
	if s.Index < 0 || s.Index >= s.Count {
		return fmt.Errorf("%w: index %d is outside [0, %d)", ErrShard, s.Index, s.Count)
	}
	return nil
}

// ParseShard parses "I/N".
func ParseShard(spec string) (Shard, error) {
	i, n, ok := strings.Cut(spec, "/")
	if !ok {
		return Shard{}, fmt.Errorf("%w: %q: want I/N, e.g. 0/4", ErrShard, spec)
	}
	var s Shard
	var err1, err2 error
	s.Index, err1 = strconv.Atoi(strings.TrimSpace(i))
	s.Count, err2 = strconv.Atoi(strings.TrimSpace(n))
	if err1 != nil || err2 != nil {
		return Shard{}, fmt.Errorf("%w: %q: want I/N with integers, e.g. 0/4", ErrShard, spec)
	}
	return s, s.Validate()
}

// IndexVariables are the environment variables that carry a shard index, in the order they are
// looked at: Kubernetes Indexed Jobs set JOB_COMPLETION_INDEX, Slurm job arrays SLURM_ARRAY_TASK_ID.
var IndexVariables = []string{"JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID"}

// ShardFromEnv combines the shard count with the index the scheduler's environment gives (the first
// of IndexVariables that is set). The index is taken as it is, never shifted or scaled by the array's
// size or minimum: Slurm sets those from the submitted subset (a retry with --array=3 has
// SLURM_ARRAY_TASK_MIN=3 and _COUNT=1), so they say nothing about the batch's shards. Count 0 with no
// index is the whole batch, 0/1; an index without a count (ErrShardCountMissing) or a count without an
// index (ErrShardIndexMissing) is an error. It returns the variable the index came from ("" when none).
// getenv is os.Getenv in production.
func ShardFromEnv(count int, getenv func(string) string) (Shard, string, error) {
	s := Shard{Count: count}
	from := ""
	for _, name := range IndexVariables {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return s, name, fmt.Errorf("%w: $%s=%q is not an integer", ErrShard, name, v)
		}
		s.Index, from = n, name
		break
	}
	switch {
	case count == 0 && from == "":
		return Shard{0, 1}, "", nil
	case count == 0:
		return s, from, fmt.Errorf("%w: %w: $%s gives the shard index %d but the shard count is not given", ErrShard,
			ErrShardCountMissing, from, s.Index)
	case from == "":
		return s, "", fmt.Errorf("%w: %w: a shard count of %d but no index ($%s unset)", ErrShard, ErrShardIndexMissing,
			count, strings.Join(IndexVariables, ", $"))
	}
	if err := s.Validate(); err != nil {
		return s, from, fmt.Errorf("$%s: %w", from, err)
	}
	return s, from, nil
}

// Select returns the items of shard s: those whose Index mod Count is s.Index, in order.
func (s Shard) Select(items []Item) []Item {
	var out []Item
	for _, it := range items {
		if it.Index%s.Count == s.Index {
			out = append(out, it)
		}
	}
	return out
}

// ResultsName is the shard's results file name, "results-<I>-of-<N>.jsonl".
func (s Shard) ResultsName() string { return fmt.Sprintf("results-%d-of-%d.jsonl", s.Index, s.Count) }
