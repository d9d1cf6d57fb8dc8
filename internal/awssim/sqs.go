package awssim

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SQS, in its JSON protocol (X-Amz-Target: AmazonSQS.<Action>,
// application/x-amz-json-1.0), and the EventBridge events the region
// puts into its queues: what EventBridge rules targeting a queue would
// deliver (see doc.go). Every queue receives every event the region
// generates, as if the operator's rules matched them all.

const svcSQS = "sqs"

// SQS limits (Amazon SQS API Reference, ReceiveMessage, DeleteMessageBatch).
const (
	sqsMaxMessages       = 10
	sqsMaxWait           = 20
	sqsDefaultVisibility = 30 * time.Second
	sqsMaxBody           = 256 << 10
)

type sqsQueue struct {
	name, url  string
	created    time.Time
	visibility time.Duration
	msgs       []*sqsMsg
}

type sqsMsg struct {
	id, body, md5 string
	sent          time.Time
	hiddenUntil   time.Time
	receipt       string
	receives      int
}

type sqsState struct {
	queues map[string]*sqsQueue // by name
	wake   chan struct{}        // closed when a message arrives
}

func (r *Region) sqsInit() {
	r.sqs = &sqsState{queues: map[string]*sqsQueue{}, wake: make(chan struct{})}
}

// CreateQueue makes a queue (as the SQS action does; an existing name is
// returned as it is) and returns its URL.
func (r *Region) CreateQueue(name string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	q, err := r.createQueueLocked(name)
	if err != nil {
		return "", err
	}
	return q.url, nil
}

func (r *Region) createQueueLocked(name string) (*sqsQueue, error) {
	if name == "" || len(name) > 80 || strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
		return nil, &APIError{Code: "InvalidParameterValue", Message: "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length", Status: 400}
	}
	if q := r.sqs.queues[name]; q != nil {
		return q, nil
	}
	q := &sqsQueue{name: name, url: fmt.Sprintf("https://sqs.%s.amazonaws.com/%s/%s", r.name, AccountID, name), created: r.now, visibility: sqsDefaultVisibility}
	r.sqs.queues[name] = q
	return q, nil
}

// SendToQueues puts body in every queue, as EventBridge or a producer
// would. Call with the lock held.
func (r *Region) sendLocked(q *sqsQueue, body string) *sqsMsg {
	sum := md5.Sum([]byte(body))
	m := &sqsMsg{id: r.newUUIDID(""), body: body, md5: hex.EncodeToString(sum[:]), sent: r.now}
	q.msgs = append(q.msgs, m)
	close(r.sqs.wake)
	r.sqs.wake = make(chan struct{})
	return m
}

// emitEvent delivers an EventBridge event from source to every queue.
// Call with the lock held.
func (r *Region) emitEvent(detailType, source string, resources []string, detail any, at time.Time) {
	if len(r.sqs.queues) == 0 {
		return
	}
	if resources == nil {
		resources = []string{}
	}
	ev := map[string]any{
		"version": "0", "id": r.newUUIDID(""), "detail-type": detailType, "source": source,
		"account": AccountID, "time": at.UTC().Format("2006-01-02T15:04:05Z"), "region": r.name,
		"resources": resources, "detail": detail,
	}
	b, _ := json.Marshal(ev)
	for _, q := range r.sqs.queues {
		r.sendLocked(q, string(b))
	}
}

func (r *Region) instanceARN(id string) string {
	return fmt.Sprintf("arn:aws:ec2:%s:%s:instance/%s", r.name, AccountID, id)
}

// stateChangeEvent is EC2's "EC2 Instance State-change Notification".
func (r *Region) stateChangeEvent(in *instance, state string, at time.Time) {
	r.emitEvent("EC2 Instance State-change Notification", "aws.ec2", []string{r.instanceARN(in.id)},
		map[string]string{"instance-id": in.id, "state": state}, at)
}

// QueueMessages returns how many messages each queue holds.
func (r *Region) QueueMessages() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for n, q := range r.sqs.queues {
		out[n] = len(q.msgs)
	}
	return out
}

func errSQS(code, queryCode, msg string) *APIError {
	return &APIError{Code: code, Message: msg, Status: 400, queryCode: queryCode}
}

