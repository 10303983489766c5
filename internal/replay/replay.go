// Package replay reads a JetStream stream window and feeds it through the
// projector: an ordered consumer (no server-side state) reads, a second
// goroutine decodes the next batch while the current one is written, and
// each batch commits together with its checkpoint.
package replay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kanadehq/kanade-cli/internal/projector"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/streams"
)

// Options select the window and how to apply it.
type Options struct {
	Stream         string
	Subjects       []string
	FromSeq, ToSeq uint64     // 0 = unset
	Since, Until   *time.Time // alternatives to the sequences
	// Batch is the messages of a batch, counting half a message whose
	// derived writes all merge into an earlier one's (projector.Batch.Full).
	Batch int
	// BatchBytes ends a batch early once its payloads reach this many
	// bytes (0: DefaultBatchBytes), so that memory follows the batch's
	// size in bytes, not only its count of messages.
	BatchBytes      int64
	DryRun          bool
	Resume          bool
	MaxErrors       int // stop once this many messages were quarantined; 0 = no limit
	OnlyQuarantined bool
	// Follow keeps projecting new messages after catching up, through the
	// durable consumer Consumer, until the context ends.
	Follow   bool
	Consumer string
	// OnFollowBatch, when set, is called after every committed follow batch.
	OnFollowBatch func(projector.Stats, uint64)
	// Progress, when set, is called after every batch.
	Progress func(Progress)
	// Retry controls database retries; zero means the defaults.
	RetryAttempts int
	RetryBase     time.Duration
	// NATSTimeout bounds how long a replay waits for an unreachable NATS
	// server before it stops with an error (0: two minutes). --follow waits
	// as long as it takes.
	NATSTimeout time.Duration
	// OnRetry, when set, hears each failed attempt at a batch that will be
	// tried again (a lost database connection, a restarting server).
	OnRetry func(lastSeq uint64, attempt int, wait time.Duration, err error)

	// failed replaces what the error of a batch that failed for good says
	// it left behind (a rebuild's, which writes only shadow tables).
	failed string
}

// DefaultBatchBytes bounds a batch's payloads: a replay holds about two
// batches, decoded, at a time, so with 64 KiB payloads 5,000 messages would
// be 640 MB. The simulator's 5,000 payloads of about 530 bytes are 2.6 MB,
// and the hint-heavy ones of 2 KB 10 MB: neither reaches it.
const DefaultBatchBytes = 16 << 20

// Progress is the state after a batch.
type Progress struct {
	Done, Total uint64
	LastSeq     uint64
	Elapsed     time.Duration
	Quarantined int64
}

// Plan is a resolved window.
type Plan struct {
	Stream        string    `json:"stream"`
	Subjects      []string  `json:"subjects"` // [] without --subject
	StreamCreated time.Time `json:"stream_created"`
	FromSeq       uint64    `json:"from_seq"`
	ToSeq         uint64    `json:"to_seq"`
	Messages      uint64    `json:"messages"`
	BytesEstimate uint64    `json:"bytes_estimate"`
	// The window's first and last publish times, null when it is empty:
	// output-schemas.md promises every field, so they are never left out.
	FirstTime *time.Time `json:"first_time"`
	LastTime  *time.Time `json:"last_time"`
	Resumed   bool       `json:"resumed"`
}

// Summary is what a run did.
type Summary struct {
	Plan           *Plan           `json:"plan"`
	Stats          projector.Stats `json:"stats"`
	DryRun         bool            `json:"dry_run"`
	Elapsed        time.Duration   `json:"-"`
	ElapsedSeconds float64         `json:"elapsed_seconds"`
	RatePerSecond  float64         `json:"rate_per_second"`
	StoppedEarly   bool            `json:"stopped_early"`
	StopReason     string          `json:"stop_reason"` // why it stopped early; "" when it did not
	CheckpointSeq  uint64          `json:"checkpoint_seq"`
	// Warnings name what the manifests asked for and upstream's rules skip
	// (an explode spec no table can be made for), once each.
	Warnings []string `json:"warnings"`
}

var errNoStream = errors.New("no such stream")

// ErrTooManyErrors is returned when --max-errors is reached.
var ErrTooManyErrors = errors.New("too many undecodable messages")

