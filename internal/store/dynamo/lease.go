package dynamo

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Lease is the master lease of a cluster: one item, sort key LeaseKey.
// The policy that uses it is in the package comment.
type Lease struct {
	Holder   string    // host name of the holder
	Token    uint64    // fencing token: +1 at every acquisition
	Version  string    // record version number: a new random value at every acquire/renew/release
	Since    time.Time // wall clock of acquisition (for display only)
	Renewed  time.Time // wall clock of the last renewal (display only)
	Released bool      // the holder gave it up: may be taken at once
	Want     string    // a host that asked for it (HF moved there)
	WantAt   time.Time
}

// Attribute names of the lease item.
const (
	leaseHolder   = "holder"
	leaseToken    = "token"
	leaseVersion  = "ver"
	leaseSince    = "since"    // N, Unix nanoseconds
	leaseRenewed  = "renewed"  // N, Unix nanoseconds
	leaseReleased = "released" // BOOL
	leaseWant     = "want"
	leaseWantAt   = "want_at" // N, Unix nanoseconds
)

var (
	// ErrLeaseTaken: AcquireLease's condition failed: the lease item
	// exists (prev nil) or changed since prev was read.
	ErrLeaseTaken = errors.New("lease taken: another host changed the lease since it was read")
	// ErrLeaseLost: RenewLease or ReleaseLease found that this host no
	// longer holds the lease (another acquired it, or it was released).
	ErrLeaseLost = errors.New("lease lost: this host no longer holds the lease")
	// ErrNoLease: WantLease found no lease item (no host ever held it):
	// AcquireLease with a nil prev takes it.
	ErrNoLease = errors.New("no lease item yet")
)

func (t *Table) leaseKey() map[string]types.AttributeValue { return t.itemKey(LeaseKey) }

func newVersion() string { return rand.Text() }

// now is the wall clock at the precision the lease item keeps.
func now() time.Time { return time.Unix(0, time.Now().UnixNano()) }

func num(n int64) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func unum(n uint64) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.FormatUint(n, 10)}
}

func str(s string) *types.AttributeValueMemberS { return &types.AttributeValueMemberS{Value: s} }

func leaseItem(t *Table, l Lease) map[string]types.AttributeValue {
	item := t.leaseKey()
	item[leaseHolder] = str(l.Holder)
	item[leaseToken] = unum(l.Token)
	item[leaseVersion] = str(l.Version)
	item[leaseSince] = num(l.Since.UnixNano())
	item[leaseRenewed] = num(l.Renewed.UnixNano())
	item[leaseReleased] = &types.AttributeValueMemberBOOL{Value: l.Released}
	if l.Want != "" {
		item[leaseWant] = str(l.Want)
		item[leaseWantAt] = num(l.WantAt.UnixNano())
	}
	return item
}

func parseLease(item map[string]types.AttributeValue) (Lease, error) {
	var l Lease
	var err error
	s := func(name string) string {
		v, _ := item[name].(*types.AttributeValueMemberS)
		if v == nil {
			return ""
		}
		return v.Value
	}
	n := func(name string) int64 {
		v, _ := item[name].(*types.AttributeValueMemberN)
		if v == nil {
			return 0
		}
		x, perr := strconv.ParseInt(v.Value, 10, 64)
		if perr != nil && err == nil {
			err = fmt.Errorf("lease item: %s = %q: %w", name, v.Value, perr)
		}
		return x
	}
	t := func(name string) time.Time {
		if x := n(name); x != 0 {
			return time.Unix(0, x)
		}
		return time.Time{}
	}
	l.Holder, l.Version, l.Want = s(leaseHolder), s(leaseVersion), s(leaseWant)
	if v, _ := item[leaseToken].(*types.AttributeValueMemberN); v != nil {
		tok, perr := strconv.ParseUint(v.Value, 10, 64)
		if perr != nil {
			return Lease{}, fmt.Errorf("lease item: token = %q: %w", v.Value, perr)
		}
		l.Token = tok
	}
	l.Since, l.Renewed, l.WantAt = t(leaseSince), t(leaseRenewed), t(leaseWantAt)
	if b, _ := item[leaseReleased].(*types.AttributeValueMemberBOOL); b != nil {
		l.Released = b.Value
	}
	if err == nil && (l.Holder == "" || l.Version == "") {
		err = errors.New("lease item has no holder or no version")
	}
	return l, err
}