func errNoQueue() *APIError {
	return errSQS("QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", "The specified queue does not exist.")
}

// queueByURL finds the queue a QueueUrl names (by its last path element,
// whatever its host: the client may reach the region at any address).
func (r *Region) queueByURL(u string) (*sqsQueue, error) {
	if u == "" {
		return nil, errSQS("MissingParameter", "MissingParameter", "The request must contain the parameter QueueUrl.")
	}
	i := strings.LastIndexByte(u, '/')
	q := r.sqs.queues[u[i+1:]]
	if q == nil || !strings.Contains(u, "/"+AccountID+"/") {
		return nil, errNoQueue()
	}
	return q, nil
}

// serveSQS serves one SQS JSON call. ReceiveMessage waits outside the
// lock for a message, up to WaitTimeSeconds (long polling).
func (r *Region) serveSQS(w http.ResponseWriter, req *http.Request, c *call) {
	var in struct {
		QueueName           string
		QueueUrl            string
		MaxNumberOfMessages *int
		WaitTimeSeconds     *int
		VisibilityTimeout   *int
		MessageBody         *string
		AttributeNames      []string
		Entries             []struct{ Id, ReceiptHandle string }
	}
	if err := c.decodeJSON(&in); err != nil {
		r.writeError(w, c, err)
		return
	}
	var deadline time.Time
	for {
		r.mu.Lock()
		r.advance(r.clk.Now())
		c.now = r.now
		var out any
		var err error
		wait := false
		switch c.action {
		case "CreateQueue":
			var q *sqsQueue
			if q, err = r.createQueueLocked(in.QueueName); err == nil {
				out = map[string]string{"QueueUrl": q.url}
			}
		case "GetQueueUrl":
			if q := r.sqs.queues[in.QueueName]; q != nil {
				out = map[string]string{"QueueUrl": q.url}
			} else {
				err = errNoQueue()
			}
		case "GetQueueAttributes":
			var q *sqsQueue
			if q, err = r.queueByURL(in.QueueUrl); err == nil {
				visible, hidden := 0, 0
				for _, m := range q.msgs {
					if m.hiddenUntil.After(r.now) {
						hidden++
					} else {
						visible++
					}
				}
				out = map[string]any{"Attributes": map[string]string{
					"ApproximateNumberOfMessages": strconv.Itoa(visible), "ApproximateNumberOfMessagesNotVisible": strconv.Itoa(hidden),
					"VisibilityTimeout": strconv.Itoa(int(q.visibility / time.Second)), "CreatedTimestamp": strconv.FormatInt(q.created.Unix(), 10),
					"QueueArn": fmt.Sprintf("arn:aws:sqs:%s:%s:%s", r.name, AccountID, q.name),
				}}
			}
		case "SendMessage":
			var q *sqsQueue
			if q, err = r.queueByURL(in.QueueUrl); err == nil {
				switch {
				case in.MessageBody == nil || *in.MessageBody == "":
					err = errSQS("MissingParameter", "MissingParameter", "The request must contain the parameter MessageBody.")
				case len(*in.MessageBody) > sqsMaxBody:
					err = errSQS("InvalidParameterValue", "InvalidParameterValue", "One or more parameters are invalid. Reason: Message must be shorter than 262144 bytes.")
				default:
					m := r.sendLocked(q, *in.MessageBody)
					out = map[string]string{"MessageId": m.id, "MD5OfMessageBody": m.md5}
				}
			}
		case "ReceiveMessage":
			out, wait, err = r.receiveLocked(in.QueueUrl, in.MaxNumberOfMessages, in.WaitTimeSeconds, in.VisibilityTimeout, &deadline)
		case "DeleteMessageBatch":
			out, err = r.deleteBatchLocked(in.QueueUrl, in.Entries)
		default:
			err = &APIError{Code: "UnsupportedOperation", Message: fmt.Sprintf("%s is not supported by the simulated region", c.action), Status: 400}
		}
		wake := r.sqs.wake
		r.mu.Unlock()
		if err != nil {
			r.writeError(w, c, err)
			return
		}
		if wait {
			t := time.NewTimer(time.Until(deadline))
			select {
			case <-wake:
			case <-t.C:
			case <-req.Context().Done():
				t.Stop()
				return
			}
			t.Stop()
			continue
		}
		r.writeResult(w, c, out)
		return
	}
}

