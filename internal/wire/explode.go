package wire

import (
	"fmt"
	"slices"
)

// ExplodeSpec flattens an array of an inventory payload into a table of
// its own, a row per element (upstream's ExplodeSpec).
type ExplodeSpec struct {
	Field        *string         `json:"field"`       // required
	Table        *string         `json:"table"`       // required
	PrimaryKey   []string        `json:"primary_key"` // required
	Columns      []ExplodeColumn `json:"columns"`     // required
	TrackHistory bool            `json:"track_history,omitempty"`
}

// ExplodeColumn is one column of an explode table.
type ExplodeColumn struct {
	Field *string `json:"field"` // required
	Type  *string `json:"type,omitempty"`
	Index bool    `json:"index,omitempty"`
}

// Column kinds of an explode table.
const (
	KindText    = "text"
	KindInteger = "integer"
	KindReal    = "real"
)

// Kind is the column's kind, "text" when the manifest gives none.
func (c *ExplodeColumn) Kind() string { return orDefault(c.Type, KindText) }

// Name is the column's (and the element field's) name.
func (c *ExplodeColumn) Name() string { return orDefault(c.Field, "") }

// TableName is the explode table's name.
func (s *ExplodeSpec) TableName() string { return orDefault(s.Table, "") }

// FieldName is the payload field holding the array.
func (s *ExplodeSpec) FieldName() string { return orDefault(s.Field, "") }

// Validate is upstream's check before it creates a table: identifiers of
// ASCII letters, digits and underscores (not starting with a digit, at
// most 64), a known kind for every column, and a primary key of at least
// one column, each one of the columns. Upstream skips a spec that fails
// it, and so does the projector.
func (s *ExplodeSpec) Validate() error {
	if err := validIdent(s.TableName()); err != nil {
		return err
	}
	if len(s.PrimaryKey) == 0 {
		return fmt.Errorf("explode spec for table %q needs at least one primary_key column", s.TableName())
	}
	names := make([]string, len(s.Columns))
	for i := range s.Columns {
		names[i] = s.Columns[i].Name()
	}
	for _, pk := range s.PrimaryKey {
		if err := validIdent(pk); err != nil {
			return err
		}
		if !slices.Contains(names, pk) {
			return fmt.Errorf("primary_key entry %q for table %q is not in columns", pk, s.TableName())
		}
	}
	for i := range s.Columns {
		c := &s.Columns[i]
		if err := validIdent(c.Name()); err != nil {
			return err
		}
		if k := c.Kind(); k != KindText && k != KindInteger && k != KindReal {
			return fmt.Errorf("unsupported explode column kind %q; expected text|integer|real", k)
		}
	}
	return nil
}

func validIdent(s string) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("identifier %q must be 1..=64 chars", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
		if i == 0 && !letter {
			return fmt.Errorf("identifier %q must start with a letter or underscore", s)
		}
		if !letter && (c < '0' || c > '9') {
			return fmt.Errorf("identifier %q contains invalid character %q", s, c)
		}
	}
	return nil
}
