// Package wire is the upstream wire format: the JSON an agent publishes
// (ExecResult, EventStarted), the Command it receives, the manifest's
// hints, the stable result id and chrono's timestamp text.
//
// Everything here must match upstream byte for byte (the team's upstream
// spec, sections 1 and 2). Decoding accepts exactly the payloads
// upstream's serde_json and chrono accept, and decodes them to the same
// values (serde.go, chrono.go); testdata/ holds serde's own verdicts.
package wire
