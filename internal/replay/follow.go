package replay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kanadehq/kanade-cli/internal/projector"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/streams"
)

// DefaultConsumer is this tool's durable; never upstream's
// backend_results_projector, whose acks would then be stolen.
const DefaultConsumer = "kanade_results_projector"

func followIfAsked(ctx context.Context, st Replaying, js jetstream.JetStream, proj *projector.Projector, o Options, plan *Plan, sum *Summary) error {
	if !o.Follow || o.DryRun {
		return nil
	}
	return follow(ctx, st, js, proj, o, plan, sum)
}

// follow projects new messages as they arrive through a durable pull
// consumer, acking a batch only after it committed. The database's
// checkpoint is the truth: the consumer is (re)created to start right after
// it, so a batch committed but not acked before a crash is delivered again
// and changes nothing.
func follow(ctx context.Context, st Replaying, js jetstream.JetStream, proj *projector.Projector, o Options, plan *Plan, sum *Summary) error {
	name := o.Consumer
	if name == "" {
		name = DefaultConsumer
	}
	if name == streams.UpstreamConsumer {
		return fmt.Errorf("--consumer %s is upstream's projector: use a name of your own", name)
	}
	s, err := js.Stream(ctx, o.Stream)
	if err != nil {
		return fmt.Errorf("open stream %s: %w", o.Stream, err)
	}
	if err := s.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("reset consumer %s: %w", name, err)
	}
	// The consumer starts right after the checkpoint, and is made again
	// from it when a restarted server has lost it.
	create := func() (jetstream.Consumer, error) {
		cfg := jetstream.ConsumerConfig{Durable: name, AckPolicy: jetstream.AckAllPolicy, AckWait: 5 * time.Minute,
			DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: max(sum.CheckpointSeq+1, 1), FilterSubjects: o.Subjects,
			Description: "kanade stream replay --follow"}
		c, err := s.CreateOrUpdateConsumer(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("create consumer %s on %s: %w", name, o.Stream, err)
		}
		return c, nil
	}
	c, err := create()
	if err != nil {
		return err
	}
	// While NATS is away, --follow waits for it (the connection says so on
	// stderr as it reconnects) instead of giving up. A fetch error while
	// connected is taken as passing too (a restarted server answers "server
	// shutdown" or loses the consumer), unless it lasts a minute.
	var failingSince time.Time
	transient := func(err error) error {
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) {
			if nc, cerr := create(); cerr == nil {
				c = nc
			}
		}
		if failingSince.IsZero() || !js.Conn().IsConnected() {
			failingSince = time.Now()
		} else if time.Since(failingSince) > time.Minute {
			return fmt.Errorf("fetch from %s: failing for a minute while connected: %w", name, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
		return nil
	}
	// A fetch also stops at --batch-bytes (the server counts subjects and
	// headers too), but never below what one message of the server's
	// largest can need: a message that fits no fetch would stall the
	// follow for good.
	fetchBytes := pullLimit(o.batchBytes(), js.Conn().MaxPayload())
	for ctx.Err() == nil {
		fetched, err := c.Fetch(o.Batch, jetstream.FetchMaxWait(time.Second), jetstream.FetchMaxBytes(int(fetchBytes)))
		if err != nil {
			if terr := transient(err); terr != nil {
				return terr
			}
			continue
		}
		var msgs []projector.Message
		var last jetstream.Msg
		// A pull request lost with the server never closes its channel, so
		// the wait is bounded here (the fetch itself waits a second).
		abandon := time.NewTimer(10 * time.Second)
	collect:
		for {
			select {
			case m, ok := <-fetched.Messages():
				if !ok {
					break collect
				}
				meta, err := m.Metadata()
				if err != nil {
					return fmt.Errorf("message metadata: %w", err)
				}
				msgs = append(msgs, projector.Message{Stream: o.Stream, Seq: meta.Sequence.Stream, Subject: m.Subject(), Published: meta.Timestamp.UTC(), Data: m.Data()})
				last = m
			case <-abandon.C:
				break collect
			case <-ctx.Done():
				break collect
			}
		}
		abandon.Stop()
		if ferr := fetched.Error(); ferr != nil && !errors.Is(ferr, jetstream.ErrNoMessages) && len(msgs) == 0 {
			if terr := transient(ferr); terr != nil {
				return terr
			}
			continue
		}
		failingSince = time.Time{}
		if len(msgs) == 0 {
			continue
		}
		b, err := proj.Prepare(ctx, msgs)
		if err != nil {
			return err
		}
		cp := &store.Checkpoint{Name: CheckpointName(o.Stream, o.Subjects), Stream: o.Stream, StreamCreated: plan.StreamCreated,
			LastSeq: b.LastSeq, UpdatedAt: time.Now().UTC()}
		stats, err := applyWithRetry(ctx, proj, b, projector.ApplyOptions{Checkpoint: cp}, o, nil)
		if err != nil {
			return err
		}
		// AckAll on the last message acknowledges the whole batch. An ack
		// lost to an outage only means the batch comes again, which changes
		// nothing: it is committed.
		if err := last.Ack(); err != nil && ctx.Err() == nil && js.Conn().IsConnected() {
			return fmt.Errorf("ack batch ending at %d: %w", b.LastSeq, err)
		}
		sum.Stats.Add(stats)
		sum.CheckpointSeq = b.LastSeq
		if o.OnFollowBatch != nil {
			o.OnFollowBatch(stats, b.LastSeq)
		}
	}
	return ctx.Err()
}