// receiveLocked takes up to max visible messages, hiding them for the
// visibility timeout; wait reports that none is there and the long poll
// (until *deadline) goes on. Call with the lock held.
func (r *Region) receiveLocked(url string, maxN, waitS, visS *int, deadline *time.Time) (out any, wait bool, err error) {
	q, err := r.queueByURL(url)
	if err != nil {
		return nil, false, err
	}
	n := 1
	if maxN != nil {
		n = *maxN
	}
	if n < 1 || n > sqsMaxMessages {
		return nil, false, errSQS("InvalidParameterValue", "InvalidParameterValue",
			fmt.Sprintf("Value %d for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.", n))
	}
	ws := 0
	if waitS != nil {
		ws = *waitS
	}
	if ws < 0 || ws > sqsMaxWait {
		return nil, false, errSQS("InvalidParameterValue", "InvalidParameterValue",
			fmt.Sprintf("Value %d for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.", ws))
	}
	vis := q.visibility
	if visS != nil {
		vis = time.Duration(*visS) * time.Second
	}
	if deadline.IsZero() {
		*deadline = time.Now().Add(time.Duration(ws) * time.Second)
	}
	type msgJSON struct {
		MessageId     string
		ReceiptHandle string
		MD5OfBody     string
		Body          string
		Attributes    map[string]string `json:",omitempty"`
	}
	var got []msgJSON
	for _, m := range q.msgs {
		if len(got) == n {
			break
		}
		if m.hiddenUntil.After(r.now) {
			continue
		}
		m.receives++
		m.hiddenUntil = r.now.Add(vis)
		m.receipt = r.newUUIDID("rh-") + "-" + strconv.Itoa(m.receives)
		got = append(got, msgJSON{MessageId: m.id, ReceiptHandle: m.receipt, MD5OfBody: m.md5, Body: m.body})
	}
	if len(got) == 0 && time.Now().Before(*deadline) {
		return nil, true, nil
	}
	if got == nil {
		return map[string]any{}, false, nil // SQS leaves Messages out when none came
	}
	return map[string]any{"Messages": got}, false, nil
}

// deleteBatchLocked deletes messages by receipt handle: at most 10
// entries with distinct ids; an unknown or stale handle fails its entry.
// Call with the lock held.
func (r *Region) deleteBatchLocked(url string, entries []struct{ Id, ReceiptHandle string }) (any, error) {
	q, err := r.queueByURL(url)
	if err != nil {
		return nil, err
	}
	switch {
	case len(entries) == 0:
		return nil, errSQS("EmptyBatchRequest", "AWS.SimpleQueueService.EmptyBatchRequest", "There should be at least one DeleteMessageBatchRequestEntry in the request.")
	case len(entries) > sqsMaxMessages:
		return nil, errSQS("TooManyEntriesInBatchRequest", "AWS.SimpleQueueService.TooManyEntriesInBatchRequest", fmt.Sprintf("Maximum number of entries per request are 10. You have sent %d.", len(entries)))
	}
	seen := map[string]bool{}
	type okJSON struct{ Id string }
	type failJSON struct {
		Id, Code, Message string
		SenderFault       bool
	}
	ok, failed := []okJSON{}, []failJSON{}
	for _, e := range entries {
		if seen[e.Id] {
			return nil, errSQS("BatchEntryIdsNotDistinct", "AWS.SimpleQueueService.BatchEntryIdsNotDistinct", fmt.Sprintf("Id %s repeated.", e.Id))
		}
		seen[e.Id] = true
		i := -1
		for j, m := range q.msgs {
			if m.receipt != "" && m.receipt == e.ReceiptHandle {
				i = j
				break
			}
		}
		if i < 0 {
			failed = append(failed, failJSON{Id: e.Id, Code: "ReceiptHandleIsInvalid", Message: "The input receipt handle is invalid.", SenderFault: true})
			continue
		}
		q.msgs = append(q.msgs[:i], q.msgs[i+1:]...)
		ok = append(ok, okJSON{Id: e.Id})
	}
	return map[string]any{"Successful": ok, "Failed": failed}, nil
}
