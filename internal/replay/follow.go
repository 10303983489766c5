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

func followIfAsked(ctx context.Context, st store.Store, js jetstream.JetStream, proj *projector.Projector, o Options, plan *Plan, sum *Summary) error {
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
func follow(ctx context.Context, st store.Store, js jetstream.JetStream, proj *projector.Projector, o Options, plan *Plan, sum *Summary) error {
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
	cfg := jetstream.ConsumerConfig{Durable: name, AckPolicy: jetstream.AckAllPolicy, AckWait: 5 * time.Minute,
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: sum.CheckpointSeq + 1, FilterSubjects: o.Subjects,
		Description: "kanade stream replay --follow"}
	if cfg.OptStartSeq == 0 {
		cfg.OptStartSeq = 1
	}
	c, err := s.CreateConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("create consumer %s on %s: %w", name, o.Stream, err)
	}
	for ctx.Err() == nil {
		fetched, err := c.Fetch(o.Batch, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return fmt.Errorf("fetch from %s: %w", name, err)
		}
		var msgs []projector.Message
		var last jetstream.Msg
		for m := range fetched.Messages() {
			meta, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("message metadata: %w", err)
			}
			msgs = append(msgs, projector.Message{Stream: o.Stream, Seq: meta.Sequence.Stream, Subject: m.Subject(), Published: meta.Timestamp.UTC(), Data: m.Data()})
			last = m
		}
		if fetched.Error() != nil && !errors.Is(fetched.Error(), jetstream.ErrNoMessages) && ctx.Err() == nil {
			return fmt.Errorf("fetch from %s: %w", name, fetched.Error())
		}
		if len(msgs) == 0 {
			continue
		}
		b, err := proj.Prepare(ctx, msgs)
		if err != nil {
			return err
		}
		cp := &store.Checkpoint{Name: CheckpointName(o.Stream, o.Subjects), Stream: o.Stream, StreamCreated: plan.StreamCreated,
			LastSeq: b.LastSeq, UpdatedAt: time.Now().UTC()}
		stats, err := applyWithRetry(ctx, proj, b, projector.ApplyOptions{Checkpoint: cp}, o)
		if err != nil {
			return err
		}
		// AckAll on the last message acknowledges the whole batch.
		if err := last.Ack(); err != nil && ctx.Err() == nil {
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
