package server

import (
	"context"
	"sync/atomic"

	"github.com/airlock-dev/airlock/runtime"
)

// Admission wraps an Engine so that at most a fixed number of generations
// (Generate and ScoreContinuations) run at once and at most a fixed number
// wait for a slot. A request beyond that fails at once with
// runtime.ErrQueueFull; a waiting request whose context ends leaves the
// queue at once, and a running one frees its slot as soon as the engine
// returns.
type Admission struct {
	runtime.Engine
	slots    chan struct{}
	maxQueue int64
	waiting  atomic.Int64
	running  atomic.Int64
}

// NewAdmission wraps e with concurrency slots and a wait queue of queue.
func NewAdmission(e runtime.Engine, concurrency, queue int) *Admission {
	return &Admission{Engine: e, slots: make(chan struct{}, max(concurrency, 1)), maxQueue: int64(max(queue, 0))}
}

// QueueDepth returns how many requests wait for a slot.
func (a *Admission) QueueDepth() int { return int(a.waiting.Load()) }

// Running returns how many generations hold a slot.
func (a *Admission) Running() int { return int(a.running.Load()) }

func (a *Admission) acquire(ctx context.Context) (release func(), err error) {
	release = func() {
		a.running.Add(-1)
		<-a.slots
	}
	select {
	case a.slots <- struct{}{}:
		a.running.Add(1)
		return release, nil
	default:
	}
	if a.waiting.Add(1) > a.maxQueue {
		a.waiting.Add(-1)
		return nil, runtime.ErrQueueFull
	}
	defer a.waiting.Add(-1)
	select {
	case a.slots <- struct{}{}:
		a.running.Add(1)
		return release, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Generate runs the engine's Generate once a slot is free.
func (a *Admission) Generate(ctx context.Context, promptIDs []int, p runtime.SampleParams, emit func(runtime.TokenEvent) error) (runtime.Result, error) {
	release, err := a.acquire(ctx)
	if err != nil {
		return runtime.Result{PromptTokens: len(promptIDs)}, err
	}
	defer release()
	return a.Engine.Generate(ctx, promptIDs, p, emit)
}

// ScoreContinuations runs the engine's ScoreContinuations once a slot is
// free.
func (a *Admission) ScoreContinuations(ctx context.Context, promptIDs []int, continuations [][]int) ([]float64, error) {
	release, err := a.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	return a.Engine.ScoreContinuations(ctx, promptIDs, continuations)
}