func (t *Table) leaseCtx(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if t.base.Err() != nil {
		return nil, nil, ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	return ctx, cancel, nil
}

// ReadLease returns the lease item (a strongly consistent read), and
// false when no host ever held the lease.
func (t *Table) ReadLease(ctx context.Context) (Lease, bool, error) {
	ctx, cancel, err := t.leaseCtx(ctx)
	if err != nil {
		return Lease{}, false, err
	}
	defer cancel()
	out, err := t.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(t.name), Key: t.leaseKey(), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Lease{}, false, t.fail("GetItem lease", err)
	}
	t.reads.Add(1)
	t.succeed()
	if out.Item == nil {
		return Lease{}, false, nil
	}
	l, err := parseLease(out.Item)
	if err != nil {
		return Lease{}, false, fmt.Errorf("DynamoDB table %s: cluster %s: %w", t.name, t.cluster, err)
	}
	return l, true, nil
}

// AcquireLease makes host the holder: with prev nil, on condition that no
// lease item exists; else on condition that the item's Version is still
// prev.Version. The new lease has Token prev.Token+1 (1 with no prev), a
// new Version, Since = Renewed = now, and no Want. A failed condition is
// ErrLeaseTaken.
func (t *Table) AcquireLease(ctx context.Context, host string, prev *Lease) (Lease, error) {
	if host == "" {
		return Lease{}, errors.New("AcquireLease: no host name")
	}
	at := now()
	l := Lease{Holder: host, Token: 1, Version: newVersion(), Since: at, Renewed: at}
	in := &dynamodb.PutItemInput{TableName: aws.String(t.name), Item: leaseItem(t, l)}
	if prev == nil {
		in.ConditionExpression = aws.String("attribute_not_exists(#pk)")
		in.ExpressionAttributeNames = map[string]string{"#pk": attrCluster}
	} else {
		l.Token = prev.Token + 1
		in.Item[leaseToken] = unum(l.Token)
		in.ConditionExpression = aws.String("#ver = :pv")
		in.ExpressionAttributeNames = map[string]string{"#ver": leaseVersion}
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":pv": str(prev.Version)}
	}
	cctx, cancel, err := t.leaseCtx(ctx)
	if err != nil {
		return Lease{}, err
	}
	_, err = t.db.PutItem(cctx, in)
	cancel()
	var ccf *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &ccf):
		t.succeed()
		// The SDK may have retried a put whose answer was lost: then
		// the item is ours, and its condition failed only the second time.
		cur, ok, rerr := t.ReadLease(ctx)
		if rerr == nil && ok && cur.Version == l.Version {
			t.writes.Add(1)
			return cur, nil
		}
		return Lease{}, fmt.Errorf("DynamoDB table %s: cluster %s: %w%s", t.name, t.cluster, ErrLeaseTaken, describeHolder(cur, ok, rerr))
	case err != nil:
		return Lease{}, t.fail("PutItem lease", err)
	}
	t.writes.Add(1)
	t.succeed()
	return l, nil
}

func describeHolder(cur Lease, ok bool, err error) string {
	switch {
	case err != nil || !ok:
		return ""
	case cur.Released:
		return fmt.Sprintf(" (now released by %s, token %d)", cur.Holder, cur.Token)
	default:
		return fmt.Sprintf(" (now held by %s, token %d)", cur.Holder, cur.Token)
	}
}