// Replaying is what a replay needs of a store: projection transactions,
// the writer lock, its checkpoint and its quarantine.
type Replaying interface {
	store.Projecting
	store.Locker
	store.Checkpoints
	ListQuarantine(ctx context.Context, stream string, limit int) ([]store.QuarantineEntry, error)
}

// Verifying is what a verify needs of a store: read-only lookups, and a
// projector's preparation (which writes nothing).
type Verifying interface {
	store.Projecting
	store.Checkpoints
	ResultsByID(ctx context.Context, ids []string) (map[string]store.ResultRow, error)
	DerivedStamps(ctx context.Context, k store.DerivedKeys) (*store.DerivedStamps, error)
	QuarantinedAt(ctx context.Context, stream string, seqs []uint64) (map[uint64]time.Time, error)
}

// CheckpointName identifies a replay's checkpoint: the stream, plus the
// subject filter when there is one (different filters progress apart).
func CheckpointName(stream string, subjects []string) string {
	if len(subjects) == 0 {
		return stream
	}
	return stream + "|" + strings.Join(subjects, ",")
}

// Resolve turns the options into a concrete window, checking a resume
// checkpoint against the stream as it is now. st is read only for
// --resume (its checkpoint) and may be nil otherwise.
func Resolve(ctx context.Context, js jetstream.JetStream, st store.Checkpoints, o Options) (*Plan, error) {
	s, err := js.Stream(ctx, o.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("%w: stream %s does not exist on this server (upstream's streams are %s, %s, %s)", errNoStream, o.Stream, streams.Results, streams.Events, streams.Exec)
	}
	if err != nil {
		return nil, fmt.Errorf("look up stream %s: %w", o.Stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s info: %w", o.Stream, err)
	}
	for _, f := range o.Subjects {
		// A filter outside the stream's subjects selects nothing, which
		// a replay would report as an empty window: most often it is the
		// other stream's subject. A stream that only mirrors or sources
		// others has no subjects of its own but holds theirs, so it is
		// not checked.
		own := info.Config.Subjects
		if len(own) > 0 && info.Config.Mirror == nil && len(info.Config.Sources) == 0 &&
			!slices.ContainsFunc(own, func(s string) bool { return natsserver.SubjectsCollide(f, s) }) {
			return nil, fmt.Errorf("--subject %s matches none of stream %s's subjects (%s): check --stream", f, o.Stream, strings.Join(own, ", "))
		}
	}
	p := &Plan{Stream: o.Stream, Subjects: append([]string{}, o.Subjects...), StreamCreated: info.Created.UTC()}
	state := info.State
	from := max(state.FirstSeq, 1)
	to := state.LastSeq // fixed now, so a replay of a live stream ends
	if o.Resume {
		cp, err := st.LoadCheckpoint(ctx, CheckpointName(o.Stream, o.Subjects))
		if err != nil {
			return nil, err
		}
		if cp == nil {
			return nil, fmt.Errorf("--resume: no checkpoint for %s in this database; run without --resume", CheckpointName(o.Stream, o.Subjects))
		}
		if !sameInstant(cp.StreamCreated, info.Created) {
			return nil, fmt.Errorf("--resume refused: stream %s was created %s, but the checkpoint belongs to a stream created %s; it was deleted and recreated, so its sequences mean something else now. Replay without --resume",
				o.Stream, info.Created.UTC().Format(time.RFC3339), cp.StreamCreated.UTC().Format(time.RFC3339))
		}
		if state.FirstSeq > cp.LastSeq+1 {
			return nil, fmt.Errorf("--resume refused: the checkpoint is at sequence %d but stream %s now starts at %d; messages %d..%d were purged or aged out and cannot be replayed. Replay without --resume to rebuild from what is left",
				cp.LastSeq, o.Stream, state.FirstSeq, cp.LastSeq+1, state.FirstSeq-1)
		}
		from = cp.LastSeq + 1
		p.Resumed = true
	} else {
		if o.FromSeq > state.LastSeq+1 {
			// Sequences past the next one do not exist yet; asked for, they
			// are most often a number from before the stream was deleted
			// and recreated, and an empty window would hide that.
			return nil, fmt.Errorf("--from-seq %d is past the end of stream %s, whose last sequence is %d: there is nothing there to replay. Check the number (`kanade stream replay --plan` shows the stream); if the stream was recreated, its sequences started again at 1",
				o.FromSeq, o.Stream, state.LastSeq)
		}
		if o.FromSeq > 0 {
			from = max(o.FromSeq, from)
		} else if o.Since != nil {
			seq, err := seqAtOrAfter(ctx, s, *o.Since, o.Subjects)
			if err != nil {
				return nil, err
			}
			if seq == 0 {
				from = to + 1 // nothing at or after --since
			} else {
				from = seq
			}
		}
	}
	if o.ToSeq > 0 {
		to = min(o.ToSeq, to)
	} else if o.Until != nil {
		seq, err := seqAtOrAfter(ctx, s, *o.Until, o.Subjects)
		if err != nil {
			return nil, err
		}
		if seq > 0 {
			to = min(to, seq-1)
		}
	}
	p.FromSeq, p.ToSeq = from, to
	if from > to {
		return p, nil
	}
	if p.Messages, err = countRange(ctx, s, from, to, o.Subjects); err != nil {
		return nil, err
	}
	if state.Msgs > 0 {
		p.BytesEstimate = state.Bytes / state.Msgs * p.Messages
	}
	if p.Messages > 0 {
		if m, err := firstFrom(ctx, s, from, o.Subjects); err == nil && m != nil {
			first := m.Timestamp.UTC()
			p.FirstTime = &first
		}
		if m, err := s.GetMsg(ctx, to); err == nil {
			last := m.Time.UTC()
			p.LastTime = &last
		}
	}
	return p, nil
}

// sameInstant compares at microseconds: PostgreSQL keeps no more.
func sameInstant(a, b time.Time) bool {
	return a.Truncate(time.Microsecond).Equal(b.Truncate(time.Microsecond))
}

func orderedFrom(ctx context.Context, s jetstream.Stream, cfg jetstream.OrderedConsumerConfig, subjects []string) (jetstream.Consumer, error) {
	cfg.FilterSubjects = subjects
	c, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create ordered consumer: %w", err)
	}
	return c, nil
}

