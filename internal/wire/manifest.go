package wire

import (
	"encoding/json"
	"fmt"
)

// Manifest is the part of a KV "jobs" entry the projector needs. Other keys
// exist upstream and are ignored.
type Manifest struct {
	ID        string         `json:"id"`
	Version   string         `json:"version"`
	Inventory *InventoryHint `json:"inventory,omitempty"`
}

// InventoryHint tells the projector that a manifest's stdout is inventory.
type InventoryHint struct {
	Display []DisplayField  `json:"display"`
	Summary []DisplayField  `json:"summary,omitempty"`
	Explode json.RawMessage `json:"explode,omitempty"` // kept, not interpreted
}

// DisplayField is one column an inventory view shows.
type DisplayField struct {
	Field string  `json:"field"`
	Label string  `json:"label"`
	Type  *string `json:"type,omitempty"`
}

// DecodeManifest decodes a KV jobs value.
func DecodeManifest(data []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("manifest: %w", jsonError(err))
	}
	if m.ID == "" {
		return nil, fmt.Errorf("manifest: %w", &DecodeError{Field: "id", Reason: "missing or empty"})
	}
	return &m, nil
}

// DisplayJSON and SummaryJSON are the texts upstream stores in
// inventory_facts: serde's re-serialisation of the hint, not the raw KV text.
func (h *InventoryHint) DisplayJSON() string { return encodeFields(h.Display) }

// SummaryJSON is nil when the hint has no summary.
func (h *InventoryHint) SummaryJSON() *string {
	if h.Summary == nil {
		return nil
	}
	s := encodeFields(h.Summary)
	return &s
}

func encodeFields(fs []DisplayField) string {
	b := []byte{'['}
	for i, f := range fs {
		if i > 0 {
			b = append(b, ',')
		}
		first := true
		b = append(b, '{')
		b = appendKeyString(b, &first, "field", f.Field)
		b = appendKeyString(b, &first, "label", f.Label)
		b = appendOptString(b, &first, "type", f.Type)
		b = append(b, '}')
	}
	return string(append(b, ']'))
}
