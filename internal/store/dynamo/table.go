package dynamo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ohfp/ohfp/internal/sdklog"
	"github.com/ohfp/ohfp/internal/store"
)

// Attribute names of the item layout (see the package comment).
const (
	attrCluster = "cluster"
	attrKey     = "key"
	attrValue   = "v"
	attrFence   = "f"
)

// LeaseKey is the sort key of the lease item of a cluster. It is under
// store.MetaPrefix: Write and Get refuse such keys and Scan skips them.
const LeaseKey = store.MetaPrefix + "lease"

// Limits (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html).
const (
	MaxItemSize      = 400 * 1024 // bytes, attribute names and values
	maxSortKeyLen    = 1024
	maxPartitionLen  = 2048
	numberSizeBound  = 21 // bytes a number of up to 38 digits takes, at most
	writeConcurrency = 8
	defaultTimeout   = 5 * time.Second
)

var (
	// ErrFenced: a conditional write found an item written by a newer
	// lease holder. Nothing was changed.
	ErrFenced = errors.New("a newer lease holder wrote the item: this daemon no longer holds the lease")
	// ErrUnavailable: DynamoDB throttled the call, did not answer in
	// time, could not be reached, or failed (5xx). The write may or may
	// not have been applied.
	ErrUnavailable = errors.New("state store unavailable")
	// ErrTooLarge: the item would exceed DynamoDB's 400 KB item limit (or
	// the key its 1024-byte sort key limit). Nothing was sent.
	ErrTooLarge = errors.New("item too large for DynamoDB")
	// ErrClosed: the Table was closed.
	ErrClosed = errors.New("DynamoDB state store closed")
)

// Options configure Open.
type Options struct {
	Table       string                  // table name
	Region      string                  // "" = the SDK's (AWS_REGION, shared config)
	Endpoint    string                  // optional base endpoint (dynalite in tests)
	ClusterID   string                  // partition key value: one table can hold several clusters
	Credentials aws.CredentialsProvider // optional; nil = the SDK's default chain
	HTTPClient  *http.Client            // optional; used as it is (AWS_CA_BUNDLE does not apply to it)
	CallTimeout time.Duration           // per DynamoDB call deadline, retries included (default 5s)
	Create      bool                    // create the table when missing (PAY_PER_REQUEST) and wait until ACTIVE
	Logger      *slog.Logger
}

