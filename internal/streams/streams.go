// Package streams knows upstream's JetStream layout (spec section 3): the
// streams, the jobs KV bucket and the result_output object store, and
// adapts them to what the projector reads.
package streams

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kanadehq/kanade-cli/internal/projector"
	"github.com/kanadehq/kanade-cli/internal/wire"
)

// Upstream's names.
const (
	Results      = "RESULTS"
	Events       = "EVENTS"
	Exec         = "EXEC"
	JobsBucket   = "jobs"
	OutputBucket = "result_output"
	// UpstreamConsumer is upstream's durable; this tool never uses it.
	UpstreamConsumer = "backend_results_projector"
)

const day = 24 * time.Hour

// Layout is upstream's stream configuration.
var Layout = []jetstream.StreamConfig{
	{Name: Results, Subjects: []string{"results.>"}, MaxAge: 30 * day, MaxBytes: 2 << 30, Discard: jetstream.DiscardOld, Storage: jetstream.FileStorage},
	{Name: Events, Subjects: []string{"events.>"}, MaxAge: 7 * day, MaxBytes: 256 << 20, Discard: jetstream.DiscardOld, Storage: jetstream.FileStorage},
	{Name: Exec, Subjects: []string{"commands.>"}, MaxAge: 7 * day, MaxBytes: 64 << 20, MaxMsgsPerSubject: 1, Discard: jetstream.DiscardOld, Storage: jetstream.FileStorage},
}

// EnsureLayout creates the streams and buckets upstream's backend creates.
func EnsureLayout(ctx context.Context, js jetstream.JetStream) error {
	for _, cfg := range Layout {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("create stream %s: %w", cfg.Name, err)
		}
	}
	if _, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: JobsBucket}); err != nil {
		return fmt.Errorf("create KV bucket %s: %w", JobsBucket, err)
	}
	if _, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: OutputBucket}); err != nil {
		return fmt.Errorf("create object store %s: %w", OutputBucket, err)
	}
	return nil
}

// Outputs reads overflowed output from the result_output object store.
type Outputs struct {
	js  jetstream.JetStream
	obs jetstream.ObjectStore
}

// NewOutputs binds lazily: a stream without overflow never needs the bucket.
func NewOutputs(js jetstream.JetStream) *Outputs { return &Outputs{js: js} }

func (o *Outputs) Output(ctx context.Context, key string) ([]byte, error) {
	if o.obs == nil {
		var obs jetstream.ObjectStore
		err := whileReconnecting(ctx, o.js, func() (err error) {
			obs, err = o.js.ObjectStore(ctx, OutputBucket)
			return err
		})
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			return nil, projector.ErrNotFound
		}
		if err != nil {
			return nil, fmt.Errorf("open object store %s: %w", OutputBucket, err)
		}
		o.obs = obs
	}
	var data []byte
	err := whileReconnecting(ctx, o.js, func() error {
		r, err := o.obs.Get(ctx, key)
		if err != nil {
			return err
		}
		defer r.Close()
		data, err = io.ReadAll(r)
		return err
	})
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, projector.ErrNotFound
	}
	if err != nil && ctx.Err() != nil {
		// nats.go reports a read cut short by the context as a corrupt
		// object (its digest no longer matches): say it was interrupted
		// (the caller names the object).
		return nil, ctx.Err()
	}
	return data, err
}

// Manifests reads the manifest catalog from KV jobs.
type Manifests struct {
	js jetstream.JetStream
	kv jetstream.KeyValue
}

func NewManifests(js jetstream.JetStream) *Manifests { return &Manifests{js: js} }

// Manifest returns nil for a missing or undecodable entry, as upstream
// does (an undecodable catalog entry is "no such job" to its projector).
func (m *Manifests) Manifest(ctx context.Context, id string) (*wire.Manifest, error) {
	if m.kv == nil {
		var kv jetstream.KeyValue
		err := whileReconnecting(ctx, m.js, func() (err error) {
			kv, err = m.js.KeyValue(ctx, JobsBucket)
			return err
		})
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("open KV bucket %s: %w", JobsBucket, err)
		}
		m.kv = kv
	}
	var e jetstream.KeyValueEntry
	err := whileReconnecting(ctx, m.js, func() (err error) {
		e, err = m.kv.Get(ctx, id)
		return err
	})
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	man, err := wire.DecodeManifest(e.Value())
	if err != nil {
		return nil, nil
	}
	return man, nil
}

// whileReconnecting retries a request that failed because the server was
// away. The ordered consumer that feeds a replay resumes by itself after an
// outage, but a single object or KV request does not: it times out after
// the client's default five seconds, which is shorter than a server
// restart. While the client is disconnected (or reconnected during the
// request) it retries until the caller's context ends; a replay cancels
// that when the connection stays down past --nats-timeout. While the client
// stays connected it retries only a few times, a second apart: a server
// going down stops answering (no responders) before it closes connections,
// but one that stays up and cannot serve the request (a damaged bucket)
// must not hang a run.
func whileReconnecting(ctx context.Context, js jetstream.JetStream, do func() error) error {
	const connectedTries = 4
	nc := js.Conn()
	delay := 100 * time.Millisecond
	connectedFailures := 0
	for {
		reconnects := nc.Stats().Reconnects
		err := do()
		if err == nil || !transient(err) || nc.IsClosed() {
			return err
		}
		if ctx.Err() != nil {
			return interrupted(ctx, err)
		}
		wait := delay
		if nc.IsConnected() && nc.Stats().Reconnects == reconnects {
			if connectedFailures++; connectedFailures >= connectedTries {
				return err
			}
			wait = time.Second
		} else {
			delay = min(2*delay, 2*time.Second)
		}
		select {
		case <-ctx.Done():
			return interrupted(ctx, err)
		case <-time.After(wait):
		}
	}
}

// interrupted reports a retry that the caller's context ended as that
// ending (so an interrupted run says it was interrupted, not that a server
// failed to answer), keeping the last failure for the message.
func interrupted(ctx context.Context, last error) error {
	return fmt.Errorf("%w (last attempt: %w)", context.Cause(ctx), last)
}

func transient(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoHeartbeat) ||
		errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrDisconnected)
}
