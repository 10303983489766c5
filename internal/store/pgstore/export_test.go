package pgstore

// LockSessionPID is the backend pid of the session that holds s's writer
// lock (0: none, or lost), so a test can drop it as a server restart would.
func LockSessionPID(s *Store) uint32 {
	s.lockMu.Lock()
	defer s.lockMu.Unlock()
	if s.lock == nil || s.lock.conn == nil { // none, or lost and not taken back
		return 0
	}
	return s.lock.conn.Conn().PgConn().PID()
}

// CopyResults, ResultColNames and PgxValues are for the test that holds
// copyResults' rows to pgx's.
var (
	CopyResults    = copyResults
	ResultColNames = resultColNames
	PgxValues      = pgxValues
)
