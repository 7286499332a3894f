package ddblocal

// PID is the process of the running DynamoDB Local: a test freezes it.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// ErrPortTaken is errPortTaken.
var ErrPortTaken = errPortTaken
