// Package cspfake is an in-process fake of the ENG CSP API: the account
// listing and the sandbox delete, with the auth header, paging and the
// failure modes seen upstream (5xx bursts, HTML bodies, dropped
// connections, slow deletes, rate limiting) injectable at run time. Tests
// and the local stack use it over real HTTP on 127.0.0.1.
package cspfake
