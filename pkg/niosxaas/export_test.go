package niosxaas

// SignInWaiters is how many callers are blocked on the sign-in in flight.
func (c *Client) SignInWaiters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.waiting
}