// pendingFrom counts the messages matching subjects from seq to the end.
func pendingFrom(ctx context.Context, s jetstream.Stream, seq uint64, subjects []string) (uint64, error) {
	c, err := orderedFrom(ctx, s, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: seq}, subjects)
	if err != nil {
		return 0, err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("consumer info: %w", err)
	}
	return info.NumPending, nil
}

func countRange(ctx context.Context, s jetstream.Stream, from, to uint64, subjects []string) (uint64, error) {
	a, err := pendingFrom(ctx, s, from, subjects)
	if err != nil {
		return 0, err
	}
	b, err := pendingFrom(ctx, s, to+1, subjects)
	if err != nil {
		return 0, err
	}
	if b > a {
		return 0, nil
	}
	return a - b, nil
}

func firstFrom(ctx context.Context, s jetstream.Stream, seq uint64, subjects []string) (*jetstream.MsgMetadata, error) {
	c, err := orderedFrom(ctx, s, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: seq}, subjects)
	if err != nil {
		return nil, err
	}
	return fetchOneMeta(ctx, c)
}

func fetchOneMeta(ctx context.Context, c jetstream.Consumer) (*jetstream.MsgMetadata, error) {
	info, err := c.Info(ctx)
	if err != nil {
		return nil, err
	}
	if info.NumPending == 0 {
		return nil, nil
	}
	m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		return nil, fmt.Errorf("read one message: %w", err)
	}
	return m.Metadata()
}

// seqAtOrAfter is the first sequence published at or after t (0: none).
func seqAtOrAfter(ctx context.Context, s jetstream.Stream, t time.Time, subjects []string) (uint64, error) {
	c, err := orderedFrom(ctx, s, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &t}, subjects)
	if err != nil {
		return 0, err
	}
	meta, err := fetchOneMeta(ctx, c)
	if err != nil || meta == nil {
		return 0, err
	}
	return meta.Sequence.Stream, nil
}
