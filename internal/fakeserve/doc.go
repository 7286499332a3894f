// Package fakeserve is what the fake servers (the fake CSP, the fake NIOSXaaS) share: the
// parser of their FAKE_* fault variables and the loopback HTTP server they run on, so each
// fake says only what it fakes.
package fakeserve
