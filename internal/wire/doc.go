// Package wire is the upstream wire format: the JSON an agent publishes
// (ExecResult, EventStarted), the Command it receives, the manifest's
// inventory hint, the stable result id and chrono's timestamp text.
//
// Everything here must match upstream byte for byte; see
// ../shared/spec/upstream.md sections 1 and 2. Decoding is lenient where
// upstream's serde is (unknown keys, absent optionals), and strict where
// it is not (missing required keys, wrong types).
package wire
