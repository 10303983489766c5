package wire

import (
	"encoding/json"
	"strconv"
)

// Command is what the backend publishes on commands.all,
// commands.group.<name> or commands.pc.<pc_id>. Every PC that receives one
// answers with the same request_id.
type Command struct {
	ID          string  // manifest id
	Version     string  // manifest version
	RequestID   string  //
	ExecID      *string // deployment id; older backends called the key job_id
	Shell       string  // "powershell" or "cmd"
	Script      string
	TimeoutSecs uint64
	JitterSecs  *uint64
	RunAs       string // "system" (default), "user", "system_gui"
}

type rawCommand struct {
	ID          *string `json:"id"`
	Version     *string `json:"version"`
	RequestID   *string `json:"request_id"`
	ExecID      *string `json:"exec_id"`
	JobID       *string `json:"job_id"`
	Shell       *string `json:"shell"`
	Script      *string `json:"script"`
	TimeoutSecs *uint64 `json:"timeout_secs"`
	JitterSecs  *uint64 `json:"jitter_secs"`
	RunAs       *string `json:"run_as"`
}

// DecodeCommand accepts both the current exec_id key and its old name job_id.
func DecodeCommand(data []byte) (*Command, error) {
	var raw rawCommand
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, jsonError(err)
	}
	c := &Command{ExecID: raw.ExecID, JitterSecs: raw.JitterSecs, RunAs: "system"}
	if c.ExecID == nil {
		c.ExecID = raw.JobID
	}
	var err error
	for _, f := range []struct {
		name string
		src  *string
		dst  *string
	}{{"id", raw.ID, &c.ID}, {"version", raw.Version, &c.Version}, {"request_id", raw.RequestID, &c.RequestID},
		{"shell", raw.Shell, &c.Shell}, {"script", raw.Script, &c.Script}} {
		if *f.dst, err = required(f.name, f.src); err != nil {
			return nil, err
		}
	}
	if c.Shell != "powershell" && c.Shell != "cmd" {
		return nil, &DecodeError{Field: "shell", Reason: strconv.Quote(c.Shell) + " is not powershell or cmd"}
	}
	if raw.TimeoutSecs == nil {
		return nil, &DecodeError{Field: "timeout_secs", Reason: "missing"}
	}
	c.TimeoutSecs = *raw.TimeoutSecs
	if raw.RunAs != nil {
		switch *raw.RunAs {
		case "system", "user", "system_gui":
			c.RunAs = *raw.RunAs
		default:
			return nil, &DecodeError{Field: "run_as", Reason: strconv.Quote(*raw.RunAs) + " is not system, user or system_gui"}
		}
	}
	return c, nil
}

// Encode writes the command as the current backend does (key exec_id).
func (c *Command) Encode() []byte {
	b := make([]byte, 0, 256+len(c.Script))
	b = append(b, '{')
	first := true
	b = appendKeyString(b, &first, "id", c.ID)
	b = appendKeyString(b, &first, "version", c.Version)
	b = appendKeyString(b, &first, "request_id", c.RequestID)
	b = appendOptString(b, &first, "exec_id", c.ExecID)
	b = appendKeyString(b, &first, "shell", c.Shell)
	b = appendKeyString(b, &first, "script", c.Script)
	b = appendKey(b, &first, "timeout_secs")
	b = strconv.AppendUint(b, c.TimeoutSecs, 10)
	if c.JitterSecs != nil {
		b = appendKey(b, &first, "jitter_secs")
		b = strconv.AppendUint(b, *c.JitterSecs, 10)
	}
	runAs := c.RunAs
	if runAs == "" {
		runAs = "system"
	}
	b = appendKeyString(b, &first, "run_as", runAs)
	return append(b, '}')
}

func required(field string, v *string) (string, error) {
	if v == nil {
		return "", &DecodeError{Field: field, Offset: -1, Reason: "missing or null"}
	}
	return *v, nil
}
