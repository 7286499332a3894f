/*
Package pool owns the DynamoDB table behind the broker: its keys and indexes, the item
kinds, every state transition of a sandbox and the queries the use cases need. No other
package builds a DynamoDB expression; the use cases (package broker) decide what to do,
and this package makes each step one conditional write that either happens whole on
the state it expects or is refused with the reason.

A [Pool] is the table ([Pool.Table]) and a clock ([Pool.Now]):

	db, err := pool.NewClient(ctx, pool.ClientOptions{Region: "eu-west-1"})
	...
	p := pool.New(db, "sandbox-broker", pool.Options{})
	s, err := p.Get(ctx, "2000001")

The lifecycle the transitions implement, and each arrow's method, are in
docs/architecture.md §4 ("In code: the `pool` method behind each arrow"); the invariants
they keep are in docs/architecture.md §5. This comment is the map of the package.

# Items and keys

One table holds every item, each under a partition key (PK) and a sort key (SK) whose
prefixes say its kind. [Schema] defines the keys and indexes once; the CDK stack and the
local stack both build the table from it ([CreateTable], [EnsureTable]).

	kind                 PK / SK                                   Go type        file
	sandbox record       SBX#<id> / META                           Sandbox        item.go
	history entry        SBX#<id> / HIST#<ns>#<random>             HistoryEntry   history.go
	owner record         OWNER#<client>#<student> / SLOT#<n>       Owner          item.go, owners.go
	  (before slots)     OWNER#<student> / IDEM#<key>              Owner
	UUID item            UUID#<uuid> / UUID                        uuidItem       uuid.go
	client counter shard CAP#<client>#<k> / LIVE                   CapCounter     clientcap.go
	  (before shards)    CLIENT#<client> / LIVE#<k>                CapCounter
	job lease            LEASE#<job> / LEASE                       Lease          lease.go
	job run              JOB#<job> / RUN#<ns>#<run-id>             RunRecord      runs.go
	drain                DRAIN / PREFIX#<prefix>                   Drain          drain.go
	drain history        DRAIN / HIST#<ns>#<random>                HistoryEntry   drain.go
	drain state          DRAIN / STATE                             drainGate      drain.go
	migration state      MIGRATION#tombstone-ttl / STATE           ttlMigration   ttlmigration.go
	prefix signal        SIGNALS / PREFIX#<prefix>                 PrefixSignal   prefixsignal.go
	lab profile          LABS / PROFILE#"<lab>"#"<prefix>"         Profile        profile.go
	reservation          LABS / RESERVATION#<id>                   Reservation    reservation.go

Beside the drains, the index log (DRAIN / JOINED#<name>#<id> and DRAINED#<name>#<id>,
each for an hour) lists the writes that put a sandbox into AvailableIndex, which a drain
reads with the index (drain.go). A sandbox's history shares its partition, so [Pool.History] reads the record and its
entries with one query; history entries and job runs expire with the history TTL
([Options]). The owner record ties a holder ([Holder]: a client and a student) to one
live allocation in one of the holder's slots, and carries what a replayed allocate
answers. The UUID item makes one record per CSP account ([AccountUUID]). A capped
client's count of live allocations is spread over [CounterShards] counter items, each on
its own partition key. Keys are built only by the functions beside them ([SandboxKey],
[OwnerKey], [CounterKey], [StatusKey]).

Two global secondary indexes serve the queries:

  - [StatusIndex]: partition status_key, "<status>#<shard>" ([StatusKey]), sort
    status_at, the moment the record next needs attention (statusat.go states the rule
    per status). Every record is in exactly one of its status's [Shards] shards; the
    jobs find due work with one key condition per shard.
  - [AvailableIndex]: sparse, only available records carry its keys; partition
    avail_shard, sort avail_name, so a lab's name prefix is a begins_with condition. It
    projects only [ClaimAttributes], what a claim needs of a candidate. A drain moves the
    sandboxes it covers from their shard k into [DrainedShard](k), which allocation does
    not read: a drain costs allocation nothing.
    A sandbox set aside for a reservation sits in one of the reservation's own
    partitions ([Reservation.Partitions], above the general shards, one per 50 seats up
    to Shards, its shard's among them), where only the reservation's lab looks.

[Status] lists the statuses; deleted and retired are tombstones ([Status.Tombstone]),
kept so an account is never adopted again, and [Sandbox.MayExpire] says which of them
may leave the table at their TTL.

# Transactions: tx, expect, expr

Every transition is one TransactWriteItems, built by a tx (tx.go): the write of the
sandbox record, conditioned on the state the transition expects; the writes of its
companions, each with its own condition (the owner record, the UUID item, a counter
shard); and the history entry of the status change. They commit together or not at
all. That is the one-transaction rule (docs/architecture.md §5 (3)): no transition
reads and then writes unconditionally, and none is split over two requests, so no
crash or race leaves half of one behind. A write the history need not show (Refresh,
RecordMiss, CountAllocation, the migrations) writes no entry, but it is still one
conditional write.

The condition on the sandbox record is an expect (expect.go): one description of the
required state (status, version rev, holder, due or not due, attempts, the allocation
entry and counter shard that were read) that both renders the condition expression and,
when DynamoDB refuses, explains which part failed from the item as DynamoDB returned
it. So the condition and its explanation cannot disagree. freeSlot and capRoom do the
same for the owner slot and the counter shard.

An expr (expr.go) collects one request's #names and :values: expressions are written as
readable strings and every attribute is a #name, so reserved words never bite. Its
setStatus is the only way a write sets a status; it writes status_key and status_at with
it, so the indexes always agree with the status.

A refused transition returns a [*ConditionError]: Item names the item whose condition
failed ([ItemSandbox], [ItemOwner], [ItemUUID], [ItemCounter], [ItemDrains],
[ItemReservation]), Reason is expect's
explanation, and Current, Owner, Counter or HeldBy carry the item as it was. It matches
[ErrConflict], and [ErrNotFound] when the sandbox is missing. A transaction that met
another on one of its items fails with [ErrContended]; one DynamoDB throttled is retried
with the client's retryer and then fails with [ErrThrottled]; an item DynamoDB will not
store fails with [ErrItemRefused]. [LostRace] tells the caller that another writer got
there first: read again, skip or report.

# Transitions

Each transition is a method of [Pool] in the file of its part of the lifecycle:

	sync.go       Create, Refresh, RecordMiss, MarkStale, Unstale, BackfillStatusKey
	claim.go      Claim (available → allocated, with the owner record and a counter shard)
	extend.go     Extend
	release.go    Release, Expire (allocated → pending_deletion)
	deletion.go   RecordDeleteFailure, FailDeletion, RetryDeletion
	niosxaas.go   RecordNIOSXaaS (the pre-delete step, on the deletion ledger)
	tombstone.go  MarkDeleted, MarkNotFound, Retire, RemoveStale, KeepTombstone
	uuid.go       AdoptUUID
	clientcap.go  SplitCap, CountAllocation, MoveLegacyCounters (the client cap's counters)
	reservation.go SetAside, ReturnSetAside (available → available, in or out of a
	              reservation's partition, with the reservation's set_aside count)

Outside the lifecycle: drains ([Pool.StartDrain], [Pool.EndDrains] in drain.go, each a
transaction with its history entry and the next version of the drain state, then a move
of each sandbox it covers or no longer covers, one conditional write each, logged in the
index log; sync's writes that make a sandbox available are conditioned on the drain state
they read), job leases ([Pool.AcquireLease],
[Pool.ReleaseLease] in lease.go, single conditional writes), run records
([Pool.RecordRun] in runs.go, plain puts under a key no other run has), the tombstone
TTL migration ([Pool.FixTombstoneTTLs] in ttlmigration.go, which keeps tombstones with
[Pool.KeepTombstone]) and the prefix signals ([Pool.PutPrefixSignal] in prefixsignal.go, a
put conditioned on no later count being stored).
[Pool.KeepTombstone]); lab profiles ([Pool.PutProfile], [Pool.DeleteProfile] in
profile.go) and reservations ([Pool.CreateReservation],
[Pool.CancelReservation], [Pool.EndReservation], [Pool.RecordCoverage] in
reservation.go, each one conditional write on the reservation's state and version).

# Calling a transition

A transition takes the record as the caller read it (cur, from [Pool.Get] or a query)
and conditions its write on what it needs of that reading: the status always, and the
version (rev) where a change since the read must make it lose (a claim, a sync write,
an extension). One that returns a [Sandbox] returns the record as it wrote it, so a
caller can go on without reading again; on any error nothing was written. by is the
[Actor] its history entry names. cutoff and before are unix seconds the record's
status_at must be at or before (Expire, RemoveStale, Retire); Extend's cutoff is the one
its status_at must be after.

A Pool is safe for concurrent use by any number of goroutines, and any number of
processes may use one table at once: the pool holds no lock and no cache, and every
race between writers is settled by DynamoDB's conditions. When two transitions race on
one record, exactly one commits and the other returns an error for which [LostRace]
holds. Options.Now is the clock of every timestamp a transition writes, and [Pool.Now]
gives the use cases the same clock.

# Queries

	query.go     Get, Candidates, ByStatus, Count
	list.go      List (the admin listing, cursor paged)
	stats.go     Stats (exact counts per status and lab prefix)
	history.go   History
	owners.go    OwnerRecord, OwnerRecords
	clientcap.go CapCounters, UncountedAllocations
	drain.go     Drains, DrainHistory
	lease.go     CurrentLease
	runs.go      Runs
	prefixsignal.go PrefixSignals, AllocationsSince (the pool-metrics job's per prefix)
	labs.go      LabSettings (profiles and reservations in one query, for the allocation path)
	profile.go   Profiles
	reservation.go Reservation, Reservations, SetAsideOf, CountAvailable, CountSetAside

Every query follows LastEvaluatedKey to the end (docs/architecture.md §5 (6)), but for
Candidates, which reads one page by design, and Runs, which stops at its limit; the
iterators ([Pool.ByStatus], [Pool.UncountedAllocations]) hold at most one page per
shard, whatever the count. Reads of the table by key are strongly consistent (Get,
History, OwnerRecords, CapCounters, Drains); queries of an index are not (DynamoDB has
no consistent index read): Candidates, ByStatus, Count, List and Stats may miss a write
of a moment ago, so what they return is re-checked by the condition of the transition
that acts on it.

# Invariants

[Pool.CheckInvariants] reads the whole table once and checks the invariants of
docs/architecture.md §5 over what it read, one method per invariant (invariants.go).
Every concurrency and job test runs it after its scenario
([github.com/sandbox-broker/broker/pkg/pool/pooltest.Check]).

# Table, clients and cost

[NewClient] builds the DynamoDB client (client.go), for AWS or DynamoDB Local;
[CreateTable], [EnsureTable] and [Pool.Ping] are in table.go; [ReadActions],
[WriteActions] and [PingActions] are the IAM actions the CDK stack grants (schema.go);
[AllocationCost] is the capacity one allocation costs, which the stack sizes the table's
warm throughput from (capacity.go).
*/
package pool
