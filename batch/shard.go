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

// ErrShardCountMissing is wrapped (with ErrShard) when the environment gives a shard index but no
// count and the caller gave none either.
var ErrShardCountMissing = errors.New("shard count missing")

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

// ShardFromEnv finds this process's shard index from the scheduler's environment and combines it
// with count (0: take the count from the environment too). The index is JOB_COMPLETION_INDEX
// (Kubernetes Indexed Jobs), else SLURM_ARRAY_TASK_ID minus SLURM_ARRAY_TASK_MIN (0 if unset); the
// count from SLURM_ARRAY_TASK_COUNT when count is 0. With neither index variable set the shard is
// 0/count (0/1 when count is 0). getenv is os.Getenv in production.
func ShardFromEnv(count int, getenv func(string) string) (Shard, error) {
	atoi := func(name string) (int, bool, error) {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			return 0, false, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, true, fmt.Errorf("%w: $%s=%q is not an integer", ErrShard, name, v)
		}
		return n, true, nil
	}
	s := Shard{Count: count}
	idx, found, err := atoi("JOB_COMPLETION_INDEX")
	if err != nil {
		return s, err
	}
	if !found {
		if idx, found, err = atoi("SLURM_ARRAY_TASK_ID"); err != nil {
			return s, err
		}
		lo, _, err := atoi("SLURM_ARRAY_TASK_MIN")
		if err != nil {
			return s, err
		}
		idx -= lo
	}
	if s.Count == 0 {
		n, ok, err := atoi("SLURM_ARRAY_TASK_COUNT")
		switch {
		case err != nil:
			return s, err
		case ok:
			s.Count = n
		case found:
			return s, fmt.Errorf("%w: %w: the shard index comes from the environment (%d) but not the shard count",
				ErrShard, ErrShardCountMissing, idx)
		default:
			s.Count = 1
		}
	}
	s.Index = idx
	return s, s.Validate()
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
