package wire

import "github.com/google/uuid"

// legacyIDPrefix must never change: every legacy redelivery, forever, has to
// hash to the id its first delivery got (upstream issue #19).
const legacyIDPrefix = "kanade-issue-19/legacy-result-id:"

// StableResultID is the primary key upstream's projector uses for a result:
// the agent's result_id when it sent one, otherwise a UUIDv5 (OID namespace)
// of the request and PC, so legacy payloads get one row per PC and the same
// row on every redelivery.
func StableResultID(resultID, requestID, pcID string) string {
	if resultID != "" {
		return resultID
	}
	return LegacyResultID(requestID, pcID)
}

// LegacyResultID is the UUIDv5 a payload without result_id is stored under.
func LegacyResultID(requestID, pcID string) string {
	return uuid.NewSHA1(uuid.NameSpaceOID, []byte(legacyIDPrefix+requestID+":"+pcID)).String()
}

// StableID is StableResultID for a decoded result.
func (r *ExecResult) StableID() string {
	return StableResultID(r.ResultID, r.RequestID, r.PCID)
}

// SignatureRefusalID is the result_id an agent gives the exit-123 result it
// sends when it refuses a command whose signature does not verify. Real
// scripts exit 123 too; only this id marks a refusal (spec section 1).
func SignatureRefusalID(requestID, pcID string) string {
	return uuid.NewSHA1(uuid.NameSpaceOID, []byte(requestID+"|"+pcID+"|signature-refused")).String()
}

// IsSignatureRefusal reports whether r is an agent's signature refusal.
func (r *ExecResult) IsSignatureRefusal() bool {
	return r.ExitCode == 123 && r.ResultID == SignatureRefusalID(r.RequestID, r.PCID)
}
