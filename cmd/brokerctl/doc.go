// Command brokerctl is an operator's command line over the broker's admin API: pool
// counts, listings, one sandbox's history, job runs and the repairs (retry a deletion,
// delete stale records). It needs the API's URL and an admin token, and uses nothing but
// the API, so it works the same against AWS and the local stack.
package main