// RenewLease renews l, on condition that l.Holder still holds it with
// l.Token and has not released it: a new Version, Renewed = now. It
// returns the item as written, including any Want another host set. A
// failed condition is ErrLeaseLost.
func (t *Table) RenewLease(ctx context.Context, l Lease) (Lease, error) {
	cctx, cancel, err := t.leaseCtx(ctx)
	if err != nil {
		return Lease{}, err
	}
	out, err := t.db.UpdateItem(cctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(t.name), Key: t.leaseKey(),
		UpdateExpression:    aws.String("SET #ver = :nv, #ren = :now"),
		ConditionExpression: aws.String("#h = :h AND #tok = :t AND #rel = :false"),
		ExpressionAttributeNames: map[string]string{
			"#ver": leaseVersion, "#ren": leaseRenewed, "#h": leaseHolder, "#tok": leaseToken, "#rel": leaseReleased,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":nv": str(newVersion()), ":now": num(now().UnixNano()), ":h": str(l.Holder), ":t": unum(l.Token),
			":false": &types.AttributeValueMemberBOOL{Value: false},
		},
		ReturnValues: types.ReturnValueAllNew,
	})
	cancel()
	if err != nil {
		return Lease{}, t.leaseLost(ctx, "renew", l, err)
	}
	t.writes.Add(1)
	t.succeed()
	nl, err := parseLease(out.Attributes)
	if err != nil {
		return Lease{}, fmt.Errorf("DynamoDB table %s: cluster %s: renewed, but: %w", t.name, t.cluster, err)
	}
	return nl, nil
}

// ReleaseLease gives the lease up, on condition that l.Holder still holds
// it with l.Token: Released = true and a new Version, so that a waiting
// host may take it at once. A failed condition is ErrLeaseLost.
func (t *Table) ReleaseLease(ctx context.Context, l Lease) error {
	cctx, cancel, err := t.leaseCtx(ctx)
	if err != nil {
		return err
	}
	_, err = t.db.UpdateItem(cctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(t.name), Key: t.leaseKey(),
		UpdateExpression:         aws.String("SET #rel = :true, #ver = :nv"),
		ConditionExpression:      aws.String("#h = :h AND #tok = :t"),
		ExpressionAttributeNames: map[string]string{"#rel": leaseReleased, "#ver": leaseVersion, "#h": leaseHolder, "#tok": leaseToken},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":true": &types.AttributeValueMemberBOOL{Value: true}, ":nv": str(newVersion()), ":h": str(l.Holder), ":t": unum(l.Token),
		},
	})
	cancel()
	if err != nil {
		return t.leaseLost(ctx, "release", l, err)
	}
	t.writes.Add(1)
	t.succeed()
	return nil
}

// leaseLost turns the error of a renewal or release into ErrLeaseLost
// (saying who holds the lease now) when its condition failed.
func (t *Table) leaseLost(ctx context.Context, what string, l Lease, err error) error {
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		return t.fail("UpdateItem lease ("+what+")", err)
	}
	t.succeed()
	cur, ok, rerr := t.ReadLease(ctx)
	return fmt.Errorf("DynamoDB table %s: cluster %s: %s by %s (token %d): %w%s", t.name, t.cluster, what, l.Holder, l.Token, ErrLeaseLost, describeHolder(cur, ok, rerr))
}

// WantLease records that host wants the lease (Want, WantAt), on
// condition that the lease item exists (else ErrNoLease). It changes
// neither Version nor Token: the holder sees Want at its next renewal and
// may release the lease.
func (t *Table) WantLease(ctx context.Context, host string) error {
	if host == "" {
		return errors.New("WantLease: no host name")
	}
	cctx, cancel, err := t.leaseCtx(ctx)
	if err != nil {
		return err
	}
	_, err = t.db.UpdateItem(cctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(t.name), Key: t.leaseKey(),
		UpdateExpression:          aws.String("SET #w = :w, #wat = :now"),
		ConditionExpression:       aws.String("attribute_exists(#pk)"),
		ExpressionAttributeNames:  map[string]string{"#w": leaseWant, "#wat": leaseWantAt, "#pk": attrCluster},
		ExpressionAttributeValues: map[string]types.AttributeValue{":w": str(host), ":now": num(now().UnixNano())},
	})
	cancel()
	var ccf *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &ccf):
		t.succeed()
		return fmt.Errorf("DynamoDB table %s: cluster %s: %w", t.name, t.cluster, ErrNoLease)
	case err != nil:
		return t.fail("UpdateItem lease (want)", err)
	}
	t.writes.Add(1)
	t.succeed()
	return nil
}