// api is the part of the DynamoDB client this package uses.
type api interface {
	DescribeTable(context.Context, *dynamodb.DescribeTableInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	CreateTable(context.Context, *dynamodb.CreateTableInput, ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

// Table is an open DynamoDB table seen through one cluster's partition.
// It is safe for concurrent use.
type Table struct {
	db       api
	name     string
	region   string
	endpoint string // Options.Endpoint, for the create command
	cluster  string
	timeout  time.Duration
	logger   *slog.Logger
	fence    atomic.Uint64

	base   context.Context // canceled by Close
	cancel context.CancelFunc

	writes, reads, fenced, unavailable atomic.Uint64

	hmu          sync.Mutex // guards the fields below
	ok           bool
	lastErr      string
	failingSince time.Time
}

// Health is the outcome of the Table's calls so far.
type Health struct {
	OK           bool      // the last call reached DynamoDB (a failed condition counts as reaching it)
	LastError    string    // the last failure, kept after recovery
	FailingSince time.Time // when the current run of failures began; zero when OK
	Writes       uint64    // items written or deleted, lease writes included
	Reads        uint64    // GetItem and Query pages answered
	Fenced       uint64    // writes refused by the fencing condition
	Unavailable  uint64    // calls that failed with ErrUnavailable
}

var tableNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{3,255}$`)
var regionRE = regexp.MustCompile(`^[a-z0-9-]+$`)

// CreateCommand returns the one-line AWS CLI command that creates a table
// for this package: the key schema of the package comment and on-demand
// billing.
func CreateCommand(table, region string) string {
	return "aws dynamodb create-table --table-name " + table +
		" --attribute-definitions AttributeName=" + attrCluster + ",AttributeType=S AttributeName=" + attrKey + ",AttributeType=S" +
		" --key-schema AttributeName=" + attrCluster + ",KeyType=HASH AttributeName=" + attrKey + ",KeyType=RANGE" +
		" --billing-mode PAY_PER_REQUEST --region " + region
}

// Open connects to the table, checks that it exists with the expected key
// schema (creating it when missing if o.Create), and returns it unfenced
// (SetFence gives the token). A missing table without o.Create is an
// error that gives the command creating it; DynamoDB unreachable is
// ErrUnavailable.
func Open(ctx context.Context, o Options) (*Table, error) {
	if !tableNameRE.MatchString(o.Table) {
		return nil, fmt.Errorf("DynamoDB table name %q: want 3 to 255 letters, digits, '_', '-' or '.'", o.Table)
	}
	if o.ClusterID == "" || len(o.ClusterID) > maxPartitionLen || !utf8.ValidString(o.ClusterID) {
		return nil, fmt.Errorf("DynamoDB table %s: cluster_id %q: want 1 to %d bytes of UTF-8", o.Table, o.ClusterID, maxPartitionLen)
	}
	if o.Region != "" && !regionRE.MatchString(o.Region) {
		return nil, fmt.Errorf("DynamoDB table %s: region %q is not a region name", o.Table, o.Region)
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = defaultTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	var lo []func(*config.LoadOptions) error
	if o.Region != "" {
		lo = append(lo, config.WithRegion(o.Region))
	}
	if o.Credentials != nil {
		lo = append(lo, config.WithCredentialsProvider(o.Credentials))
	}
	// The SDK's standard retries (3 attempts, backoff) within each call's
	// deadline, without its client-side retry quota: a daemon that must
	// renew its lease should not fail fast because earlier calls failed.
	maxBackoff := min(o.CallTimeout/4, time.Second)
	lo = append(lo, config.WithRetryer(func() aws.Retryer {
		return retry.NewStandard(func(so *retry.StandardOptions) {
			so.RateLimiter = ratelimit.None
			so.MaxBackoff = maxBackoff
		})
	}))
	lo = append(lo, config.WithLogger(sdklog.New(o.Logger)))
	cfg, err := config.LoadDefaultConfig(ctx, lo...)
	if err != nil {
		return nil, fmt.Errorf("DynamoDB table %s: loading the AWS configuration: %w", o.Table, err)
	}
	if cfg.Region == "" {
		return nil, fmt.Errorf("DynamoDB table %s: no AWS region given (set it in the configuration, or AWS_REGION)", o.Table)
	}
	client := dynamodb.NewFromConfig(cfg, func(do *dynamodb.Options) {
		if o.Endpoint != "" {
			do.BaseEndpoint = aws.String(o.Endpoint)
		}
		// Set here rather than through config.WithHTTPClient, which
		// refuses a plain *http.Client when AWS_CA_BUNDLE is set.
		if o.HTTPClient != nil {
			do.HTTPClient = o.HTTPClient
		}
	})
	t := &Table{db: client, name: o.Table, region: cfg.Region, endpoint: o.Endpoint, cluster: o.ClusterID, timeout: o.CallTimeout, logger: o.Logger, ok: true}
	t.base, t.cancel = context.WithCancel(context.Background())
	if err := t.check(ctx, o.Create); err != nil {
		t.cancel()
		return nil, err
	}
	return t, nil
}

// NoTableError: the table does not exist (and Options.Create was off).
type NoTableError struct{ Table, Region, Command string }

func (e *NoTableError) Error() string {
	return fmt.Sprintf("DynamoDB table %s does not exist in region %s: create it with: %s", e.Table, e.Region, e.Command)
}

// check makes sure the table exists (creating it if create) and has the
// key schema of the package comment.
func (t *Table) check(ctx context.Context, create bool) error {
	out, err := t.describe(ctx)
	var nf *types.ResourceNotFoundException
	switch {
	case errors.As(err, &nf) && !create:
		cmd := CreateCommand(t.name, t.region)
		if t.endpoint != "" {
			cmd += " --endpoint-url " + t.endpoint
		}
		return &NoTableError{Table: t.name, Region: t.region, Command: cmd}
	case errors.As(err, &nf):
		if err := t.create(ctx); err != nil {
			return err
		}
		return t.waitActive(ctx)
	case err != nil:
		return err
	}
	if err := t.checkSchema(out.Table); err != nil {
		return err
	}
	if out.Table.TableStatus == types.TableStatusCreating {
		return t.waitActive(ctx)
	}
	return nil
}

func (t *Table) describe(ctx context.Context) (*dynamodb.DescribeTableOutput, error) {
	cctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	out, err := t.db.DescribeTable(cctx, &dynamodb.DescribeTableInput{TableName: aws.String(t.name)})
	if err != nil {
		var nf *types.ResourceNotFoundException
		if errors.As(err, &nf) {
			return nil, err
		}
		return nil, t.fail("DescribeTable", err)
	}
	t.succeed()
	return out, nil
}

func (t *Table) create(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	_, err := t.db.CreateTable(cctx, &dynamodb.CreateTableInput{
		TableName: aws.String(t.name),
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(attrCluster), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrKey), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(attrCluster), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(attrKey), KeyType: types.KeyTypeRange},
		},
		BillingMode: types.BillingModePayPerRequest,
	})
	var inUse *types.ResourceInUseException
	if errors.As(err, &inUse) {
		return nil // another ohfpd created it at the same time
	}
	if err != nil {
		return t.fail("CreateTable", err)
	}
	t.succeed()
	t.logger.Info("created DynamoDB table for the shared state", "table", t.name, "region", t.region, "billing", "PAY_PER_REQUEST")
	return nil
}

// waitActive polls the table until it is ACTIVE (a new table takes
// seconds), for at most two minutes.
func (t *Table) waitActive(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	delay := 100 * time.Millisecond
	for {
		out, err := t.describe(ctx)
		if err == nil {
			if out.Table.TableStatus == types.TableStatusActive {
				return t.checkSchema(out.Table)
			}
		} else if !errors.Is(err, ErrUnavailable) {
			var nf *types.ResourceNotFoundException
			if !errors.As(err, &nf) { // not visible yet right after CreateTable
				return err
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("DynamoDB table %s: waiting for it to become ACTIVE: %w", t.name, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

func (t *Table) checkSchema(d *types.TableDescription) error {
	types_ := map[string]types.ScalarAttributeType{}
	for _, a := range d.AttributeDefinitions {
		types_[aws.ToString(a.AttributeName)] = a.AttributeType
	}
	var have []string
	var hash, rng string
	for _, k := range d.KeySchema {
		n := aws.ToString(k.AttributeName)
		have = append(have, fmt.Sprintf("%s %s (%s)", k.KeyType, n, types_[n]))
		switch k.KeyType {
		case types.KeyTypeHash:
			hash = n
		case types.KeyTypeRange:
			rng = n
		}
	}
	if hash == attrCluster && rng == attrKey && types_[hash] == types.ScalarAttributeTypeS && types_[rng] == types.ScalarAttributeTypeS {
		return nil
	}
	return fmt.Errorf("DynamoDB table %s has key schema %s; ohfp expects partition key %q of type S and sort key %q of type S: use another table, or create one with: %s",
		t.name, strings.Join(have, ", "), attrCluster, attrKey, CreateCommand(t.name, t.region))
}

// SetFence sets the lease token every later write is conditional on (see
// the package comment). 0 leaves writes unconditional and removes the
// fence of the items they put: only for tests and tools.
func (t *Table) SetFence(token uint64) { t.fence.Store(token) }

func (t *Table) itemKey(key string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrCluster: &types.AttributeValueMemberS{Value: t.cluster},
		attrKey:     &types.AttributeValueMemberS{Value: key},
	}
}

// checkKey refuses what DynamoDB or package store would.
func checkKey(key string) error {
	if key == "" || strings.HasPrefix(key, store.MetaPrefix) {
		return fmt.Errorf("%w: %q", store.ErrReservedKey, key)
	}
	if len(key) > maxSortKeyLen {
		return fmt.Errorf("%w: key %.40q... is %d bytes, over DynamoDB's %d-byte sort key limit", ErrTooLarge, key, len(key), maxSortKeyLen)
	}
	if !utf8.ValidString(key) {
		return fmt.Errorf("key %q is not UTF-8, which DynamoDB strings must be", key)
	}
	return nil
}

// itemSize is the size DynamoDB counts for an item (names plus values),
// with the fence number at its largest.
func (t *Table) itemSize(key string, value []byte) int {
	return len(attrCluster) + len(t.cluster) + len(attrKey) + len(key) +
		len(attrValue) + len(value) + len(attrFence) + numberSizeBound
}

// Write applies ops, each as its own conditional PutItem or DeleteItem
// (see the package comment), at most 8 at a time; for a key given more
// than once the last op wins, as in package store. It returns nil when
// every op was applied; otherwise an error wrapping ErrFenced and/or
// ErrUnavailable (or another failure) for the ops that failed, the others
// having been applied. Ops are checked before any is sent: an empty or
// reserved key, or an item over 400 KB, fails the whole Write unsent.
func (t *Table) Write(ops ...store.Op) error {
	if t.base.Err() != nil {
		return ErrClosed
	}
	last := make(map[string]int, len(ops))
	for i, op := range ops {
		if err := checkKey(op.Key); err != nil {
			return fmt.Errorf("DynamoDB table %s: %w", t.name, err)
		}
		if !op.Delete {
			if n := t.itemSize(op.Key, op.Value); n > MaxItemSize {
				return fmt.Errorf("DynamoDB table %s: %w: the value of %s is %d bytes, which makes a %d-byte item, over DynamoDB's %d-byte (400 KB) item limit",
					t.name, ErrTooLarge, op.Key, len(op.Value), n, MaxItemSize)
			}
		}
		last[op.Key] = i
	}
	todo := make([]store.Op, 0, len(last))
	for i, op := range ops {
		if last[op.Key] == i {
			todo = append(todo, op)
		}
	}
	tok := t.fence.Load()
	errs := make([]error, len(todo))
	sem := make(chan struct{}, writeConcurrency)
	var wg sync.WaitGroup
	for i, op := range todo {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = t.writeOne(op, tok)
		}()
	}
	wg.Wait()
	return joinWriteErrors(errs)
}

// writeError is the failure of some ops of a Write: its message is that of
// the first (a fenced one first), and errors.Is sees them all.
type writeError struct {
	errs  []error
	total int
}

func (e *writeError) Error() string {
	if len(e.errs) == 1 {
		return e.errs[0].Error()
	}
	return fmt.Sprintf("%v (and %d more of %d writes failed)", e.errs[0], len(e.errs)-1, e.total)
}

func (e *writeError) Unwrap() []error { return e.errs }

func joinWriteErrors(errs []error) error {
	var failed []error
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	if len(failed) == 1 {
		return failed[0]
	}
	sort.SliceStable(failed, func(i, j int) bool {
		return errors.Is(failed[i], ErrFenced) && !errors.Is(failed[j], ErrFenced)
	})
	return &writeError{errs: failed, total: len(errs)}
}

// fenceCondition is the condition of a fenced write of token :tok.
const fenceCondition = "attribute_not_exists(#f) OR #f <= :tok"

func (t *Table) writeOne(op store.Op, tok uint64) error {
	ctx, cancel := context.WithTimeout(t.base, t.timeout)
	defer cancel()
	var (
		cond   *string
		names  map[string]string
		values map[string]types.AttributeValue
	)
	tokN := &types.AttributeValueMemberN{Value: strconv.FormatUint(tok, 10)}
	if tok != 0 {
		cond = aws.String(fenceCondition)
		names = map[string]string{"#f": attrFence}
		values = map[string]types.AttributeValue{":tok": tokN}
	}
	var err error
	what := "PutItem"
	if op.Delete {
		what = "DeleteItem"
		_, err = t.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName: aws.String(t.name), Key: t.itemKey(op.Key),
			ConditionExpression: cond, ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		})
	} else {
		item := t.itemKey(op.Key)
		if len(op.Value) > 0 {
			item[attrValue] = &types.AttributeValueMemberB{Value: op.Value}
		}
		if tok != 0 {
			item[attrFence] = tokN
		}
		_, err = t.db.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: aws.String(t.name), Item: item,
			ConditionExpression: cond, ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		})
	}
	var ccf *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &ccf):
		t.fenced.Add(1)
		t.succeed() // DynamoDB answered
		return &fencedError{table: t.name, key: op.Key, token: tok}
	case err != nil:
		return t.fail(what+" "+op.Key, err)
	}
	t.writes.Add(1)
	t.succeed()
	return nil
}

type fencedError struct {
	table string
	key   string
	token uint64
}

func (e *fencedError) Error() string {
	return fmt.Sprintf("a newer lease holder wrote %s: this daemon no longer holds the lease (its fencing token %d is older; DynamoDB table %s)", e.key, e.token, e.table)
}

func (e *fencedError) Is(target error) bool { return target == ErrFenced }

// Get returns the value of key (a strongly consistent read), and whether
// it exists.
func (t *Table) Get(key string) ([]byte, bool, error) {
	if t.base.Err() != nil {
		return nil, false, ErrClosed
	}
	if err := checkKey(key); err != nil {
		return nil, false, fmt.Errorf("DynamoDB table %s: %w", t.name, err)
	}
	ctx, cancel := context.WithTimeout(t.base, t.timeout)
	defer cancel()
	out, err := t.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(t.name), Key: t.itemKey(key), ConsistentRead: aws.Bool(true),
		ProjectionExpression: aws.String("#v"), ExpressionAttributeNames: map[string]string{"#v": attrValue},
	})
	if err != nil {
		return nil, false, t.fail("GetItem "+key, err)
	}
	t.reads.Add(1)
	t.succeed()
	if out.Item == nil {
		return nil, false, nil
	}
	return value(out.Item), true, nil
}

func value(item map[string]types.AttributeValue) []byte {
	if b, ok := item[attrValue].(*types.AttributeValueMemberB); ok && b.Value != nil {
		return b.Value
	}
	return []byte{}
}

// Scan calls fn for every key that starts with prefix, in key order, with
// strongly consistent reads, a Query page (at most 1 MB) at a time. Keys
// under store.MetaPrefix (the lease) are never yielded. An error from fn
// stops the scan and is returned as it is.
func (t *Table) Scan(prefix string, fn func(key string, value []byte) error) error {
	if t.base.Err() != nil {
		return ErrClosed
	}
	cond := "#pk = :pk"
	names := map[string]string{"#pk": attrCluster, "#sk": attrKey, "#v": attrValue}
	values := map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: t.cluster}}
	if prefix != "" {
		cond += " AND begins_with(#sk, :p)"
		values[":p"] = &types.AttributeValueMemberS{Value: prefix}
	}
	var start map[string]types.AttributeValue
	for {
		ctx, cancel := context.WithTimeout(t.base, t.timeout)
		out, err := t.db.Query(ctx, &dynamodb.QueryInput{
			TableName: aws.String(t.name), ConsistentRead: aws.Bool(true),
			KeyConditionExpression: aws.String(cond), ExpressionAttributeNames: names, ExpressionAttributeValues: values,
			ProjectionExpression: aws.String("#sk, #v"), ExclusiveStartKey: start,
		})
		cancel()
		if err != nil {
			return t.fail(fmt.Sprintf("Query prefix %q", prefix), err)
		}
		t.reads.Add(1)
		t.succeed()
		for _, item := range out.Items {
			k, ok := item[attrKey].(*types.AttributeValueMemberS)
			if !ok || strings.HasPrefix(k.Value, store.MetaPrefix) {
				continue
			}
			if err := fn(k.Value, value(item)); err != nil {
				return err
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		start = out.LastEvaluatedKey
	}
}

// Health returns the outcome of the calls so far.
func (t *Table) Health() Health {
	t.hmu.Lock()
	defer t.hmu.Unlock()
	return Health{
		OK: t.ok, LastError: t.lastErr, FailingSince: t.failingSince,
		Writes: t.writes.Load(), Reads: t.reads.Load(), Fenced: t.fenced.Load(), Unavailable: t.unavailable.Load(),
	}
}

// Close ends the calls under way and makes later ones fail with
// ErrClosed. It returns nil.
func (t *Table) Close() error {
	t.cancel()
	return nil
}

// succeed records that DynamoDB answered.
func (t *Table) succeed() {
	t.hmu.Lock()
	defer t.hmu.Unlock()
	if !t.ok {
		t.logger.Info("DynamoDB state store reachable again", "table", t.name, "failing_for", time.Since(t.failingSince).Round(time.Millisecond))
	}
	t.ok, t.failingSince = true, time.Time{}
}

// fail classifies the error of call what, records it, and returns it
// wrapped: ErrUnavailable when DynamoDB could not be reached, throttled
// or failed, as it is (with the table named) otherwise.
func (t *Table) fail(what string, err error) error {
	if t.base.Err() != nil && errors.Is(err, context.Canceled) {
		return fmt.Errorf("DynamoDB table %s: %s: %w", t.name, what, ErrClosed)
	}
	if unavailable(err) {
		t.unavailable.Add(1)
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within %v: %w", t.timeout, err)
		}
		err = &unavailableError{table: t.name, what: what, err: err}
	} else {
		err = fmt.Errorf("DynamoDB table %s: %s: %w", t.name, what, err)
	}
	t.hmu.Lock()
	defer t.hmu.Unlock()
	if t.ok {
		t.logger.Warn("DynamoDB state store call failed", "table", t.name, "err", err)
		t.failingSince = time.Now()
	}
	t.ok, t.lastErr = false, err.Error()
	return err
}

type unavailableError struct {
	table, what string
	err         error
}

func (e *unavailableError) Error() string {
	return "state store unavailable: DynamoDB table " + e.table + ": " + e.what + ": " + e.err.Error()
}

func (e *unavailableError) Is(target error) bool { return target == ErrUnavailable }
func (e *unavailableError) Unwrap() error        { return e.err }
