// Package dynamo keeps ohfpd's shared state in an Amazon DynamoDB table,
// so that a standby ohfpd on another host can take over from the master
// (issue 14). It offers the same key/value surface as package store
// (Write of store.Op, Get, Scan by prefix), which is what package state
// needs (state.KV), plus a lease that decides which host is the master
// and fences the writes of a master that lost it.
//
// # Item layout
//
// One table can hold several clusters. Every item has
//
//	cluster  S  partition key: Options.ClusterID
//	key      S  sort key: the store key (r/<id>, m/<id>, t/<name>, ...)
//	v        B  the value (absent when the value is empty)
//	f        N  the fencing token of the lease holder that wrote it
//
// The table is created (Options.Create, or the command CreateCommand
// prints) with exactly that key schema and on-demand billing
// (PAY_PER_REQUEST).
//
// # Writes are fenced, one item at a time
//
// Each store.Op is its own conditional PutItem or DeleteItem with the
// condition `attribute_not_exists(f) OR f <= :tok`, where :tok is the
// token given to SetFence; a put sets f to :tok. A write by a holder whose
// token is older than the token of the holder that last wrote that item
// fails with ErrFenced and changes nothing. The condition accepts an equal
// token so that the SDK's retry of a write whose answer was lost succeeds.
// There are no transactions (TransactWriteItems) and no BatchWriteItem: a
// Write of several ops runs them concurrently (at most 8 at a time) and
// is not atomic: when it fails, some of its ops may have been applied;
// every op is idempotent, so repeating the Write is safe. Fencing is per
// item: it stops an old holder from overwriting what a newer one wrote,
// not from writing a key the newer one has not written yet; a holder must
// stop writing as soon as RenewLease fails.
//
// A condition that fails is ErrFenced. Throttling
// (ProvisionedThroughputExceededException, ThrottlingException,
// RequestLimitExceeded), a call that got no answer within
// Options.CallTimeout (5 s by default, the SDK's retries included),
// connection errors and 5xx answers are ErrUnavailable, with a message
// that starts "state store unavailable: DynamoDB table T: ". Any other
// failure is returned as well: no write is ever lost silently.
//
// # Reads
//
// Get is a GetItem and Scan a Query on the cluster's partition with
// begins_with on the sort key, both with ConsistentRead so that they see
// every write acknowledged before them. Query answers in pages of at most
// 1 MB; Scan follows LastEvaluatedKey until there is none, and yields keys
// in sort-key (byte) order, as package store does.
//
// # The lease
//
// One item per cluster, sort key LeaseKey ("_meta/lease": under
// store.MetaPrefix, which Write and Get refuse and Scan skips, as package
// store does, so no core key can collide with it), holds Lease: holder,
// fencing token, record version number, and a host that wants it. This
// package provides the primitives; the caller implements the policy, as
// the Amazon DynamoDB Lock Client does, which does not trust clocks: a
// waiting host takes the lease (AcquireLease with the Lease it read) only
// after it has seen the same Version unchanged for the whole lease
// duration, measured on its own monotonic clock, or at once when the
// holder Released it. The holder renews well within the lease duration;
// every acquisition, renewal and release writes a new random Version, so
// a live holder keeps the waiting hosts waiting, and two hosts that
// acquire from the same Version cannot both win (the conditional write
// lets one through). Since and Renewed are wall-clock times for display
// only. Token grows by one at every acquisition; the new holder gives it
// to SetFence.
//
// # Limits respected
//
//   - An item is at most 400 KB, attribute names and values included;
//     Write refuses a larger one (ErrTooLarge) before calling AWS. A sort
//     key is at most 1024 bytes, a partition key 2048.
//     https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html
//   - Query returns at most 1 MB per call; the rest is read with
//     ExclusiveStartKey = LastEvaluatedKey.
//     https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Query.Pagination.html
//   - Condition expressions on PutItem, UpdateItem and DeleteItem;
//     a false one fails the call with ConditionalCheckFailedException.
//     https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html
//     https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.OperatorsAndFunctions.html
//   - Strongly consistent reads (ConsistentRead) on GetItem and Query.
//     https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.ReadConsistency.html
//   - Throttling and server errors are retried by the SDK with
//     exponential backoff, within the call's deadline.
//     https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html#Programming.Errors.RetryAndBackoff
//   - The lease follows the DynamoDB Lock Client.
//     https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/BestPractices_DistributedLocking.html
//     https://github.com/awslabs/amazon-dynamodb-lock-client
//
// The tests run against dynalite (package internal/dynalite), an
// independent implementation of the DynamoDB API; where it and AWS differ
// the tests follow AWS's documentation, and say so.
package dynamo
